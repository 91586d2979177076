"""The sceptic's two-parameter curves and the ablation-floor predictors, each against a hand computation."""

import math

import numpy as np
import pandas as pd
import pytest

from hf_geokd import FeatureStats
from hf_geokd.validate.observations import Observations
from hf_geokd.validate.predictors import (
    AblationFloor,
    ExponentialBaseline,
    Geometric,
    InverseWidthBaseline,
    LogLinearBaseline,
)

STATS = FeatureStats.from_counts(20, 2.0, [1.0 / (i + 1) for i in range(20)], d_in=64)


def rows(widths, observed=None, ablation=None) -> pd.DataFrame:
    n = len(widths)
    return pd.DataFrame({"config": "t", "width": widths, "observed": observed if observed is not None else [1.0] * n,
                         "parameters": [100.0 * w for w in widths], "converged": True, "teacher_width": 64,
                         "ablation": ablation if ablation is not None else [np.nan] * n})


def predict(predictor, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    observations = Observations(train, {"t": STATS}, "loss", False, "hand")
    return predictor.predict(observations, observations.table, test)


def test_the_exponential_through_two_points():
    # y = 0.8 e^(-0.1 d): 0.8 e^-0.4 at 4 and 0.8 e^-0.8 at 8; at 16, 0.8 e^-1.6
    train = rows([4, 8], [0.8 * math.exp(-0.4), 0.8 * math.exp(-0.8)])
    assert predict(ExponentialBaseline(), train, rows([16]))[0] == pytest.approx(0.8 * math.exp(-1.6))


def test_the_exponential_with_a_floor_through_three_or_more_points():
    widths = np.array([4.0, 8.0, 12.0, 16.0])
    train = rows(widths.tolist(), (0.5 * np.exp(-0.2 * widths) + 0.05).tolist())
    assert predict(ExponentialBaseline(), train, rows([40]))[0] == pytest.approx(0.5 * math.exp(-8) + 0.05, rel=1e-4)


def test_the_inverse_width_and_the_log_linear_through_two_points():
    train = rows([4, 8], [2.0 / 4 + 0.1, 2.0 / 8 + 0.1])
    assert predict(InverseWidthBaseline(), train, rows([16]))[0] == pytest.approx(2.0 / 16 + 0.1)
    train = rows([4, 8], [1.0 - 0.2 * math.log(4), 1.0 - 0.2 * math.log(8)])
    assert predict(LogLinearBaseline(), train, rows([16]))[0] == pytest.approx(1.0 - 0.2 * math.log(16))
    assert predict(LogLinearBaseline(), train, rows([1e6]))[0] == 0.0  # a floor is never negative


def test_the_ablation_floor_zero_shot_and_as_eq3s_input():
    train = rows([4, 8], [0.9, 0.5], ablation=[0.4, 0.2])
    test = rows([16], ablation=[0.1])
    assert predict(AblationFloor(calibrated=False), train, test)[0] == 0.1
    # C and B through (0.4, 0.9) and (0.2, 0.5): C = 2, B = 0.1; at 0.1: 0.3
    assert predict(AblationFloor(calibrated=True), train, test)[0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="not measured at every width"):
        predict(AblationFloor(calibrated=False), train, rows([16]))


def test_eq2_with_the_continuous_cut_is_named_and_differs_from_floor():
    continuous, floor = Geometric("dt_signed", True, "continuous"), Geometric("dt_signed", True)
    assert continuous.name == "Eq. 2 (dt_signed, continuous) + Eq. 3" and floor.name == "Eq. 2 (dt_signed) + Eq. 3"
    train, test = rows([2, 3], [0.9, 0.6]), rows([5])
    assert predict(continuous, train, test)[0] != predict(floor, train, test)[0]


def test_the_harness_scores_the_ablation_floor_zero_shot_on_floors_in_nats():
    from hf_geokd.validate import score_predictors

    table = rows([4, 8, 12, 16, 24], [1.0, 0.7, 0.5, 0.4, 0.3], ablation=[1.2, 0.8, 0.6, 0.4, 0.2])
    results = score_predictors(Observations(table, {"t": STATS}, "loss", False, "hand"))
    zero_shot = results.scores[results.scores["protocol"] == "zero-shot"]
    assert zero_shot["predictor"].tolist() == ["ablation floor (no student)"]
    assert zero_shot["mare_pct"].iloc[0] == pytest.approx(20.0)  # |1.2-1|/1, .8/.7, .6/.5, 0, 1/3: median 0.2
    without = score_predictors(Observations(table.drop(columns="ablation"), {"t": STATS}, "loss", False, "hand"))
    assert "zero-shot" not in set(without.scores["protocol"]) and "zero-shot" in without.skipped


def test_every_curve_stays_in_the_physical_range_or_fails():
    rising = rows([4, 8], [0.3, 0.5])
    with pytest.raises(ValueError, match="do not fall with width"):
        predict(ExponentialBaseline(), rising, rows([16]))
    # a / d + c through (4, 0.3) and (8, 0.5): a = -1.6, c = 0.7; at 1e6 it would be 0.7 (fine), at 2 it would be -0.1
    assert predict(InverseWidthBaseline(), rising, rows([2]))[0] == 0.0
