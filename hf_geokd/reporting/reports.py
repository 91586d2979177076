"""Markdown reports rendered from the Jinja templates in ``hf_geokd/templates/reports/``, with their PNG figures.

Templates read their numbers from the context they are given and format them with two filters: ``table`` (a pandas
frame as a markdown table) and ``num`` (a number to 4 significant digits, or ``num(3)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from ..calibration import fit_power_law, fit_two_component
from ..paper import paper_claims, paper_observed
from ..tables import format_value, markdown_table
from .plots import plot_calibration, plot_power_law

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("hf_geokd", "templates/reports"), undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
)
ENVIRONMENT.filters["table"] = lambda frame, digits=4: markdown_table(frame, digits)
ENVIRONMENT.filters["num"] = lambda value, digits=4: format_value(float(value), digits)
ENVIRONMENT.filters["json"] = lambda value: json.dumps(value, indent=2, default=str)


def render_report(template: str, path: str | Path, **context: Any) -> Path:
    """Render ``templates/reports/<template>`` with ``context`` into ``path`` (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ENVIRONMENT.get_template(template).render(**context))
    return path


def write_paper_report(checks: pd.DataFrame, out: str | Path) -> Path:
    """report.md with every recomputed number of the paper, and the Eq. 3 / Eq. 4 fits drawn from its tables."""
    out = Path(out)
    widths, predicted, observed = paper_observed()
    calibration = fit_two_component(predicted, observed)
    power_law = fit_power_law(widths, observed)
    plot_calibration(predicted, observed, calibration, out / "paper_calibration.png", labels=widths,
                     title="Paper Tables 2-3: two-component calibration")
    plot_power_law(widths, observed, power_law, out / "paper_power_law.png", title="Paper Table 3: power law")
    sections = {section: rows.drop(columns="section") for section, rows in checks.groupby("section", sort=False)}
    return render_report(
        "paper.md.j2", out / "report.md", counts=checks["status"].value_counts().to_dict(), sections=sections,
        calibration=calibration, power_law=power_law, claims=paper_claims(),
    )
