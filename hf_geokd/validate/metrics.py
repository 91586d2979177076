"""Accuracy of predicted floors against measured ones, with bootstrap intervals.

For predictions P and measured floors Y over the scored points:

- relative error |P - Y| / Y; median absolute relative error (MARE);
- median accuracy = median of max(0, 1 - |P - Y| / Y) (the README's and the paper's "median prediction accuracy");
- R^2 = 1 - sum (Y - P)^2 / sum (Y - mean Y)^2 (negative when worse than predicting the mean);
- Pearson r (linear) and Spearman rho (ranks);
- percentile bootstrap intervals of median accuracy and R^2 over resampled points.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SAMPLES = 1000


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def point_metrics(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """The metrics above, without intervals."""
    relative = np.abs(predicted - observed) / observed
    total = float(np.sum((observed - observed.mean()) ** 2))
    return {
        "median_accuracy_pct": float(100 * np.median(np.clip(1 - relative, 0, None))),
        "mare_pct": float(100 * np.median(relative)),
        "r2": 1.0 - float(np.sum((observed - predicted) ** 2)) / total if total > 0 else float("nan"),
        "pearson_r": _correlation(predicted, observed),
        "spearman_rho": _correlation(_ranks(predicted), _ranks(observed)),
    }


def floor_accuracy(predicted, observed, seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Metrics of ``predicted`` against ``observed`` (> 0) plus bootstrap intervals of median accuracy and R^2."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    observed = np.asarray(observed, dtype=np.float64).reshape(-1)
    if predicted.shape != observed.shape or predicted.size == 0:
        raise ValueError(f"predicted ({predicted.size}) and observed ({observed.size}) must be non-empty and paired.")
    if not (np.all(np.isfinite(predicted)) and np.all(np.isfinite(observed))):
        raise ValueError("predicted and observed floors must be finite.")
    if np.any(observed <= 0):
        raise ValueError("observed floors must be > 0: relative errors are undefined at 0.")
    result: dict[str, float] = {"points": int(observed.size), **point_metrics(predicted, observed)}
    rng = np.random.default_rng(seed)
    draws = [point_metrics(predicted[index], observed[index])
             for index in (rng.integers(0, observed.size, observed.size) for _ in range(BOOTSTRAP_SAMPLES))]
    tail = 50.0 * (1.0 - confidence)
    for key in ("median_accuracy_pct", "r2"):
        values = np.array([draw[key] for draw in draws], dtype=np.float64)
        values = values[np.isfinite(values)]
        low, high = (np.percentile(values, [tail, 100 - tail]) if values.size else (np.nan, np.nan))
        result[f"{key}_low"], result[f"{key}_high"] = float(low), float(high)
    return result
