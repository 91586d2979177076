"""Distillation loss over a large vocabulary without materialising full logits.

Per valid token t (label != -100, after the causal shift), with student logits s = W_S h_S and teacher logits
u = W_T h_T over the vocabulary, at temperature T (paper section 6, Hinton et al. 2015):

    KL_t = sum_v p_v (log p_v - log q_v),   p = softmax(u / T),  q = softmax(s / T)
    CE_t = -log softmax(s)_{y_t}
    loss = (kl_scale * T^2 * sum_t KL_t + ce_scale * sum_t CE_t)

Tokens are packed and processed ``chunk_size`` at a time: each chunk's fp32 logits exist only inside the loop. The
gradient is computed in the same pass (as in fused linear-cross-entropy kernels):
dloss/ds = kl_scale * T (q - p) + ce_scale * (softmax(s) - onehot(y)), then dloss/dh_S = dloss/ds W_S and
dloss/dW_S = (dloss/ds)^T h_S, accumulated in fp32, so backward needs neither the logits nor a recomputation.
When no gradient is needed (evaluation under ``torch.no_grad()``, or a student that does not require grad) only the
sums are computed: evaluation does not pay for gradients.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DistillationLoss:
    """The differentiable loss, and the raw sums for logging (no gradient)."""

    loss: torch.Tensor
    kl_sum: torch.Tensor  # T^2 * sum_t KL_t
    ce_sum: torch.Tensor  # sum_t CE_t
    n_tokens: int


def _chunk_core(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float,
                kl_scale: float, ce_scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One chunk: (dloss/dlogits, sum_t KL_t, sum_t CE_t), overwriting both logit buffers to save passes.

    KL_t = sum_v p_v (log p_v - log q_v) as a dot product, dloss/ds = kl_scale T (q - p) + ce_scale (softmax(s) - y).
    """
    log_normaliser = torch.logsumexp(logits, -1, keepdim=True)
    ce = (log_normaliser.squeeze(1) - logits.gather(1, labels[:, None]).squeeze(1)).sum()
    ce_grad = logits.sub(log_normaliser).exp_() if ce_scale else None
    log_q = logits.div_(temperature)
    log_q.sub_(torch.logsumexp(log_q, -1, keepdim=True))
    log_p = teacher_logits.div_(temperature)
    log_p.sub_(torch.logsumexp(log_p, -1, keepdim=True))
    p = log_p.exp()
    kl = torch.dot(p.view(-1), log_p.sub_(log_q).view(-1))
    grad = log_q.exp_().sub_(p).mul_(kl_scale * temperature)
    if ce_grad is not None:
        ce_grad[torch.arange(labels.numel(), device=labels.device), labels] -= 1.0
        grad.add_(ce_grad, alpha=ce_scale)
    return grad, kl, ce


@functools.lru_cache(maxsize=1)
def _compiled_chunk_core():
    """The chunk core through torch.compile (fuses its element-wise passes; worth it on a GPU), built once."""
    return torch.compile(_chunk_core, dynamic=True)


