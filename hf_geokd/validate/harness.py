"""Score every predictor under every protocol on the same measured floors, and keep each prediction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..soft_floor import SoftFloorFit
from .observations import Observations
from .predictors import Predictor, default_predictors
from .protocols import PROTOCOLS, check_disjoint, splits


def floor_accuracy_module() -> Path:
    """The folder of the ``floor_accuracy`` metric, for ``evaluate.load`` (it ships inside hf-geokd: no Hub)."""
    return Path(__file__).parent / "floor_accuracy"


@dataclass
class ValidationResults:
    """``scores``: one row per (protocol, predictor) with the metrics of hf_geokd.validate.metrics; ``predictions``:
    one row per scored (protocol, predictor, point) with its prediction; ``errors``: the first reason a predictor
    could not be fitted on a split of a protocol."""

    scores: pd.DataFrame
    predictions: pd.DataFrame
    observations: Observations
    errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (protocol, predictor): why a fit failed


def score_predictors(
    observations: Observations, protocols: tuple[str, ...] = PROTOCOLS, predictors: list[Predictor] | None = None,
    soft_fit: SoftFloorFit | None = None, soft_label: str = "shipped shape",
) -> ValidationResults:
    """Predict every scored floor of ``observations`` under each protocol with each predictor, then score.

    A predictor that cannot be fitted on a split (too few calibration points, a degenerate fit) leaves those points
    unpredicted: its ``points`` column says how many it was scored on, ``failed`` how many it could not predict.
    """
    import evaluate  # Deferred: evaluate (and datasets) load only when something is scored.

    predictors = predictors or default_predictors(observations, soft_fit, soft_label)
    metric = evaluate.load(str(floor_accuracy_module()))
    table = observations.table
    score_rows, prediction_rows, errors = [], [], {}
    for protocol in protocols:
        for predictor in predictors:
            predicted = pd.Series(np.nan, index=table.index)
            scored = pd.Index([], dtype=int)
            for train, test in splits(table, protocol, predictor.fits):
                check_disjoint(train, test)
                scored = scored.union(test)
                if len(train) < predictor.min_train:
                    continue
                try:
                    values = predictor.predict(observations, table.loc[train], table.loc[test])
                except (ValueError, FloatingPointError, np.linalg.LinAlgError) as error:
                    errors.setdefault((protocol, predictor.name), str(error))
                    continue
                predicted.loc[test] = values
            if scored.empty:
                continue
            done = predicted.loc[scored].dropna().index
            done = done[np.isfinite(predicted.loc[done].to_numpy())]
            row = {"protocol": protocol, "predictor": predictor.name, "fits": predictor.fits, "points": 0,
                   "failed": int(len(scored) - len(done))}
            if len(done):
                row.update(metric.compute(predictions=predicted.loc[done].tolist(),
                                          references=table.loc[done, "observed"].tolist()))
            score_rows.append(row)
            for index in done:
                prediction_rows.append({"protocol": protocol, "predictor": predictor.name, "row": int(index),
                                        "config": table.at[index, "config"], "width": int(table.at[index, "width"]),
                                        "observed": float(table.at[index, "observed"]),
                                        "predicted": float(predicted.at[index])})
    return ValidationResults(pd.DataFrame(score_rows), pd.DataFrame(prediction_rows), observations, errors)
