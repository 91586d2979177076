"""Markdown reports with their PNG figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .calibration import fit_power_law, fit_two_component
from .tables import markdown_table


def write_paper_report(checks: pd.DataFrame, out: str | Path) -> Path:
    """report.md with every recomputed number of the paper, and the Eq. 3 / Eq. 4 fits drawn from its tables."""
    from .paper import paper_observed
    from .plots import plot_calibration, plot_power_law

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    widths, predicted, observed = paper_observed()
    calibration = fit_two_component(predicted, observed)
    power_law = fit_power_law(widths, observed)
    plot_calibration(predicted, observed, calibration, out / "paper_calibration.png", labels=widths,
                     title="Paper Tables 2-3: two-component calibration")
    plot_power_law(widths, observed, power_law, out / "paper_power_law.png", title="Paper Table 3: power law")
    counts = ", ".join(f"{n} {status}" for status, n in checks["status"].value_counts().items())
    lines = [
        "# The paper's numbers, recomputed from its own inputs",
        "",
        "Each derived number of arXiv 2604.04037 recomputed from the inputs the paper prints. `ok`: equal at the "
        "printed precision; `close`: within 1%; `DIFFERS`: the paper's arithmetic disagrees with itself.",
        "",
        f"Summary: {counts}.",
        "",
        f"- Calibration from Tables 2-3: {calibration.summary()}",
        f"- Power law from Table 3: {power_law.summary()}",
        "",
        "![calibration](paper_calibration.png) ![power law](paper_power_law.png)",
    ]
    for section, rows in checks.groupby("section", sort=False):
        lines += ["", f"## {section}", "", markdown_table(rows.drop(columns="section"))]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
