"""What the zoo reports: per teacher (``<teacher>/report.md``) and across teachers (``report.md``, ``summary.csv``,
``predicted_vs_observed.png``, ``mare_by_teacher.png``), with the registered success rule evaluated as registered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...reporting.plots import new_figure, plot_floor_curves, save_figure
from ...tables import markdown_table
from .config import ZooTeacher
from .control_anchored import control_anchored_table
from .cross_teacher import leave_one_teacher_out
from .registration import read_registration

SHOWN_BESIDE = ("ablation floor + Eq. 3", "Eq. 2 (dt_signed) + Eq. 3")  # beside the registered primary and student-free


def provenance_text(provenance: dict) -> str:
    """How a report names the registration it scored: its digest and the commit that holds it."""
    where = {"committed": f"committed in `{provenance['commit']}`",
             "uncommitted allowed": "**not committed** (scored with --allow-uncommitted)",
             "not under version control": "not under version control"}[provenance["checked"]]
    return f"`registration.json` sha256 `{provenance['sha256'][:16]}`, {where}"


def write_teacher_report(run, registration: dict, result: dict) -> Path:
    """``report.md`` of one teacher: its registration, students, registered scores and curves."""
    folder = run.folder
    plot_floor_curves(result["curves"], folder / "floor_curves.png", f"{run.teacher.name}: distillation curves")
    _plot_teacher(registration, result, folder / "predicted_vs_observed.png")
    scores = pd.DataFrame(result["scores"])
    students = pd.DataFrame(result["students"])[["width", "parameters", "observed_floor", "asymptote", "converged",
                                                  "steps_trained", "eval_ce"]]
    d_star = float(np.median([sae["critical_width"] for sae in registration["saes"]]))
    above = [width for width in registration["widths"] if width > d_star]
    lines = [f"# Zoo teacher `{run.teacher.name}`", "",
             f"Registration: {provenance_text(result['registration'])}, written {registration['registered_at']}. "
             f"Primary predictor: **{registration['primary']['predictor']}**; calibration students "
             f"{registration['calibration_widths']}; scored students {registration['predicted_widths']}.", "",
             f"d* (dt_signed, median over the SAE seeds) = {d_star:.1f}: "
             + (f"students {above} are wider than d*." if above else
                f"**no student is wider than d*** (d* is {'above' if d_star > run.teacher.hidden else 'at'} the "
                f"teacher's width {run.teacher.hidden}), so the collapse of the floor past d* is not tested here."),
             "",
             "## Students", "", markdown_table(students), "",
             ("Not converged by the stated rule (their floors are upper bounds): d_S = "
              + ", ".join(map(str, result["unconverged"])) + "." if result["unconverged"] else
              "Every student converged by the stated rule."), "",
             "![curves](floor_curves.png)", "",
             "## Registered predictions, scored", "",
             "MARE: the median absolute relative error over the held-out students, its median over the SAE seeds "
             "and its range (low, high) over them.", "", markdown_table(scores), "",
             "![predicted vs observed](predicted_vs_observed.png)", "", *probe_lines(result.get("probes"))]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path


def probe_lines(probes: dict | None) -> list[str]:
    """The teacher report's probing section (exploratory): which concepts each model carries under the rule, and
    the concepts' latents with their survival; or why probing failed."""
    if probes is None:
        return []
    lines = ["## Probes (exploratory, not registered)", ""]
    if "error" in probes:
        return [*lines, f"Probing failed (the registered scores above stand): {probes['error']}", ""]
    carriers = {model: concepts for model, concepts in probes["carried"].items() if concepts}
    return [*lines,
            "Every student and the teacher probed for each offline concept family at the SAE's layer, beside the "
            "bag-of-tokens probe, a random-init teacher, shuffled labels and a control task (selectivity); a model "
            "*carries* a concept when its accuracy beats the bag-of-tokens probe and the random-init teacher by "
            "the margin at the lower end of a corrected resampled-t interval. Tables: `probes/`.", "",
            ("Carried: " + "; ".join(f"{model}: {', '.join(concepts)}" for model, concepts in carriers.items())
             + "." if carriers else "**No model carries any concept** under the rule: at this scale the probes "
             "do not beat the lexical and random-network controls."), "", "![probes](probes.png)", "",
            f"### The concepts' SAE latents (SAE seed {probes['sae_seed']}) and their survival", "",
            "A latent carries a concept when its pooled activation alone beats the best single token type by the "
            "margin (Bonferroni-corrected Wilson interval); `survive_d_S=<w>`: how many of them the width-w student "
            "carries.", "", markdown_table(pd.DataFrame(probes["concept_latents"])), ""]


