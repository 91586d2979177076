"""Per-latent ReLU read-outs, trained by streaming MSE from the ridge solution.

Under superposition a feature is read out through a threshold: z_i ~ ReLU(x . w_i + b_i) can silence the
interference that a linear read-out must average in. The loss sum_i mean_t (ReLU(x_t . w_i + b_i) - z_ti)^2
separates per latent, so one [d, F] layer trains every probe at once. Inputs are standardised with the train split's
moments and each target is divided by its train standard deviation (R^2 does not change), so one Adam learning rate
suits every reader and latent; the probe starts from the ridge solution, rescaled the same way, and the learning rate
decays linearly to zero over the training steps.
"""

from __future__ import annotations

import torch

from .readout import RidgeReadout


class ReluProbe:
    """ReLU read-outs of every target from one reader, initialised from its fitted ``RidgeReadout``."""

    def __init__(self, readout: RidgeReadout, lr: float = 0.1, total_steps: int = 1) -> None:
        train = readout.train
        weights, bias = readout.weights()
        self.mean = train.sum_x / train.n
        self.std = (train.xtx.diagonal() / train.n - self.mean.pow(2)).clamp_min(0).sqrt().clamp_min(1e-8)
        target_mean = train.sum_y / train.n
        self.scale = (train.sum_y2 / train.n - target_mean.pow(2)).clamp_min(0).sqrt().clamp_min(1e-8)
        self.weights = (weights * self.std[:, None] / self.scale).float().requires_grad_(True)
        self.bias = ((bias + self.mean @ weights) / self.scale).float().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.weights, self.bias], lr=lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(  # linear decay to zero: the last iterate settles
            self.optimizer, lambda step: max(0.0, 1.0 - step / max(1, total_steps)))
        self.sse = torch.zeros_like(target_mean)
        self.readout = readout

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions in units of each target's train standard deviation."""
        return torch.relu(((x.double() - self.mean) / self.std).float() @ self.weights + self.bias)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One Adam step on train tokens ``x`` [n, d], ``y`` [n, F]."""
        if x.shape[0] == 0:
            return
        with torch.enable_grad():
            self.optimizer.zero_grad()
            loss = (self._predict(x) - y / self.scale.float()).pow(2).mean(0).sum()
            loss.backward()
            self.optimizer.step()
            self.schedule.step()

    @torch.no_grad()
    def score(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add held-out tokens to the squared error."""
        self.sse += (self._predict(x).double() * self.scale - y.double()).pow(2).sum(0)

    def held_out_r2(self) -> torch.Tensor:
        """R^2 per target on the held-out tokens scored (the ridge read-out's held-out moments give the variance)."""
        test = self.readout.test
        sst = test.sum_y2 - test.sum_y.pow(2) / test.n
        r2 = 1 - self.sse / sst
        return torch.where(sst > 1e-12 * test.n, r2, torch.full_like(r2, float("nan")))
