"""Feature statistics with no forward pass, from the sparsity file an SAE ships; the contributions are approximate.

sae-lens saves ``sparsity.safetensors`` beside an SAE: s_i = log10(p_i + 1e-10), p_i the fraction of tokens on which
latent i fired (z_i != 0) over its last feature-sampling window of training. From it, as if measured on those tokens:

    alive: p_i > alive_threshold;  F = #alive;  L0 = sum_{alive} p_i;  alpha = 1 - L0 / F

The contributions E[z_i^2] ||W_dec,i||^2 need each latent's magnitude, which the file lacks. Approximation:

    E[z_i^2] ||W_dec,i||^2  ~  p_i ||W_dec,i||^2          (E[z_i^2 | fires] taken equal for every latent)

so the spectrum's shape comes from firing frequencies and decoder norms only; its scale is arbitrary (the normalised
predicted floor does not depend on it, ``predicted_floor_raw`` does). Predictors built on such statistics say
``approximate`` in their table, card and repr.
"""

from __future__ import annotations

import torch

from ..stats import FeatureStats
from .hooks import sae_hook_name
from .measure import DEFAULT_ALIVE_THRESHOLD

APPROXIMATION = (
    "no forward pass: F, L0 and alpha from the SAE's sparsity file (its training window's firing frequencies p_i); "
    "contributions approximated as p_i ||W_dec,i||^2 (equal E[z_i^2 | fires] for every latent)"
)


def stats_from_sparsity(sae, log_sparsity: torch.Tensor, alive_threshold: float = DEFAULT_ALIVE_THRESHOLD
                        ) -> FeatureStats:
    """Approximate :class:`FeatureStats` of ``sae`` from its log10 firing frequencies (see the module docstring)."""
    log_sparsity = torch.as_tensor(log_sparsity, dtype=torch.float64).flatten()
    if log_sparsity.numel() != sae.cfg.d_sae:
        raise ValueError(
            f"the sparsity file has {log_sparsity.numel()} values but the SAE has d_sae = {sae.cfg.d_sae} latents: it "
            "belongs to another SAE."
        )
    if not torch.isfinite(log_sparsity).all() or (log_sparsity > 1e-6).any():
        raise ValueError("the sparsity file holds values that are not log10 frequencies (finite, <= 0).")
    frequency = (10.0**log_sparsity - 1e-10).clamp(min=0.0)
    alive = frequency > alive_threshold
    n_alive = int(alive.sum())
    if n_alive == 0:
        raise ValueError(f"no latent fires more often than {alive_threshold:g} in the sparsity file.")
    scale = sae.W_dec.detach().double().pow(2).sum(-1).cpu()
    return FeatureStats.from_counts(
        n_alive,
        float(frequency[alive].sum()),
        (frequency * scale)[alive],
        latents=alive.nonzero().flatten(),
        hook_name=sae_hook_name(sae),
        d_in=sae.cfg.d_in,
        alive_threshold=alive_threshold,
        metadata={"d_sae": sae.cfg.d_sae, "dead_latents": sae.cfg.d_sae - n_alive, "approximation": APPROXIMATION},
    )
