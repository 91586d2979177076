"""Train/test splits that keep documents apart, and the interval of a repeated-split accuracy.

A snippet's neighbours from the same document (another paragraph of the same licence, the English source of a French
translation) share words, names and style with it; if they sat on both sides of a split, a probe could score by
recognising the document rather than the concept. :func:`group_split` puts every document wholly on one side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import t as student_t


def group_split(groups: Sequence[str], labels: Sequence[int], test_fraction: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) such that no group has members on both sides.

    Per class, the groups whose examples all carry that class are shuffled and taken into the test part until it
    holds ``test_fraction`` of that class; groups holding both classes are shared out the same way. Classes thereby
    keep about their share in both parts.

    Raises:
        ValueError: ``groups`` and ``labels`` differ in length, ``test_fraction`` is outside (0, 1), or the split
            leaves a class absent from a part (too few documents: lower ``test_fraction`` or add documents).
    """
    groups_arr, y = np.asarray(groups), np.asarray(labels)
    if groups_arr.shape != y.shape:
        raise ValueError(f"groups has {groups_arr.size} entries but labels {y.size}: one document name per example.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}.")
    rng = np.random.default_rng(seed)
    names, index = np.unique(groups_arr, return_inverse=True)
    # each group's class: 0, 1, or 2 (holds both)
    has_pos = np.bincount(index, weights=y == 1, minlength=names.size) > 0
    has_neg = np.bincount(index, weights=y == 0, minlength=names.size) > 0
    kind = np.where(has_pos & has_neg, 2, np.where(has_pos, 1, 0))
    sizes = np.bincount(index, minlength=names.size)
    in_test = np.zeros(names.size, dtype=bool)
    for value in (0, 1, 2):
        members = rng.permutation(np.flatnonzero(kind == value))
        target = test_fraction * sizes[members].sum()
        cumulative = np.cumsum(sizes[members])
        in_test[members[cumulative - sizes[members] < target]] = True
    test_mask = in_test[index]
    train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    for part, rows in (("train", train), ("test", test)):
        if set(np.unique(y[rows])) != {0, 1}:
            raise ValueError(f"the {part} part of the group split lacks a class ({names.size} documents): lower "
                             "test_fraction or give more documents.")
    return train, test


def resampled_interval(values: Sequence[float], test_fraction: float, level: float = 0.95,
                       bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """Interval of the mean of per-split scores over repeated random train/test splits, by the corrected resampled
    t-test of Nadeau and Bengio (2003): the splits share data, so the variance of the mean is not s^2 / J but

        Var = s^2 (1 / J + n_test / n_train),  interval = mean +- t_{J-1, (1+level)/2} sqrt(Var).

    The interval is clipped to ``bounds`` (e.g. (0, 1) for an accuracy). With one split there is no spread to
    measure: the interval is (nan, nan)."""
    scores = np.asarray(values, dtype=np.float64)
    if scores.size < 2:
        return float("nan"), float("nan")
    variance = scores.var(ddof=1) * (1 / scores.size + test_fraction / (1 - test_fraction))
    half = student_t.ppf((1 + level) / 2, scores.size - 1) * np.sqrt(variance)
    return float(max(scores.mean() - half, bounds[0])), float(min(scores.mean() + half, bounds[1]))
