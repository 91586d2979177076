"""Run by test_liger.py in a fresh process with TRITON_INTERPRET=1 (read when Triton is first imported): the Liger
backend and the chunked loss on the same tiny teacher and student; prints their losses, sums and gradients as JSON."""

import json
import sys

import torch
from transformers import AutoModelForCausalLM

from hf_geokd.data import causal_lm_collator
from hf_geokd.distill import build_student
from hf_geokd.distill.kl import chunked_distillation_loss
from hf_geokd.distill.liger import liger_distillation_loss


def main(teacher_dir: str, ce_weight: float) -> None:
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir)
    student = build_student(teacher.config, 16, seed=0, num_attention_heads=4)
    generator = torch.Generator().manual_seed(0)
    batch = causal_lm_collator([{"input_ids": torch.randint(0, teacher.config.vocab_size, (n,),
                                                            generator=generator).tolist()} for n in (17, 9, 7)])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        teacher_hidden = teacher(**inputs, output_hidden_states=True).hidden_states[-1]
    heads = (student.get_output_embeddings().weight, teacher.get_output_embeddings().weight)
    out = {}
    for name, loss_fn in (("chunked", chunked_distillation_loss), ("liger", liger_distillation_loss)):
        hidden = student(**inputs, output_hidden_states=True).hidden_states[-1]
        result = loss_fn(hidden, heads[0], teacher_hidden, heads[1], batch["labels"], temperature=2.0,
                         ce_weight=ce_weight, num_items=40)
        grads = torch.autograd.grad(result.loss, list(student.parameters()))
        with torch.no_grad():  # evaluation: every backend logs CE
            evaluated = loss_fn(hidden, heads[0], teacher_hidden, heads[1], batch["labels"], temperature=2.0,
                                ce_weight=ce_weight, num_items=40)
        out[name] = {"loss": float(result.loss), "kl_sum": float(result.kl_sum), "ce_sum": float(result.ce_sum),
                     "eval_ce_sum": float(evaluated.ce_sum), "eval_loss": float(evaluated.loss),
                     "n_tokens": result.n_tokens, "grads": [g.flatten().tolist() for g in grads]}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
