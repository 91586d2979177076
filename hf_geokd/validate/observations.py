"""Measured floors to score predictors on, read from the places hf-geokd writes them.

An :class:`Observations` holds one row per (configuration, student width, run) with the measured floor and what the
baselines need (the student's parameter count), plus the teacher's :class:`FeatureStats` per configuration:

- a toy sweep folder (``geokd toy``: ``config.json`` + ``points.csv``): one configuration per (n, d_T, alpha),
  floors in the units of Eq. 2 (zero-shot scoring is meaningful), students narrower than their teacher only (at
  d_S = d_T the floor is seed noise around 0);
- a demo folder (``geokd demo``: ``students/w*/floor.json`` + the SAE's ``feature_stats``, and the measured
  survival cutoffs k* of ``survival/summary.json`` when present);
- a CSV of ``width,floor`` (optional ``config``, ``parameters``, ``converged``, ``k_star`` columns) with a stats
  folder. Several rows may share a width (several seeds): the protocols keep all rows of a width together.

Every file is checked as it is read, and a problem names the file, the row or key, and the fix: widths are positive
integers no wider than the teacher (the d_S = d_T control is the baseline, not a compression: it is left out, with
a note); floors are finite and > 0; a floor that rises with width within a configuration is refused unless
``allow_rising=True`` (Eq. 2 and every baseline predict floors that fall with width: rising floors are unconverged
or mislabelled runs, and a score on them means nothing).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..ablation_floors import AblationFloors
from ..files import read_json
from ..naming import student_name
from ..stats import STATS_CONFIG_NAME, FeatureStats
from ..toy.analysis import toy_contributions
from ..toy.sweep import ToySweepConfig

FLOORS = ("observed", "asymptote")
TOY_COLUMNS = ("n", "d_T", "alpha", "d_S", "floor", "kept")


@dataclass
class Observations:
    """Measured floors (``table``: columns config, width, observed, parameters, converged, teacher_width; for the
    toy, kept: features the trained student keeps; where measured, k_star: the student's survival cutoff) and the
    teacher statistics of each configuration.

    Attributes:
        units: ``energy`` when floors are in Eq. 2's units (the toy: predictions can be scored zero-shot), ``loss``
            when they are distillation losses (nats per token: every prediction needs calibration).
        teacher_relative: the statistics describe the data's features and the teacher keeps only some of them (the
            toy); False when they are the teacher's own features (an SAE on the teacher).
        source: where they were read from.
        notes: what the reader left out or assumed, for the report.
    """

    table: pd.DataFrame
    stats: dict[str, FeatureStats]
    units: str
    teacher_relative: bool
    source: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = set(self.table["config"]) - set(self.stats)
        if missing:
            raise ValueError(f"no teacher statistics for configurations {sorted(missing)}.")
        if self.units not in ("energy", "loss"):
            raise ValueError(f"units must be 'energy' or 'loss', got {self.units!r}.")
        if self.table.empty:
            raise ValueError(f"{self.source} holds no floors to score.")
        observed = pd.to_numeric(self.table["observed"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(observed) | (observed <= 0)
        if bad.any():
            where = _rows(self.table[bad])
            raise ValueError(f"{self.source}: every observed floor must be finite and > 0 (relative errors are "
                             f"undefined at 0), not at {where}: fix or remove those rows.")
        widths = self.table["width"].to_numpy()
        if not all(_is_integral(width) and width > 0 for width in widths):
            raise ValueError(f"{self.source}: each student width must be a positive integer, got "
                             f"{sorted(set(widths.tolist()))}.")
        self.table = self.table.reset_index(drop=True)


def _rows(rows: pd.DataFrame, limit: int = 5) -> str:
    """Rows named by configuration and width, for messages."""
    named = [f"{config} d_S={width}" if config not in ("run", "demo") else f"d_S={width}"
             for config, width in zip(rows["config"], rows["width"])]
    return ", ".join(named[:limit]) + (f" and {len(named) - limit} more" if len(named) > limit else "")


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value)) and float(value).is_integer()


def load_observations(
    path: str | Path, stats: str | Path | None = None, floor: str = "observed", allow_rising: bool = False,
) -> Observations:
    """Observations from a toy sweep folder, a demo folder, or a CSV (``stats``: the teacher's stats folder, for a
    CSV only).

    ``floor``: for a demo folder only, which measured floor each student contributes: ``observed`` (the paper's mean
    of the final 10% of evaluations) or ``asymptote`` (L_inf of the fitted L_inf + A t^-b, the floor extrapolated to
    unlimited steps: the better estimate for students that have not converged). ``allow_rising``: score floors that
    rise with width anyway (noted in the report); by default they are refused, naming the widths.
    """
    if floor not in FLOORS:
        raise ValueError(f"floor must be one of {FLOORS}, got {floor!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass a toy sweep folder, a demo folder or a CSV of floors.")
    kind = _kind(path)
    if stats is not None and kind != "csv":
        raise ValueError(f"the stats= argument ({str(stats)!r}) applies to a CSV of floors only: {path} is a {kind} "
                         f"folder, which reads its own teacher statistics ({_OWN_STATS[kind]}); leave stats= out.")
    if floor != "observed" and kind != "demo":
        raise ValueError(f"the floor= argument ({floor!r}) applies to a demo folder (its students' floor.json) only: "
                         f"{path} is a "
                         f"{'CSV' if kind == 'csv' else kind + ' folder'}, whose floors are observed floors; leave "
                         "floor= out.")
    if kind == "toy sweep":
        observations = toy_observations(path)
    elif kind == "demo":
        observations = demo_observations(path, floor)
    else:
        if stats is None:
            raise ValueError(f"{path} holds floors only: pass the teacher's statistics folder with stats=.")
        observations = csv_observations(path, stats)
    return check_rising(observations, allow_rising)


_OWN_STATS = {"toy sweep": "from its config.json", "demo": "sae/*/feature_stats.json"}


def _kind(path: Path) -> str:
    if path.is_dir() and (path / "points.csv").is_file() and (path / "config.json").is_file():
        return "toy sweep"
    if path.is_dir() and (path / "students").is_dir():
        return "demo"
    if path.is_file() and path.suffix == ".csv":
        return "csv"
    raise ValueError(f"{path} is neither a toy sweep folder (config.json + points.csv), a demo folder (students/) "
                     "nor a .csv of width,floor.")


def rising_floors(table: pd.DataFrame) -> dict[str, list[tuple[int, int, float, float]]]:
    """Per configuration, each step (narrower width, wider width, its floor, the wider's floor) where the mean floor
    rises with width."""
    rises = {}
    for config, rows in table.groupby("config", sort=False):
        means = rows.groupby("width")["observed"].mean().sort_index()
        steps = [(int(a), int(b), float(fa), float(fb))
                 for (a, fa), (b, fb) in zip(means.items(), list(means.items())[1:]) if fb > fa]
        if steps:
            rises[config] = steps
    return rises


def check_rising(observations: Observations, allow_rising: bool = False) -> Observations:
    """Refuse floors that rise with width (or note them, with ``allow_rising=True``); return ``observations``."""
    rises = rising_floors(observations.table)
    if not rises:
        return observations
    shown = "; ".join(f"{'' if config in ('run', 'demo') else config + ': '}"
                      + ", ".join(f"d_S={a} -> {b}: {fa:.4g} -> {fb:.4g}" for a, b, fa, fb in steps)
                      for config, steps in list(rises.items())[:3])
    more = f" (and {len(rises) - 3} more configurations)" if len(rises) > 3 else ""
    if not allow_rising:
        raise ValueError(f"{observations.source}: floors rise with width ({shown}{more}). Every predictor here "
                         "predicts floors that fall with width, so a score on these means nothing: check that the runs "
                         "converged and that each floor is paired with its width; pass allow_rising=True to score them "
                         "anyway.")
    observations.notes.append(f"floors rise with width in {len(rises)} configuration(s) ({shown}{more}); scored "
                              "anyway (allow_rising): the predictors assume floors that fall with width")
    return observations


def _numbers(frame: pd.DataFrame, column: str, source: str, required: bool = True) -> pd.Series:
    """``column`` as floats, naming the file and the rows that are not numbers (empty cells are NaN unless
    ``required``)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & (frame[column].notna() if not required else True)
    if bad.any():
        shown = [f"line {i + 2}: " + ("empty or NaN" if pd.isna(frame[column].iloc[i]) else repr(frame[column].iloc[i]))
                 for i in np.flatnonzero(bad.to_numpy())[:5]]
        raise ValueError(f"{source}: column {column!r} must hold numbers, not at {', '.join(shown)}: fix those rows.")
    return values.astype(np.float64)


def _widths(values: pd.Series, source: str) -> pd.Series:
    bad = ~values.map(lambda width: _is_integral(width) and width > 0)
    if bad.any():
        shown = [f"line {i + 2}: {values.iloc[i]:g}" for i in np.flatnonzero(bad.to_numpy())[:5]]
        raise ValueError(f"{source}: each student width must be a positive integer (a hidden size), not at "
                         f"{', '.join(shown)}: fix those rows.")
    return values.astype(int)


def _floors(values: pd.Series, source: str, what: str = "floor") -> None:
    bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() < 0)
    if bad.any():
        shown = [f"line {i + 2}: {values.iloc[i]:g}" for i in np.flatnonzero(bad)[:5]]
        raise ValueError(f"{source}: every {what} must be a finite number >= 0, not at {', '.join(shown)} (a NaN or "
                         "infinite floor is a diverged or failed run): rerun those students or remove the rows.")


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """The CSV at ``path`` with at least ``columns``, or a ValueError naming the file and what is missing."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable CSV ({' '.join(str(error).split())}): write it again as "
                         f"{what}.") from error
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)} (found {list(frame.columns)}): it is not "
                         f"{what}.")
    if frame.empty:
        raise ValueError(f"{path} has a header but no rows: there are no floors to score.")
    return frame


def _toy_config(path: Path) -> ToySweepConfig:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object: it is not a `geokd toy` "
                         "config.json.")
    known = {item.name for item in dataclasses.fields(ToySweepConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path} has keys a toy sweep config does not have ({', '.join(unknown)}): it is not a "
                         "`geokd toy` config.json, or it was edited; remove those keys (the teacher statistics are "
                         "rebuilt from this file, so it must be the sweep's own).")
    try:
        return ToySweepConfig(**data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {' '.join(str(error).split())}") from error


def toy_observations(folder: str | Path) -> Observations:
    """The students narrower than their teacher of a toy sweep, one configuration per (n, d_T, alpha)."""
    folder = Path(folder)
    config = _toy_config(folder / "config.json")
    source = str(folder / "points.csv")
    points = _read_csv(folder / "points.csv", TOY_COLUMNS, "the points.csv of a `geokd toy` sweep")
    for column in ("n", "d_T", "d_S"):
        points[column] = _widths(_numbers(points, column, source), source)
    for column in ("alpha", "floor"):
        points[column] = _numbers(points, column, source)
    points["kept"] = _numbers(points, "kept", source, required=False)
    _floors(points["floor"], source)
    wider = points[points["d_S"] > points["d_T"]]
    if not wider.empty:
        raise ValueError(f"{source} has students wider than their teacher (d_S > d_T at lines "
                         f"{[int(i) + 2 for i in wider.index[:5]]}): a toy sweep trains d_S = 1..d_T only; it is "
                         "damaged.")
    keys = ["n", "d_T", "alpha", "d_S"]
    duplicated = points[points.duplicated(keys, keep=False)]
    if not duplicated.empty:
        raise ValueError(f"{source} has several rows for one (n, d_T, alpha, d_S) (lines "
                         f"{[int(i) + 2 for i in duplicated.index[:5]]}): points.csv holds one mean floor per student "
                         "width; rewrite it with `geokd report`.")
    notes = []
    control = points["d_S"] == points["d_T"]
    zero = ~control & (points["floor"] == 0)
    if control.any():
        notes.append(f"the {int(control.sum())} students as wide as their teacher (d_S = d_T) are not scored: their "
                     "floor is seed noise around 0")
    if zero.any():
        notes.append(f"{int(zero.sum())} floor(s) of exactly 0 at d_S < d_T are not scored: relative errors are "
                     "undefined at 0")
    points = points[~control & ~zero]
    names = [f"n={n},d_T={d},alpha={a}" for n, d, a in zip(points["n"], points["d_T"], points["alpha"])]
    table = pd.DataFrame({
        "config": names, "width": points["d_S"].astype(int), "observed": points["floor"],
        "parameters": (points["d_S"] * points["n"] + points["n"]).astype(float),  # W [d_S, n] and the bias b
        "converged": np.nan, "teacher_width": points["d_T"].astype(int), "kept": points["kept"],
    })
    stats = {}
    for name, n, alpha in zip(names, points["n"], points["alpha"]):
        if name not in stats:
            contributions = toy_contributions(config, int(n), alpha)
            stats[name] = FeatureStats.from_counts(int(n), int(n) * (1.0 - alpha), contributions)
    return Observations(table, stats, "energy", True, str(folder), notes)


def _student_floor(path: Path, floor: str) -> dict[str, Any]:
    """One demo student's ``floor.json``, checked: its width matches its folder, its floor is a finite number."""
    row = read_json(path)
    key = "observed_floor" if floor == "observed" else "asymptote"
    if not isinstance(row, dict):
        raise ValueError(f"{path} holds a JSON {type(row).__name__}, not an object: it is not a student's floor.json.")
    missing = [name for name in ("width", key) if name not in row]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: it is not a complete floor.json (rerun `geokd demo` "
                         "for that student, or remove its folder).")
    width, value = row["width"], row[key]
    if not _is_integral(width) or width <= 0:
        raise ValueError(f"{path}: width must be a positive integer, got {width!r}.")
    if path.parent.name != student_name(int(width)):
        raise ValueError(f"{path} says width {width!r} but sits in {path.parent.name}/ (the folder of a width-"
                         f"{path.parent.name[1:]} student): one of them is wrong; fix the file or move it to "
                         f"{student_name(int(width))}/.")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        instead = "; score the observed floors instead (floor= observed)" if key == "asymptote" else ""
        raise ValueError(f"{path}: {key} must be a finite number >= 0, got {value!r} (NaN: too few evaluations to "
                         f"fit; infinite: a diverged run){instead}.")
    parameters = row.get("parameters")
    if parameters is not None and (isinstance(parameters, bool) or not isinstance(parameters, numbers.Real)):
        raise ValueError(f"{path}: parameters must be a number, got {parameters!r}.")
    converged = row.get("converged")
    if converged is not None and not isinstance(converged, bool):
        raise ValueError(f"{path}: converged must be true or false, got {converged!r}.")
    return {"width": int(width), "observed": float(value),
            "parameters": np.nan if parameters is None else float(parameters),
            "converged": np.nan if converged is None else converged}