def _plot_teacher(registration: dict, result: dict, path: Path, axis=None) -> None:
    """Observed floors and the shown predictors' registered floors (median, seed range as error bars)."""
    figure = None
    if axis is None:
        figure, axis = new_figure(figsize=(6.0, 4.4))
    widths = registration["predicted_widths"]
    observed = result["observed"]
    all_widths = sorted(int(width) for width in observed)
    axis.plot(all_widths, [observed[str(w)] for w in all_widths], "ko-", lw=1.2, label="observed")
    shown = (registration["primary"]["predictor"], registration["student_free"], *SHOWN_BESIDE)
    for index, name in enumerate(dict.fromkeys(shown)):
        predicted = registration["predictions"].get(name)
        if predicted is None:
            continue
        median = np.array([predicted[str(w)]["median"] for w in widths])
        low = median - np.array([predicted[str(w)]["low"] for w in widths])
        high = np.array([predicted[str(w)]["high"] for w in widths]) - median
        axis.errorbar(widths, median, yerr=[low, high], fmt="s--", ms=3, lw=0.8, capsize=2, color=f"C{index}",
                      label=name)
    best = result.get("best_baseline")
    if best:
        predicted = registration["predictions"][best["predictor"]]
        axis.plot(widths, [predicted[str(w)]["median"] for w in widths], "x:", color="0.4",
                  label=f"best baseline: {best['predictor']}")
    axis.axvline(np.median([sae["critical_width"] for sae in registration["saes"]]), color="0.6", ls=":", lw=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("student width d_S (dotted: d*, dt_signed)")
    axis.set_ylabel("floor (nats per token)")
    axis.set_title(registration["teacher"])
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=6)
    if figure is not None:
        save_figure(figure, path)


def collect(out: Path, teachers: list[ZooTeacher]) -> list[tuple[str, dict, dict]]:
    """(name, registration, scores) of every teacher whose score stage has finished."""
    found = []
    for teacher in teachers:
        registration = read_registration(out / teacher.name)
        scores_file = out / teacher.name / "scores.json"
        if registration is not None and scores_file.is_file():
            found.append((teacher.name, registration, json.loads(scores_file.read_text())))
    return found


def registered_rule(found: list[tuple[str, dict, dict]]) -> tuple[dict, str, str]:
    """The success rule, primary and student-free predictor as the registrations fixed them; registrations that
    disagree cannot be judged by one rule (an error)."""
    rules = {json.dumps(registration["success_rule"], sort_keys=True) for _, registration, _ in found}
    primaries = {registration["primary"]["predictor"] for _, registration, _ in found}
    free = {registration["student_free"] for _, registration, _ in found}
    if len(rules) != 1 or len(primaries) != 1 or len(free) != 1:
        raise ValueError("the zoo's registrations fix different success rules or predictors: judge each teacher on "
                         "its own registration (they cannot be pooled).")
    return found[0][1]["success_rule"], primaries.pop(), free.pop()


def success(table: pd.DataFrame, teachers: int, rule: dict) -> dict:
    """The registered success rule (``rule``, from the registrations) on the per-teacher table (columns primary,
    primary_spread, primary_failed_seeds, best_baseline, student_free, ablation_eq3), with what each part measured.
    A predictor that could not be fitted (NaN), or failed on an SAE seed, counts against it."""
    primary = table["primary"]
    fitted = primary.notna().all()
    beats = int((primary < table["best_baseline"]).sum())
    spread_ok = bool((table["primary_spread"] <= rule["max_seed_spread_pct_points"]).all()
                     and (table["primary_failed_seeds"] == 0).all())
    checks = {
        f"median primary MARE <= {rule['primary_median_mare_pct']}%":
            (_median(primary), bool(fitted and primary.median() <= rule["primary_median_mare_pct"])),
        f"no teacher above {rule['primary_max_teacher_mare_pct']}%":
            (float(primary.max(skipna=False)), bool(fitted and primary.max() <= rule["primary_max_teacher_mare_pct"])),
        f"beats the best baseline on >= {rule['beats_best_baseline_share']:.0%} of the teachers":
            (f"{beats} of {len(table)}", bool(beats >= rule["beats_best_baseline_share"] * len(table))),
        f"seed spread <= {rule['max_seed_spread_pct_points']} points on every teacher (no failed seed)":
            (float(table["primary_spread"].max(skipna=False)), spread_ok),
        f"student-free median MARE <= {rule['student_free_median_mare_pct']}%":
            (_median(table["student_free"]), bool(table["student_free"].notna().all()
                                                  and table["student_free"].median()
                                                  <= rule["student_free_median_mare_pct"])),
        "ablation floor + Eq. 3 no worse than the primary (median over teachers)":
            (_median(table["ablation_eq3"]), bool(fitted and table["ablation_eq3"].notna().all()
                                                  and table["ablation_eq3"].median() <= primary.median())),
    }
    return {"checks": checks, "complete": len(table) == teachers}


