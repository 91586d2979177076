"""Predicted vs measured toy floors: every capacity kind, the naive g = 1 formula, and a fitted effective capacity.

For a toy model with n features of importance I_i, each active with probability p = 1 - alpha and uniform on
[0, 1] when active, feature i contributes I_i E[x_i^2] = I_i p / 3 to the floor (paper Eq. 2).

Accuracy of a prediction P against a measured floor Y (both means over seeds at one (n, d_T, alpha, d_S) point):
- Pearson r on linear values, and on log values over the points where both are positive;
- R^2 = 1 - sum (Y - P)^2 / sum (Y - mean Y)^2;
- median absolute percentage error, median over points of |P - Y| / Y;
- median accuracy, median over points of max(0, 1 - |P - Y| / Y). The paper reports "MAPE = 93.9%" and "median
  prediction accuracy above 93%"; we read both as this median accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..calibration import r_squared
from ..capacity import (
    CAPACITY_KINDS,
    CapacityKind,
    FittedCapacity,
    capacity,
    critical_width,
    predicted_floor,
    quiet_capacity_warnings,
)
from .sweep import ToySweepConfig, ToySweepResults

NAIVE = FittedCapacity(a=1.0, b=0.0, base="paper")  # g = 1: one feature per dimension
CONFIG_KEYS = ["n", "d_T", "alpha"]


def toy_contributions(config: ToySweepConfig, n: int, alpha: float) -> np.ndarray:
    """I_i E[x_i^2] = I_i (1 - alpha) / 3 for each of the n features."""
    return config.importance(n).double().numpy() * (1.0 - alpha) / 3.0


def floor_points(results: ToySweepResults) -> pd.DataFrame:
    """Students averaged over seeds: one row per (n, d_T, alpha, d_S) with floor mean and std, kept features."""
    students = results.students()
    grouped = students.groupby([*CONFIG_KEYS, "d_S"])
    points = grouped.agg(floor=("floor", "mean"), floor_std=("floor", "std"), truth_loss=("truth_loss", "mean"),
                         kept=("kept", "mean"), seeds=("seed", "count")).reset_index()
    points["total_energy"] = [
        toy_contributions(results.config, n, a).sum() for n, a in zip(points["n"], points["alpha"])
    ]
    return points


def predict_points(points: pd.DataFrame, config: ToySweepConfig, kind: CapacityKind) -> np.ndarray:
    """Eq. 2 at every point under one capacity kind."""
    with quiet_capacity_warnings():
        return np.array(
            [
                predicted_floor(toy_contributions(config, n, a), d, a, kind)
                for n, a, d in zip(points["n"], points["alpha"], points["d_S"])
            ]
        )


def fit_effective_capacity(points: pd.DataFrame, base: str = "paper") -> FittedCapacity:
    """Fit kept / d_S = a * g_base(alpha)^b by least squares in logs, on points where the kept count is not capped
    by n (kept < n) and not empty."""
    usable = points[(points["kept"] > 0) & (points["kept"] < points["n"] - 0.5)]
    if len(usable) < 2 or usable["alpha"].nunique() < 2:
        raise ValueError("fitting g_eff needs unsaturated points at two or more sparsity levels.")
    with quiet_capacity_warnings():
        log_g = np.log([capacity(a, base) for a in usable["alpha"]])
    log_rate = np.log(usable["kept"].to_numpy() / usable["d_S"].to_numpy())
    slope, intercept = np.polyfit(log_g, log_rate, 1)
    return FittedCapacity(a=float(np.exp(intercept)), b=float(slope), base=base)


def held_out_fitted_predictions(
    points: pd.DataFrame, config: ToySweepConfig, folds: int = 4, seed: int = 0
) -> np.ndarray:
    """Predictions with g_eff fitted on the other configurations only (k-fold over (n, d_T, alpha))."""
    configurations = points[CONFIG_KEYS].drop_duplicates().reset_index(drop=True)
    folds = min(folds, len(configurations))
    assignment = np.random.default_rng(seed).permutation(len(configurations)) % folds
    fold_of = {tuple(row): f for row, f in zip(configurations.itertuples(index=False), assignment)}
    point_fold = np.array([fold_of[tuple(row)] for row in points[CONFIG_KEYS].itertuples(index=False)])
    predictions = np.full(len(points), np.nan)
    for fold in range(folds):
        train, test = points[point_fold != fold], points[point_fold == fold]
        try:
            fitted = fit_effective_capacity(train)
        except ValueError:
            continue
        predictions[point_fold == fold] = predict_points(test, config, fitted)
    return predictions


def add_predictions(points: pd.DataFrame, config: ToySweepConfig) -> tuple[pd.DataFrame, dict[str, CapacityKind]]:
    """Columns ``pred_<kind>`` for every capacity kind, ``pred_naive`` and ``pred_fitted`` (held-out), and d* per
    kind; returns the frame and the kinds used (the fitted kind is the one fitted on all points)."""
    points = points.copy()
    kinds: dict[str, CapacityKind] = {kind: kind for kind in CAPACITY_KINDS}
    kinds["naive"] = NAIVE
    for name, kind in kinds.items():
        points[f"pred_{name}"] = predict_points(points, config, kind)
    fitted = fit_effective_capacity(points)
    kinds["fitted"] = fitted
    points["pred_fitted"] = held_out_fitted_predictions(points, config)
    with quiet_capacity_warnings():
        points["d_star_paper"] = [critical_width(n, a) for n, a in zip(points["n"], points["alpha"])]
        points["kept_paper"] = [min(d * capacity(a), n) for n, a, d in zip(points["n"], points["alpha"], points["d_S"])]
    return points, kinds


def accuracy(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Pearson r (linear, log), R^2, median APE and median accuracy over points with a finite prediction."""
    keep = np.isfinite(predicted) & np.isfinite(actual) & (actual > 0)
    p, y = predicted[keep], actual[keep]
    positive = p > 0
    relative = np.abs(p - y) / y
    with np.errstate(invalid="ignore", divide="ignore"):
        log_r = (
            float(np.corrcoef(np.log(p[positive]), np.log(y[positive]))[0, 1]) if positive.sum() > 2 else float("nan")
        )
        linear_r = float(np.corrcoef(p, y)[0, 1]) if np.std(p) > 0 else float("nan")
    return {
        "points": int(keep.sum()),
        "pearson_r": linear_r,
        "pearson_r_log": log_r,
        "r2": r_squared(y, p),
        "median_ape_pct": float(100 * np.median(relative)),
        "median_accuracy_pct": float(100 * np.median(np.clip(1 - relative, 0, None))),
    }


