"""Launched by test_multi.py under ``accelerate launch``: a two-student sweep in which one student stops early (its
tolerance is met at the first evaluation that can judge) while the other trains on; writes each rank's parameters."""

import json
import sys

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, TrainerCallback

from hf_geokd.data import causal_lm_collator
from hf_geokd.distill import DistillationConfig, MultiStudentDistillationTrainer, StudentFloorsCallback, build_student

artifacts, output = sys.argv[1:3]


def checksums(students) -> list[list[float]]:
    return [[float(p.double().sum()) for p in student.parameters()] for student in students]


class AtStepThree(TrainerCallback):
    """Every student's parameters after step 3, the step at which w16 stops."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            self.checksums = checksums(students)


teacher = AutoModelForCausalLM.from_pretrained(f"{artifacts}/teacher")
students = [build_student(teacher.config, width, seed=width, num_attention_heads=4) for width in (16, 32)]
blocks = load_from_disk(f"{artifacts}/blocks")
floors = StudentFloorsCallback(["w16", "w32"], min_evaluations=3, stop_when_converged=True)
floors.trackers["w16"].tolerance = 1e9  # converged as soon as the rule can judge: stops at step 3
floors.trackers["w32"].min_evaluations = 10**6  # never judged: trains all 6 steps
at_three = AtStepThree()
args = DistillationConfig(output_dir=output, max_steps=6, per_device_train_batch_size=4, learning_rate=1e-2,
                          use_cpu=True, report_to=[], save_strategy="no", eval_strategy="steps", eval_steps=1,
                          logging_steps=1, seed=0)
trainer = MultiStudentDistillationTrainer(model=students, teacher_model=teacher, args=args,
                                          train_dataset=blocks.select(range(48)),
                                          eval_dataset=blocks.select(range(64, 80)),
                                          data_collator=causal_lm_collator, callbacks=[floors, at_three])
trainer.train()
rank = trainer.accelerator.process_index
with open(f"{output}/rank{rank}.json", "w") as handle:
    json.dump({"world_size": trainer.accelerator.num_processes, "stopped": floors.stopped,
               "step": trainer.state.global_step, "checksums": checksums(students),
               "at_step_3": at_three.checksums}, handle)
trainer.accelerator.wait_for_everyone()
torch.distributed.destroy_process_group()
