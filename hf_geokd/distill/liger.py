"""The optional CUDA backend of the distillation loss: Liger's fused linear JSD and cross-entropy kernels.

Liger's ``LigerFusedLinearJSD`` at ``jsd_beta = 0`` is the forward KL(teacher_T || student_T) averaged over the
tokens it is given, without the T^2 factor (checked against our reference on the same inputs in the tests, through
Triton's CPU interpreter). So, over the n valid tokens packed as in :func:`hf_geokd.distill.kl.pack_valid_tokens`,

    kl_sum = T^2 n JSD_0,   ce_sum = LigerFusedLinearCrossEntropyLoss(reduction="sum"),
    loss = ((1 - w) kl_sum + w ce_sum) / num_items,

which is what :func:`hf_geokd.distill.kl.chunked_distillation_loss` returns, except that at w = 0 under autograd
(training) CE is not computed (``ce_sum`` is NaN: an extra pass over the vocabulary only to log it); evaluation
computes it. ``kl_chunk_size`` and ``kl_compile`` do not apply (Liger chunks on its own). The kernels are Triton:
they run on CUDA devices, or on the CPU under ``TRITON_INTERPRET=1`` (slowly; how the tests check them).
``pip install "hf-geokd[liger]"``.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from .kl import DistillationLoss, pack_valid_tokens

LOSS_BACKENDS = ("chunked", "liger")


def liger_unavailable(device: torch.device) -> str | None:
    """Why the Liger backend cannot run on ``device`` (None when it can)."""
    if importlib.util.find_spec("liger_kernel") is None or importlib.util.find_spec("triton") is None:
        return "liger-kernel (with triton) is not installed (pip install 'hf-geokd[liger]')"
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return f"its Triton kernels need a CUDA device, and this run is on {device.type}"
    return None


def liger_distillation_loss(
    student_hidden: torch.Tensor, student_head: torch.Tensor, teacher_hidden: torch.Tensor, teacher_head: torch.Tensor,
    labels: torch.Tensor, temperature: float = 2.0, ce_weight: float = 0.0,
    num_items: int | torch.Tensor | None = None,
) -> DistillationLoss:
    """(1 - ce_weight) T^2 KL(teacher || student) + ce_weight CE per valid token, through Liger's fused kernels
    (same arguments and result as :func:`hf_geokd.distill.kl.chunked_distillation_loss`)."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss, LigerFusedLinearJSD  # Deferred: optional

    hidden, teacher, targets = pack_valid_tokens(student_hidden, teacher_hidden.detach(), labels)
    n_tokens = int(targets.numel())
    divisor = float(num_items) if num_items is not None else float(max(n_tokens, 1))
    if n_tokens == 0:
        zero = student_hidden.new_zeros((), dtype=torch.float32)
        return DistillationLoss(loss=(student_hidden.sum() + student_head.sum()) * 0.0, kl_sum=zero, ce_sum=zero,
                                n_tokens=0)
    kl_sum = (LigerFusedLinearJSD(jsd_beta=0.0, temperature=float(temperature))(
        hidden, student_head, teacher.to(hidden.dtype), teacher_head.detach().to(student_head.dtype), None)
        * (n_tokens * float(temperature) ** 2))
    cross_entropy = LigerFusedLinearCrossEntropyLoss(reduction="sum")
    if ce_weight > 0:
        ce_sum = cross_entropy(student_head, hidden, targets)
        loss = (1.0 - ce_weight) / divisor * kl_sum + ce_weight / divisor * ce_sum
    elif torch.is_grad_enabled():  # training at w = 0: CE would cost one more pass over the vocabulary, only to log
        ce_sum = torch.full((), float("nan"), device=hidden.device)
        loss = kl_sum / divisor
    else:  # evaluation: CE is logged as the chunked loss logs it (detached inputs: the kernel computes no gradient)
        ce_sum = cross_entropy(student_head.detach(), hidden.detach(), targets)
        loss = kl_sum / divisor
    return DistillationLoss(loss=loss, kl_sum=kl_sum.detach().float(), ce_sum=ce_sum.detach().float(),
                            n_tokens=n_tokens)
