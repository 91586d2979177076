"""Write a survival study: one folder per student, the staircase table (csv + markdown) and its figure."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..naming import student_label
from ..tables import markdown_table
from .plots import plot_orderings, plot_staircase
from .result import FeatureSurvival
from .staircase import by_width, fit_g_eff, survival_staircase

COUNT_COLUMNS = {"student_width": "d_S", "scorable": "scorable", "unscorable": "excluded", "survived@0.3": "surv@0.3",
                 "survived@0.5": "surv@0.5", "survived@0.7": "surv@0.7"}
CONTROL_COLUMNS = {"survived_random_mean": "random-init above 0.5 (mean)", "mean_score[student]": "mean score",
                   "mean_score[shuffled]": "shuffled score", "mean_score[token]": "token score"}
CUTOFF_COLUMNS = {"k_star": "k*", "g_eff": "g_eff = k*/d_S"}
ORDERING_COLUMNS = {"auc[importance]": "AUC importance", "auc[frequency]": "AUC frequency",
                    "spearman_importance": "Spearman(I, score)"}
BY_NULL = re.compile(r"(?P<count>survived@[\d.]+|k_star)\[(?P<null>[a-z,]+)\]")
CONTROL_NAMES = {"random": "randomly initialised students", "shuffled": "the shuffled pairing",
                 "token": "the token identity", "none": "no control"}


def _by_null(table: pd.DataFrame, count: str) -> dict[str, str]:
    """Columns of one count under each null: ``survived@0.5[random,shuffled]`` -> ``surv@0.5 vs random,shuffled``."""
    columns = {}
    for key in table:
        match = BY_NULL.fullmatch(key)
        if match and match["count"].startswith(count):
            name = "k*" if count == "k_star" else match["count"].replace("survived", "surv")
            columns[key] = f"{name} vs {match['null']}"
    return columns


def staircase_caption(table: pd.DataFrame) -> str:
    """What the counts of the staircase table measure: which controls their null holds, and the token score."""
    nulls = [", ".join(CONTROL_NAMES[kind] for kind in null.split(",")) for null in dict.fromkeys(table["null"])]
    text = (f"surv@t, k* and g_eff count the latents whose normalised score R^2(student) / R^2(teacher) exceeds t and "
            f"the best score of the null: {' / '.join(nulls)}. Columns 'vs <controls>' give the counts under each "
            "null: with the token identity in it, a latent counts only where the student carries more of it than "
            "the current token alone predicts.")
    if "mean_score[token]" in table:
        text += (" token score: the token identity's mean normalised score (a per-token mean of each latent, not a "
                 "linear read-out); above 1 where the current token predicts a latent better than the teacher's own "
                 "linear read-out (the ceiling).")
    return text


def staircase_markdown(table: pd.DataFrame) -> str:
    """The staircase table for reports: survivors under each null and the controls, k* and g_eff, F_S of every
    capacity kind, the orderings' AUCs; a caption under it says what the counts measure."""
    columns = {**COUNT_COLUMNS, **_by_null(table, "survived"), **CONTROL_COLUMNS, **CUTOFF_COLUMNS,
               **_by_null(table, "k_star"), **{key: key for key in table if key.startswith("F_S[")},
               **ORDERING_COLUMNS}
    frame = table[[key for key in columns if key in table]].rename(columns=columns)
    return markdown_table(frame, digits=3) + "\n\n" + staircase_caption(table)


def _summary(results: list[FeatureSurvival]) -> dict:
    """summary.json: per width k* and g_eff (the results' null), k* under each null, and the fit across widths."""
    summary = {"hook_name": results[0].hook_name, "widths": [r.student_width for r in results],
               "null": [r.null_label() for r in results], "k_star": [r.k_star() for r in results],
               "g_eff_per_width": [r.g_eff() for r in results], "g_eff_fit": fit_g_eff(results),
               "alpha": results[0].alpha, "n_features": results[0].n_features}
    counts = [r.counts_by_null() for r in results]
    for key in dict.fromkeys(key for count in counts for key in count if key.startswith("k_star[")):
        summary[key] = [count.get(key) for count in counts]
    return summary


def write_survival_study(results: Sequence[FeatureSurvival], out: str | Path, title: str = "",
                         overwrite: bool = False) -> dict:
    """Save every result under ``out/d_S=<width>/``, ``staircase.csv``, ``staircase.md``, ``staircase.png``,
    ``orderings.png`` and ``summary.json`` (the fitted g_eff across widths); return the summary.

    A result folder that already holds the same result is kept; one that holds another result is refused
    (``FileExistsError``) unless ``overwrite=True`` (see :meth:`FeatureSurvival.save`).
    """
    out = Path(out)
    results = by_width(results)
    for result in results:
        result.save(out / student_label(result.student_width), overwrite=overwrite)
    table = survival_staircase(results)
    table.to_csv(out / "staircase.csv", index=False)
    (out / "staircase.md").write_text(staircase_markdown(table) + "\n")
    plot_staircase(results, out / "staircase.png", title)
    plot_orderings(results, out / "orderings.png", f"{title}: survival under each ordering" if title else "")
    summary = _summary(results)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
