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
    with pytest.raises(ValueError, match="must be finite and > 0 .* not at a d_S=4"):
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


def doubled(observations: Observations) -> Observations:
    """The same floors with every row twice (two seeds that measured the same floor)."""
    table = pd.concat([observations.table, observations.table], ignore_index=True)
    return Observations(table, observations.stats, observations.units, observations.teacher_relative, "twice")


@pytest.mark.parametrize("protocol", ["cheapest-2", "leave-one-width-out"])
def test_repeated_widths_do_not_leak_into_the_calibration_of_their_own_width(protocol):
    """A row's twin calibrating the prediction of that row would move every score; held out by width, the doubled
    floors are predicted exactly as the single ones, each twice."""
    from hf_geokd.validate.predictors import Geometric

    observations = survival_observations()
    table = observations.table.copy()
    table["observed"] *= 1.0 + 0.2 * np.sin(table["width"])  # not exactly Eq. 2 + Eq. 3: held-out errors are > 0
    single = Observations(table, observations.stats, "loss", False, "once")
    predictors = [Geometric("dt_signed", calibrated=True), PowerLawBaseline()]
    once = score_predictors(single, (protocol,), predictors).scores.set_index("predictor")
    twice = score_predictors(doubled(single), (protocol,), predictors).scores.set_index("predictor")
    assert (twice["points"] == 2 * once["points"]).all()
    assert once["mare_pct"].min() > 1.0
    np.testing.assert_allclose(twice["mare_pct"], once["mare_pct"], rtol=1e-9)
    np.testing.assert_allclose(twice["median_accuracy_pct"], once["median_accuracy_pct"], rtol=1e-9)


def test_nothing_to_score_is_an_error_naming_why_and_an_inapplicable_protocol_is_skipped():
    two = power_law_observations(configs=("a",), widths=(8, 16))
    with pytest.raises(ValueError, match="nothing to score: cheapest-2 needs at least 3 distinct widths"):
        score_predictors(two, ("cheapest-2", "leave-one-width-out"))
    three = power_law_observations(configs=("a",), widths=(8, 16, 32))
    results = score_predictors(three, ("cheapest-2", "cheapest-3", "zero-shot"), [PowerLawBaseline()])
    assert set(results.scores["protocol"]) == {"cheapest-2"}
    assert set(results.skipped) == {"cheapest-3", "zero-shot"} and "at least 4" in results.skipped["cheapest-3"]
    repeated = score_predictors(three, ("cheapest-2", "cheapest-2"), [PowerLawBaseline()])
    assert len(repeated.scores) == 1  # a protocol named twice is scored once


def toy_grid_observations(tmp_path, n: int, d_t: int, alphas: tuple[float, ...]) -> Observations:
    """Configurations of the committed paper-grid toy sweep (those the shipped soft floor was fitted on)."""
    import json
    import shutil
    from pathlib import Path

    from hf_geokd.validate import load_observations

    results = Path(__file__).resolve().parents[2] / "docs" / "results" / "toy"
    folder = tmp_path / "toy"
    folder.mkdir()
    shutil.copy(results / "config.json", folder / "config.json")
    points = pd.read_csv(results / "points.csv")
    points[(points["n"] == n) & (points["d_T"] == d_t) & points["alpha"].isin(alphas)].to_csv(folder / "points.csv",
                                                                                             index=False)
    assert json.loads((folder / "config.json").read_text())["seeds"] == 20
    return load_observations(folder)


def test_the_shipped_soft_floor_is_never_silently_scored_on_the_grid_it_was_fitted_on(tmp_path):
    from hf_geokd.soft_floor import SHIPPED_SOFT_FLOOR
    from hf_geokd.validate.harness import in_sample_configurations
    from hf_geokd.validate.report import protocol_tables

    observations = toy_grid_observations(tmp_path, 20, 8, (0.9, 0.99))
    assert in_sample_configurations(observations, SHIPPED_SOFT_FLOOR) == ["n=20,d_T=8,alpha=0.9",
                                                                          "n=20,d_T=8,alpha=0.99"]
    with pytest.raises(ValueError, match="fitted on 2 of these configurations .* soft_in_sample=True"):
        score_predictors(observations, ("zero-shot",), soft_fit=SHIPPED_SOFT_FLOOR)
    results = score_predictors(observations, ("zero-shot", "cheapest-2"), soft_fit=SHIPPED_SOFT_FLOOR,
                               soft_in_sample=True)
    assert results.in_sample == {"soft floor (shipped shape, in-sample)",
                                 "soft floor (shipped shape, in-sample) + Eq. 3"}
    assert any("scored in-sample, not held out" in note for note in results.notes)
    for table in protocol_tables(results).values():  # ranked after every held-out predictor, whatever its score
        flags = table["predictor"].isin(results.in_sample).tolist()
        assert flags == sorted(flags) and flags[-1]
    held_out = score_predictors(observations, ("zero-shot",), soft_fit=None)
    assert not held_out.in_sample and not held_out.notes


def test_a_protocol_whose_every_fit_failed_is_reported_not_a_crash(tmp_path):
    from hf_geokd.validate import write_validation_report
    from hf_geokd.validate.report import protocol_tables

    class Failing(Predictor):
        def __init__(self):
            super().__init__("always fails", "same_config", 2)

        def predict(self, observations, train, test):
            raise ValueError("no fit")

    results = score_predictors(power_law_observations(), ("cheapest-2",), [Failing(), PowerLawBaseline()])
    table = protocol_tables(results)["cheapest-2"]
    assert table["predictor"].tolist()[-1] == "always fails" and np.isnan(table["mare_pct"].iloc[-1])
    only_failing = score_predictors(power_law_observations(), ("cheapest-2",), [Failing()])
    assert protocol_tables(only_failing)["cheapest-2"]["points"].tolist() == [0]  # no KeyError 'mare_pct'
    write_validation_report(only_failing, tmp_path / "failed", "all failed")
    assert "no fit" in (tmp_path / "failed" / "report.md").read_text()


def test_a_report_that_fails_part_way_leaves_no_scores_csv(tmp_path, monkeypatch):
    from hf_geokd.validate import report, write_validation_report

    results = score_predictors(power_law_observations(), ("cheapest-2",), [PowerLawBaseline()])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "scores.csv").write_text("an old validation\n")

    def broken(*args, **kwargs):
        raise ValueError("the plot failed")

    monkeypatch.setattr(report, "plot_held_out", broken)
    with pytest.raises(ValueError, match="the plot failed"):
        write_validation_report(results, tmp_path / "out", "broken")
    assert not (tmp_path / "out" / "scores.csv").exists()
    monkeypatch.undo()
    write_validation_report(results, tmp_path / "out", "fixed")
    assert pd.read_csv(tmp_path / "out" / "scores.csv")["points"].tolist() == [6]
