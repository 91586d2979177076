"""The read-out checked where the truth is known: toy students (Elhage et al. 2022), whose weights say what they keep.

A toy student encodes x in R^n as h = W x in R^d (x_i = U[0, 1] with probability p = 1 - alpha, else 0) and keeps
feature i when its embedding norm ||W_i|| exceeds a threshold (0.5 in ``ToySweepConfig``). The survival read-out
sees only h: a ridge read-out of each x_i from h, scored by held-out R^2. The teacher's "latent" is x_i itself, so
the ceiling is 1 and the normalised score is the R^2. A method that works must rank the kept features above the
dropped ones (AUC) and count them (kept-count error at the survival threshold).
"""

from __future__ import annotations

import numpy as np
import torch

from .readout import RidgeReadout
from .result import ordering_auc


def toy_feature_scores(W: torch.Tensor, alpha: float, n_samples: int = 16_384, held_out: float = 0.25,
                       ridge: float = 1e-3, seed: int = 0, probe: str = "linear", steps: int = 300) -> np.ndarray:
    """Held-out R^2 of a read-out of each feature x_i from a toy model's hidden h = W x (W: [d, n]).

    ``probe="linear"``: ridge (the read-out ``measure_feature_survival`` uses). ``probe="relu"``: x_i ~ ReLU(v_i . h
    + c_i), one probe per feature trained by MSE (the loss separates per feature) with Adam for ``steps`` full-batch
    steps from the ridge solution; it reads a superposed feature through a threshold, as the toy decoder does.
    """
    if probe not in ("linear", "relu"):
        raise ValueError(f"probe must be 'linear' or 'relu', got {probe!r}.")
    d, n = W.shape
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n_samples, n, generator=generator, dtype=torch.float64)
    x = x * (torch.rand(n_samples, n, generator=generator, dtype=torch.float64) < 1 - alpha)
    test = torch.rand(n_samples, generator=generator) < held_out
    h = x @ W.double().T
    readout = RidgeReadout(d, n, ridge)
    readout.update(h, x, test)
    if probe == "linear":
        return readout.held_out_r2().numpy()
    weights, bias = (tensor.clone().requires_grad_(True) for tensor in readout.weights())
    optimizer = torch.optim.Adam([weights, bias], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (torch.relu(h[~test] @ weights + bias) - x[~test]).pow(2).mean(0).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        residual = (torch.relu(h[test] @ weights + bias) - x[test]).pow(2).sum(0)
        total = (x[test] - x[test].mean(0)).pow(2).sum(0)
        return torch.where(total > 0, 1 - residual / total, torch.full_like(total, float("nan"))).numpy()


def kept_set_recovery(scores: np.ndarray, norms: np.ndarray, kept_threshold: float = 0.5,
                      threshold: float = 0.5) -> dict[str, float]:
    """How well read-out scores recover the kept set {i : ||W_i|| > kept_threshold}: the AUC of the scores for it,
    the true and the read-out counts (score > threshold), and their difference."""
    kept = np.asarray(norms) > kept_threshold
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0)
    kept_probe = int((scores > threshold).sum())
    return {"auc": ordering_auc(scores, kept), "kept": int(kept.sum()), "kept_probe": kept_probe,
            "kept_error": kept_probe - int(kept.sum()), "agreement": float(((scores > threshold) == kept).mean())}
