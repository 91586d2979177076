"""The harness on synthetic floors: right answers where the truth is known, and no leak from test to train."""

import numpy as np
import pandas as pd
import pytest

from hf_geokd.stats import FeatureStats
from hf_geokd.validate import Observations, score_predictors
from hf_geokd.validate.predictors import PowerLawBaseline, Predictor


def power_law_observations(configs=("a", "b"), widths=(4, 8, 16, 32, 64)) -> Observations:
    """Floors that follow 3 d^-0.7 + 0.05 exactly (the power-law baseline's own form)."""
    rows = [{"config": config, "width": width, "observed": 3.0 * width**-0.7 + 0.05 * (i + 1),
             "parameters": 100.0 * width, "converged": True, "teacher_width": 128}
            for i, config in enumerate(configs) for width in widths]
    stats = FeatureStats.from_counts(256, 12.0, np.arange(1, 257.0) ** -1.0, d_in=128)
    return Observations(pd.DataFrame(rows), {config: stats for config in configs}, "loss", False, "synthetic")


class Oracle(Predictor):
    """Cheats if it can: returns the measured floor of every test row that also appears in its training rows."""

    def __init__(self):
        super().__init__("oracle", "same_config", 1)

    def predict(self, observations, train, test):
        return np.array([train["observed"].get(index, np.nan) for index in test.index])


def test_a_predictor_never_sees_the_floors_it_is_scored_on():
    results = score_predictors(power_law_observations(), ("cheapest-2", "leave-one-width-out"), [Oracle()])
    assert (results.scores["points"] == 0).all() and (results.scores["failed"] > 0).all()
    assert results.predictions.empty


def test_the_power_law_baseline_recovers_its_own_form_held_out():
    results = score_predictors(power_law_observations(), ("cheapest-3", "leave-one-width-out"), [PowerLawBaseline()])
    scores = results.scores.set_index("protocol")
    assert scores.loc["cheapest-3", "points"] == 4  # widths 32 and 64 of both teachers
    assert scores.loc["cheapest-3", "median_accuracy_pct"] > 99.0
    assert scores.loc["leave-one-width-out", "points"] == 10


def test_every_default_predictor_is_scored_and_each_prediction_is_recorded():
    observations = power_law_observations()
    results = score_predictors(observations, ("cheapest-2",))
    names = set(results.scores["predictor"])
    assert {"power law a d^-gamma (+ c)", "parameter law A N^-a (+ E)", "Eq. 2 (paper) + Eq. 3"} <= names
    scored = results.predictions[results.predictions["predictor"] == "power law a d^-gamma (+ c)"]
    assert sorted(scored["width"]) == [16, 16, 32, 32, 64, 64]
    assert np.allclose(scored["observed"], [observations.table.at[row, "observed"] for row in scored["row"]])


def test_observations_refuse_zero_floors_and_missing_statistics():
    observations = power_law_observations()
    table = observations.table.copy()
    table.loc[0, "observed"] = 0.0
    with pytest.raises(ValueError, match="must be > 0"):
        Observations(table, observations.stats, "loss", False, "x")
    with pytest.raises(ValueError, match="no teacher statistics"):
        Observations(observations.table, {}, "loss", False, "x")


def survival_observations(g_true: float = 1.5) -> Observations:
    """Floors that are exactly 2 x Eq. 2 + 0.1 at a constant capacity g_true, with the survival cutoffs k* = g d."""
    from hf_geokd.capacity import FittedCapacity, predicted_floor

    stats = FeatureStats.from_counts(256, 12.0, np.arange(1, 257.0) ** -1.0, d_in=128)
    kind = FittedCapacity(a=g_true, b=0.0, base="dt_signed")
    widths = (4, 8, 16, 32, 64)
    rows = [{"config": "a", "width": w, "parameters": 100.0 * w, "converged": True, "teacher_width": 128,
             "observed": 2.0 * predicted_floor(stats.contributions, w, stats.alpha, kind, normalize=True) + 0.1,
             "k_star": g_true * w} for w in widths]
    return Observations(pd.DataFrame(rows), {"a": stats}, "loss", False, "synthetic")


def test_the_survival_predictor_uses_only_the_calibration_students_cutoffs():
    from hf_geokd.validate.predictors import MeasuredSurvival

    observations = survival_observations()
    exact = score_predictors(observations, ("cheapest-2",), [MeasuredSurvival()]).scores.iloc[0]
    assert exact["points"] == 3 and exact["median_accuracy_pct"] > 99.9
    table = observations.table.copy()
    table.loc[table["width"] > 8, "k_star"] = 1.0  # the scored students' cutoffs: never read
    blind = Observations(table, observations.stats, "loss", False, "synthetic")
    blind_scores = score_predictors(blind, ("cheapest-2",), [MeasuredSurvival()]).scores.iloc[0]
    assert blind_scores["mare_pct"] == exact["mare_pct"]
    table.loc[table["width"] <= 8, "k_star"] = 0.25 * table.loc[table["width"] <= 8, "width"]  # a wrong capacity
    wrong = Observations(table, observations.stats, "loss", False, "synthetic")
    assert score_predictors(wrong, ("cheapest-2",), [MeasuredSurvival()]).scores.iloc[0]["mare_pct"] > 5.0
    assert "Eq. 2 (g_eff measured by survival) + Eq. 3" in set(score_predictors(observations, ("cheapest-2",))
                                                                .scores["predictor"])


@pytest.mark.parametrize("widths, kept, message", [
    ([8, 12], [3], "one kept-feature count per student width"),
    ([8, 12], [0, 0], "every count is 0"),
    ([8, 0], [3, 0], "widths must be finite and > 0"),
    ([8, 12], [100, -1], "must be finite and >= 0"),
    ([8, 12], [float("nan"), 4], "must be finite and >= 0"),
])
def test_a_measured_capacity_refuses_bad_counts_by_name(widths, kept, message):
    from hf_geokd.capacity import FittedCapacity

    with pytest.raises(ValueError, match=message):
        FittedCapacity.from_kept_counts(widths, kept)
    assert FittedCapacity.from_kept_counts([8, 16], [8, 16]).name == "constant(1)"