def _survival_cutoffs(path: Path) -> dict[int, float]:
    """Width -> k* from a survival ``summary.json``, checked (equal-length lists of positive widths and counts)."""
    summary = read_json(path)
    if not isinstance(summary, dict) or not {"widths", "k_star"} <= set(summary):
        raise ValueError(f"{path} is not a survival summary (an object with widths and k_star): rerun the survival "
                         "stage, or remove the file to validate without the measured-survival predictor.")
    widths, cutoffs = summary["widths"], summary["k_star"]
    if not isinstance(widths, list) or not isinstance(cutoffs, list) or len(widths) != len(cutoffs):
        raise ValueError(f"{path}: widths and k_star must be lists of equal length (one k* per width), got "
                         f"{len(widths) if isinstance(widths, list) else widths!r} widths and "
                         f"{len(cutoffs) if isinstance(cutoffs, list) else cutoffs!r} k_star: it is damaged; rerun "
                         "the survival stage.")
    for width, cutoff in zip(widths, cutoffs):
        if not _is_integral(width) or width <= 0 or isinstance(cutoff, bool) or not isinstance(
                cutoff, numbers.Real) or not (math.isfinite(cutoff) and cutoff >= 0):
            raise ValueError(f"{path}: each width must be a positive integer and each k_star a finite count >= 0, got "
                             f"width {width!r} with k_star {cutoff!r}: it is damaged; rerun the survival stage.")
    if len(set(widths)) != len(widths):
        raise ValueError(f"{path} lists a width twice ({widths}): it is damaged; rerun the survival stage.")
    return {int(width): float(cutoff) for width, cutoff in zip(widths, cutoffs)}


