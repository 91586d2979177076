"""GPU check of the distillation path (not a benchmark): the fused loss against the full-logit reference on CUDA in
fp32, and a short DistillationTrainer run with a bfloat16 teacher and bf16 mixed precision.

    python benchmarks/check_gpu_distill.py
"""

from __future__ import annotations

import tempfile

import torch
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    LossFloorCallback,
    build_student,
    pythia_like_config,
)
from hf_geokd.distill.kl import chunked_distillation_loss, naive_distillation_loss


def collate(rows):
    input_ids = torch.tensor([row["input_ids"] for row in rows])
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids.clone()}


def fused_loss_errors() -> None:
    """Print the fused loss's and its gradients' relative errors against the full-logit reference on CUDA, fp32."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    vocab = 50304
    hidden_s = torch.randn(2, 300, 128, device=device, requires_grad=True)
    head_s = (torch.randn(vocab, 128, device=device) * 0.02).requires_grad_()
    hidden_t, head_t = torch.randn(2, 300, 256, device=device), torch.randn(vocab, 256, device=device) * 0.02
    labels = torch.randint(0, vocab, (2, 300), device=device)
    labels[1, 200:] = -100
    reference = naive_distillation_loss(hidden_s @ head_s.T, hidden_t @ head_t.T, labels, 2.0, 0.1)
    reference_grads = torch.autograd.grad(reference, [hidden_s, head_s])
    for compile_core in (False, True):
        fused = chunked_distillation_loss(
            hidden_s, head_s, hidden_t, head_t, labels, 2.0, 128, 0.1, compile_core=compile_core
        )
        grads = torch.autograd.grad(fused.loss, [hidden_s, head_s])
        errors = [((g - r).norm() / r.norm()).item() for g, r in zip(grads, reference_grads)]
        print(
            f"cuda fp32, compile={compile_core}: loss rel err {abs(fused.loss.item() / reference.item() - 1):.2e}, "
            f"grad rel err {max(errors):.2e}"
        )


def bf16_training(vocab: int = 50304, steps: int = 40, compile_core: bool = True) -> tuple[torch.dtype, list, float]:
    """A short ``DistillationTrainer`` run (2-layer width-256 teacher, width-64 student, 8 x 256 tokens per step)
    with a bfloat16 teacher and bf16 mixed precision, evaluated every ``steps // 4`` steps: (the teacher's dtype,
    [(step, eval KL)], the floor). On the GPU when there is one, else on the CPU."""
    teacher = GPTNeoXForCausalLM(
        pythia_like_config(
            vocab, hidden_size=256, num_hidden_layers=2, num_attention_heads=8, max_position_embeddings=256
        )
    )
    student = build_student(teacher.config, 64, num_attention_heads=8)
    rows = [{"input_ids": torch.randint(0, vocab, (256,)).tolist()} for _ in range(160)]
    floor = LossFloorCallback()
    args = DistillationConfig(
        output_dir=tempfile.mkdtemp(),
        use_cpu=not torch.cuda.is_available(),
        max_steps=steps,
        per_device_train_batch_size=8,
        bf16=True,
        teacher_dtype="bfloat16",
        learning_rate=3e-3,
        eval_strategy="steps",
        eval_steps=max(1, steps // 4),
        logging_steps=max(1, steps // 4),
        save_strategy="no",
        report_to=[],
        kl_compile=compile_core,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=rows[:128],
        eval_dataset=rows[128:],
        data_collator=collate,
        callbacks=[floor],
    )
    trainer.train()
    history = [(entry["step"], round(entry["eval_kl"], 4)) for entry in trainer.state.log_history if "eval_kl" in entry]
    return next(trainer.teacher.parameters()).dtype, history, floor.floor


def main() -> None:
    fused_loss_errors()
    dtype, history, floor = bf16_training()
    print("teacher dtype", dtype, "| eval kl by step", history, "| floor", floor)


if __name__ == "__main__":
    main()