def _median(values: pd.Series) -> float:
    """The median, NaN when any value is NaN (a predictor not fitted on a teacher has no median MARE)."""
    return float(values.median()) if values.notna().all() else float("nan")


def stage_minutes(folder: Path) -> dict[str, float]:
    """Wall minutes each stage took over every invocation (``timings.json``, written by ``run_zoo``); NaN where the
    stage has no row, or a row whose ``seconds`` is null (an invocation that ran before timings were recorded, its
    wall time unknown)."""
    path = folder / "timings.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    minutes = {}
    for stage in ("predict", "score"):
        seconds = [row["seconds"] for row in rows if row["stage"] == stage]
        known = bool(seconds) and all(value is not None for value in seconds)
        minutes[f"{stage}_minutes"] = round(sum(seconds) / 60, 1) if known else np.nan
    return minutes


ZOO_BUDGET_HOURS = 6.0  # the goal for the whole shipped zoo on 2 CPU cores


def budget_line(out: Path, teachers: list[ZooTeacher]) -> str:
    """The wall time recorded so far over every teacher and stage, against :data:`ZOO_BUDGET_HOURS`, naming the
    stages whose time is unknown (run before timings were recorded) or that have not finished yet."""
    known, untimed = 0.0, []
    for teacher in teachers:
        for stage, minutes in stage_minutes(out / teacher.name).items():
            if np.isnan(minutes):
                untimed.append(f"{teacher.name} {stage.removesuffix('_minutes')}")
            else:
                known += minutes
    return (f"Wall time recorded so far: **{known / 60:.1f} hours** over every teacher and stage (budget: "
            f"{ZOO_BUDGET_HOURS:g} hours for the whole zoo on 2 CPU cores)"
            + (f"; not included (untimed, or not finished yet): {', '.join(untimed)}." if untimed else "."))


