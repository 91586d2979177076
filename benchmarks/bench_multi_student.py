"""Benchmark: a width sweep in one run (``MultiStudentDistillationTrainer``) against the same students run one after
another (``DistillationTrainer``), and a distillation step against a CE step, all measured in this run.

1. Sweep: ``--steps`` training steps of every width, on random tokens, with ``Trainer.train`` (optimizer, clipping,
   logging included; no evaluation, no saving). ``--preset demo``: the demo's sizes (vocab 4,096, teacher 128 x 4
   layers, 16 x 128 tokens, widths 8 16 32 64 128; the default on a CPU). ``--preset paper``: a randomly initialised
   Pythia-410M-shaped teacher, 4 x 512 tokens, the paper's widths 128 256 512 768 1024 (the default on a GPU).
   Goal: one run <= 0.75x the separate runs.
2. Step: ``compute_loss`` + backward of the largest-vocabulary pair (the demo's teacher and its widest student, or
   Pythia-410M and width 128) against the student's own CE loss + backward plus a teacher forward, and, where
   ``liger-kernel`` is installed and the device is CUDA, the same step with ``loss_backend="liger"`` (Liger's fused
   linear JSD and cross-entropy kernels), its loss printed beside ours. Goal: <= 1.1x.

    python benchmarks/bench_multi_student.py [--device cuda] [--preset demo|paper] [--steps 10] [--bf16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

import torch
from bench_distill import synchronize, timed  # the same timing as the KL benchmark (same folder)
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from hf_geokd.data import causal_lm_collator
from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    MultiStudentDistillationTrainer,
    build_student,
    pythia_config,
    pythia_like_config,
)
from hf_geokd.distill.liger import liger_unavailable

PRESETS = {
    "demo": dict(vocab=4096, hidden=128, layers=4, heads=4, batch=16, seq=128, widths=(8, 16, 32, 64, 128)),
    "paper": dict(vocab=50304, hidden=1024, layers=24, heads=16, batch=4, seq=512, widths=(128, 256, 512, 768, 1024)),
}


def teacher_config(preset: dict) -> GPTNeoXConfig:
    """The teacher's config: Pythia-410M when the preset is 1024 wide, else a Pythia-shaped config of its sizes."""
    if preset["hidden"] == 1024:
        return pythia_config("pythia-410m")
    return pythia_like_config(preset["vocab"], preset["hidden"], preset["layers"], preset["heads"],
                              max_position_embeddings=preset["seq"])


def make_teacher(preset: dict) -> GPTNeoXForCausalLM:
    """A randomly initialised teacher of the preset (seed 0)."""
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(teacher_config(preset))


def make_student(config: GPTNeoXConfig, width: int, heads: int) -> GPTNeoXForCausalLM:
    """A width-``width`` student of the teacher ``config`` (seed 0), with ``heads`` heads where they divide it."""
    return build_student(config, width, seed=0, num_attention_heads=heads if width % heads == 0 else 1)


def arguments(device: torch.device, steps: int, batch: int, bf16: bool, **extra) -> DistillationConfig:
    return DistillationConfig(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=batch,
                              use_cpu=device.type == "cpu", report_to=[], save_strategy="no", logging_steps=10**6,
                              disable_tqdm=True, bf16=bf16, teacher_dtype="bfloat16" if bf16 else "float32",
                              kl_chunk_size=512 if device.type == "cuda" else 256, **extra)


def timed_train(trainer) -> float:
    synchronize(trainer.args.device)
    start = time.perf_counter()
    trainer.train()
    synchronize(trainer.args.device)
    return time.perf_counter() - start


def sweep_times(device: torch.device, preset: dict, steps: int, bf16: bool) -> tuple[dict[int, float], float]:
    """Seconds of ``steps`` training steps of every width of the preset run alone (a fresh teacher each), and of all
    widths in one ``MultiStudentDistillationTrainer`` run, on the same random tokens."""
    generator = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(1, preset["vocab"], (preset["seq"],), generator=generator).tolist()}
            for _ in range(preset["batch"] * steps)]
    common = dict(train_dataset=rows, data_collator=causal_lm_collator)
    config = teacher_config(preset)
    separate = {}
    for width in preset["widths"]:
        trainer = DistillationTrainer(model=make_student(config, width, preset["heads"]),
                                      teacher_model=make_teacher(preset),
                                      args=arguments(device, steps, preset["batch"], bf16), **common)
        separate[width] = timed_train(trainer)
        del trainer
    students = [make_student(config, width, preset["heads"]) for width in preset["widths"]]
    trainer = MultiStudentDistillationTrainer(model=students, teacher_model=make_teacher(preset),
                                              args=arguments(device, steps, preset["batch"], bf16), **common)
    return separate, timed_train(trainer)