def accuracy_table(
    points: pd.DataFrame, kinds: dict[str, CapacityKind], target: str = "floor", nonzero_only: bool = False
) -> pd.DataFrame:
    """One row per capacity kind (fitted: held-out predictions) against a measured column: ``floor`` (the loss
    against the training target) or ``truth_loss`` (against the true x). ``nonzero_only`` keeps the points where
    that kind's Eq. 2 prediction is positive (the hard cutoff predicts exactly 0 beyond d*)."""
    rows = []
    for name, kind in kinds.items():
        predicted = points[f"pred_{name}"].to_numpy()
        keep = predicted > 0 if nonzero_only else np.ones(len(points), dtype=bool)
        row = {"capacity": name if name != "fitted" else f"fitted (held out); all-data fit {kind.name}"}
        row.update(accuracy(predicted[keep], points[target].to_numpy()[keep]))
        rows.append(row)
    return pd.DataFrame(rows)


def accuracy_by_alpha(points: pd.DataFrame, kind: str = "paper") -> pd.DataFrame:
    """Median accuracy of one kind at each sparsity level (the paper: > 93% at every level)."""
    rows = [
        {"alpha": alpha, **accuracy(group[f"pred_{kind}"].to_numpy(), group["floor"].to_numpy())}
        for alpha, group in points.groupby("alpha")
    ]
    return pd.DataFrame(rows)
