"""Benchmark: the fused chunked KL against the full-logit loss, and a distillation step against a plain CE step.

1. Loss alone, forward + backward, vocab 50,304, 4 x 512 tokens, student width 128, teacher width 1024 (as for
   Pythia-410M): peak memory and time of ``chunked_distillation_loss`` vs ``naive_distillation_loss`` on full fp32
   logits. Goals: peak memory <= 0.2x naive, time <= 1.0x. Peak memory is ``torch.cuda.max_memory_allocated``
   above the inputs on a GPU; on a CPU (no allocator counter) each variant runs in a fresh process and reports its
   peak resident memory (ru_maxrss) above the same inputs (the CPU peaks are measured once, before any timing).
2. Training step, 4 x 512 tokens: ``DistillationTrainer.compute_loss`` + backward vs the student's own CE loss +
   backward plus a teacher forward under no_grad. ``--teachers pythia-410m``: the paper's setting, a randomly
   initialised Pythia-410M teacher and its width-128 student (24 layers each; the default on a GPU);
   ``--teachers tiny``: a 2-layer width-256 teacher and width-128 student, where the vocabulary projection and the
   soft-max arithmetic dominate (the default on a CPU). Goal: <= 1.1x.

    python benchmarks/bench_distill.py [--device cuda] [--repeats 5] [--teachers tiny pythia-410m] [--compile]
                                       [--chunk-sizes 256 1024]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from hf_geokd.distill.kl import chunked_distillation_loss, naive_distillation_loss

VOCAB, BATCH, SEQ, D_S, D_T = 50304, 4, 512, 128, 1024


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loss_variants(device: torch.device, compile_core: bool = False, chunk_size: int = 256):
    # Drawn in place, so that no temporary copy raises the process's memory high-water mark before the measurement.
    generator = torch.Generator().manual_seed(0)

    def normal(*shape: int, std: float = 1.0) -> torch.Tensor:
        return torch.empty(*shape).normal_(0.0, std, generator=generator).to(device)

    student_hidden = normal(BATCH, SEQ, D_S).requires_grad_()
    student_head = normal(VOCAB, D_S, std=0.02).requires_grad_()
    teacher_hidden = normal(BATCH, SEQ, D_T)
    teacher_head = normal(VOCAB, D_T, std=0.02)
    labels = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator).to(device)

    def naive():
        student_hidden.grad = student_head.grad = None
        student_logits = student_hidden @ student_head.T
        with torch.no_grad():
            teacher_logits = teacher_hidden @ teacher_head.T
        naive_distillation_loss(student_logits, teacher_logits, labels, 2.0).backward()

    def chunked():
        student_hidden.grad = student_head.grad = None
        loss = chunked_distillation_loss(student_hidden, student_head, teacher_hidden, teacher_head, labels, 2.0,
                                         chunk_size, compile_core=compile_core)
        loss.loss.backward()

    return {"naive full logits": naive, "chunked fused": chunked}


def peak_mib(device: torch.device, name: str, compile_core: bool, chunk_size: int) -> float:
    if device.type == "cuda":
        run = loss_variants(device, compile_core, chunk_size)[name]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    command = [sys.executable, __file__, "--measure-rss", name, "--chunk-sizes", str(chunk_size)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["peak_mib"]


def measure_rss(name: str, chunk_size: int) -> None:
    """Child process: peak resident memory of one variant above its inputs (KiB on Linux)."""
    run = loss_variants(torch.device("cpu"), chunk_size=chunk_size)[name]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mib": (peak - base) / 1024}))


def loss_benchmark(device: torch.device, repeats: int, compile_core: bool, chunk_size: int) -> None:
    # Peaks first: on Linux a child inherits its parent's resident-memory high-water mark, so the CPU children must
    # start before this process allocates anything large.
    peaks = {name: peak_mib(device, name, compile_core, chunk_size) for name in ("naive full logits", "chunked fused")}
    variants = loss_variants(device, compile_core, chunk_size)
    rows = [(name, peaks[name], timed(device, run, repeats)) for name, run in variants.items()]
    print(f"\nLoss forward + backward, vocab {VOCAB}, {BATCH} x {SEQ} tokens, d_S {D_S}, d_T {D_T}, on {device}"
          f", chunks of {chunk_size} tokens{', chunk arithmetic compiled' if compile_core else ''}:")
    print(f"{'':20} {'peak MiB':>10} {'time s':>9}")
    for name, memory, seconds in rows:
        print(f"{name:20} {memory:10.1f} {seconds:9.4f}")
    print(
        f"{'chunked / naive':20} {rows[1][1] / rows[0][1]:10.3f} {rows[1][2] / rows[0][2]:9.3f}"
        "   (goals <= 0.2, <= 1.0)"
    )


def step_benchmark(device: torch.device, repeats: int, compile_core: bool, teacher_name: str, chunk_size: int) -> None:
    from transformers import GPTNeoXForCausalLM

    from hf_geokd.distill import (
        DistillationConfig,
        DistillationTrainer,
        build_student,
        pythia_config,
        pythia_like_config,
    )

    torch.manual_seed(0)
    if teacher_name == "tiny":
        teacher_config = pythia_like_config(
            VOCAB, hidden_size=256, num_hidden_layers=2, num_attention_heads=8, max_position_embeddings=SEQ
        )
    else:
        teacher_config = pythia_config(teacher_name)
    teacher = GPTNeoXForCausalLM(teacher_config)
    student = build_student(teacher_config, D_S, num_attention_heads=8)
    args = DistillationConfig(
        output_dir=tempfile.mkdtemp(),
        use_cpu=device.type == "cpu",
        report_to=[],
        kl_chunk_size=chunk_size,
        kl_compile=compile_core,
    )
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args)
    student.train()
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), device=device)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}

    def distil_step():
        student.zero_grad(set_to_none=True)
        trainer.compute_loss(student, inputs).backward()

    def ce_step():
        student.zero_grad(set_to_none=True)
        with torch.no_grad():
            trainer.teacher(input_ids=input_ids)
        student(**inputs).loss.backward()

    distil, ce = timed(device, distil_step, repeats), timed(device, ce_step, repeats)
    layers = teacher_config.num_hidden_layers
    print(
        f"\nTraining step, teacher {teacher_name} ({teacher_config.hidden_size} x {layers} layers), student "
        f"{D_S} x {layers} layers, vocab {VOCAB}, {BATCH} x {SEQ} tokens, on {device}, chunks of {chunk_size}"
        f"{', chunk arithmetic compiled' if compile_core else ''}:"
    )
    print(f"plain CE step + teacher forward: {ce:8.4f} s")
    print(f"distillation step (fused KL):    {distil:8.4f} s")
    print(f"{'ratio':32} {distil / ce:8.3f}   (goal <= 1.1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also run with the chunk arithmetic compiled")
    parser.add_argument(
        "--teachers", nargs="+", help="tiny and/or a Pythia size (default: pythia-410m on a GPU, tiny on a CPU)"
    )
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[256], help="tokens per chunk of the fused loss")
    parser.add_argument("--measure-rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_rss:
        measure_rss(args.measure_rss, args.chunk_sizes[0])
        return
    device = torch.device(args.device)
    teachers = args.teachers or (["pythia-410m"] if device.type == "cuda" else ["tiny"])
    for compile_core in (False, True) if args.compile else (False,):
        for chunk_size in args.chunk_sizes:
            loss_benchmark(device, args.repeats, compile_core, chunk_size)
            for teacher in teachers:
                step_benchmark(device, args.repeats, compile_core, teacher, chunk_size)


if __name__ == "__main__":
    main()
