"""``geokd zoo``: the demo's pipeline on many teachers, with every prediction registered before it is tested.

For each teacher of a zoo YAML file (:mod:`.config`), in its own folder under ``out``: the ``predict`` stage trains
the teacher, one SAE per seed, the ablation floors and the calibration students, and writes ``registration.json``
(:mod:`.registration`); the ``score`` stage trains the other students and scores the registered predictions (and,
exploratory, every predictor under every protocol) against their floors (:mod:`.stages`); the summary compares the
teachers (:mod:`.summary`). Every invocation continues where the last stopped; ``max_minutes`` stops a long one
cleanly (a checkpoint is kept) so that the next continues from it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..pipeline import DeadlineReached, claim_folder
from .config import ZooTeacher, load_zoo, select_teachers, student_widths
from .registration import read_registration, registration_commit, registration_digest
from .stages import deadline_after, pick_device, predict_stage, prepare, score_stage
from .status import zoo_status
from .summary import write_teacher_report, write_zoo_summary

STAGES = ("predict", "score", "all")

__all__ = ["STAGES", "DeadlineReached", "ZooTeacher", "load_zoo", "run_zoo", "select_teachers", "student_widths",
           "zoo_status"]


def run_zoo(out: str | Path, teachers: list[ZooTeacher], stage: str = "all", only: list[str] | None = None,
            cache_dir: str | Path = ".cache/hf-geokd", device: str | None = None, max_minutes: float | None = None,
            allow_uncommitted: bool = False, show_losses: bool = False) -> Path | None:
    """Run ``stage`` for each teacher (``only``: these names), then write the zoo's summary; return its path (None
    when no teacher has been scored yet). Raises :class:`~hf_geokd.apps.pipeline.DeadlineReached` when
    ``max_minutes`` runs out (everything finished so far is kept).

    The score stage of a teacher runs only on a registration that version control holds as it is (unless
    ``allow_uncommitted``, which the report then states), so that no prediction can change after its students are
    seen; it prints its students' log lines without losses unless ``show_losses`` (their floors are for the
    scores to reveal, not the console; :func:`.status.zoo_status` shows progress blind).
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}.")
    selected = select_teachers(teachers, only)
    device = pick_device(device)  # before the folder is claimed: a refusal leaves nothing behind
    out = Path(out)
    claim_folder(out, "zoo")
    deadline = deadline_after(max_minutes)
    for teacher in selected:
        folder = out / teacher.name
        print(f"[zoo] {teacher.name}: {stage}", flush=True)
        with _timed(folder, "predict", device):
            run = prepare(teacher, folder, Path(cache_dir), device, deadline)
            registration = predict_stage(run) if stage in ("predict", "all") else read_registration(folder)
        if stage == "predict":
            continue
        if registration is None:
            print(f"[zoo] {teacher.name}: not registered yet (run --stage predict first)", flush=True)
            continue
        commit = None if allow_uncommitted else registration_commit(folder)
        provenance = {"sha256": registration_digest(folder), "commit": commit,
                      "checked": "uncommitted allowed" if allow_uncommitted else
                      "committed" if commit else "not under version control"}
        with _timed(folder, "score", device):
            result = score_stage(run, registration, provenance, show_losses)
            write_teacher_report(run, registration, result)
    return write_zoo_summary(out, teachers)


class _timed:
    """Append one row per invocation of a teacher's stage to ``<teacher>/timings.json``: its wall seconds, whether it
    finished (False: stopped by ``max_minutes`` or an error; the next invocation continues), the device and torch's
    thread count. Loading the teacher and its data counts towards the predict row of every invocation."""

    def __init__(self, folder: Path, stage: str, device: str) -> None:
        self.folder, self.stage, self.device = folder, stage, device

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, error_type, _error, _traceback) -> None:
        path = self.folder / "timings.json"
        rows = json.loads(path.read_text()) if path.is_file() else []
        rows.append({"stage": self.stage, "seconds": round(time.perf_counter() - self.start, 1),
                     "finished": error_type is None, "device": self.device, "threads": torch.get_num_threads(),
                     "ended_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        if self.folder.is_dir():
            path.write_text(json.dumps(rows, indent=1) + "\n")

