"""Toy sweep outputs: results tables, figures and a markdown report with the paper's claims beside ours."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..capacity import capacity, quiet_capacity_warnings
from ..paper import paper_claims
from ..reporting.reports import render_report
from . import figures
from .analysis import accuracy_by_alpha, accuracy_table, add_predictions, floor_points
from .sweep import ToySweepConfig, ToySweepResults


def load_toy_results(folder: str | Path) -> ToySweepResults:
    """The results a report was written from (``config.json`` + ``models.parquet``), to analyse them again."""
    folder = Path(folder)
    missing = [name for name in ("config.json", "models.parquet") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: point at a folder written by `geokd toy`.")
    config = ToySweepConfig(**json.loads((folder / "config.json").read_text()))
    models = pd.read_parquet(folder / "models.parquet")
    for column in ("norms", "dimensionality"):
        models[column] = models[column].map(np.asarray)
    return ToySweepResults(config=config, models=models)


def write_toy_report(results: ToySweepResults, out: str | Path) -> Path:
    """Write models.parquet, points.csv, accuracy.csv, four PNG figures and report.md into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = results.config
    models = results.models.copy()
    models["norms"] = models["norms"].map(np.asarray).map(list)
    models["dimensionality"] = models["dimensionality"].map(np.asarray).map(list)
    models.to_parquet(out / "models.parquet")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    points, kinds = add_predictions(floor_points(results), config)
    points.to_csv(out / "points.csv", index=False)
    table = accuracy_table(points, kinds)
    table.to_csv(out / "accuracy.csv", index=False)
    nonzero = accuracy_table(points, kinds, nonzero_only=True)
    truth = accuracy_table(points, kinds, target="truth_loss")
    truth_nonzero = accuracy_table(points, kinds, target="truth_loss", nonzero_only=True)
    by_alpha = accuracy_by_alpha(points)
    fitted = kinds["fitted"]
    with quiet_capacity_warnings():
        fitted_kept = np.minimum(points["d_S"] * [capacity(a, fitted) for a in points["alpha"]], points["n"]).to_numpy()
    figures.floor_grid(points, out / "fig2_floor_grid.png")
    figures.predicted_vs_actual(points, ["paper", "dt_signed", "naive", "fitted"], out / "fig3_predicted_vs_actual.png")
    figures.universal_scaling(points, out / "fig13_universal_scaling.png")
    figures.kept_features_plot(points, out / "kept_features.png", fitted.name, fitted_kept)

    row = table.set_index("capacity")
    return render_report(
        "toy.md.j2", out / "report.md", config=config, config_dict=asdict(config), claims=paper_claims(),
        n_teachers=int((results.models["role"] == "teacher").sum()), n_students=len(results.students()),
        n_points=len(points), paper_row=row.loc["paper"], naive_row=row.loc["naive"], table=table, nonzero=nonzero,
        truth=truth, truth_nonzero=truth_nonzero, by_alpha=by_alpha, fitted_name=fitted.name,
    )
