"""Benchmark: the vectorised toy sweep against training the same models one by one.

Both sides run in this process. The vectorised side trains the whole grid (default: the paper's 48 configurations x
20 seeds). The baseline trains single models the canonical way (one nn.Module, autograd, Adam with cosine decay,
the same steps and batch size) for a few models of each feature count n, and projects its per-model time onto the
grid's model count. Prints both times and the speed-up.

    python benchmarks/bench_toy_sweep.py [--preset paper|smoke] [--baseline-models 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from hf_geokd.toy import ToySweepConfig, run_toy_sweep


class SingleToyModel(torch.nn.Module):
    def __init__(self, width: int, n: int) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(torch.randn(width, n) * (2.0 / (width + n)) ** 0.5)
        self.b = torch.nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W.T @ self.W + self.b)


def train_one(
    width: int, n: int, alpha: float, config: ToySweepConfig, teacher: SingleToyModel | None
) -> SingleToyModel:
    steps = config.teacher_steps if teacher is None else config.student_steps
    model = SingleToyModel(width, n)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    importance = config.importance(n)
    for _ in range(steps):
        x = torch.rand(config.batch_size, n) * (torch.rand(config.batch_size, n) < 1 - alpha)
        with torch.no_grad():
            target = teacher(x) if teacher is not None else x
        loss = (((model(x) - target) ** 2) * importance).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("paper", "smoke"), default="paper")
    parser.add_argument("--baseline-models", type=int, default=3, help="models trained one by one per n")
    args = parser.parse_args()
    config = getattr(ToySweepConfig, args.preset)()
    torch.manual_seed(0)

    start = time.perf_counter()
    results = run_toy_sweep(config, progress=False)
    vectorised = time.perf_counter() - start
    counts = results.models.groupby("n").size()

    projected = 0.0
    print(f"{'n':>4} {'models':>7} {'one-by-one s/model':>19}")
    for n in config.n_features:
        d_t, alpha = max(config.teacher_widths), config.alphas[0]
        start = time.perf_counter()
        teacher = train_one(d_t, n, alpha, config, None)
        for width in range(1, args.baseline_models):
            train_one(width, n, alpha, config, teacher)
        per_model = (time.perf_counter() - start) / args.baseline_models
        projected += per_model * counts[n]
        print(f"{n:>4} {counts[n]:>7} {per_model:>19.3f}")

    print(
        f"\npreset {args.preset}: {len(results.models)} models, {config.n_configurations} configurations x "
        f"{config.seeds} seeds, {config.student_steps} steps of batch {config.batch_size}"
    )
    print(f"vectorised sweep:              {vectorised:8.1f} s")
    print(f"one by one (projected):        {projected:8.1f} s")
    print(f"speed-up:                      {projected / vectorised:8.1f}x")


if __name__ == "__main__":
    main()
