import math
import warnings

import numpy as np
import pytest

from hf_geokd import (
    CAPACITY_KINDS,
    CapacityWarning,
    FittedCapacity,
    capacity,
    critical_width,
    kept_features,
    predicted_floor,
)
from hf_geokd.capacity import kept_rank, statistical_dimension

TABLE1 = [(31006, 234.9, 1147), (28665, 218.3, 1065), (29169, 249.0, 1186)]


@pytest.mark.parametrize("n_features,l0,expected", TABLE1)
def test_critical_width_reproduces_table1(n_features, l0, expected):
    assert critical_width(n_features, 1 - l0 / n_features, "paper") == pytest.approx(expected, abs=2)


@pytest.mark.parametrize(
    "alpha,signed,nonneg", [(0.9, 3.04, 3.77), (0.99, 16.3, 19.2)]
)
def test_donoho_tanner_reference_values(alpha, signed, nonneg):
    assert capacity(alpha, "dt_signed") == pytest.approx(signed, rel=0.01)
    assert capacity(alpha, "dt_nonneg") == pytest.approx(nonneg, rel=0.01)


@pytest.mark.parametrize("kind", ["dt_signed", "dt_nonneg", "mono", "info"])
def test_monotone_kinds_start_at_one_and_increase(kind):
    assert capacity(0.0, kind) == pytest.approx(1.0, abs=1e-9)
    values = [capacity(a, kind) for a in np.linspace(0.0, 0.999, 200)]
    assert np.all(np.diff(values) > 0)


def test_statistical_dimension_matches_brute_force_minimum():
    taus = np.linspace(0, 6, 60001)
    for eps in (0.01, 0.1, 0.4):
        phi = np.exp(-taus**2 / 2) / math.sqrt(2 * math.pi)
        tail = np.array([0.5 * math.erfc(t / math.sqrt(2)) for t in taus])
        objective = eps * (1 + taus**2) + (1 - eps) * 2 * ((1 + taus**2) * tail - taus * phi)
        assert statistical_dimension(eps, signed=True) == pytest.approx(objective.min(), rel=1e-6)


def test_mono_stays_close_to_dt_signed():
    for alpha in np.linspace(0.0, 0.99, 100):
        ratio = capacity(alpha, "mono") / capacity(alpha, "dt_signed")
        assert 0.97 < ratio < 1.10


def test_paper_kind_warns_outside_its_regime_and_refuses_zero():
    with pytest.warns(CapacityWarning, match="1 - 1/e"):
        capacity(0.5, "paper")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capacity(0.7, "paper")
    with pytest.raises(ValueError, match="diverges"):
        capacity(0.0, "paper")
    # Its minimum e sits at the edge of the regime.
    assert capacity(1 - 1 / math.e, "paper") == pytest.approx(math.e)


def test_fitted_capacity_scales_its_base():
    fitted = FittedCapacity(a=1.03, b=0.53, base="paper")
    assert capacity(0.9, fitted) == pytest.approx(1.03 * capacity(0.9) ** 0.53)
    with pytest.raises(ValueError, match="base"):
        FittedCapacity(1.0, 1.0, base="nope")


def test_kept_features_floors_and_caps():
    assert kept_features(1, 0.9, 10, "info") == 10  # 1 * 10 = 10, capped at F
    assert kept_features(1, 0.9, 100, "info") == 10
    assert kept_features(2, 0.5, 100, "info") == 4
    assert kept_features(128, 1 - 218.3 / 28665, 28665) == math.floor(128 * capacity(1 - 218.3 / 28665))


def test_predicted_floor_sums_the_dropped_tail():
    contributions = np.array([0.1, 0.5, 0.2, 0.05, 0.15])  # unsorted on purpose
    # info capacity at alpha 0.5 is 2 per dimension: width 1 keeps the top two (0.5, 0.2).
    assert predicted_floor(contributions, 1, 0.5, "info") == pytest.approx(0.1 + 0.05 + 0.15)
    assert predicted_floor(contributions, 1, 0.5, "info", normalize=True) == pytest.approx(0.3 / 1.0)
    assert predicted_floor(contributions, 3, 0.5, "info") == 0.0


