"""Benchmark: the ablation floor pass (8 student widths at once) against a bare teacher forward over the same tokens.

The teacher is a randomly initialised Pythia-shaped GPTNeoX (default: the demo's shape, width 128, 4 layers, vocab
4,096, 128-token blocks); the SAE (8x; ``--sae relu``: random ReLU latents, about a third of them active, the dense
removal path; ``--sae topk``: top-k with k = 16 as the demo's, the sparse one) reads the residual stream after block
2. Both sides see the same batches. The bare forward is ``model(input_ids).logits``; the ablation pass runs the
teacher to the hook once, copies the batch there (the teacher, the splice reference and one copy per width), runs the
rest of the teacher on every copy, and computes each copy's T^2 KL against the teacher in chunks. Goal (issue #23): <=
3x the bare forward.

The FLOP ratio: with P the FLOPs per token before the hook, S after it (blocks and lm_head), the pass costs
P + (W + 2) S + the SAE and the KL soft-maxes, the bare forward P + S; for W = 8 widths that is (P + 10 S) / (P + S)
before the SAE and the soft-maxes, far above 3 unless the hook sits next to the logits. Where both sides are
compute-bound the measured ratio cannot go below it; a shape so small that per-operation overhead dominates its bare
forward can. The script prints it beside the ratio.

    python benchmarks/bench_ablation.py [--tokens 32768] [--widths 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from unittest import mock

import torch
from bench_stats import make_sae
from transformers import GPTNeoXForCausalLM

from hf_geokd import FeatureStats
from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import measure_ablation_floors

SHAPES = {  # name -> (vocab, hidden, layers, heads, block, hooked layer)
    "demo": (4096, 128, 4, 4, 128, 2),
    "pythia-70m-like": (50304, 512, 6, 8, 256, 3),
    "tiny": (512, 32, 2, 4, 32, 0),
}


@dataclass
class AblationTimes:
    """Wall seconds of the ablation pass and of the bare forward over the same tokens, and the FLOP ratio."""

    ablation: float
    forward: float
    flop_ratio: float
    widths: int
    tokens: int
    shape: str
    sae_kind: str = "relu"
    dense_decode: float | None = None  # the pass with every width's removal decoded densely at once (the baseline)

    @property
    def ratio(self) -> float:
        return self.ablation / self.forward


def flop_ratio(vocab: int, hidden: int, layers: int, block: int, hooked: int, copies: int) -> float:
    """(P + copies S) / (P + S): per-token FLOPs P of the blocks up to the hook, S of the rest and the lm_head (a
    block: 24 d^2 + 4 T d for its matmuls and attention; the lm_head 2 V d)."""
    per_block = 24 * hidden**2 + 4 * block * hidden
    before = (hooked + 1) * per_block
    after = (layers - hooked - 1) * per_block + 2 * vocab * hidden
    return (before + copies * after) / (before + after)


def make_topk_sae(d_in: int, d_sae: int, k: int, hook_name: str, device: torch.device):
    """A top-k SAE with the same random weights as :func:`bench_stats.make_sae`'s ReLU one."""
    from sae_lens import TopKSAE, TopKSAEConfig

    relu = make_sae(d_in, d_sae, hook_name, device)
    sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, device=str(device)))
    sae.load_state_dict(relu.state_dict())
    sae.cfg.metadata.hook_name = hook_name
    return sae.to(device)


def ablation_times(shape: str, n_widths: int, tokens: int, device: torch.device, batch_size: int = 8,
                   repeats: int = 2, sae_kind: str = "relu") -> AblationTimes:
    """Time the ablation pass at ``n_widths`` widths (all of which drop latents) and the bare forward."""
    vocab, hidden, layers, heads, block, hooked = SHAPES[shape]
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(pythia_like_config(vocab, hidden, layers, heads, max_position_embeddings=block))
    model = model.to(device).eval()
    hook = f"gpt_neox.layers.{hooked}"
    sae = (make_sae(hidden, 8 * hidden, hook, device) if sae_kind == "relu"
           else make_topk_sae(hidden, 8 * hidden, 16, hook, device))
    rows = torch.randint(0, vocab, (max(1, tokens // block), block), generator=torch.Generator().manual_seed(1))
    dataset = [{"input_ids": row.tolist()} for row in rows]
    # statistics by construction: every latent alive, ranked by index, alpha such that d* is far above the widths
    d_sae = 8 * hidden
    stats = FeatureStats.from_counts(d_sae, 0.02 * d_sae, torch.linspace(1.0, 0.1, d_sae),
                                     latents=torch.arange(d_sae), d_in=hidden, hook_name=hook)
    widths = [max(1, hidden * (index + 1) // (4 * n_widths)) for index in range(n_widths)]
    positions = rows.shape[0] * (block - 1)

    def forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, rows.shape[0], batch_size):
                model(input_ids=rows[first:first + batch_size].to(device))
        _sync(device)
        return time.perf_counter() - start

    def ablation() -> float:
        start = time.perf_counter()
        measure_ablation_floors(sae, model, dataset, widths, stats=stats, n_tokens=positions, batch_size=batch_size,
                                progress=False)
        _sync(device)
        return time.perf_counter() - start

    forward(), ablation()  # warm-up
    bare = min(forward() for _ in range(repeats))
    ablated = min(ablation() for _ in range(repeats))
    with mock.patch("hf_geokd.sae.ablation.removed_contributions", dense_removed_contributions):
        dense = min(ablation() for _ in range(repeats))
    return AblationTimes(ablated, bare, flop_ratio(vocab, hidden, layers, block, hooked, n_widths + 2), n_widths,
                         positions, shape, sae_kind, dense)


def dense_removed_contributions(z: torch.Tensor, weights: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
    """The baseline: every latent of every width decoded at once, through a [W, ..., d_sae] tensor."""
    return (z * weights.view(weights.shape[0], *[1] * (z.dim() - 2), z.shape[-1])) @ decoder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def describe(times: AblationTimes) -> list[str]:
    vocab, hidden, layers, _, block, hooked = SHAPES[times.shape]
    return [f"{times.shape}: teacher {hidden} x {layers} layers, vocab {vocab}, blocks of {block}, "
            f"{times.sae_kind} SAE 8x at gpt_neox.layers.{hooked}; {times.tokens:,} positions, {times.widths} widths",
            f"  bare teacher forward:          {times.forward:8.3f} s",
            f"  ablation pass ({times.widths} widths):     {times.ablation:8.3f} s   ratio {times.ratio:5.2f}   "
            f"(goal <= 3; FLOP ratio (P + {times.widths + 2} S) / (P + S) = {times.flop_ratio:.2f})",
            f"  the same, every width's removal decoded densely at once (the baseline): {times.dense_decode:8.3f} s, "
            f"ratio {times.dense_decode / times.forward:5.2f}; active-latent decoding / dense "
            f"{times.ablation / times.dense_decode:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32_768)
    parser.add_argument("--widths", type=int, default=8)
    parser.add_argument("--shapes", nargs="+", default=["demo"], choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sae", nargs="+", default=["relu"], choices=("relu", "topk"))
    args = parser.parse_args()
    for shape in args.shapes:
        for kind in args.sae:
            print("\n".join(describe(ablation_times(shape, args.widths, args.tokens, torch.device(args.device),
                                                     sae_kind=kind))))


if __name__ == "__main__":
    main()
