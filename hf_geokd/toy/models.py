"""Stacks of Elhage et al. (2022) toy models of superposition, trained together as one tensor.

Each model encodes x in R^n as h = W x in R^d and decodes x_hat = ReLU(W^T h + b). A stack holds M models of one
feature count n and widths up to d_max as W in R^{M x d_max x n}; a row mask zeroes the rows beyond each model's
own width, so those rows get zero gradient and the padded models are exactly the narrow ones. Inputs are shared:
one batch per sparsity level serves every model of that level.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def sparse_features(uniform: torch.Tensor, gate: torch.Tensor, active_probability: torch.Tensor) -> torch.Tensor:
    """x_i = U[0, 1] with probability p else 0, for several p at once from shared random numbers.

    Batches are feature-major ([n, B]: one column per sample), the layout every product below wants.

    Args:
        uniform: [n, B] draws of U[0, 1] (the feature values when active).
        gate: [n, B] draws of U[0, 1] deciding activity.
        active_probability: [A] the p = 1 - alpha of each sparsity level.

    Returns:
        [A, n, B]: one batch per sparsity level, sharing the same random numbers.
    """
    return uniform * (gate < active_probability[:, None, None]).to(uniform.dtype)


class ToyModelStack(torch.nn.Module):
    """M = A x K toy models x_hat = ReLU(W^T W x + b): K models for each of A sparsity levels, level-major.

    Every model of a level sees the same input batch, so the encoder of all K models of a level is one matrix
    product [K d_max, n] x [n, B]; only the decoder is a batched product per model. Batches are feature-major
    ([n, B]), so no product needs a transposed copy. Gradients are written by hand (no autograd graph), which keeps
    the full-size [M, n, B] tensors to the few that the arithmetic needs.

    Args:
        widths: [M] hidden width of each model (<= d_max), level-major with K models per level.
        n_features: n, the input dimension shared by the stack.
        n_levels: A, the number of sparsity levels.
        generator: seeds the Xavier-normal initialisation of W.
    """

    def __init__(self, widths: torch.Tensor, n_features: int, n_levels: int, generator: torch.Generator) -> None:
        super().__init__()
        if widths.numel() % n_levels:
            raise ValueError(f"{widths.numel()} models do not split evenly into {n_levels} sparsity levels.")
        d_max = int(widths.max())
        std = math.sqrt(2.0 / (d_max + n_features))
        self.W = torch.nn.Parameter(torch.randn(widths.numel(), d_max, n_features, generator=generator) * std)
        self.b = torch.nn.Parameter(torch.zeros(widths.numel(), n_features))
        mask = (torch.arange(d_max)[None, :] < widths[:, None]).to(self.W.dtype)
        self.register_buffer("row_mask", mask[:, :, None])
        self.widths = widths
        self.n_levels = n_levels

    @property
    def masked_W(self) -> torch.Tensor:
        return self.W * self.row_mask

    def pre_activation(self, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden h = W x [M, d, B], z = W^T h + b [M, n, B]) for feature-major batches ``levels`` [A, n, B]."""
        A, n, B = levels.shape
        W = self.masked_W
        M, d, _ = W.shape
        hidden = torch.bmm(W.view(A, (M // A) * d, n), levels).view(M, d, B)
        return hidden, torch.bmm(W.transpose(1, 2), hidden).add_(self.b[:, :, None])

    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        """levels [A, n, B] -> x_hat [M, n, B]."""
        return torch.relu_(self.pre_activation(levels)[1])

    @torch.no_grad()
    def accumulate_gradients(
        self, levels: torch.Tensor, subtract_target: Callable[[torch.Tensor], None], importance: torch.Tensor
    ) -> None:
        """Set .grad of W and b to the gradient of sum_m mean_B sum_i I_i (x_hat - target)^2.

        ``subtract_target(z)`` subtracts each model's target from z [M, n, B] in place (see :func:`shared_target`
        and :func:`teacher_target`), so that targets shared by several models are never copied per model.
        With g = 2 I (x_hat - target) 1[z > 0] / B: dL/db = sum_B g, dL/dW = h g^T + (W g) x^T (masked).
        """
        A, n, B = levels.shape
        W = self.masked_W
        hidden, z = self.pre_activation(levels)
        M, d, _ = hidden.shape
        inactive = z <= 0
        subtract_target(z)
        grad_z = z.masked_fill_(inactive, 0.0).mul_((importance * (2.0 / B))[:, None])
        grad_W = torch.bmm(hidden, grad_z.transpose(1, 2))
        grad_hidden = torch.bmm(W, grad_z).view(A, (M // A) * d, B)
        grad_W += torch.bmm(grad_hidden, levels.transpose(1, 2)).view(M, d, n)
        self.W.grad = grad_W.mul_(self.row_mask)
        self.b.grad = grad_z.sum(2)


def shared_target(levels: torch.Tensor) -> Callable[[torch.Tensor], None]:
    """Targets for reconstruction: every model of a level reconstructs that level's batch [A, n, B]."""
    A = levels.shape[0]
    return lambda z: z.view(A, -1, *levels.shape[1:]).sub_(levels[:, None])


def teacher_target(outputs: torch.Tensor, blocks: list[tuple[int, int, int, int]]) -> Callable[[torch.Tensor], None]:
    """Targets for distillation: each student reproduces its teacher's outputs [T, n, B].

    ``blocks`` lists (first student, first teacher, teachers, students per teacher): runs of consecutive teachers
    whose students sit consecutively, as many per teacher, so the subtraction broadcasts instead of gathering.
    """

    def subtract(z: torch.Tensor) -> None:
        n, B = z.shape[1:]
        for student, teacher, count, per_teacher in blocks:
            students = z[student : student + count * per_teacher].view(count, per_teacher, n, B)
            students.sub_(outputs[teacher : teacher + count, None])

    return subtract


def weighted_loss(prediction: torch.Tensor, target: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Per-model loss sum_i I_i (target_i - prediction_i)^2, averaged over the batch: [..., n, B] -> [...]."""
    return ((prediction - target) ** 2 * importance[:, None]).sum(-2).mean(-1)


def train_stack(
    stack: ToyModelStack,
    batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    importance: torch.Tensor,
    steps: int,
    lr: float,
    generator: torch.Generator,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Adam with cosine decay; each model's gradient is that of its own loss (the models share nothing).

    Args:
        batch: draws (input levels [A, n, B], a target subtraction for :meth:`ToyModelStack.accumulate_gradients`).
        progress: called with the number of steps done since the last call.
    """
    optimizer = torch.optim.Adam(stack.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    report_every = 50
    for step in range(steps):
        levels, targets = batch(generator)
        stack.accumulate_gradients(levels, targets, importance)
        optimizer.step()
        schedule.step()
        if progress is not None and (step + 1) % report_every == 0:
            progress(report_every)
    if progress is not None and steps % report_every:
        progress(steps % report_every)


def feature_geometry(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature embedding norms ||W_i|| and dimensionalities D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2.

    W: [M, d, n] (column i is feature i's direction). Returns two [M, n] tensors; D_i = 0 for a dropped feature.
    """
    norms = W.norm(dim=1)
    unit = W / norms.clamp_min(1e-12)[:, None, :]
    overlaps = torch.bmm(unit.transpose(1, 2), W) ** 2  # [M, n, n]: (W_i_hat . W_j)^2
    dimensionality = norms**2 / overlaps.sum(-1).clamp_min(1e-12)
    return norms, torch.where(norms > 1e-6, dimensionality, torch.zeros_like(dimensionality))
