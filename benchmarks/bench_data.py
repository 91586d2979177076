"""Benchmark: the recipes' data path at scale, and several SAEs from one teacher pass.

Data (each measurement in a fresh process, so that its peak RSS is its own): documents saved to disk (the embedded
Wikipedia sample cut into ~2 KB documents and repeated until there are enough tokens, or random words with
``--corpus random``), a byte-level BPE of 4,096 tokens trained on them, blocks of 512 tokens.
- streaming (``stream_token_blocks``) over ``--small-tokens`` and ``--large-tokens``: peak RSS ratio (goal: large
  within 1.2x of small), tokens/s on one process against the 18,156 tokens/s a Pythia-410M distillation step
  consumes on an H100 (4 x 512 tokens in 112.8 ms, ``results/bench_distill_h100.txt``), time to the first block;
- materialising (``load_token_blocks``, every block in memory before training) over the same token counts: the
  baseline for time to the first training step and peak RSS.

SAEs: ``train_sae`` on three hooks from one pass against one hook, same tokens, on a randomly initialised
Pythia-shaped teacher (``--teacher tiny``: width 128, 4 layers, the demo's shape; ``--teacher 410m``: Pythia-410M at
layers 8, 12, 16 with 32x SAEs, for a GPU), each hook alone and the three together, ``--repeats`` times interleaved
(medians: a shared machine's timings wander by 2x between runs). Goal: three hooks from one pass <= 1.4x one hook.
Printed beside it, the floor that arithmetic puts under that ratio: one pass still trains three SAEs, so with F the
teacher's forward FLOPs per token up to the deepest hook and S one SAE's training FLOPs per token, the ratio is at
least (F + 3 S) / (F + S) when both run at the same FLOP rate.
- F = L_h (24 d^2 + 4 n_ctx d): L_h blocks of attention (4 d^2 weights) and a 4x MLP (8 d^2), 2 FLOPs per
  weight, plus the attention scores and their weighting (2 x 2 n_ctx d, causal masking not counted);
- S = 10 d d_sae: encoder and decoder forward (2 x 2 d d_sae), their weight gradients (2 x 2 d d_sae) and the
  gradient into the latents (2 d d_sae); none into the activations, which are data.

    python benchmarks/bench_data.py [--part data|sae|both] [--large-tokens 20000000] [--device cuda --teacher 410m]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

H100_TOKENS_PER_SECOND = 4 * 512 / 0.1128  # results/bench_distill_h100.txt: Pythia-410M -> width 128, 4 x 512 tokens
BLOCK = 512


def documents(corpus: str, n_tokens: int) -> list[str]:
    """Roughly ``n_tokens`` tokens (at ~4 characters per token) of ~2 KB documents."""
    if corpus == "wiki":
        import os

        from hf_geokd.data.corpora import gensim_wheel, wiki_articles

        paragraphs = [p for article in wiki_articles(gensim_wheel(os.environ.get("GEOKD_CACHE_DIR", ".cache")))
                      for p in article.split("\n")]
    else:
        rng = random.Random(0)
        words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 9))) for _ in range(20_000)]
        paragraphs = [" ".join(rng.choices(words, k=rng.randint(20, 120))) + "." for _ in range(20_000)]
    docs, current = [], ""
    for paragraph in paragraphs:
        current = f"{current}\n{paragraph}" if current else paragraph
        if len(current) >= 2_000:
            docs.append(current)
            current = ""
    total = sum(map(len, docs))
    return docs * max(1, -(-n_tokens * 4 // total))


def prepare(workdir: Path, corpus: str, n_tokens: int) -> None:
    from datasets import Dataset

    from hf_geokd.data import train_bpe_tokenizer

    texts = documents(corpus, n_tokens)
    train_bpe_tokenizer(texts[:400], vocab_size=4_096).save_pretrained(workdir / "tokenizer")
    Dataset.from_dict({"text": texts}).save_to_disk(str(workdir / "documents"))


def measure(workdir: Path, mode: str, n_tokens: int) -> dict:
    """One measurement, run in a fresh process: time to the first training block, throughput, peak RSS."""
    from transformers import AutoTokenizer

    from hf_geokd.data import load_token_blocks, measure_stream, open_documents, stream_token_blocks
    from hf_geokd.data.plan import peak_rss_mib

    tokenizer = AutoTokenizer.from_pretrained(workdir / "tokenizer")
    n_blocks = n_tokens // BLOCK
    start = time.perf_counter()
    if mode == "stream":
        train, _ = stream_token_blocks(open_documents(dataset_path=str(workdir / "documents")), tokenizer, BLOCK)
        result = measure_stream(train, n_blocks)
        first, seconds, blocks = result.first_block_seconds, result.seconds, result.blocks
    else:
        blocks_dataset = load_token_blocks(tokenizer, BLOCK, n_blocks, dataset_path=str(workdir / "documents"))
        first = time.perf_counter() - start  # training could start only now
        for _ in blocks_dataset:
            pass
        seconds, blocks = time.perf_counter() - start, len(blocks_dataset)
    return {"mode": mode, "tokens": blocks * BLOCK, "first_block_s": first, "seconds": seconds,
            "tokens_per_s": blocks * BLOCK / seconds, "peak_rss_mib": peak_rss_mib()}


def run_measure(workdir: Path, mode: str, n_tokens: int) -> dict:
    command = [sys.executable, __file__, "--measure", mode, "--tokens", str(n_tokens), "--workdir", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_data(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        prepare(workdir, args.corpus, args.large_tokens)
        print(f"documents and tokenizer prepared in {time.perf_counter() - start:.1f} s ({args.corpus} corpus)")
        rows = {(mode, n): run_measure(workdir, mode, n) for mode in ("stream", "materialise")
                for n in (args.small_tokens, args.large_tokens)}
    for row in rows.values():
        print(f"{row['mode']:>11} {row['tokens']:>11,} tokens: first block {row['first_block_s']:7.2f} s, "
              f"all {row['seconds']:7.2f} s, {row['tokens_per_s']:>9,.0f} tokens/s, peak RSS "
              f"{row['peak_rss_mib']:7,.0f} MiB")
    small, large = args.small_tokens, args.large_tokens
    stream_growth = rows["stream", large]["peak_rss_mib"] / rows["stream", small]["peak_rss_mib"]
    baseline_growth = rows["materialise", large]["peak_rss_mib"] / rows["materialise", small]["peak_rss_mib"]
    print(f"peak RSS, {large:,} vs {small:,} tokens: streaming {stream_growth:.2f}x (goal <= 1.2x), "
          f"materialising {baseline_growth:.2f}x")
    print(f"peak RSS at {large:,} tokens, streaming / materialising: "
          f"{rows['stream', large]['peak_rss_mib'] / rows['materialise', large]['peak_rss_mib']:.3f}x")
    print(f"time to the first training block at {large:,} tokens, streaming / materialising: "
          f"{rows['stream', large]['first_block_s'] / rows['materialise', large]['first_block_s']:.4f}x")
    rate = rows["stream", large]["tokens_per_s"]
    print(f"tokenise-and-pack on one process: {rate:,.0f} tokens/s = {rate / H100_TOKENS_PER_SECOND:.2f}x the "
          f"{H100_TOKENS_PER_SECOND:,.0f} tokens/s a Pythia-410M distillation step consumes on one H100")


def sae_shape(teacher: str) -> tuple:
    """(teacher config, hooks, SAE expansion factor, context) of ``--teacher tiny`` or ``--teacher 410m``."""
    from hf_geokd.distill import pythia_config, pythia_like_config

    if teacher == "410m":
        return pythia_config("410m"), ["gpt_neox.layers.8", "gpt_neox.layers.12", "gpt_neox.layers.16"], 32, 1024
    return (pythia_like_config(4_096, hidden_size=128, num_hidden_layers=4),
            ["gpt_neox.layers.1", "gpt_neox.layers.2", "gpt_neox.layers.3"], 8, 128)


@dataclass
class SaeTimes:
    """Every run's wall and process CPU seconds, by label (``alone <hook>`` for each hook, ``together``), in run
    order, and (F, S) of the module docstring for this shape."""

    hooks: list[str]
    expansion: int
    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    forward_flops: float
    sae_flops: float

    def median(self, label: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.wall)[label])


def sae_times(shape: tuple, device: str, tokens: int, architecture: str, repeats: int,
              sae_kwargs: dict | None = None, batch_tokens: int = 4_096) -> SaeTimes:
    """``train_sae`` on each hook alone and on the three together, ``repeats`` times interleaved, after a warm-up, on
    ``tokens`` random tokens (``batch_tokens`` per SAE step) through a randomly initialised teacher of ``shape`` (as
    :func:`sae_shape` returns)."""
    import torch
    from datasets import Dataset
    from transformers import GPTNeoXForCausalLM

    from hf_geokd.sae import train_sae

    torch.manual_seed(0)
    config, hooks, expansion, context = shape
    teacher = GPTNeoXForCausalLM(config).to(device).eval()
    n_blocks = tokens // context
    generator = torch.Generator().manual_seed(1)
    blocks = Dataset.from_dict({"input_ids": torch.randint(1, config.vocab_size, (n_blocks + 64, context),
                                                           generator=generator).tolist()})
    settings = dict(expansion_factor=expansion, training_tokens=tokens, train_batch_size_tokens=batch_tokens,
                    measure_tokens=8 * context, measure_dataset=blocks.select(range(n_blocks, n_blocks + 64)),
                    device=device, sae_kwargs=sae_kwargs)
    if architecture == "topk":
        settings.update(architecture="topk", k=16)
    runs = [(f"alone {hook}", [hook]) for hook in hooks] + [("together", hooks)]
    timings: dict[str, list[float]] = {label: [] for label, _ in runs}
    cpu: dict[str, list[float]] = {label: [] for label, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        train_sae(teacher, blocks.select(range(n_blocks)), hooks[:1], Path(tmp) / "warm-up",
                  **{**settings, "training_tokens": batch_tokens * 2})
        for repeat in range(repeats):
            for label, hook_names in runs:
                start, start_cpu = time.perf_counter(), time.process_time()
                train_sae(teacher, blocks.select(range(n_blocks)), hook_names, Path(tmp) / f"{label}-{repeat}",
                          **settings)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                timings[label].append(time.perf_counter() - start)
                cpu[label].append(time.process_time() - start_cpu)
    forward, sae = forward_and_sae_flops(config, int(hooks[-1].rsplit(".", 1)[1]) + 1, context, expansion)
    return SaeTimes(hooks, expansion, timings, cpu, forward, sae)


def bench_sae(args) -> None:
    times = sae_times(sae_shape(args.teacher), args.device, args.sae_tokens, args.sae_architecture, args.repeats)
    hooks, wall = times.hooks, {label: times.median(label) for label in times.wall}
    process = {label: times.median(label, cpu=True) for label in times.cpu}
    separate, one = sum(wall[f"alone {hook}"] for hook in hooks), wall[f"alone {hooks[-1]}"]
    print(f"SAEs ({args.teacher} teacher, {args.sae_architecture}, {args.sae_tokens:,} tokens, {times.expansion}x, "
          f"{args.device}, median of {args.repeats}): "
          + ", ".join(f"{hook} alone {wall[f'alone {hook}']:.1f} s" for hook in hooks)
          + f"; all three from one pass {wall['together']:.1f} s")
    print("  every run (s): " + "; ".join(f"{label} " + ", ".join(f"{v:.1f}" for v in values)
                                          for label, values in times.wall.items()))
    forward, sae = times.forward_flops, times.sae_flops
    print(f"three hooks from one pass: {wall['together'] / one:.2f}x one hook ({hooks[-1]}, the deepest; goal "
          f"<= 1.4x), {wall['together'] / separate:.2f}x three separate runs (their sum: {separate / one:.2f}x "
          "one hook)")
    print(f"arithmetic floor of that ratio: (F + 3 S) / (F + S) = {arithmetic_floor(forward, sae):.2f}x, with "
          f"F = {forward / 1e6:.2f} MFLOP/token (teacher forward to the deepest hook) and S = {sae / 1e6:.2f} "
          "MFLOP/token (one SAE's training step)")
    print(f"process CPU time (less sensitive to other jobs on a shared machine): three hooks "
          f"{process['together'] / process[f'alone {hooks[-1]}']:.2f}x one hook, "
          f"{process['together'] / sum(process[f'alone {hook}'] for hook in hooks):.2f}x three separate runs")


def arithmetic_floor(forward: float, sae: float) -> float:
    """(F + 3 S) / (F + S): the least cost of three SAEs from one pass relative to one, at equal FLOP rates."""
    return (forward + 3 * sae) / (forward + sae)


# A top-k SAE decoding through a sparse product: only the encoder's forward and weight gradient stay dense, S ~ 4 d
# d_sae of the dense step's 10 d d_sae (an estimate: the sparse products' own cost is left out).
SPARSE_SAE_SHARE = 0.4


def forward_and_sae_flops(config, blocks: int, context: int, expansion: int) -> tuple[float, float]:
    """(F, S) of the module docstring: FLOPs per token of the teacher's forward through ``blocks`` blocks and of
    one SAE's training step (expansion x d latents)."""
    d = config.hidden_size
    return blocks * (24 * d * d + 4 * context * d), 10 * d * expansion * d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["data", "sae", "both"], default="both")
    parser.add_argument("--corpus", choices=["wiki", "random"], default="wiki")
    parser.add_argument("--small-tokens", type=int, default=1_000_000)
    parser.add_argument("--large-tokens", type=int, default=20_000_000)
    parser.add_argument("--teacher", choices=["tiny", "410m"], default="tiny")
    parser.add_argument("--sae-tokens", type=int, default=262_144)
    parser.add_argument("--sae-architecture", choices=["standard", "topk"], default="standard",
                        help="standard: ReLU + L1 (the paper's); topk: k = 16 (the demo's)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every SAE run (medians)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--measure", choices=["stream", "materialise"], help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.workdir, args.measure, args.tokens)))
        return
    if args.part in ("data", "both"):
        bench_data(args)
    if args.part in ("sae", "both"):
        bench_sae(args)


if __name__ == "__main__":
    main()
