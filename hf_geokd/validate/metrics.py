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
from scipy.stats import rankdata

from ..calibration import check_bootstrap_settings, numbers_of

BOOTSTRAP_SAMPLES = 1000


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
        "spearman_rho": _correlation(rankdata(predicted), rankdata(observed)),
    }


def floor_accuracy(predicted, observed, seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Metrics of ``predicted`` against ``observed`` (> 0) plus bootstrap intervals of median accuracy and R^2."""
    check_bootstrap_settings(seed, confidence)
    predicted, observed = numbers_of(predicted, "predicted"), numbers_of(observed, "observed")
    if predicted.shape != observed.shape or predicted.size == 0:
        raise ValueError(f"predicted ({predicted.size}) and observed ({observed.size}) must be non-empty and paired.")
    for values, name in ((predicted, "predicted"), (observed, "observed")):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name} floors must be finite, not at positions {bad[:5].tolist()} "
                             f"({values[bad[:5]].tolist()}): drop the diverged or failed runs.")
    if np.any(observed <= 0):
        raise ValueError(f"observed floors must be > 0: relative errors are undefined at 0 (positions "
                         f"{np.flatnonzero(observed <= 0)[:5].tolist()}).")
    result: dict[str, float] = {"points": int(observed.size), **point_metrics(predicted, observed)}
    rng = np.random.default_rng(seed)
    index = rng.integers(0, observed.size, (BOOTSTRAP_SAMPLES, observed.size))
    draws = _bootstrap_metrics(predicted[index], observed[index])
    tail = 50.0 * (1.0 - confidence)
    for key, values in draws.items():
        values = values[np.isfinite(values)]
        low, high = (np.percentile(values, [tail, 100 - tail]) if values.size else (np.nan, np.nan))
        result[f"{key}_low"], result[f"{key}_high"] = float(low), float(high)
    return result


def _bootstrap_metrics(predicted: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """Median accuracy and R^2 of each resample (rows of [B, n] arrays), vectorised."""
    relative = np.abs(predicted - observed) / observed
    total = np.sum((observed - observed.mean(axis=1, keepdims=True)) ** 2, axis=1)
    residual = np.sum((observed - predicted) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1.0 - residual / total, np.nan)
    return {"median_accuracy_pct": 100 * np.median(np.clip(1 - relative, 0, None), axis=1), "r2": r2}
