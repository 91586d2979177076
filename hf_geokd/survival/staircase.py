"""The staircase across student widths: measured cutoffs k*(d_S) beside every capacity kind's F_S, and g_eff.

The theory (paper Theorem 1) says k*(d_S) = F_S = d_S g(alpha): a line through the origin in d_S. The measured
capacity is its least-squares slope, g_eff = sum_w k*_w d_w / sum_w d_w^2, and it can stand in for g(alpha) in the
predictor: ``FloorPredictor(stats, capacity_kind=measured_capacity(results))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..capacity import FittedCapacity
from .result import FeatureSurvival


def by_width(results: Sequence[FeatureSurvival]) -> list[FeatureSurvival]:
    results = sorted(results, key=lambda result: result.student_width)
    if not results:
        raise ValueError("pass one or more FeatureSurvival results (one per student).")
    if len({result.hook_name for result in results}) > 1:
        raise ValueError("these results read different teacher hooks: a staircase compares one teacher layer.")
    return results


def null_labels(results: Sequence[FeatureSurvival]) -> str:
    """The controls of the results' nulls, e.g. ``random,shuffled,token`` (``a / b`` when they differ)."""
    return " / ".join(dict.fromkeys(result.null_label() for result in results))


def survival_staircase(results: Sequence[FeatureSurvival], threshold: float | None = None) -> pd.DataFrame:
    """One row per student: width, survivors at each reported threshold, k*, g_eff = k*/d_S, F_S of every kind,
    controls, ordering AUCs and Spearman(importance, score); ``saturated`` when k* reaches the last scorable rank
    (then g_eff is only a lower bound)."""
    rows = []
    for result in by_width(results):
        row = result.summary()
        if threshold is not None:
            row["k_star"], row["g_eff"] = result.k_star(threshold), result.g_eff(threshold)
        scorable_ranks = np.flatnonzero(result.scorable) + 1
        row["saturated"] = bool(scorable_ranks.size and row["k_star"] >= scorable_ranks[-1])
        rows.append(row)
    return pd.DataFrame(rows)


def fit_g_eff(results: Sequence[FeatureSurvival], threshold: float | None = None) -> float:
    """The slope of k*(d_S) through the origin across students: g_eff = sum k* d / sum d^2 (0 when no student
    keeps any latent)."""
    if not any(result.k_star(threshold) for result in results):
        return 0.0
    return measured_capacity(results, threshold).a


def survivor_jaccard(results: Sequence[FeatureSurvival], threshold: float | None = None) -> float:
    """Mean pairwise Jaccard overlap |A & B| / |A | B| of the surviving latent sets of students of one width (seeds).

    Latents are matched by their SAE index, so results measured on different tokens compare correctly.
    """
    if len(results) < 2 or len({result.student_width for result in results}) > 1:
        raise ValueError("pass two or more results of students of the same width (different seeds).")
    sets = [set(result.latent[result.survived(threshold)].tolist()) for result in results]
    overlaps = [len(a & b) / len(a | b) if a | b else 1.0 for i, a in enumerate(sets) for b in sets[i + 1 :]]
    return float(np.mean(overlaps))


def measured_capacity(results: Sequence[FeatureSurvival], threshold: float | None = None) -> FittedCapacity:
    """The fitted g_eff as a capacity kind for ``FloorPredictor`` (constant in alpha: a = g_eff, b = 0)."""
    results = by_width(results)
    return FittedCapacity.from_kept_counts([result.student_width for result in results],
                                           [result.k_star(threshold) for result in results])
