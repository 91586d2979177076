"""Streaming ridge read-out: sufficient statistics on a token stream, held-out R^2 per target, in one pass.

For readers X (tokens x d) and targets Y (tokens x F), each token goes to the train or the held-out split and only
moment sums are kept per split: n, sum x, sum y, X^T X, X^T Y and sum y^2 (per target). Memory is O(d^2 + d F),
independent of the number of tokens. The read-out of target i is ridge regression on the train split,

    C = X_c^T X_c / n,  c = X_c^T y_c / n  (centred on the train means),
    w_i = (C + lambda tr(C)/d I)^-1 c_i,  b_i = mean(y_i) - mean(x) . w_i,

and its held-out score is R^2_i = 1 - SSE_i / SST_i with, on the held-out sums,

    SSE_i = sum y_i^2 - 2 (w_i . X^T y_i + b_i sum y_i) + w_i^T X^T X w_i + 2 b_i (sum x . w_i) + n b_i^2,
    SST_i = sum y_i^2 - (sum y_i)^2 / n.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class _Moments:
    """Moment sums of (x, y) pairs on one split, float64."""

    n: int
    sum_x: torch.Tensor
    sum_y: torch.Tensor
    xtx: torch.Tensor
    xty: torch.Tensor
    sum_y2: torch.Tensor

    @classmethod
    def zeros(cls, d: int, f: int, device: torch.device) -> _Moments:
        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, dtype=torch.float64, device=device)

        return cls(0, z(d), z(f), z(d, d), z(d, f), z(f))

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double(), y.double()
        self.n += x.shape[0]
        self.sum_x += x.sum(0)
        self.sum_y += y.sum(0)
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.sum_y2 += y.pow(2).sum(0)


class RidgeReadout:
    """Accumulates train and held-out moments of one reader's activations against shared targets.

    Args:
        d: the reader's width (d_S for a student).
        n_targets: F, the number of targets (SAE latents).
        ridge: lambda, relative to the mean eigenvalue tr(C)/d of the train covariance.
    """

    def __init__(self, d: int, n_targets: int, ridge: float = 1e-3, device: torch.device | str = "cpu") -> None:
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0 (a relative ridge penalty), got {ridge}.")
        device = torch.device(device)
        self.d, self.n_targets, self.ridge = d, n_targets, ridge
        self.train = _Moments.zeros(d, n_targets, device)
        self.test = _Moments.zeros(d, n_targets, device)

    def update(self, x: torch.Tensor, y: torch.Tensor, held_out: torch.Tensor) -> None:
        """Add tokens: ``x`` [n, d] reader activations, ``y`` [n, F] targets, ``held_out`` [n] bool split."""
        if x.shape[0] != y.shape[0] or x.shape[-1] != self.d or y.shape[-1] != self.n_targets:
            raise ValueError(f"update needs x [n, {self.d}] and y [n, {self.n_targets}], got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}.")
        self.train.add(x[~held_out], y[~held_out])
        self.test.add(x[held_out], y[held_out])

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ridge weights W [d, F] and intercepts b [F] fitted on the train split."""
        train = self.train
        if train.n < 2:
            raise ValueError(f"the train split holds {train.n} tokens: pass more tokens or a smaller held_out share.")
        mean_x, mean_y = train.sum_x / train.n, train.sum_y / train.n
        cov = train.xtx / train.n - torch.outer(mean_x, mean_x)
        cross = train.xty / train.n - torch.outer(mean_x, mean_y)
        scale = float(torch.trace(cov)) / self.d
        penalty = self.ridge * (scale if scale > 0 else 1.0) + 1e-12
        eye = torch.eye(self.d, dtype=cov.dtype, device=cov.device)
        w = torch.linalg.solve(cov + penalty * eye, cross)
        return w, mean_y - mean_x @ w

    def held_out_r2(self) -> torch.Tensor:
        """R^2 per target on the held-out split (NaN where the held-out target has no variance)."""
        w, b = self.weights()
        test = self.test
        if test.n < 2:
            raise ValueError(f"the held-out split holds {test.n} tokens: pass more tokens or a larger held_out share.")
        cross = (test.xty * w).sum(0) + b * test.sum_y
        quadratic = ((test.xtx @ w) * w).sum(0) + 2 * b * (test.sum_x @ w) + test.n * b * b
        sse = test.sum_y2 - 2 * cross + quadratic
        sst = test.sum_y2 - test.sum_y.pow(2) / test.n
        r2 = 1 - sse / sst
        return torch.where(sst > 1e-12 * test.n, r2, torch.full_like(r2, float("nan")))


class TokenBaseline:
    """The token-identity read-out: each target predicted by its train mean for the current token id.

    Keeps per-token sums of y and counts on both splits ([V, F] each), so it is meant for small vocabularies times
    latents; unseen tokens are predicted by the global train mean (a shrinkage of one pseudo-count toward it).
    """

    def __init__(self, vocab_size: int, n_targets: int, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.vocab_size = vocab_size
        self.sums = torch.zeros(2, vocab_size, n_targets, dtype=torch.float64, device=device)
        self.counts = torch.zeros(2, vocab_size, dtype=torch.float64, device=device)
        self.test_y2 = torch.zeros(n_targets, dtype=torch.float64, device=device)

    def update(self, tokens: torch.Tensor, y: torch.Tensor, held_out: torch.Tensor) -> None:
        """Add tokens: ``tokens`` [n] ids, ``y`` [n, F] targets, ``held_out`` [n] bool split."""
        if int(tokens.max()) >= self.vocab_size:
            raise ValueError(f"token id {int(tokens.max())} >= vocab_size {self.vocab_size}.")
        y = y.double()
        for split, mask in ((0, ~held_out), (1, held_out)):
            self.sums[split].index_add_(0, tokens[mask], y[mask])
            self.counts[split].index_add_(0, tokens[mask], torch.ones_like(tokens[mask], dtype=torch.float64))
        self.test_y2 += y[held_out].pow(2).sum(0)

    def held_out_r2(self) -> torch.Tensor:
        """R^2 per target on the held-out split of the per-token mean predictor."""
        (train_sums, test_sums), (train_n, test_n) = self.sums, self.counts
        global_mean = train_sums.sum(0) / train_n.sum().clamp_min(1)
        mu = (train_sums + global_mean) / (train_n + 1)[:, None]
        sse = self.test_y2 - 2 * (mu * test_sums).sum(0) + (test_n[:, None] * mu * mu).sum(0)
        n = test_n.sum()
        sst = self.test_y2 - test_sums.sum(0).pow(2) / n
        r2 = 1 - sse / sst
        return torch.where(sst > 1e-12 * n, r2, torch.full_like(r2, float("nan")))
