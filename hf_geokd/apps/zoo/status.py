"""``geokd zoo --status``: where each teacher of a zoo stands, read from its folder, with nothing trained or written.

Blind by design: for a teacher that is registered but not scored yet, the status counts its held-out students
(trained or not, converged or not) and names the step of the student run's last checkpoint, but prints no floor and
no loss, so that watching a registered run cannot reveal what it is about to score. A scored teacher shows its
registered primary's MARE (median over the SAE seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...distill.checkpoints import checkpoints, is_complete
from ..pipeline import student_floor_file
from .config import ZooTeacher
from .registration import read_registration, registration_commit


def zoo_status(out: str | Path, teachers: list[ZooTeacher]) -> pd.DataFrame:
    """One row per teacher: its stage (``not started``, ``predict``, ``registered``, ``score``, ``scored``), the
    registration's commit, how many of the students its score stage trains (the predicted widths and the control)
    have a final floor (and how many of those converged), the step of the student run's last complete checkpoint of
    the step limit, the registered primary's MARE once scored, and the hours its invocations recorded
    (``timings.json``)."""
    return pd.DataFrame([_teacher_status(Path(out) / teacher.name, teacher) for teacher in teachers])


def _teacher_status(folder: Path, teacher: ZooTeacher) -> dict:
    row = {"teacher": teacher.name, "stage": "not started", "registration": "", "students final": "",
           "converged": "", "checkpoint": "", "primary MARE %": "", "hours recorded": _hours(folder)}
    if not folder.is_dir():
        return row
    registration = read_registration(folder)
    if registration is None:
        row["stage"] = "predict"
        return row
    row["registration"] = _commit(folder)
    widths = [*registration["predicted_widths"], registration["control_width"]]
    floors = [_floor(folder, width) for width in widths]
    final = [floor for floor in floors if floor is not None]
    row["students final"] = f"{len(final)} of {len(widths)}"
    row["converged"] = f"{sum(bool(floor['converged']) for floor in final)} of {len(final)}"
    steps = [step for step, path in checkpoints(folder / "students") if is_complete(path)]
    if steps:
        row["checkpoint"] = f"step {max(steps):,} of {teacher.student_max_steps:,}"
    scores_file = folder / "scores.json"
    if not scores_file.is_file():
        row["stage"] = "score" if steps or final else "registered"
        return row
    row["stage"] = "scored"
    primary = registration["primary"]["predictor"]
    scores = json.loads(scores_file.read_text())["scores"]
    mare = next((score["mare_pct"] for score in scores if score["predictor"] == primary), None)
    row["primary MARE %"] = "not fitted" if mare is None else f"{mare:.1f}"
    return row


def _floor(folder: Path, width: int) -> dict | None:
    """A student's ``floor.json`` (only its convergence is shown before the teacher is scored), None when absent."""
    path = student_floor_file(folder / "students", width)
    return json.loads(path.read_text()) if path.is_file() else None


def _commit(folder: Path) -> str:
    try:
        commit = registration_commit(folder)
    except PermissionError:
        return "not committed"
    return "no version control" if commit is None else commit[:7]


def _hours(folder: Path) -> str:
    path = folder / "timings.json"
    if not path.is_file():
        return ""
    seconds = [row["seconds"] for row in json.loads(path.read_text()) if row.get("seconds") is not None]
    return f"{sum(seconds) / 3600:.2f}"
