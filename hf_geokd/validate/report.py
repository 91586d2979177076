"""Write a validation's tables (CSV), held-out scatter plots (PNG) and ``report.md``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..paper import paper_claims
from ..reporting.plots import plot_held_out
from ..reporting.reports import render_report
from .harness import ValidationResults

SCORE_COLUMNS = ["predictor", "points", "failed", "median_accuracy_pct", "median_accuracy_pct_low",
                 "median_accuracy_pct_high", "mare_pct", "r2", "r2_low", "r2_high", "pearson_r", "spearman_rho"]


def protocol_tables(results: ValidationResults) -> dict[str, pd.DataFrame]:
    """One score table per protocol, lowest median absolute relative error first (ties keep their order)."""
    tables = {}
    for protocol, rows in results.scores.groupby("protocol", sort=False):
        rows = rows.sort_values("mare_pct", na_position="last", kind="stable")
        tables[protocol] = rows[[column for column in SCORE_COLUMNS if column in rows]].reset_index(drop=True)
    return tables


def write_validation_report(results: ValidationResults, out: str | Path, title: str) -> Path:
    """``scores.csv``, ``predictions.csv``, one ``held_out_<protocol>.png`` per protocol and ``report.md`` in
    ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results.scores.to_csv(out / "scores.csv", index=False)
    results.predictions.to_csv(out / "predictions.csv", index=False)
    tables = protocol_tables(results)
    figures = {}
    for protocol, table in tables.items():
        shown = list(table["predictor"].head(4))  # the four best, or the plot is unreadable
        rows = results.predictions[(results.predictions["protocol"] == protocol)
                                   & results.predictions["predictor"].isin(shown)]
        if not rows.empty:
            figures[protocol] = plot_held_out(rows, out / f"held_out_{protocol}.png", f"{title}\n{protocol}").name
    observations = results.observations
    table = observations.table
    return render_report(
        "validation.md.j2", out / "report.md", title=title, observations=observations, tables=tables,
        figures=figures, errors=results.errors, claims=paper_claims(), configurations=table["config"].nunique(),
        points=len(table), widths=sorted(int(width) for width in table["width"].unique()),
        unconverged=table[table["converged"] == False],  # noqa: E712 (the column may hold NaN: unknown)
    )
