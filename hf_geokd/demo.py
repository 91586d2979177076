"""``geokd demo``: the embedded end-to-end run, offline on a CPU, leaving a report in one folder."""

from __future__ import annotations

from pathlib import Path

from .paper import paper_checks
from .report import write_paper_report
from .toy import ToySweepConfig, run_toy_sweep
from .toy.report import write_toy_report


def run_demo(out: str | Path) -> Path:
    """Run every stage available offline and return the path of the report that links them.

    Stages: the paper's numbers recomputed from its own inputs; the toy-model sweep (smoke preset) with its
    accuracy table and figures.
    """
    out = Path(out)
    paper = write_paper_report(paper_checks(), out / "paper")
    toy = write_toy_report(run_toy_sweep(ToySweepConfig.smoke(), checkpoint_dir=out / "toy"), out / "toy")
    index = out / "report.md"
    index.write_text(
        "# hf-geokd demo\n\n"
        f"- [The paper's numbers, recomputed]({paper.relative_to(out)})\n"
        f"- [Toy model of superposition: Eq. 2 against measured floors (smoke grid)]({toy.relative_to(out)})\n"
    )
    return index
