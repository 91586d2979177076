"""The two stages of one zoo teacher, each resumable from its folder.

``predict``: corpus -> tokenizer and blocks -> teacher -> one SAE per seed, each with its feature statistics and its
ablation floors at every student width -> the calibration students (the narrowest ones), distilled to the
convergence rule -> ``registration.json`` (every prediction, before any other student trains).

``score``: the other students, distilled to the convergence rule -> the registered predictions scored against the
observed floors, per SAE seed -> their feature survival (the first seed's SAE) -> the exploratory validation of every
predictor under every protocol, per seed -> ``scores.json`` -> the probing study (every student and the teacher, with
controls) and each concept's latents, added to ``scores.json`` (exploratory) -> ``report.md``.

Folder of a teacher::

    teacher/                 model, tokenizer, eval.json
    sae/seed<s>/<hook>/      the SAE (sae-lens layout), feature_stats.*, ablation_floors.json
    students/w<width>/       each student, its floor.json and card
    survival/d_S=<width>/    which teacher latents it carries (the first SAE seed's SAE)
    probes/, probes.png      the probing study and the concepts' latents (the first SAE seed; exploratory)
    registration.json/.md    written once by the predict stage
    scores.json, report.md   the score stage
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...ablation_floors import AblationFloors
from ...capacity import critical_width, quiet_capacity_warnings
from ...data.corpora import CORPORA, corpus_documents
from ...distill import build_student
from ...probing import carried_concepts, wheel_concepts
from ...soft_floor import SHIPPED_SOFT_FLOOR
from ...stats import FeatureStats
from ...validate import score_predictors, write_validation_report
from ...validate.observations import Observations, check_rising
from ...validate.predictors import SCEPTIC_BASELINES
from ..pipeline import (
    StudentSettings,
    TeacherSettings,
    distil_students,
    student_floor_file,
    student_survival,
    student_table,
    tokenizer_and_blocks,
    train_teacher,
)
from ..probe_stage import ProbeSettings, probe_students
from .config import ZooTeacher, student_widths
from .registration import (
    mare_over_seeds,
    read_registration,
    seed_predictions,
    summarise_seeds,
    write_registration,
)


@dataclass
class TeacherRun:
    """What both stages of one teacher share: its settings, folder, data, the trained teacher, and the device."""

    teacher: ZooTeacher
    folder: Path
    tokenizer: object
    train: object
    test: object
    model: object
    device: str
    deadline: float | None
    cache_dir: Path

    @property
    def students(self) -> StudentSettings:
        t = self.teacher
        return StudentSettings(max_steps=t.student_max_steps, batch_size=t.batch_size, lr=t.student_lr,
                               eval_every=t.eval_every, checkpoint_every=t.checkpoint_every,
                               eval_blocks=t.eval_blocks, floor_tolerance=t.floor_tolerance,
                               floor_absolute_tolerance=t.floor_absolute_tolerance, temperature=t.temperature,
                               seed=t.seed, teacher_heads=t.heads, use_cpu=self.device == "cpu")

    def sae_dir(self, seed: int) -> Path:
        return self.folder / "sae" / f"seed{seed}" / self.teacher.hook_name

    def distil(self, widths: list[int], show_losses: bool = True) -> None:
        distil_students(self.folder / "students", self.model, self.folder / "teacher", self.train, self.test, widths,
                        self.students, CORPORA[self.teacher.corpus], deadline=self.deadline,
                        survival_dir=self.folder / "survival", show_losses=show_losses)

    def parameters(self, width: int) -> int:
        """A width-``width`` student's parameter count (built, not trained)."""
        return build_student(self.model.config, width, num_attention_heads=self.students.heads(width)
                             ).num_parameters()


def prepare(teacher: ZooTeacher, folder: Path, cache_dir: Path, device: str, deadline: float | None) -> TeacherRun:
    """The corpus, tokenizer and blocks, and the teacher (trained when absent)."""
    documents = corpus_documents(teacher.corpus, cache_dir)
    tokenizer, train, test = tokenizer_and_blocks(documents, folder / "teacher", teacher.vocab_size,
                                                  teacher.block_size)
    settings = TeacherSettings(teacher.hidden, teacher.layers, teacher.heads, teacher.teacher_steps,
                               teacher.batch_size, teacher.block_size, teacher.seed, use_cpu=device == "cpu")
    model = train_teacher(folder / "teacher", settings, tokenizer, train, test).to(device).eval()
    return TeacherRun(teacher, folder, tokenizer, train, test, model, device, deadline, cache_dir)


