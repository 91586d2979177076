"""Write a survival study: one folder per student, the staircase table (csv + markdown) and its figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..tables import markdown_table
from .plots import plot_orderings, plot_staircase
from .result import FeatureSurvival
from .staircase import by_width, fit_g_eff, survival_staircase

TABLE_COLUMNS = {
    "student_width": "d_S", "scorable": "scorable", "unscorable": "excluded", "survived@0.3": "surv@0.3",
    "survived@0.5": "surv@0.5", "survived@0.7": "surv@0.7", "survived_random_mean": "random-init above 0.5 (mean)",
    "mean_score[student]": "mean score", "mean_score[shuffled]": "shuffled score", "mean_score[token]": "token score",
    "k_star": "k*", "g_eff": "g_eff = k*/d_S",
}


def staircase_markdown(table: pd.DataFrame) -> str:
    """The staircase table for reports: survivors and controls, k* and g_eff, F_S of every capacity kind."""
    columns = {key: name for key, name in TABLE_COLUMNS.items() if key in table}
    columns.update({key: key for key in table if key.startswith("F_S[")})
    columns.update({"auc[importance]": "AUC importance", "auc[frequency]": "AUC frequency",
                    "spearman_importance": "Spearman(I, score)"})
    frame = table[[key for key in columns if key in table]].rename(columns=columns)
    return markdown_table(frame, digits=3)


def write_survival_study(results: Sequence[FeatureSurvival], out: str | Path, title: str = "") -> dict:
    """Save every result under ``out/d_S=<width>/``, ``staircase.csv``, ``staircase.md``, ``staircase.png``,
    ``orderings.png`` and ``summary.json`` (the fitted g_eff across widths); return the summary."""
    out = Path(out)
    results = by_width(results)
    for result in results:
        result.save(out / f"d_S={result.student_width}")
    table = survival_staircase(results)
    table.to_csv(out / "staircase.csv", index=False)
    (out / "staircase.md").write_text(staircase_markdown(table) + "\n")
    plot_staircase(results, out / "staircase.png", title)
    plot_orderings(results, out / "orderings.png", f"{title}: survival under each ordering" if title else "")
    summary = {"hook_name": results[0].hook_name, "widths": [r.student_width for r in results],
               "k_star": [r.k_star() for r in results], "g_eff_per_width": [r.g_eff() for r in results],
               "g_eff_fit": fit_g_eff(results), "alpha": results[0].alpha, "n_features": results[0].n_features}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
