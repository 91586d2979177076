"""Score every predictor under every protocol on the same measured floors, and keep each prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..soft_floor import SHIPPED_SOFT_FLOOR, SoftFloorFit
from ..toy.sweep import ToySweepConfig
from .observations import Observations, configuration_key
from .predictors import Predictor, SoftFloorGiven, default_predictors
from .protocols import PROTOCOLS, check_disjoint, protocol_problem, splits

SHIPPED_SOFT_FLOOR_GRID = ToySweepConfig.paper()
"""The toy grid :data:`~hf_geokd.soft_floor.SHIPPED_SOFT_FLOOR` was fitted on (the paper's): its configurations are
in-sample for the shipped shape."""


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
    skipped: dict[str, str] = field(default_factory=dict)  # protocol: why it has nothing to score here
    in_sample: set[str] = field(default_factory=set)  # predictors scored on floors they were fitted on (unranked)
    notes: list[str] = field(default_factory=list)


def in_sample_configurations(observations: Observations, soft_fit: SoftFloorFit | None) -> list[str]:
    """The configurations of ``observations`` that ``soft_fit`` was fitted on: for the shipped soft floor, the toy
    configurations (n, d_T, alpha) of the paper's grid (:data:`SHIPPED_SOFT_FLOOR_GRID`); none for another fit."""
    if soft_fit is None or soft_fit != SHIPPED_SOFT_FLOOR:
        return []
    grid = SHIPPED_SOFT_FLOOR_GRID
    found = []
    for config in observations.table["config"].unique():
        key = configuration_key(observations, config)
        if key is not None and key[0] in grid.n_features and key[1] in grid.teacher_widths and any(
                math.isclose(key[2], alpha, abs_tol=1e-9) for alpha in grid.alphas):
            found.append(str(config))
    return found


def score_predictors(
    observations: Observations, protocols: tuple[str, ...] = PROTOCOLS, predictors: list[Predictor] | None = None,
    soft_fit: SoftFloorFit | None = None, soft_label: str = "shipped shape", soft_in_sample: bool = False,
) -> ValidationResults:
    """Predict every scored floor of ``observations`` under each protocol with each predictor, then score.

    A predictor that cannot be fitted on a split (too few calibration points, a degenerate fit) leaves those points
    unpredicted: its ``points`` column says how many it was scored on, ``failed`` how many it could not predict. A
    protocol with nothing to score on these floors (too few widths or configurations, zero-shot on floors in nats)
    is skipped, with its reason in ``skipped``; if every protocol is, a ValueError names each reason.

    ``soft_fit``: a soft-floor shape fitted elsewhere, scored zero-shot (in Eq. 2's units) and with Eq. 3. The shipped
    shape on the configurations it was fitted on (the paper's toy grid) is refused unless ``soft_in_sample=True``:
    then it is scored labelled "in-sample" and ranked after every held-out predictor.
    """
    import evaluate  # Deferred: evaluate (and datasets) load only when something is scored.

    in_sample = in_sample_configurations(observations, soft_fit)
    notes = []
    if in_sample and predictors is None:
        if not soft_in_sample:
            raise ValueError(
                f"the shipped soft floor was fitted on {len(in_sample)} of these configurations (the paper's toy grid, "
                f"e.g. {in_sample[0]}): its scores here would be in-sample, not held out. Pass soft_fit=None to leave "
                "it out, or soft_in_sample=True to score it labelled in-sample and ranked last.")
        soft_label = f"{soft_label}, in-sample"
        notes.append(f"soft floor ({soft_label}): fitted on {len(in_sample)} of these {table_size(observations)} "
                     "configurations, so scored in-sample, not held out; listed last in every table, never ranked")
    protocols = tuple(dict.fromkeys(protocols))  # each protocol once, in the order given
    predictors = predictors or default_predictors(observations, soft_fit, soft_label)
    skipped = _skipped(observations, protocols, predictors)
    if len(skipped) == len(protocols):
        raise ValueError(f"{observations.source}: nothing to score: "
                         + "; ".join(f"{reason}" for reason in skipped.values()) + ".")
    metric = evaluate.load(str(floor_accuracy_module()))
    table = observations.table
    score_rows, prediction_rows, errors = [], [], {}
    for protocol in (protocol for protocol in protocols if protocol not in skipped):
        for predictor in predictors:
            predicted = pd.Series(np.nan, index=table.index)
            scored = pd.Index([], dtype=int)
            for train, test in splits(table, protocol, predictor.fits):
                check_disjoint(train, test, table, predictor.fits)
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
    flagged = {predictor.name for predictor in predictors if in_sample and isinstance(predictor, SoftFloorGiven)}
    return ValidationResults(pd.DataFrame(score_rows), pd.DataFrame(prediction_rows), observations, errors, skipped,
                             flagged, notes)


def table_size(observations: Observations) -> int:
    """How many configurations ``observations`` holds."""
    return int(observations.table["config"].nunique())


def _skipped(observations: Observations, protocols: tuple[str, ...], predictors: list[Predictor]) -> dict[str, str]:
    """Protocol -> why it has nothing to score with these predictors on these floors."""
    shared = any(predictor.fits == "other_configs" for predictor in predictors)
    skipped = {}
    for protocol in protocols:
        problem = protocol_problem(observations.table, protocol, observations.units, shared)
        if problem is None and protocol == "zero-shot" and not any(p.fits == "nothing" for p in predictors):
            problem = "zero-shot: none of the predictors fits nothing"
        if problem is not None:
            skipped[protocol] = problem
    return skipped