def train_saes(run: TeacherRun) -> dict[int, FeatureStats]:
    """One SAE per seed (skipped when saved), each with its statistics on held-out tokens."""
    # Deferred: sae-lens loads only when a zoo actually trains.
    from ...sae import train_sae

    t = run.teacher
    stats = {}
    for seed in t.sae_seeds:
        folder = run.sae_dir(seed)
        if not (folder / "feature_stats.json").is_file():
            measure = min(t.stats_tokens, len(run.test) * t.block_size)
            train_sae(run.model, run.train, [t.hook_name], folder.parent, device=run.device, seed=seed,
                      measure_tokens=measure, measure_dataset=run.test, **t.sae_settings())
        stats[seed] = FeatureStats.load(folder)
    return stats


def d_star(stats: dict[int, FeatureStats]) -> float:
    """d* = F / g(alpha) under dt_signed, the median over the SAE seeds."""
    with quiet_capacity_warnings():
        return float(np.median([critical_width(s.n_features, s.alpha, "dt_signed") for s in stats.values()]))


def seed_ablation_floors(run: TeacherRun, seed: int, stats: FeatureStats, widths: list[int]) -> AblationFloors:
    """The seed's SAE's ablation floors at ``widths`` (dt_signed, continuous cut) on at most ``ablation_tokens``
    held-out positions, measured once and saved beside the SAE; floors measured with other settings are replaced."""
    from ...sae import load_sae, measure_ablation_floors  # Deferred: see train_saes

    folder = run.sae_dir(seed)
    t = run.teacher
    n_tokens = min(t.ablation_tokens, len(run.test) * (t.block_size - 1))
    saved = AblationFloors.stored(folder)
    if saved is not None and (saved.widths, saved.capacity_kind, saved.kept_rule, saved.temperature,
                              saved.n_tokens) == (widths, "dt_signed", "continuous", t.temperature, n_tokens):
        return saved
    floors = measure_ablation_floors(load_sae(folder, device=run.device), run.model, run.test, widths, stats=stats,
                                     n_tokens=n_tokens, capacity_kind="dt_signed", kept_rule="continuous",
                                     temperature=t.temperature, batch_size=t.batch_size, progress=False)
    floors.save(folder, overwrite=True)
    return floors


def predict_stage(run: TeacherRun) -> dict:
    """Everything the registration needs, then the registration itself (or the one already written)."""
    registered = read_registration(run.folder)
    if registered is not None:
        return registered
    t = run.teacher
    stats = train_saes(run)
    widths = list(t.widths) or student_widths(d_star(stats), t.hidden)
    all_widths = [*widths, t.hidden]
    if len(widths) <= t.calibration_students:
        raise ValueError(f"zoo teacher {t.name!r}: the widths {widths} chosen around d* = {d_star(stats):.1f} leave "
                         f"nothing to predict after {t.calibration_students} calibration students; give `widths:` "
                         "in its YAML entry.")
    floors = {seed: seed_ablation_floors(run, seed, stats[seed], all_widths) for seed in t.sae_seeds}
    calibration_widths = widths[:t.calibration_students]
    run.distil(calibration_widths)
    observed = [json.loads(student_floor_file(run.folder / "students", w).read_text()) for w in calibration_widths]
    targets = widths[t.calibration_students:]
    rows = pd.DataFrame({"width": calibration_widths, "observed": [row["observed_floor"] for row in observed],
                         "parameters": [float(row["parameters"]) for row in observed],
                         "converged": [row["converged"] for row in observed]})
    target_rows = pd.DataFrame({"width": targets, "parameters": [float(run.parameters(w)) for w in targets]})
    per_seed = []
    for seed in t.sae_seeds:
        ablation = dict(zip(floors[seed].widths, floors[seed].kl))
        per_seed.append(seed_predictions(stats[seed], rows.assign(ablation=rows["width"].map(ablation)),
                                         target_rows.assign(ablation=target_rows["width"].map(ablation))))
    predictions = summarise_seeds(per_seed, targets)
    content = {
        "widths": widths, "control_width": t.hidden, "calibration_widths": calibration_widths,
        "calibration_floors": rows["observed"].tolist(), "calibration_converged": rows["converged"].tolist(),
        "calibration_steps": [row["steps_trained"] for row in observed], "predicted_widths": targets,
        "target_parameters": target_rows["parameters"].tolist(),
        "saes": [_sae_summary(seed, stats[seed], floors[seed]) for seed in t.sae_seeds],
        "ablation_floors": {str(seed): dict(zip(map(str, floors[seed].widths), floors[seed].kl))
                            for seed in t.sae_seeds},
        "predictions": predictions,
        "not_fitted": [name for name in per_seed[0] if name not in predictions],
        "teacher_eval_loss": json.loads((run.folder / "teacher" / "eval.json").read_text())["eval_loss"],
    }
    write_registration(run.folder, t, content)
    return read_registration(run.folder)