def demo_observations(folder: str | Path, floor: str = "observed") -> Observations:
    """The demo's students (``students/w*/floor.json``: their ``observed_floor`` or fitted ``asymptote``) with the
    teacher SAE's statistics (``sae/*/``)."""
    folder = Path(folder)
    paths = sorted((folder / "students").glob("w*/floor.json"))
    if not paths:
        raise FileNotFoundError(f"{folder}/students holds no w*/floor.json: run `geokd demo --out {folder}` first.")
    stats_folders = sorted(path.parent for path in folder.glob("sae/*/" + STATS_CONFIG_NAME))
    if len(stats_folders) != 1:
        raise FileNotFoundError(f"{folder}/sae must hold exactly one SAE with feature_stats.json, found "
                                f"{len(stats_folders)}.")
    stats = FeatureStats.load(stats_folders[0])
    if stats.d_in is None:
        raise ValueError(f"{stats_folders[0]}/{STATS_CONFIG_NAME} has no d_in (the teacher's width): the control "
                         "run cannot be told from the students; measure the statistics again.")
    table = pd.DataFrame([_student_floor(path, floor) for path in paths])
    table.insert(0, "config", "demo")
    table["teacher_width"] = stats.d_in
    _check_teacher_width(table, stats.d_in, f"{folder}/students")
    notes = []
    survival = folder / "survival" / "summary.json"
    if survival.is_file():
        cutoffs = _survival_cutoffs(survival)
        table["k_star"] = table["width"].map(cutoffs).astype(np.float64)
        absent = sorted(int(width) for width in table.loc[table["k_star"].isna(), "width"] if width != stats.d_in)
        if absent:
            notes.append(f"{survival} has no k* for widths {absent}: the measured-survival predictor is left out")
    floors = AblationFloors.stored(stats_folders[0])
    if floors is not None:  # measured beside the SAE: the student-free predictors are scored too
        table["ablation"] = table["width"].map(dict(zip(floors.widths, floors.kl))).astype(np.float64)
    control = table["width"] == stats.d_in
    if not (~control).any():
        raise ValueError(f"{folder}/students holds only the control run (d_S = d_T = {stats.d_in}): there is no "
                         "compressed student to score; run the demo's students first.")
    if floor == "asymptote" and not (table.loc[~control, "observed"] > 0).all():
        zero = table.loc[~control & (table["observed"] <= 0), "width"].tolist()
        raise ValueError(f"the fitted asymptote is 0 for the students of width {', '.join(map(str, zero))} (their "
                         "curves do not flatten yet): score the observed floors instead (floor= observed, the "
                         "default).")
    if control.any():
        notes.insert(0, f"the control run (d_S = d_T = {stats.d_in}) is not scored: it is the baseline, not a "
                        "compression")
    notes.append(f"floors: the students' {'fitted asymptotes L_inf' if floor == 'asymptote' else 'observed floors'}")
    return Observations(table[~control].sort_values("width"), {"demo": stats}, "loss", False, str(folder), notes)