def _chunk_sums(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk without gradients: (sum_t KL_t, sum_t CE_t)."""
    ce = (torch.logsumexp(logits, -1) - logits.gather(1, labels[:, None]).squeeze(1)).sum()
    log_q = torch.log_softmax(logits.div_(temperature), -1)
    log_p = torch.log_softmax(teacher_logits.div_(temperature), -1)
    kl = torch.dot(log_p.exp().view(-1), log_p.sub_(log_q).view(-1))
    return kl, ce


def _loss_without_grad(student_hidden, student_weight, teacher_hidden, teacher_weight, targets, temperature: float,
                       chunk_size: int, kl_scale: float, ce_scale: float) -> tuple[torch.Tensor, ...]:
    compute = torch.promote_types(student_hidden.dtype, torch.float32)
    kl_total = torch.zeros((), dtype=compute, device=student_hidden.device)
    ce_total = torch.zeros_like(kl_total)
    for start in range(0, student_hidden.shape[0], chunk_size):
        logits = F.linear(student_hidden[start : start + chunk_size], student_weight).to(compute)
        teacher_logits = F.linear(teacher_hidden[start : start + chunk_size], teacher_weight).to(compute)
        kl, ce = _chunk_sums(logits, teacher_logits, targets[start : start + chunk_size], temperature)
        kl_total += kl
        ce_total += ce
    kl_total *= temperature**2
    return kl_scale * kl_total + ce_scale * ce_total, kl_total, ce_total


class _FusedDistillation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, student_hidden, student_weight, teacher_hidden, teacher_weight, targets, temperature: float,
                chunk_size: int, kl_scale: float, ce_scale: float, compile_core: bool):
        n_tokens = student_hidden.shape[0]
        compute = torch.promote_types(student_hidden.dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
        grad_hidden = torch.empty(student_hidden.shape, dtype=compute, device=student_hidden.device)
        grad_weight = torch.zeros(student_weight.shape, dtype=compute, device=student_weight.device)
        kl_total = torch.zeros((), dtype=compute, device=student_hidden.device)
        ce_total = torch.zeros_like(kl_total)
        core = _compiled_chunk_core() if compile_core else _chunk_core
        for start in range(0, n_tokens, chunk_size):
            hidden = student_hidden[start : start + chunk_size]
            logits = F.linear(hidden, student_weight).to(compute)
            teacher_logits = F.linear(teacher_hidden[start : start + chunk_size], teacher_weight).to(compute)
            grad_logits, kl, ce = core(logits, teacher_logits, targets[start : start + chunk_size], temperature,
                                       kl_scale, ce_scale)
            kl_total += kl
            ce_total += ce
            grad_logits = grad_logits.to(student_weight.dtype)
            grad_hidden[start : start + chunk_size] = grad_logits @ student_weight
            grad_weight += grad_logits.t() @ hidden
        kl_total *= temperature**2
        loss = kl_scale * kl_total + ce_scale * ce_total
        ctx.save_for_backward(grad_hidden.to(student_hidden.dtype), grad_weight.to(student_weight.dtype))
        ctx.mark_non_differentiable(kl_total, ce_total)
        return loss, kl_total, ce_total

    @staticmethod
    def backward(ctx, grad_loss, _grad_kl, _grad_ce):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None, None, None, None, None


def pack_valid_tokens(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shift by one (position i predicts label i + 1) and keep the positions whose label is not -100."""
    if student_hidden.shape[:2] != teacher_hidden.shape[:2] or student_hidden.shape[:2] != labels.shape:
        raise ValueError(
            f"student hidden {tuple(student_hidden.shape)}, teacher hidden {tuple(teacher_hidden.shape)} and labels "
            f"{tuple(labels.shape)} must share [batch, sequence]: feed both models the same input_ids."
        )
    shifted = labels[:, 1:]
    valid = shifted != -100
    return student_hidden[:, :-1][valid], teacher_hidden[:, :-1][valid], shifted[valid]


def chunked_distillation_loss(
    student_hidden: torch.Tensor, student_head: torch.Tensor, teacher_hidden: torch.Tensor, teacher_head: torch.Tensor,
    labels: torch.Tensor, temperature: float = 2.0, chunk_size: int = 256, ce_weight: float = 0.0,
    num_items: int | torch.Tensor | None = None, compile_core: bool = False,
) -> DistillationLoss:
    """(1 - ce_weight) T^2 KL(teacher || student) + ce_weight CE, per valid token, in chunks of tokens.

    Args:
        student_hidden, teacher_hidden: [batch, sequence, d] final hidden states (what each lm_head consumes).
        student_head, teacher_head: [vocab, d] lm_head weights; the vocabularies must match.
        labels: [batch, sequence] next-token labels with -100 at padding (the model's own labels, unshifted).
        num_items: the divisor (valid tokens of the whole accumulated batch); default: this batch's valid tokens.
        compile_core: run each chunk's soft-max arithmetic through ``torch.compile`` (fuses it into a few kernels;
            worth it on a GPU, where those passes over chunk x vocab dominate).
    """
    if student_head.shape[0] != teacher_head.shape[0]:
        raise ValueError(
            f"teacher vocabulary {teacher_head.shape[0]} != student vocabulary {student_head.shape[0]}: build the "
            "student from the teacher's config (student_config keeps its vocab_size)."
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if not 0.0 <= ce_weight <= 1.0:
        raise ValueError(f"ce_weight must lie in [0, 1], got {ce_weight}.")
    student, teacher, targets = pack_valid_tokens(student_hidden, teacher_hidden.detach(), labels)
    n_tokens = int(targets.numel())
    divisor = float(num_items) if num_items is not None else float(max(n_tokens, 1))
    scales = ((1.0 - ce_weight) / divisor, ce_weight / divisor)
    if torch.is_grad_enabled() and (student.requires_grad or student_head.requires_grad):
        loss, kl_sum, ce_sum = _FusedDistillation.apply(
            student, student_head, teacher, teacher_head.detach(), targets, float(temperature), int(chunk_size),
            *scales, compile_core,
        )
    else:
        with torch.no_grad():
            loss, kl_sum, ce_sum = _loss_without_grad(student, student_head, teacher, teacher_head.detach(), targets,
                                                      float(temperature), int(chunk_size), *scales)
    return DistillationLoss(loss=loss, kl_sum=kl_sum, ce_sum=ce_sum, n_tokens=n_tokens)


def naive_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 2.0,
    ce_weight: float = 0.0,
) -> torch.Tensor:
    """The reference: full fp32 logits, (1 - w) T^2 KL + w CE averaged over valid tokens."""
    valid = labels[:, 1:] != -100
    compute = torch.promote_types(student_logits.dtype, torch.float32)
    student = student_logits[:, :-1][valid].to(compute)
    teacher = teacher_logits[:, :-1][valid].to(compute)
    kl = F.kl_div(F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1),
                  log_target=True, reduction="batchmean") * temperature**2
    ce = F.cross_entropy(student, labels[:, 1:][valid])
    return (1 - ce_weight) * kl + ce_weight * ce
