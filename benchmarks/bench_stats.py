"""Benchmark: the SAE statistics pass against a bare teacher forward over the same tokens.

The teacher is a randomly initialised Pythia-shaped GPTNeoX (width 256, 6 layers, vocab 50,304); the SAE is a 32x
ReLU SAE (8,192 latents) on the residual stream after the last block (the worst case: the pass cannot stop early)
and after block 3. Both sides see the same batches; the statistics pass encodes every token with the SAE and keeps
float64 running sums. Goal: <= 1.15x the bare forward.

    python benchmarks/bench_stats.py [--tokens 65536] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import measure_feature_stats


def make_sae(d_in: int, d_sae: int, hook_name: str, device: torch.device):
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, device=str(device)))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=generator) / d_in**0.5)
        sae.b_enc.fill_(-0.5)
        sae.W_dec.copy_(sae.W_enc.T)
    sae.cfg.metadata.hook_name = hook_name
    return sae.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=65_536)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = pythia_like_config(
        50304, hidden_size=256, num_hidden_layers=6, num_attention_heads=8, max_position_embeddings=512
    )
    model = GPTNeoXForCausalLM(config).to(device).eval()
    rows = torch.randint(0, 50304, (args.tokens // 512, 512)).tolist()
    dataset = [{"input_ids": row} for row in rows]

    def bare_forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, len(rows), args.batch_size):
                input_ids = torch.tensor(rows[first : first + args.batch_size], device=device)
                model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    bare_forward()  # warm-up
    bare = min(bare_forward() for _ in range(2))
    print(
        f"{args.tokens:,} tokens, teacher {config.hidden_size} x {config.num_hidden_layers} layers, vocab "
        f"{config.vocab_size}, SAE 32x ({32 * config.hidden_size:,} latents), on {device}"
    )
    print(f"bare teacher forward:              {bare:8.2f} s")
    for hook in (f"gpt_neox.layers.{config.num_hidden_layers - 1}", "gpt_neox.layers.3"):
        sae = make_sae(config.hidden_size, 32 * config.hidden_size, hook, device)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            stats = measure_feature_stats(
                sae, model, dataset, n_tokens=args.tokens, batch_size=args.batch_size, progress=False
            )
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
        print(
            f"stats pass at {hook:18} {min(timings):8.2f} s   ratio {min(timings) / bare:5.3f}   (goal <= 1.15; "
            f"F = {stats.n_features:,}, L0 = {stats.l0:.1f})"
        )


if __name__ == "__main__":
    main()