def write_zoo_summary(out: Path, teachers: list[ZooTeacher]) -> Path | None:
    """``report.md``, ``summary.csv`` and the figures across the scored teachers (None when none is scored)."""
    found = collect(out, teachers)
    if not found:
        return None
    rule, primary_name, free_name = registered_rule(found)
    rows, mare = [], {}
    for name, registration, scores in found:
        table = pd.DataFrame(scores["scores"]).set_index("predictor")
        baselines = table[table["baseline"] & table["mare_pct"].notna()]
        best = baselines["mare_pct"].idxmin() if len(baselines) else None
        d_star = float(np.median([sae["critical_width"] for sae in registration["saes"]]))
        rows.append({"teacher": name, "d_star": d_star, "students_above_d_star": sum(
                         int(width) > d_star for width in registration["widths"]),
                     "primary": _get(table, primary_name), "primary_spread": _get(table, primary_name, "seed_spread"),
                     "primary_failed_seeds": _get(table, primary_name, "failed_seeds", default=len(
                         registration["saes"])),
                     "best_baseline": baselines["mare_pct"].min() if best else np.nan,
                     "best_baseline_name": best, "student_free": _get(table, free_name),
                     "ablation_eq3": _get(table, "ablation floor + Eq. 3"),
                     "unconverged": ", ".join(map(str, scores["unconverged"])) or "none",
                     **stage_minutes(out / name),
                     "registration": provenance_text(scores["registration"])})
        mare[name] = table["mare_pct"]
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "summary.csv", index=False)
    verdict = success(summary, len(teachers), rule)
    _plot_grid(found, out / "predicted_vs_observed.png")
    _plot_heatmap(pd.DataFrame(mare), out / "mare_by_teacher.png")
    lines = ["# Teacher zoo: registered predictions across teachers", "",
             f"Scored teachers: {len(found)} of {len(teachers)}"
             + ("" if verdict["complete"] else " (the rule is evaluated on the complete zoo only: provisional)") + ".",
             "", budget_line(out, teachers), "",
             "## The registered success rule", "", "| part | measured | holds |", "|---|---|---|"]
    for part, (value, holds) in verdict["checks"].items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        lines.append(f"| {part} | {shown} | {'yes' if holds else '**no**'} |")
    exploratory = exploratory_scores(out, [name for name, _, _ in found])
    exploratory.to_csv(out / "exploratory.csv")
    lines += ["", "## Per teacher (MARE %, median over SAE seeds)", "", markdown_table(summary), "",
              "`students_above_d_star`: students wider than d* (dt_signed, median over the seeds); 0 means the SAE "
              "puts d* above every student, so the theory's collapse of the floor past d* is not tested there. "
              "`predict_minutes`, `score_minutes`: wall time over every invocation (`<teacher>/timings.json`, with "
              "the device and thread count; empty where the stage ran before timings were recorded).", "",
              "![predicted vs observed](predicted_vs_observed.png)", "", "![MARE](mare_by_teacher.png)", "",
              "## Exploratory (not registered): every predictor under every protocol", "",
              "MARE %, the median over the SAE seeds of each teacher's validation (`<teacher>/validation/seed<s>/`); "
              "chosen after the fact, so no row here can confirm anything.", "",
              markdown_table(exploratory.reset_index()) if len(exploratory) else "(none yet)", "",
              *student_free_lines(found, out), "", *control_anchored_lines(found, out), "",
              "Each teacher's report: " + ", ".join(f"[{name}]({name}/report.md)" for name, _, _ in found) + "."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def student_free_lines(found: list[tuple[str, dict, dict]], out: Path) -> list[str]:
    """The leave-one-teacher-out section (:mod:`.cross_teacher`), its table saved as ``student_free.csv``."""
    table = leave_one_teacher_out(found)
    (out / "student_free.csv").unlink(missing_ok=True)  # never left over from a zoo that had more scored teachers
    lines = ["## Floors with no student of the teacher, leave one teacher out (exploratory)", "",
             "`ablation`: the ablation floor alone (the registered student-free predictor); `rescaled`: the ablation "
             "floor times one ratio r (`ratio_from_others`) learned from the *other* teachers' converged students "
             "(the median of log(observed / ablation floor) over their students and SAE seeds). MARE % on each "
             "teacher's held-out students: `_mare` the median over its SAE seeds, `_low` and `_high` their range "
             "(`hf_geokd.apps.zoo.cross_teacher`).", ""]
    if table.empty:
        return [*lines, "(needs two scored teachers)"]
    table.to_csv(out / "student_free.csv", index=False)
    return [*lines, markdown_table(table)]


ANCHORED_REGISTRATION = "registration-control-anchored.json"


def anchored_rule_lines(table: pd.DataFrame, rule: dict) -> list[str]:
    """The second registration's rule (``rule``, from :data:`ANCHORED_REGISTRATION`) on the control-anchored table:
    each part with what it measured, on the registered teachers once all of them are scored."""
    mine = table[table["teacher"].isin(rule["teachers"])]
    scored = sorted(set(mine["teacher"]))
    lines = [f"Registered in [{rule['document']}]({rule['document']}) for {', '.join(rule['teachers'])}: "
             f"{len(scored)} of {len(rule['teachers'])} scored."]
    if len(scored) < len(rule["teachers"]):
        return [*lines, "The rule is evaluated once all of them are scored."]
    primary = mine[mine["predictor"] == rule["predictor"]].set_index("teacher")
    curves = mine[mine["baseline"]].groupby("teacher")["mare_pct"].min()
    mare, spread = primary["mare_pct"], primary["mare_high"] - primary["mare_low"]
    beats = int((mare < curves.reindex(mare.index)).sum())
    checks = [(f"median MARE <= {rule['median_mare_pct_at_most']:g}%", f"{mare.median():.1f}",
               mare.notna().all() and mare.median() <= rule["median_mare_pct_at_most"]),
              (f"no teacher above {rule['teacher_mare_pct_at_most']:g}%", f"{mare.max():.1f}",
               mare.notna().all() and mare.max() <= rule["teacher_mare_pct_at_most"]),
              (f"beats the best anchored curve on >= {rule['beats_best_anchored_curve_on_at_least']}",
               f"{beats} of {len(mare)}", beats >= rule["beats_best_anchored_curve_on_at_least"]),
              (f"seed spread <= {rule['seed_spread_points_at_most']:g} points", f"{spread.max():.1f}",
               spread.notna().all() and spread.max() <= rule["seed_spread_points_at_most"])]
    return [*lines, "", "| part | measured | holds |", "|---|---|---|",
            *[f"| {part} | {value} | {'yes' if holds else '**no**'} |" for part, value, holds in checks]]


def control_anchored_lines(found: list[tuple[str, dict, dict]], out: Path) -> list[str]:
    """The section on Eq. 3 with B from the control student (:mod:`.control_anchored`), its long table saved as
    ``control_anchored.csv``, and the rule of its registration when ``out`` holds one
    (:data:`ANCHORED_REGISTRATION`)."""
    table = control_anchored_table(out, found)
    table.to_csv(out / "control_anchored.csv", index=False)
    registered = out / ANCHORED_REGISTRATION
    rule = anchored_rule_lines(table, json.loads(registered.read_text())) if registered.is_file() else []
    shown = table.assign(mare=[f"{m:.1f} [{low:.1f}, {high:.1f}]" if m == m else "not fitted"
                               for m, low, high in zip(table["mare_pct"], table["mare_low"], table["mare_high"])])
    wide = shown.pivot(index="predictor", columns="teacher", values="mare").reset_index()
    return ["## Eq. 3 with B from the control student (exploratory, chosen after the demo teacher was scored)", "",
            "B is the d_S = d_T control's observed floor (as the paper measures it) instead of being extrapolated "
            "from the two narrowest students; only the other parameter is fitted on those two, for Eq. 3 and for the "
            "sceptic's curves alike (`hf_geokd.apps.zoo.control_anchored`). It needs the control run, the most "
            "expensive student. MARE % on the held-out students, median [low, high] over the SAE seeds.", "",
            markdown_table(wide), "", *rule]


def exploratory_scores(out: Path, names: list[str]) -> pd.DataFrame:
    """(protocol, predictor) x teacher: the MARE of each teacher's exploratory validation, median over its SAE
    seeds."""
    frames = []
    for name in names:
        for path in sorted((out / name / "validation").glob("seed*/scores.csv")):
            frame = pd.read_csv(path)[["protocol", "predictor", "mare_pct"]]
            frames.append(frame.assign(teacher=name, seed=path.parent.name))
    if not frames:
        return pd.DataFrame()
    scores = pd.concat(frames).groupby(["protocol", "predictor", "teacher"])["mare_pct"].median()
    return scores.unstack("teacher").round(1)


def _get(table: pd.DataFrame, name: str, column: str = "mare_pct", default: float = float("nan")) -> float:
    """``table[column]`` of predictor ``name`` as a float (null in ``scores.json``: NaN; no such row: ``default``)."""
    if name not in table.index:
        return default
    value = table.at[name, column]
    return float("nan") if value is None else float(value)


def _plot_grid(found: list[tuple[str, dict, dict]], path: Path) -> None:
    columns = min(3, len(found))
    rows = int(np.ceil(len(found) / columns))
    figure, axes = new_figure(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    for axis, (_, registration, scores) in zip(axes.flat, found):
        _plot_teacher(registration, scores, path, axis=axis)
    for axis in list(axes.flat)[len(found):]:
        axis.set_visible(False)
    save_figure(figure, path)


def _plot_heatmap(mare: pd.DataFrame, path: Path) -> None:
    figure, axis = new_figure(figsize=(1.6 + 1.1 * mare.shape[1], 0.9 + 0.32 * mare.shape[0]))
    values = mare.to_numpy(float)
    image = axis.imshow(np.minimum(values, 100), cmap="viridis_r", aspect="auto", vmin=0, vmax=100)
    axis.set_xticks(range(mare.shape[1]), mare.columns, rotation=30, ha="right", fontsize=7)
    axis.set_yticks(range(mare.shape[0]), mare.index, fontsize=7)
    for (i, j), value in np.ndenumerate(values):
        axis.text(j, i, "-" if np.isnan(value) else f"{value:.0f}", ha="center", va="center", fontsize=6,
                  color="white" if value > 50 else "black")
    figure.colorbar(image, ax=axis, label="MARE % (clipped at 100)")
    axis.set_title("Registered predictions: MARE per predictor per teacher")
    save_figure(figure, path)
