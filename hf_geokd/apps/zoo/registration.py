"""The registration of a zoo teacher: every prediction, fixed and written before the students it predicts are trained.

``registration.json`` holds, for each SAE seed, each registered predictor's floor at each held-out width (computed
from the calibration students alone), their median and range over the seeds, the primary predictor, its calibration
protocol and floor definition, and the success rule that could count against it. It is written once: a later
invocation reads it, never rewrites it (:func:`write_registration` refuses), and the score stage refuses to run on a
registration that version control does not hold yet (:func:`registration_commit`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...soft_floor import SHIPPED_SOFT_FLOOR
from ...stats import FeatureStats
from ...validate.metrics import point_metrics
from ...validate.observations import Observations
from ...validate.predictors import (
    SCEPTIC_BASELINES,
    AblationFloor,
    ExponentialBaseline,
    Geometric,
    InverseWidthBaseline,
    LogLinearBaseline,
    ParameterLaw,
    PowerLawBaseline,
    Predictor,
    SoftFloorGiven,
)
from .config import ZooTeacher

REGISTRATION_NAME = "registration.json"
PRIMARY_PREDICTOR = Geometric("dt_signed", calibrated=True, kept_rule="continuous")
STUDENT_FREE_PREDICTOR = AblationFloor(calibrated=False)
PRIMARY, STUDENT_FREE = PRIMARY_PREDICTOR.name, STUDENT_FREE_PREDICTOR.name


def primary_protocol(teacher: ZooTeacher) -> str:
    """The primary's calibration protocol, in words, for this teacher's settings."""
    k = teacher.calibration_students
    return (f"cheapest-{k}: the {k} narrowest students calibrate Eq. 3 (C and B by least squares through them, an "
            "exact line through two); every other student narrower than the teacher is predicted; the control "
            "d_S = d_T is not scored")


def floor_definition(teacher: ZooTeacher) -> str:
    """What an observed floor is, for this teacher's settings."""
    absolute = (f" or {teacher.floor_absolute_tolerance:g} nats" if teacher.floor_absolute_tolerance else "")
    return (f"observed floor: the mean eval loss (T^2 KL per token, T = {teacher.temperature:g}) over the final 10% "
            f"of evaluations, of a student trained until the convergence rule holds (the fitted gain over another "
            f"doubling of the steps at most {100 * teacher.floor_tolerance:g}% of the floor{absolute}) or "
            f"{teacher.student_max_steps:,} steps (then named unconverged)")


SUCCESS_RULE = {
    "primary_median_mare_pct": 15.0,
    "primary_max_teacher_mare_pct": 25.0,
    "beats_best_baseline_share": 0.8,
    "max_seed_spread_pct_points": 5.0,
    "student_free_median_mare_pct": 30.0,
}
SUCCESS_TEXT = (
    "Per teacher, a predictor's MARE is the median over its SAE seeds of the median absolute relative error over the "
    "held-out students. The primary predictor succeeds when (1) its median MARE over the teachers is at most 15%, "
    "(2) no teacher is above 25%, (3) it beats the best of the sceptic's baselines (the lowest MARE among "
    f"{', '.join(SCEPTIC_BASELINES)}, chosen after the fact, on the same students) on at least 80% of the teachers "
    "(4 of 5), and (4) its MARE moves by at most 5 points between SAE seeds on every teacher. Any of the four "
    "failing counts against it. The student-free predictor (the ablation floor, no student trained) succeeds when "
    "its median MARE over the teachers is at most 30%, and the ablation floor used as Eq. 3's L* does no worse than "
    "the primary (median over the teachers)."
)


def registered_predictors() -> list[Predictor]:
    """What every zoo teacher registers: the primary first, then the other theory predictors, the student-free
    ablation floor, and the sceptic's curves."""
    return [PRIMARY_PREDICTOR,
            Geometric("dt_signed", calibrated=True), Geometric("paper", calibrated=True),
            Geometric("mono", calibrated=True, kept_rule="continuous"),
            SoftFloorGiven(SHIPPED_SOFT_FLOOR, "shipped shape", calibrated=True),
            STUDENT_FREE_PREDICTOR, AblationFloor(calibrated=True),
            PowerLawBaseline(), ParameterLaw(), ExponentialBaseline(), InverseWidthBaseline(), LogLinearBaseline()]


