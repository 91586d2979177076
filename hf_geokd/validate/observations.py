"""Measured floors to score predictors on, read from the places hf-geokd writes them.

An :class:`Observations` holds one row per (configuration, student width) with the measured floor and what the
baselines need (the student's parameter count), plus the teacher's :class:`FeatureStats` per configuration:

- a toy sweep folder (``geokd toy``: ``config.json`` + ``points.csv``): one configuration per (n, d_T, alpha),
  floors in the units of Eq. 2 (zero-shot scoring is meaningful), students narrower than their teacher only (at
  d_S = d_T the floor is seed noise around 0);
- a demo folder (``geokd demo``: ``students/w*/floor.json`` + the SAE's ``feature_stats``, and the measured
  survival cutoffs k* of ``survival/summary.json`` when present);
- a CSV of ``width,floor`` (optional ``config``, ``parameters``, ``converged``, ``k_star`` columns) with a stats
  folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..stats import STATS_CONFIG_NAME, FeatureStats
from ..toy.analysis import toy_contributions
from ..toy.sweep import ToySweepConfig

FLOORS = ("observed", "asymptote")


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
        if not (self.table["observed"] > 0).all():
            raise ValueError("every observed floor must be > 0 (relative errors are undefined at 0).")
        self.table = self.table.reset_index(drop=True)


def load_observations(path: str | Path, stats: str | Path | None = None, floor: str = "observed") -> Observations:
    """Observations from a toy sweep folder, a demo folder, or a CSV (``stats``: the teacher's stats folder).

    ``floor``: for a demo folder, which measured floor each student contributes: ``observed`` (the paper's mean of
    the final 10% of evaluations) or ``asymptote`` (L_inf of the fitted L_inf + A t^-b, the floor extrapolated to
    unlimited steps: the better estimate for students that have not converged).
    """
    if floor not in FLOORS:
        raise ValueError(f"floor must be one of {FLOORS}, got {floor!r}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass a toy sweep folder, a demo folder or a CSV of floors.")
    if path.is_dir() and (path / "points.csv").is_file() and (path / "config.json").is_file():
        return toy_observations(path)
    if path.is_dir() and (path / "students").is_dir():
        return demo_observations(path, floor)
    if floor != "observed":
        raise ValueError(f"floor={floor!r} applies to a demo folder (its students' floor.json) only.")
    if path.suffix == ".csv":
        if stats is None:
            raise ValueError(f"{path} holds floors only: pass the teacher's statistics folder (--stats).")
        return csv_observations(path, stats)
    raise ValueError(f"{path} is neither a toy sweep folder (config.json + points.csv), a demo folder (students/) "
                     "nor a .csv of width,floor.")


def toy_observations(folder: str | Path) -> Observations:
    """The students narrower than their teacher of a toy sweep, one configuration per (n, d_T, alpha)."""
    folder = Path(folder)
    config = ToySweepConfig(**json.loads((folder / "config.json").read_text()))
    points = pd.read_csv(folder / "points.csv")
    points = points[(points["d_S"] < points["d_T"]) & (points["floor"] > 0)]
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
    return Observations(table, stats, "energy", True, str(folder))


def demo_observations(folder: str | Path, floor: str = "observed") -> Observations:
    """The demo's students (``students/w*/floor.json``: their ``observed_floor`` or fitted ``asymptote``) with the
    teacher SAE's statistics (``sae/*/``)."""
    folder = Path(folder)
    rows = [json.loads(path.read_text()) for path in sorted((folder / "students").glob("w*/floor.json"))]
    if not rows:
        raise FileNotFoundError(f"{folder}/students holds no w*/floor.json: run `geokd demo --out {folder}` first.")
    stats_folders = sorted(path.parent for path in folder.glob("sae/*/" + STATS_CONFIG_NAME))
    if len(stats_folders) != 1:
        raise FileNotFoundError(f"{folder}/sae must hold exactly one SAE with feature_stats.json, found "
                                f"{len(stats_folders)}.")
    stats = FeatureStats.load(stats_folders[0])
    table = pd.DataFrame({
        "config": "demo", "width": [int(row["width"]) for row in rows],
        "observed": [float(row[f"{floor}_floor" if floor == "observed" else floor]) for row in rows],
        "parameters": [float(row.get("parameters", np.nan)) for row in rows],
        "converged": [row.get("converged", np.nan) for row in rows], "teacher_width": stats.d_in,
    })
    survival = folder / "survival" / "summary.json"
    if survival.is_file():
        summary = json.loads(survival.read_text())
        table["k_star"] = table["width"].map(dict(zip(summary["widths"], summary["k_star"])))
    control = table["width"] == stats.d_in
    if floor == "asymptote" and not (table.loc[~control, "observed"] > 0).all():
        zero = table.loc[~control & (table["observed"] <= 0), "width"].tolist()
        raise ValueError(f"the fitted asymptote is 0 for the students of width {', '.join(map(str, zero))} (their "
                         "curves do not flatten yet): score the observed floors instead (--floor observed, the "
                         "default).")
    notes = [f"the control run (d_S = d_T = {stats.d_in}) is not scored: it is the baseline, not a compression",
             f"floors: the students' {'fitted asymptotes L_inf' if floor == 'asymptote' else 'observed floors'}"]
    return Observations(table[~control].sort_values("width"), {"demo": stats}, "loss", False, str(folder), notes)


def csv_observations(path: str | Path, stats_folder: str | Path) -> Observations:
    """Floors from a CSV (columns ``width``, ``floor``; optional ``config``, ``parameters``, ``converged``,
    ``k_star``)."""
    frame = pd.read_csv(path)
    if not {"width", "floor"} <= set(frame.columns):
        raise ValueError(f"{path} needs columns width and floor (found {list(frame.columns)}).")
    stats = FeatureStats.load(stats_folder)
    table = pd.DataFrame({
        "config": frame.get("config", pd.Series(["run"] * len(frame))).astype(str),
        "width": frame["width"].astype(int), "observed": frame["floor"].astype(float),
        "parameters": frame.get("parameters", pd.Series([np.nan] * len(frame))).astype(float),
        "converged": frame.get("converged", pd.Series([np.nan] * len(frame))), "teacher_width": stats.d_in,
    })
    if "k_star" in frame:
        table["k_star"] = frame["k_star"].astype(float)
    return Observations(table, {name: stats for name in table["config"].unique()}, "loss", False, str(path))