def _sae_summary(seed: int, stats: FeatureStats, floors: AblationFloors) -> dict:
    with quiet_capacity_warnings():
        d = critical_width(stats.n_features, stats.alpha, "dt_signed")
    return {"seed": seed, "n_features": stats.n_features, "l0": stats.l0, "alpha": stats.alpha,
            "d_sae": stats.metadata.get("d_sae"), "critical_width": d, "splice_kl": floors.splice_kl,
            "splice_ce": floors.splice_ce, "teacher_ce": floors.teacher_ce}


def check_registered_settings(run: TeacherRun, registration: dict) -> None:
    """The score stage trains and measures with the settings that were registered: a teacher whose YAML entry changed
    since (any key but the exploratory probing ones) is refused, naming the keys."""
    changed = sorted(key for key, value in run.teacher.registered_settings().items()
                     if registration["settings"].get(key, value) != value)
    if changed:
        raise ValueError(f"zoo teacher {run.teacher.name!r}: {changed} differ from its registration "
                         f"({run.folder / 'registration.json'}); score it with the registered settings (restore "
                         "them in the YAML file), or register a new teacher under another name.")


def score_registered(registration: dict, observed: dict[int, float]) -> pd.DataFrame:
    """Every registered predictor against the observed floors of the held-out students: per SAE seed, the median
    absolute relative error over the students (MARE); its median, range and spread over the seeds. A seed where the
    predictor could not be fitted counts as failed (``failed_seeds``), never as absent."""
    targets = registration["predicted_widths"]
    truth = np.array([observed[w] for w in targets])
    n_seeds = len(registration["saes"])
    rows = []
    for name, per_width in registration["predictions"].items():
        per_seed = np.array([per_width[str(w)]["per_seed"] for w in targets]).T  # [fitted seeds, widths]
        mare = mare_over_seeds(per_seed, truth)
        rows.append({"predictor": name, **mare, "seed_spread": mare["mare_high"] - mare["mare_low"],
                     "seeds": len(per_seed), "failed_seeds": n_seeds - len(per_seed),
                     "baseline": name in SCEPTIC_BASELINES})
    for name in registration.get("not_fitted") or []:
        rows.append({"predictor": name, **mare_over_seeds([], truth), "seed_spread": float("nan"), "seeds": 0,
                     "failed_seeds": n_seeds, "baseline": name in SCEPTIC_BASELINES})
    return pd.DataFrame(rows).sort_values("mare_pct", kind="stable", na_position="last")


def score_stage(run: TeacherRun, registration: dict, provenance: dict, show_losses: bool = False) -> dict:
    """Train the registered students that are not trained yet (with the registered settings; their log lines
    without losses unless ``show_losses``), then score every registered prediction against the observed floors
    (:func:`score_registered`) and write ``scores.json`` with the registration's digest and commit
    (``provenance``)."""
    t = run.teacher
    check_registered_settings(run, registration)
    all_widths = [*registration["widths"], registration["control_width"]]
    run.distil(all_widths, show_losses=show_losses)
    students, curves = student_table(run.folder / "students", all_widths, run.students, len(run.train))
    observed = dict(zip(students["width"].astype(int), students["observed_floor"]))
    scores = score_registered(registration, observed)
    survival_results, survival = _survival(run, all_widths)
    validation = {seed: _validation(run, seed, students) for seed in t.sae_seeds}
    baselines = scores[scores["baseline"] & scores["mare_pct"].notna()]
    result = {"teacher": t.name, "registration": provenance, "students": students.to_dict(orient="records"),
              "scores": scores.to_dict("records"), "observed": {str(w): observed[w] for w in all_widths},
              "unconverged": [int(w) for w, ok in zip(students["width"], students["converged"]) if not ok],
              "best_baseline": baselines.iloc[0].to_dict() if len(baselines) else None,
              "survival": {"k_star": survival.get("k_star"), "null": survival.get("null")},
              "validation": validation}
    write_scores(run.folder, result)  # the registered scores first: the exploratory probing below cannot lose them
    result["probes"] = _probes(run, all_widths, survival_results)
    write_scores(run.folder, result)
    result["curves"] = curves
    return result