def test_toy_contribution_floor_by_hand():
    n, alpha = 20, 0.9
    importance = 1 / np.arange(1, n + 1)
    contributions = importance * (1 - alpha) / 3
    kept = math.floor(2 * capacity(alpha))
    assert predicted_floor(contributions, 2, alpha) == pytest.approx(contributions[kept:].sum())


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5, float("nan"), "0.9", True])
def test_bad_alpha_names_the_argument(alpha):
    with pytest.raises(ValueError, match="alpha"):
        capacity(alpha)


@pytest.mark.parametrize("width", [0, -3, 2.5, None])
def test_bad_width_names_the_argument(width):
    with pytest.raises(ValueError, match="width"):
        kept_features(width, 0.9, 10)


@pytest.mark.parametrize(
    "contributions,match", [([], "empty"), ([0.1, -0.2], "negative"), ([1.0, float("nan")], "NaN")]
)
def test_bad_contributions_name_the_argument(contributions, match):
    with pytest.raises(ValueError, match=f"contributions.*{match}|{match}"):
        predicted_floor(contributions, 1, 0.9)


def test_unknown_kind_lists_the_choices():
    with pytest.raises(ValueError, match="dt_signed"):
        capacity(0.9, "quantum")
    assert set(CAPACITY_KINDS) == {"paper", "dt_signed", "dt_nonneg", "mono", "info"}


def test_continuous_kept_rule_interpolates_the_tail_between_integer_ranks():
    """Hand computation: contributions 4, 3, 2, 1 and g = 1/p = 2.5 (info kind at alpha 0.6). One dimension keeps
    2.5 features: floor() drops 2 + 1 = 3; the continuous rule drops 3 - 0.5 * 2 = 2. At integer ranks they agree,
    past F both are 0, and the continuous floor moves by a fraction of a feature when g moves a little."""
    values = [4.0, 3.0, 2.0, 1.0]
    assert predicted_floor(values, 1, 0.6, "info") == pytest.approx(3.0)
    assert predicted_floor(values, 1, 0.6, "info", kept_rule="continuous") == pytest.approx(2.0)
    assert predicted_floor(values, 1, 0.5, "info", kept_rule="continuous") == pytest.approx(3.0)  # rank 2 exactly
    assert predicted_floor(values, 2, 0.5, "info", kept_rule="continuous") == 0.0
    assert predicted_floor(values, 1, 0.6, "info", normalize=True, kept_rule="continuous") == pytest.approx(0.2)
    nearby = [predicted_floor(values, 1, alpha, "info", kept_rule="continuous") for alpha in (0.59, 0.6, 0.61)]
    assert nearby[0] > nearby[1] > nearby[2] and nearby[0] - nearby[2] < 1.0
    assert kept_rank(1, 0.6, 4, "info", "continuous") == pytest.approx(2.5)
    assert kept_rank(1, 0.6, 4, "info") == 2.0
    with pytest.raises(ValueError, match="kept_rule must be one of"):
        predicted_floor(values, 1, 0.6, "info", kept_rule="round")


def test_floor_predictor_keeps_its_kept_rule_through_save_and_load(tmp_path):
    from hf_geokd import FeatureStats, FloorPredictor

    stats = FeatureStats.from_counts(4, 1.6, [4.0, 3.0, 2.0, 1.0], d_in=2)
    predictor = FloorPredictor(stats, "info", kept_rule="continuous")
    assert predictor.predict([1])["predicted_floor"].iloc[0] == pytest.approx(0.2)
    predictor.save_pretrained(tmp_path / "p")
    loaded = FloorPredictor.from_pretrained(tmp_path / "p")
    assert loaded.kept_rule == "continuous" and loaded.predict([1]).equals(predictor.predict([1]))