def _check_teacher_width(table: pd.DataFrame, teacher_width: int, source: str) -> None:
    wider = sorted(int(width) for width in table.loc[table["width"] > teacher_width, "width"].unique())
    if wider:
        raise ValueError(f"{source}: students of width {wider} are wider than the teacher (d_T = {teacher_width}): "
                         "they are not compressions; remove them, or pass the statistics of the teacher they were "
                         "distilled from.")


def csv_observations(path: str | Path, stats_folder: str | Path) -> Observations:
    """Floors from a CSV (columns ``width``, ``floor``; optional ``config``, ``parameters``, ``converged``,
    ``k_star``). A row at the teacher's width (d_S = d_T, the control) is left out with a note. Ablation floors saved
    beside the statistics (``ablation_floors.json``) are read too: the student-free predictors are scored where they
    cover every width."""
    path = Path(path)
    source = str(path)
    frame = _read_csv(path, ("width", "floor"), "a CSV of width,floor")
    stats = FeatureStats.load(stats_folder)
    widths = _widths(_numbers(frame, "width", source), source)
    observed = _numbers(frame, "floor", source)
    _floors(observed, source)
    table = pd.DataFrame({
        "config": frame["config"].astype(str) if "config" in frame else "run",
        "width": widths, "observed": observed,
        "parameters": _numbers(frame, "parameters", source, required=False) if "parameters" in frame else np.nan,
        "converged": frame["converged"] if "converged" in frame else np.nan,
        "teacher_width": stats.d_in if stats.d_in is not None else np.nan,
    })
    if "k_star" in frame:
        table["k_star"] = _numbers(frame, "k_star", source, required=False)
        if (table["k_star"] < 0).any():
            raise ValueError(f"{source}: k_star must be a count >= 0, not at lines "
                             f"{[int(i) + 2 for i in table.index[table['k_star'] < 0][:5]]}.")
    notes = []
    if stats.d_in is None:
        notes.append("the teacher's width is unknown (its statistics have no d_in): widths are not checked against "
                     "it and no row is recognised as the control run")
    else:
        _check_teacher_width(table, stats.d_in, source)
        control = table["width"] == stats.d_in
        if control.any():
            notes.append(f"the {int(control.sum())} row(s) at the teacher's width (d_S = d_T = {stats.d_in}, the "
                         "control run) are not scored: the baseline, not a compression")
            table = table[~control]
            if table.empty:
                raise ValueError(f"{source} holds only the control run (d_S = d_T = {stats.d_in}): there is no "
                                 "compressed student to score.")
    repeated = table.groupby(["config", "width"]).size()
    if (repeated > 1).any():
        notes.append(f"{int((repeated > 1).sum())} (configuration, width) pairs have several floors (seeds): every "
                     "protocol holds all floors of a width out together, never calibrating on one seed of a width it "
                     "scores")
    if "k_star" in table and table["k_star"].isna().any() and table["k_star"].notna().any():
        notes.append("k_star is missing for some rows: the measured-survival predictor is left out")
    floors = AblationFloors.stored(Path(stats_folder))
    if floors is not None:
        table["ablation"] = table["width"].map(dict(zip(floors.widths, floors.kl))).astype(np.float64)
        missing = sorted(int(width) for width in table.loc[table["ablation"].isna(), "width"].unique())
        if missing:
            notes.append(f"{stats_folder} has no ablation floor at widths {missing}: the student-free predictors are "
                         "left out (measure_ablation_floors at those widths adds them)")
    return Observations(table, {name: stats for name in table["config"].unique()}, "loss", False, source, notes)


def configuration_key(observations: Observations, config: str) -> tuple[int, int, float] | None:
    """(n, d_T, alpha) of a toy configuration (None for other observations), for matching it against a grid."""
    if not observations.teacher_relative:
        return None
    stats = observations.stats[config]
    teacher = observations.table.loc[observations.table["config"] == config, "teacher_width"].iloc[0]
    return int(stats.n_features), int(teacher), float(stats.alpha)