def seed_predictions(stats: FeatureStats, calibration: pd.DataFrame, targets: pd.DataFrame) -> dict[str, list]:
    """Each registered predictor's floors at the ``targets`` rows (width, parameters, ablation) from the
    ``calibration`` rows (width, parameters, ablation, observed) of one SAE seed; None where it cannot be fitted."""
    config = "teacher"
    calibration = calibration.assign(config=config, teacher_width=stats.d_in)
    targets = targets.assign(config=config, teacher_width=stats.d_in)
    observations = Observations(calibration, {config: stats}, "loss", False, "calibration students")
    predictions = {}
    for predictor in registered_predictors():
        try:
            values = predictor.predict(observations, observations.table, targets.reset_index(drop=True))
            predictions[predictor.name] = [float(value) for value in values]
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            predictions[predictor.name] = None
    return predictions


def summarise_seeds(per_seed: list[dict[str, list | None]], widths: list[int]) -> dict[str, Any]:
    """{predictor: {width: {median, low, high, per_seed, fitted_seeds}}} over the SAE seeds (``fitted_seeds``: the
    indices of the seeds where it was fitted, so that a seed where it failed is recorded, not forgotten; a predictor
    fitted on no seed is left out)."""
    summary = {}
    for name in per_seed[0]:
        fitted_seeds = [index for index, seed in enumerate(per_seed) if seed[name] is not None]
        if not fitted_seeds:
            continue
        values = np.array([per_seed[index][name] for index in fitted_seeds])
        summary[name] = {str(width): {"median": float(np.median(values[:, i])), "low": float(values[:, i].min()),
                                      "high": float(values[:, i].max()), "per_seed": values[:, i].tolist(),
                                      "fitted_seeds": fitted_seeds}
                         for i, width in enumerate(widths)}
    return summary


def mare_over_seeds(predicted_per_seed, observed) -> dict[str, float]:
    """The MARE % (:func:`hf_geokd.validate.metrics.point_metrics`) of each seed's predictions against ``observed``,
    and its median (``mare_pct``), lowest (``mare_low``) and highest (``mare_high``) over the seeds; NaN with no
    seed."""
    mares = [point_metrics(np.asarray(predicted, float), np.asarray(observed, float))["mare_pct"]
             for predicted in predicted_per_seed]
    if not mares:
        return {"mare_pct": float("nan"), "mare_low": float("nan"), "mare_high": float("nan")}
    return {"mare_pct": float(np.median(mares)), "mare_low": min(mares), "mare_high": max(mares)}


def write_registration(folder: Path, teacher: ZooTeacher, content: dict[str, Any]) -> Path:
    """Write ``registration.json`` and ``registration.md`` once; an existing registration is never replaced."""
    path = folder / REGISTRATION_NAME
    if path.exists():
        raise FileExistsError(f"{path} exists: a registration is written once and never replaced. Delete it by hand "
                              "only if its predictions were never committed or scored.")
    content = {"teacher": teacher.name, "settings": teacher.registered_settings(),
               "registered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "primary": {"predictor": PRIMARY, "protocol": primary_protocol(teacher),
                           "floor": floor_definition(teacher)},
               "student_free": STUDENT_FREE, "success_rule": {**SUCCESS_RULE, "text": SUCCESS_TEXT}, **content}
    path.write_text(json.dumps(content, indent=1) + "\n")
    (folder / "registration.md").write_text(registration_markdown(content))
    return path


def read_registration(folder: Path) -> dict[str, Any] | None:
    path = folder / REGISTRATION_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): restore it from version control.") from error


def registration_digest(folder: Path) -> str:
    """sha256 of ``registration.json`` (recorded with the scores: what was scored is what was registered)."""
    return hashlib.sha256((folder / REGISTRATION_NAME).read_bytes()).hexdigest()


