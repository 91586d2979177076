"""Markdown tables from pandas frames (no optional dependency such as tabulate)."""

from __future__ import annotations

import math

import pandas as pd


def format_value(value: object, digits: int = 4) -> str:
    """Integers as they are, floats to ``digits`` significant digits, NaN as an empty cell."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) >= 10**digits:
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured markdown table of ``frame``."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| "
        + " | ".join(format_value(value.item() if hasattr(value, "item") else value, digits) for value in row)
        + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])
