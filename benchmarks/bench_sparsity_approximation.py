"""How far the no-forward statistics (an SAE's ``sparsity.safetensors``, approximate contributions) are from the
measured ones, on an SAE folder that holds both (``train_sae`` writes ``feature_stats.*`` and sae-lens writes the
sparsity file; the demo's SAE is ``outputs/demo/sae/gpt_neox.layers.2``).

Prints F, L0 and alpha from each path, the distance between the two normalised contribution spectra (the largest gap
between their cumulative energy curves, features sorted by contribution), and the predicted floor per width under
each capacity kind: measured, approximate, and their ratio.

With ``--model`` and ``--dataset`` (the teacher and held-out token blocks saved with ``save_to_disk``) the two error
sources are separated: the same comparison with the firing frequencies measured on those tokens and only the magnitude
approximated (E[z_i^2] ~ p_i ||W_dec,i||^2 up to one constant).

    python benchmarks/bench_sparsity_approximation.py outputs/demo/sae/gpt_neox.layers.2 [--widths 8 16 32 64 128]
        [--model outputs/demo/teacher --dataset outputs/demo/blocks --n-tokens 50000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hf_geokd import FeatureStats, FloorPredictor
from hf_geokd.capacity import quiet_capacity_warnings
from hf_geokd.floors import default_widths
from hf_geokd.sae import load_sae_and_sparsity, stats_from_sparsity


def cumulative_gap(measured: FeatureStats, approximate: FeatureStats) -> float:
    """max_k |sum_{i<=k} c_i / C - sum_{i<=k} c'_i / C'| over the sorted spectra (padded with zeros to one length)."""
    n = max(measured.n_features, approximate.n_features)
    curves = []
    for stats in (measured, approximate):
        values = torch.zeros(n, dtype=torch.float64)
        values[: stats.n_features] = stats.normalized_contributions.double()
        curves.append(values.cumsum(0))
    return float((curves[0] - curves[1]).abs().max())


def measured_frequency_stats(sae, model_dir: Path, dataset_dir: Path, n_tokens: int, hook_name: str,
                             alive_threshold: float) -> tuple[FeatureStats, FeatureStats]:
    """(exact stats, stats with measured frequencies and approximated magnitudes) from one pass over the tokens."""
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM

    from hf_geokd.sae.hooks import hook_point
    from hf_geokd.sae.measure import activations_at

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    point = hook_point(model, hook_name)
    counts = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    squares = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    seen = 0
    with torch.no_grad():
        for x in activations_at(model, point, load_from_disk(str(dataset_dir)), 8, torch.device("cpu")):
            z = sae.encode(x[: n_tokens - seen]).double()
            counts += (z != 0).sum(0)
            squares += z.pow(2).sum(0)
            seen += z.shape[0]
            if seen >= n_tokens:
                break
    frequency = counts / seen
    alive = frequency > alive_threshold
    norms = sae.W_dec.detach().double().pow(2).sum(-1)
    common = dict(hook_name=hook_name, d_in=sae.cfg.d_in, n_tokens=seen)
    exact = FeatureStats.from_counts(int(alive.sum()), float(frequency[alive].sum()), (squares / seen * norms)[alive],
                                     **common)
    magnitude_only = FeatureStats.from_counts(int(alive.sum()), float(frequency[alive].sum()),
                                              (frequency * norms)[alive], **common)
    return exact, magnitude_only


def compare(measured: FeatureStats, approximate: FeatureStats, widths: list[int], title: str) -> None:
    print(f"\n### {title}\n\n| quantity | measured | approximate | ratio |\n|---|---|---|---|")
    for name in ("n_features", "l0", "alpha"):
        a, b = getattr(measured, name), getattr(approximate, name)
        print(f"| {name} | {a:.5g} | {b:.5g} | {b / a:.4f} |")
    print(f"\nlargest gap between the cumulative energy curves: {cumulative_gap(measured, approximate):.4f}")
    print("\n| capacity kind | width | measured floor | approximate floor | ratio |\n|---|---|---|---|---|")
    with quiet_capacity_warnings():
        tables = [FloorPredictor(stats, allow_wider=True).predict_every_kind(widths)
                  for stats in (measured, approximate)]
    for kind, table in tables[0].items():
        if kind not in tables[1]:
            continue
        for (_, row), (_, other) in zip(table.iterrows(), tables[1][kind].iterrows()):
            a, b = row["predicted_floor"], other["predicted_floor"]
            ratio = f"{b / a:.3f}" if a > 0 else ("1" if b == 0 else "inf")
            print(f"| {kind} | {int(row['width'])} | {a:.4g} | {b:.4g} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sae_dir", type=Path)
    parser.add_argument("--widths", type=int, nargs="+")
    parser.add_argument("--model", type=Path, help="the teacher's folder, to separate the two error sources")
    parser.add_argument("--dataset", type=Path, help="held-out token blocks (datasets.save_to_disk)")
    parser.add_argument("--n-tokens", type=int, default=50_000)
    args = parser.parse_args()
    measured = FeatureStats.load(args.sae_dir)
    sae, log_sparsity = load_sae_and_sparsity(args.sae_dir)
    if log_sparsity is None:
        raise SystemExit(f"{args.sae_dir} has no sparsity.safetensors.")
    approximate = stats_from_sparsity(sae, log_sparsity, measured.alive_threshold or 1e-5)
    print(f"SAE {args.sae_dir} (d_in {measured.d_in}, {sae.cfg.d_sae} latents), measured on {measured.n_tokens} tokens")
    widths = args.widths or [w for w in default_widths(measured.d_in) if w < measured.d_in] or [measured.d_in // 2]
    compare(measured, approximate, widths, "stored measured stats vs no forward (sparsity file)")
    if args.model and args.dataset:
        exact, magnitude_only = measured_frequency_stats(sae, args.model, args.dataset, args.n_tokens,
                                                         measured.hook_name, measured.alive_threshold or 1e-5)
        compare(exact, magnitude_only, widths, f"measured frequencies ({exact.n_tokens} tokens), approx. magnitudes")


if __name__ == "__main__":
    main()