def registration_commit(folder: Path) -> str | None:
    """The commit that holds ``registration.json`` as it is now, None when the folder is not in a git work tree.
    A registration git does not hold yet, or holds differently, is an error: score only committed predictions."""
    path = (folder / REGISTRATION_NAME).resolve()
    inside = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    status = subprocess.run(["git", "-C", str(path.parent), "status", "--porcelain", "--", path.name],
                            capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%H", "--", path.name],
                            capture_output=True, text=True).stdout.strip()
    if status or not commit:
        raise PermissionError(f"{path} is not committed as it is: commit the registration before its students are "
                              "trained and scored (or pass --allow-uncommitted, and the report says so).")
    return commit


def _ablation_line(content: dict[str, Any]) -> str:
    """The ablation floor (the teacher itself, no student, no adaptation) where it can be checked before any other
    student trains: at the calibration students and at the control."""
    floors = content["ablation_floors"]

    def median(width: int) -> float:
        return float(np.median([seed[str(width)] for seed in floors.values()]))

    pairs = ", ".join(f"d_S = {w}: {median(w):.4f} vs observed {f:.4f}"
                      for w, f in zip(content["calibration_widths"], content["calibration_floors"]))
    return (f"Ablation floor (median over seeds) at the calibration students: {pairs}; at the control d_S = d_T = "
            f"{content['control_width']}: {median(content['control_width']):.4f} (a student as wide as its teacher "
            "can copy it: the ablated teacher, whose later layers never adapt, is an upper estimate).")


def registration_markdown(content: dict[str, Any]) -> str:
    """A readable registration: the teacher, the SAEs, the calibration floors, the success rule and every
    prediction (median [low, high] over the SAE seeds) in nats per token."""
    lines = [f"# Registration: zoo teacher `{content['teacher']}`", "",
             f"Registered {content['registered_at']}, before any student wider than the calibration students was "
             "trained. Nothing below may change after this file is committed.", "",
             f"- Primary predictor: **{content['primary']['predictor']}**",
             f"- Protocol: {content['primary']['protocol']}",
             f"- Floor: {content['primary']['floor']}", f"- Student-free predictor: **{content['student_free']}**",
             "", "## Success rule (what counts against the theory)", "", content["success_rule"]["text"], "",
             "## SAEs (one per seed)", "", "| seed | F | L0 | alpha | d* (dt_signed) | splice KL (nats) |",
             "|---|---|---|---|---|---|"]
    for sae in content["saes"]:
        lines.append(f"| {sae['seed']} | {sae['n_features']} | {sae['l0']:.2f} | {sae['alpha']:.4f} | "
                     f"{sae['critical_width']:.1f} | {sae['splice_kl']:.4f} |")
    lines += ["", f"Students: widths {content['widths']} and the control d_S = {content['control_width']}; "
              f"calibration students {content['calibration_widths']} (observed floors "
              + ", ".join(f"{w}: {f:.4f}" for w, f in zip(content["calibration_widths"],
                                                           content["calibration_floors"]))
              + "; converged: " + ", ".join(str(c) for c in content["calibration_converged"]) + ").", "",
              _ablation_line(content), "",
              "## Predictions (nats per token; median [low, high] over the SAE seeds)", ""]
    widths = content["predicted_widths"]
    lines += ["| predictor | " + " | ".join(f"d_S = {w}" for w in widths) + " |",
              "|---|" + "---|" * len(widths)]
    for name, per_width in content["predictions"].items():
        cells = [f"{per_width[str(w)]['median']:.4f} [{per_width[str(w)]['low']:.4f}, {per_width[str(w)]['high']:.4f}]"
                 for w in widths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    failed = content.get("not_fitted") or []
    if failed:
        lines += ["", "Not fitted on any seed: " + ", ".join(failed) + "."]
    partial = [name for name, per_width in content["predictions"].items()
               if len(next(iter(per_width.values())).get("fitted_seeds", content["saes"])) < len(content["saes"])]
    if partial:
        lines += ["", "Fitted on some seeds only (a failed seed counts against it): " + ", ".join(partial) + "."]
    lines += ["", "A prediction of exactly 0.0000 after Eq. 3 is a calibration that extrapolates below 0 there "
              "(B < 0), clipped: a floor is never negative."]
    return "\n".join(lines) + "\n"
