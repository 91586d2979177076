"""``geokd demo``: the embedded end-to-end run, offline on a CPU, leaving a report in one folder."""

from __future__ import annotations

from pathlib import Path

from .paper import paper_checks
from .report import write_paper_report


def run_demo(out: str | Path) -> Path:
    """Run every stage available offline and return the report's path."""
    out = Path(out)
    report = write_paper_report(paper_checks(), out / "paper")
    return report
