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
sums are computed: evaluation does not pay for gradients. Several students of one teacher share each chunk's teacher
logits and soft-max (:func:`multi_student_distillation_loss`, for width sweeps in one run).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
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


def _teacher_chunk(teacher_logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk of the teacher: (log p, p) with p = softmax(u / T), overwriting the logit buffer with log p."""
    log_p = teacher_logits.div_(temperature)
    log_p.sub_(torch.logsumexp(log_p, -1, keepdim=True))
    return log_p, log_p.exp()


def _student_chunk(logits: torch.Tensor, log_p: torch.Tensor, p: torch.Tensor, labels: torch.Tensor,
                   temperature: float, kl_scale: float, ce_scale: float,
                   with_grad: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """One chunk of one student against the teacher's (log p, p): (dloss/dlogits or None, sum_t KL_t, sum_t CE_t).

    KL_t = sum_v p_v (log p_v - log q_v) as a dot product, dloss/ds = kl_scale T (q - p) + ce_scale (softmax(s) - y).
    The student's logit buffer is overwritten; the teacher's (log p, p) are only read, so that several students can
    share them.
    """
    log_normaliser = torch.logsumexp(logits, -1, keepdim=True)
    ce = (log_normaliser.squeeze(1) - logits.gather(1, labels[:, None]).squeeze(1)).sum()
    ce_grad = logits.sub(log_normaliser).exp_() if with_grad and ce_scale else None
    log_q = logits.div_(temperature)
    log_q.sub_(torch.logsumexp(log_q, -1, keepdim=True))
    q = log_q.exp() if with_grad else None
    kl = torch.dot(p.view(-1), log_q.neg_().add_(log_p).view(-1))
    if q is None:
        return None, kl, ce
    grad = q.sub_(p).mul_(kl_scale * temperature)
    if ce_grad is not None:
        ce_grad[torch.arange(labels.numel(), device=labels.device), labels] -= 1.0
        grad.add_(ce_grad, alpha=ce_scale)
    return grad, kl, ce


@functools.lru_cache(maxsize=1)
def _compiled_cores():
    """Both chunk cores through torch.compile (fuses their element-wise passes; worth it on a GPU), built once."""
    return torch.compile(_teacher_chunk, dynamic=True), torch.compile(_student_chunk, dynamic=True)


@dataclass
class _StudentPass:
    """What the fused pass accumulates for one student: the sums and, when it needs them, the gradients."""

    hidden: torch.Tensor
    weight: torch.Tensor
    with_grad: bool
    kl_sum: torch.Tensor
    ce_sum: torch.Tensor
    grad_hidden: torch.Tensor | None = None
    grad_weight: torch.Tensor | None = None


@torch.no_grad()
def _fused_pass(students: list[_StudentPass], teacher_hidden: torch.Tensor, teacher_weight: torch.Tensor,
                targets: torch.Tensor, temperature: float, chunk_size: int, kl_scale: float, ce_scale: float,
                compile_core: bool) -> None:
    """One pass over the tokens in chunks: the teacher's soft-max once per chunk, then every student against it.

    Fills each student's KL and CE sums and, for students that need them, dloss/dh_S = dloss/ds W_S and
    dloss/dW_S = (dloss/ds)^T h_S, accumulated in the compute dtype (fp32, or fp64 for fp64 inputs).
    """
    teacher_core, student_core = _compiled_cores() if compile_core else (_teacher_chunk, _student_chunk)
    compute = students[0].kl_sum.dtype
    for start in range(0, targets.shape[0], chunk_size):
        stop = start + chunk_size
        log_p, p = teacher_core(F.linear(teacher_hidden[start:stop], teacher_weight).to(compute), temperature)
        labels = targets[start:stop]
        for student in students:
            hidden = student.hidden[start:stop]
            logits = F.linear(hidden, student.weight).to(compute)
            grad_logits, kl, ce = student_core(logits, log_p, p, labels, temperature, kl_scale, ce_scale,
                                               student.with_grad)
            student.kl_sum += kl
            student.ce_sum += ce
            if grad_logits is not None:
                grad_logits = grad_logits.to(student.weight.dtype)
                student.grad_hidden[start:stop] = grad_logits @ student.weight
                student.grad_weight += grad_logits.t() @ hidden
    for student in students:
        student.kl_sum *= temperature**2


class _AttachGradients(torch.autograd.Function):
    """Returns ``loss`` as a function of (hidden, weight) whose gradients the fused pass has already computed."""

    @staticmethod
    def forward(ctx, hidden, weight, loss, grad_hidden, grad_weight):
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss.clone()

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None


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
        student_hidden: [batch, sequence, d_S] the student's final hidden states (what its lm_head consumes).
        student_head: [vocab, d_S] the student's lm_head weight.
        teacher_hidden: [batch, sequence, d_T] the teacher's final hidden states.
        teacher_head: [vocab, d_T] the teacher's lm_head weight; the vocabularies must match.
        labels: [batch, sequence] next-token labels with -100 at padding (the model's own labels, unshifted).
        num_items: the divisor (valid tokens of the whole accumulated batch); default: this batch's valid tokens.
        compile_core: run each chunk's soft-max arithmetic through ``torch.compile`` (fuses it into a few kernels;
            worth it on a GPU, where those passes over chunk x vocab dominate).
    """
    return multi_student_distillation_loss([student_hidden], [student_head], teacher_hidden, teacher_head, labels,
                                           temperature, chunk_size, ce_weight, num_items, compile_core)[0]


def multi_student_distillation_loss(
    student_hiddens: Sequence[torch.Tensor], student_heads: Sequence[torch.Tensor], teacher_hidden: torch.Tensor,
    teacher_head: torch.Tensor, labels: torch.Tensor, temperature: float = 2.0, chunk_size: int = 256,
    ce_weight: float = 0.0, num_items: int | torch.Tensor | None = None, compile_core: bool = False,
) -> list[DistillationLoss]:
    """:func:`chunked_distillation_loss` for several students of one teacher on the same tokens, in one pass.

    The teacher's logits and soft-max are computed once per chunk and shared by every student (a width sweep pays
    for them once, not once per width); each student's loss, sums and gradients are exactly what
    :func:`chunked_distillation_loss` gives it alone (the same arithmetic in the same order).
    """
    if len(student_hiddens) != len(student_heads) or not student_hiddens:
        raise ValueError(f"need one lm_head per student hidden state and at least one student, got "
                         f"{len(student_hiddens)} hidden states and {len(student_heads)} heads.")
    for head in student_heads:
        if head.shape[0] != teacher_head.shape[0]:
            raise ValueError(
                f"teacher vocabulary {teacher_head.shape[0]} != student vocabulary {head.shape[0]}: build the "
                "student from the teacher's config (student_config keeps its vocab_size)."
            )
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}.")
    if not 0.0 <= ce_weight <= 1.0:
        raise ValueError(f"ce_weight must lie in [0, 1], got {ce_weight}.")
    packed = [pack_valid_tokens(hidden, teacher_hidden.detach(), labels) for hidden in student_hiddens]
    teacher, targets = packed[0][1], packed[0][2]
    n_tokens = int(targets.numel())
    divisor = float(num_items) if num_items is not None else float(max(n_tokens, 1))
    kl_scale, ce_scale = (1.0 - ce_weight) / divisor, ce_weight / divisor
    passes = []
    for (hidden, _, _), head in zip(packed, student_heads):
        compute = torch.promote_types(hidden.dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
        with_grad = torch.is_grad_enabled() and (hidden.requires_grad or head.requires_grad)
        zero = torch.zeros((), dtype=compute, device=hidden.device)
        passes.append(_StudentPass(
            hidden, head, with_grad, zero, zero.clone(),
            torch.empty(hidden.shape, dtype=compute, device=hidden.device) if with_grad else None,
            torch.zeros(head.shape, dtype=compute, device=head.device) if with_grad else None,
        ))
    _fused_pass(passes, teacher, teacher_head.detach(), targets, float(temperature), int(chunk_size), kl_scale,
                ce_scale, compile_core)
    results = []
    for student in passes:
        loss = kl_scale * student.kl_sum + ce_scale * student.ce_sum
        if student.with_grad:
            loss = _AttachGradients.apply(student.hidden, student.weight, loss,
                                          student.grad_hidden.to(student.hidden.dtype),
                                          student.grad_weight.to(student.weight.dtype))
        results.append(DistillationLoss(loss=loss, kl_sum=student.kl_sum, ce_sum=student.ce_sum, n_tokens=n_tokens))
    return results


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
