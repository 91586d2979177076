"""Write a validation's tables (CSV), held-out scatter plots (PNG) and ``report.md``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..paper import paper_claims
from ..reporting.plots import plot_held_out
from ..reporting.reports import render_report
from .harness import ValidationResults

SCORE_COLUMNS = ["predictor", "points", "failed", "median_accuracy_pct", "median_accuracy_pct_low",
                 "median_accuracy_pct_high", "mare_pct", "r2", "r2_low", "r2_high", "pearson_r", "spearman_rho"]


def protocol_tables(results: ValidationResults) -> dict[str, pd.DataFrame]:
    """One score table per protocol, lowest median absolute relative error first (ties keep their order; predictors
    scored in-sample, and those scored on no point, after every held-out score)."""
    tables = {}
    if results.scores.empty:
        return tables
    scores = results.scores.reindex(columns=list(dict.fromkeys([*results.scores.columns, *SCORE_COLUMNS])))
    for protocol, rows in scores.groupby("protocol", sort=False):
        rows = rows.assign(_in_sample=rows["predictor"].isin(results.in_sample))
        rows = rows.sort_values(["_in_sample", "mare_pct"], na_position="last", kind="stable")
        tables[protocol] = rows[SCORE_COLUMNS].reset_index(drop=True)
    return tables


def report_notes(results: ValidationResults) -> list[str]:
    """What the report says before its tables: the observations' notes, the harness's, and the skipped protocols."""
    skipped = [f"not scored: {reason}" for reason in results.skipped.values()]
    return [*results.observations.notes, *results.notes, *skipped]


def write_validation_report(results: ValidationResults, out: str | Path, title: str) -> Path:
    """``scores.csv``, ``predictions.csv``, one ``held_out_<protocol>.png`` per protocol and ``report.md`` in
    ``out``; returns the report's path. ``scores.csv`` (what marks a folder as holding a validation) is removed first
    and written last, so a run that fails part-way never leaves a folder that looks complete."""
    out = Path(out)
    tables = protocol_tables(results)
    if not tables:
        raise ValueError(f"nothing was scored on {results.observations.source}: no validation to write.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.csv").unlink(missing_ok=True)
    figures = {}
    for protocol, table in tables.items() if not results.predictions.empty else ():
        shown = list(table["predictor"].head(4))  # the four best, or the plot is unreadable
        rows = results.predictions[(results.predictions["protocol"] == protocol)
                                   & results.predictions["predictor"].isin(shown)]
        if not rows.empty:
            figures[protocol] = plot_held_out(rows, out / f"held_out_{protocol}.png", f"{title}\n{protocol}").name
    observations = dataclasses.replace(results.observations, notes=report_notes(results))
    table = observations.table
    report = render_report(
        "validation.md.j2", out / "report.md", title=title, observations=observations, tables=tables,
        figures=figures, errors=results.errors, claims=paper_claims(), configurations=table["config"].nunique(),
        points=len(table), widths=sorted(int(width) for width in table["width"].unique()),
        unconverged=table[table["converged"] == False],  # noqa: E712 (the column may hold NaN: unknown)
    )
    results.predictions.to_csv(out / "predictions.csv", index=False)
    results.scores.to_csv(out / "scores.csv", index=False)
    return report
