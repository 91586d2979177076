"""The soft floor: its limits, its fit, and its place in FloorPredictor."""

import numpy as np
import pytest

from hf_geokd import FeatureStats, FloorPredictor
from hf_geokd.capacity import FittedCapacity, capacity, kept_features, predicted_floor, quiet_capacity_warnings
from hf_geokd.soft_floor import SHIPPED_SOFT_FLOOR, SoftFloor, SoftFloorFit, fit_soft_floor

CONTRIBUTIONS = np.arange(1, 201, dtype=np.float64) ** -1.0


def test_a_sharp_soft_floor_without_interference_is_eq2():
    sharp = SoftFloor(softness=400.0, interference=0.0)
    with quiet_capacity_warnings():
        g = capacity(0.95, "paper")
        for width in (4, 8, 16, 24):
            eq2 = predicted_floor(CONTRIBUTIONS, width, 0.95, "paper")
            # Eq. 2 keeps floor(d g) features; the sharp soft floor keeps ranks below d g: at most one feature apart
            assert abs(sharp.floor(CONTRIBUTIONS, width, 0.95) - eq2) <= CONTRIBUTIONS[int(width * g) - 1] + 1e-9


def test_the_floor_falls_with_width_and_interference_keeps_it_above_zero_past_d_star():
    shape = SoftFloor()
    floors = [shape.floor(CONTRIBUTIONS, width, 0.95) for width in (4, 8, 16, 32, 64)]
    assert all(a > b for a, b in zip(floors, floors[1:]))
    with quiet_capacity_warnings():
        assert predicted_floor(CONTRIBUTIONS, 64, 0.95, "paper") == 0.0  # past d* = 30: Eq. 2 says exactly zero
    assert floors[-1] > 0.0


def test_a_teacher_that_drops_features_leaves_less_to_lose():
    shape = SoftFloor()
    assert shape.floor(CONTRIBUTIONS, 8, 0.95, teacher_width=16) < shape.floor(CONTRIBUTIONS, 8, 0.95)


def test_the_fit_recovers_the_parameters_that_made_the_floors():
    truth = SoftFloorFit(SoftFloor(softness=5.0, interference=0.2), FittedCapacity(a=0.8, b=0.6), 0.0, 0)
    rng = np.random.default_rng(0)
    points = []
    for alpha in (0.8, 0.9, 0.95, 0.99):
        contributions = np.arange(1, 61, dtype=np.float64) ** -rng.uniform(0.7, 1.3)
        for width in (2, 3, 5, 8):
            points.append({"contributions": contributions, "width": width, "alpha": alpha, "teacher_width": 10,
                           "observed": truth.floor(contributions, width, alpha, teacher_width=10)})
    fit = fit_soft_floor(points)
    assert fit.rms_log_error < 1e-3
    assert fit.shape.softness == pytest.approx(5.0, rel=0.02)
    assert fit.shape.interference == pytest.approx(0.2, rel=0.05)
    assert fit.capacity_kind.a == pytest.approx(0.8, rel=0.02) and fit.capacity_kind.b == pytest.approx(0.6, abs=0.02)


@pytest.mark.parametrize("settings, message", [
    ({"softness": 0.0}, "softness"), ({"softness": float("nan")}, "softness"), ({"interference": -0.1}, "interference"),
])
def test_bad_shapes_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        SoftFloor(**settings)


def test_fitting_needs_four_positive_floors():
    point = {"contributions": CONTRIBUTIONS, "width": 4, "alpha": 0.9, "observed": 0.5}
    with pytest.raises(ValueError, match="at least 4 positive floors"):
        fit_soft_floor([point, point, {**point, "observed": 0.0}])


def test_floor_predictor_ships_the_soft_floor_and_keeps_it_through_save_and_load(tmp_path):
    stats = FeatureStats.from_counts(200, 10.0, CONTRIBUTIONS, d_in=64)
    predictor = FloorPredictor(stats, floor_model="soft")
    table = predictor.predict([8, 32, 64])
    assert predictor.floor_model == SHIPPED_SOFT_FLOOR
    assert table["predicted_floor"].iloc[-1] > 0.0
    assert table["predicted_floor"].is_monotonic_decreasing
    predictor.save_pretrained(tmp_path / "soft")
    loaded = FloorPredictor.from_pretrained(tmp_path / "soft")
    assert loaded.floor_model == predictor.floor_model
    assert loaded.predict([8, 32, 64]).equals(table)
    assert "eq2_floor" not in FloorPredictor(stats).predict([8]).columns
    with pytest.raises(ValueError, match="floor_model must be"):
        FloorPredictor(stats, floor_model="smooth")


def test_every_column_of_a_soft_floor_predictor_uses_the_soft_floors_own_capacity():
    """The kept / dropped columns, Eq. 2's floor beside the soft one and d* all use the soft floor's g_eff, and a
    different capacity kind with a soft floor is refused (it used to change the kept column but not the floor)."""
    stats = FeatureStats.from_counts(200, 10.0, CONTRIBUTIONS, d_in=64)
    g_eff = SHIPPED_SOFT_FLOOR.capacity_kind
    table = FloorPredictor(stats, floor_model="soft").predict([8, 32])
    assert table["kept"].tolist() == [kept_features(w, stats.alpha, 200, g_eff) for w in (8, 32)]
    assert table["eq2_floor"].tolist() == [predicted_floor(CONTRIBUTIONS, w, stats.alpha, g_eff, normalize=True)
                                           for w in (8, 32)]
    assert table.attrs["capacity_kind"] == g_eff.name
    assert FloorPredictor(stats, floor_model="soft").critical_width == pytest.approx(200 / capacity(stats.alpha, g_eff))
    with pytest.raises(ValueError, match="soft floor uses its own effective capacity"):
        FloorPredictor(stats, "info", floor_model="soft")