def write_scores(folder: Path, result: dict) -> Path:
    """``scores.json`` as strict JSON: a NaN (a MARE not fitted, a rank that does not exist) is written as null."""
    path = folder / "scores.json"
    path.write_text(json.dumps(_nan_to_none(result), indent=1, default=float, allow_nan=False) + "\n")
    return path


def _nan_to_none(value):
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _survival(run: TeacherRun, widths: list[int]) -> tuple[list, dict]:
    """Which of the first seed's SAE latents each student carries: the per-student results and their study
    (:func:`hf_geokd.survival.write_survival_study`)."""
    from ...sae import load_sae  # Deferred: see train_saes
    from ...survival import write_survival_study

    seed = run.teacher.sae_seeds[0]
    results = student_survival(run.folder / "survival", run.folder / "students", run.model,
                               lambda: load_sae(run.sae_dir(seed), device=run.device), run.test, widths,
                               run.teacher.survival_tokens, run.teacher.batch_size)
    return results, write_survival_study(results, run.folder / "survival",
                                         f"{run.teacher.name}: which SAE latents (seed {seed}) each student carries")


def _probes(run: TeacherRun, widths: list[int], survival_results: list) -> dict | None:
    """The probing study of every student and the teacher with the first seed's SAE's concept latents
    (:func:`hf_geokd.apps.probe_stage.probe_students`, exploratory); None when the teacher probes no family."""
    t = run.teacher
    if not t.probe_families:
        return None
    settings = ProbeSettings(tuple(t.probe_families), t.probe_per_class, t.probe_seeds, t.probe_margin,
                             tuple(widths), t.sae_layer + 1, t.seed, t.block_size)
    seed = t.sae_seeds[0]
    try:
        study, latents, _ = probe_students(
            run.folder, settings, lambda: wheel_concepts(run.cache_dir, t.probe_per_class, t.probe_families, t.seed),
            run.tokenizer, run.model, run.sae_dir(seed), t.hook_name, survival_results, batch_size=t.batch_size,
            title=f"{t.name}: probe accuracy, hidden_states[{t.sae_layer + 1}] (filled: carried)")
    except (OSError, ValueError) as error:  # no network for the wheels, too few examples, no student weights
        print(f"[zoo] {t.name}: probing failed, the registered scores stand: {error}", flush=True)
        return {"error": str(error), "sae_seed": seed}
    return {"carried": carried_concepts(study), "sae_seed": seed,
            "concept_latents": latents.to_dict("records")}


EXPLORATORY_PROTOCOLS = ("zero-shot", "cheapest-2", "cheapest-3", "leave-one-width-out")


def _validation(run: TeacherRun, seed: int, students: pd.DataFrame) -> str:
    """Every predictor under every protocol on this seed's statistics (exploratory: not registered); the path of its
    report relative to the teacher's folder."""
    stats = FeatureStats.load(run.sae_dir(seed))
    floors = AblationFloors.load(run.sae_dir(seed))
    scored = students[students["width"] < run.teacher.hidden]
    table = pd.DataFrame({"config": f"seed{seed}", "width": scored["width"].astype(int),
                          "observed": scored["observed_floor"].astype(float),
                          "parameters": scored["parameters"].astype(float), "converged": scored["converged"],
                          "teacher_width": run.teacher.hidden,
                          "ablation": [floors.floor(int(w)) for w in scored["width"]]})
    observations = check_rising(Observations(table, {f"seed{seed}": stats}, "loss", False, str(run.folder),
                                             [f"SAE seed {seed}; the control d_S = d_T is not scored"]),
                                allow_rising=True)
    results = score_predictors(observations, protocols=EXPLORATORY_PROTOCOLS, soft_fit=SHIPPED_SOFT_FLOOR)
    report = write_validation_report(results, run.folder / "validation" / f"seed{seed}",
                                     f"{run.teacher.name}, SAE seed {seed}: every predictor held out (exploratory)")
    return str(report.relative_to(run.folder))


def deadline_after(minutes: float | None) -> float | None:
    """A time.time() deadline ``minutes`` from now (None: no limit)."""
    return None if minutes is None else time.time() + 60.0 * minutes


def pick_device(device: str | None) -> str:
    """``cuda`` when asked (and present), else ``cpu``."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible to torch. Run on a GPU machine or pass --device "
                         "cpu.")
    return device or ("cuda" if torch.cuda.is_available() else "cpu")
