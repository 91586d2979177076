"""Benchmark: one feature-survival pass against a bare forward of teacher + student over the same tokens.

Teacher and student are randomly initialised Pythia-shaped GPTNeoX models (same depth, the student narrower); the
SAE is a random ReLU SAE at the teacher's middle block. Baseline: full forwards of both models (logits included),
batch by batch. Measured: ``measure_feature_survival`` with the student alone (no controls), and with the default
controls (3 random-init students, the shuffled pairing; the token baseline when vocab x latents is small). The pass
keeps only moment sums, so its memory must not grow with the number of tokens: on CUDA the peak allocated memory is
printed at N and 2N tokens. Goal: a few times the baseline.

    python benchmarks/bench_survival.py                      # CPU-sized default
    python benchmarks/bench_survival.py --device cuda --width 1024 --layers 24 --student-width 256 \
        --d-sae 32768 --tokens 262144                        # Pythia-410M-shaped, 32x SAE
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.survival import FeatureSurvivalConfig, measure_feature_survival


class RandomSAE(torch.nn.Module):
    """z = ReLU(W_enc^T x / rms(x) - 0.5) with random directions (the duck type measure_feature_survival reads; the
    rms normalisation makes latents fire on a randomly initialised model's small activations)."""

    def __init__(self, d_in: int, d_sae: int, hook_name: str) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.W_enc = torch.nn.Parameter(torch.randn(d_in, d_sae, generator=generator) / d_in**0.5)
        self.b_enc = torch.nn.Parameter(torch.full((d_sae,), -0.5))
        self.W_dec = torch.nn.Parameter(self.W_enc.detach().T.clone())
        self.cfg = SimpleNamespace(d_in=d_in, d_sae=d_sae, metadata=SimpleNamespace(hook_name=hook_name))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x / x.pow(2).mean(-1, keepdim=True).sqrt() @ self.W_enc + self.b_enc)


def timed(device: torch.device, function) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32_768)
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--student-width", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--d-sae", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    def model(width: int) -> GPTNeoXForCausalLM:
        heads = 16 if width >= 256 else 4
        config = pythia_like_config(args.vocab, hidden_size=width, num_hidden_layers=args.layers,
                                    num_attention_heads=heads, max_position_embeddings=args.block_size)
        return GPTNeoXForCausalLM(config).to(device).eval()

    teacher, student = model(args.width), model(args.student_width)
    hook = f"gpt_neox.layers.{args.layers // 2}"
    sae = RandomSAE(args.width, args.d_sae, hook).to(device)
    rows = torch.randint(0, args.vocab, (args.tokens // args.block_size, args.block_size)).tolist()
    dataset = [{"input_ids": row} for row in rows]

    def bare_forwards() -> None:
        with torch.no_grad():
            for first in range(0, len(rows), args.batch_size):
                input_ids = torch.tensor(rows[first : first + args.batch_size], device=device)
                mask = torch.ones_like(input_ids)
                teacher(input_ids=input_ids, attention_mask=mask)
                student(input_ids=input_ids, attention_mask=mask)

    def survival(n_tokens: int, controls: bool):
        config = FeatureSurvivalConfig(  # timing only: which controls make the null does not change the pass
            n_tokens=n_tokens, batch_size=args.batch_size, null_students=3 if controls else 0, shuffled=controls,
            token_baseline=None if controls else False, beyond_token=False)
        return measure_feature_survival(teacher, sae, student, dataset, config, progress=False)

    bare_forwards()  # warm-up
    baseline, _ = timed(device, bare_forwards)
    alone, result = timed(device, lambda: survival(args.tokens, False))
    peak_full = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    half, _ = timed(device, lambda: survival(args.tokens // 2, False))
    peak_half = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    with_controls, full = timed(device, lambda: survival(args.tokens, True))
    print(f"device {device}, teacher width {args.width} x {args.layers} layers, student width {args.student_width}, "
          f"vocab {args.vocab}, SAE {args.d_sae} latents at {hook}, {args.tokens:,} tokens, batch {args.batch_size}")
    print(f"baseline: teacher + student full forwards: {baseline:.2f} s")
    print(f"survival pass, student only:            {alone:.2f} s  ({alone / baseline:.2f}x)")
    print(f"survival pass, 3 random + shuffled{' + token' if 'token' in full.r2 else ''}: "
          f"{with_controls:.2f} s  ({with_controls / baseline:.2f}x)")
    print(f"  (half the tokens, student only: {half:.2f} s)")
    if peak_full is not None:
        print(f"peak CUDA memory, student only: {peak_half / 2**20:.0f} MiB at {args.tokens // 2:,} tokens, "
              f"{peak_full / 2**20:.0f} MiB at {args.tokens:,} tokens")
    print(f"alive latents {result.n_features}, scorable {int(result.scorable.sum())}")


if __name__ == "__main__":
    main()