def sweep_benchmark(device: torch.device, preset: dict, steps: int, bf16: bool) -> None:
    separate, together = sweep_times(device, preset, steps, bf16)
    total = sum(separate.values())
    print(f"\nWidth sweep {list(preset['widths'])}, teacher {preset['hidden']} x {preset['layers']} layers, vocab "
          f"{preset['vocab']}, {preset['batch']} x {preset['seq']} tokens, {steps} steps each, on {device}"
          f"{', bf16' if bf16 else ''}:")
    for width, seconds in separate.items():
        print(f"  alone, width {width:5d}: {seconds:8.2f} s")
    print(f"  separate runs, total:  {total:8.2f} s")
    print(f"  one run, all widths:   {together:8.2f} s")
    print(f"  ratio one run / separate: {together / total:.3f}   (goal <= 0.75)")


@dataclass
class StepTimes:
    """Median seconds of one training step of each kind, all measured in one process, and the distillation losses
    on the timed batch (``liger`` and its loss are None where the Liger backend cannot run: ``liger_skipped`` says
    why)."""

    ce: float
    chunked: float
    chunked_loss: float
    liger: float | None = None
    liger_loss: float | None = None
    liger_skipped: str | None = None


def step_times(device: torch.device, teacher: GPTNeoXForCausalLM, student: GPTNeoXForCausalLM, preset: dict,
               repeats: int, bf16: bool, liger: bool = True) -> StepTimes:
    """``compute_loss`` + backward (chunked loss, and Liger's when ``liger`` and it can run) against the student's
    own CE loss + backward plus a teacher forward, on ``preset["batch"] x preset["seq"]`` random tokens."""
    args = arguments(device, 1, preset["batch"], bf16)
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args)
    student.train()
    input_ids = torch.randint(0, preset["vocab"], (preset["batch"], preset["seq"]), device=device)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def ce_step():
        student.zero_grad(set_to_none=True)
        with torch.no_grad(), autocast:
            trainer.teacher(input_ids=input_ids)
        with autocast:
            loss = student(**inputs).loss
        loss.backward()

    def distil_step(distillation_trainer: DistillationTrainer):
        student.zero_grad(set_to_none=True)
        with autocast:
            loss = distillation_trainer.compute_loss(student, inputs)
        loss.backward()

    def loss_of(distillation_trainer: DistillationTrainer) -> float:
        with torch.no_grad(), autocast:
            return distillation_trainer.compute_loss(student, inputs).item()

    ce, chunked = timed(device, ce_step, repeats), timed(device, lambda: distil_step(trainer), repeats)
    times = StepTimes(ce=ce, chunked=chunked, chunked_loss=loss_of(trainer))
    times.liger_skipped = liger_unavailable(device) if liger else "not asked for"
    if times.liger_skipped is None:
        liger_trainer = DistillationTrainer(model=student, teacher_model=teacher,
                                            args=arguments(device, 1, preset["batch"], bf16, loss_backend="liger"))
        times.liger_loss = loss_of(liger_trainer)
        times.liger = timed(device, lambda: distil_step(liger_trainer), repeats)
    return times


def step_benchmark(device: torch.device, preset: dict, repeats: int, bf16: bool) -> None:
    width = preset["widths"][0] if preset["hidden"] == 1024 else preset["widths"][-1]
    teacher = make_teacher(preset)
    times = step_times(device, teacher, make_student(teacher.config, width, preset["heads"]), preset, repeats, bf16)
    print(f"\nTraining step, teacher {preset['hidden']} x {preset['layers']} layers -> width {width}, vocab "
          f"{preset['vocab']}, {preset['batch']} x {preset['seq']} tokens, on {device}{', bf16' if bf16 else ''}:")
    print(f"  CE step + teacher forward:     {times.ce:8.4f} s")
    print(f"  distillation step (fused KL):  {times.chunked:8.4f} s   ratio {times.chunked / times.ce:.3f}   "
          "(goal <= 1.1)")
    if times.liger is None:
        print(f"  loss_backend='liger': skipped ({times.liger_skipped})")
        return
    print(f"  loss_backend='liger' step:     {times.liger:8.4f} s   ratio {times.liger / times.ce:.3f}   loss "
          f"{times.liger_loss:.6f} vs chunked {times.chunked_loss:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="default: paper on a GPU, demo on a CPU")
    parser.add_argument("--steps", type=int, default=10, help="training steps per width in the sweep")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of the single step")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision, bf16 teacher (GPU)")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    preset = PRESETS[args.preset or ("paper" if device.type == "cuda" else "demo")]
    if not args.skip_sweep:
        sweep_benchmark(device, preset, args.steps, args.bf16)
    step_benchmark(device, preset, args.repeats, args.bf16)


if __name__ == "__main__":
    main()
