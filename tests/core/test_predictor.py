import json

import numpy as np
import pytest
import torch

from hf_geokd import FeatureStats, FittedCapacity, FloorPredictor, capacity


def spectrum(n: int = 400, beta: float = 1.5) -> torch.Tensor:
    return torch.arange(1, n + 1, dtype=torch.float64) ** -beta


@pytest.fixture
def stats() -> FeatureStats:
    return FeatureStats.from_counts(400, 8.0, spectrum(), d_in=64, hook_name="gpt_neox.layers.2", n_tokens=10_000)


def test_stats_round_trip(tmp_path, stats):
    stats.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feature_stats.json", "feature_stats.safetensors"]
    loaded = FeatureStats.load(tmp_path)
    assert loaded.n_features == 400 and loaded.alpha == pytest.approx(0.98)
    assert torch.equal(loaded.contributions, stats.contributions)
    assert loaded.hook_name == "gpt_neox.layers.2"


def test_stats_are_sorted_and_validated():
    stats = FeatureStats.from_counts(3, 1.0, [0.1, 0.3, 0.2])
    assert stats.contributions.tolist() == [0.3, 0.2, 0.1]
    with pytest.raises(ValueError, match="contributions has 2 values but n_features is 3"):
        FeatureStats.from_counts(3, 1.0, [0.1, 0.2])
    with pytest.raises(ValueError, match="disagrees"):
        FeatureStats(n_features=3, l0=1.0, alpha=0.5, contributions=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="l0"):
        FeatureStats.from_counts(3, 5.0, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_features"):
        FeatureStats.from_counts(0, 0.0, [])


def test_stats_load_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="feature_stats.safetensors"):
        FeatureStats.load(tmp_path)


def test_predict_table_matches_hand_computation(stats):
    table = FloorPredictor(stats).predict([1, 2, 8])
    g = capacity(0.98)
    values = spectrum().numpy()
    for row in table.itertuples():
        kept = int(np.floor(row.width * g))
        assert row.kept == kept and row.dropped == 400 - kept
        assert row.predicted_floor_raw == pytest.approx(values[kept:].sum())
        assert row.predicted_floor == pytest.approx(values[kept:].sum() / values.sum())
    assert list(table["predicted_floor"]) == sorted(table["predicted_floor"], reverse=True)
    assert table.attrs["critical_width"] == pytest.approx(400 / g)


def test_calibration_with_control_width(stats):
    predictor = FloorPredictor(stats)
    widths = [1, 2, 4, 8]
    predicted = predictor.predict(widths)["predicted_floor"].to_numpy()
    observed = 3.0 * predicted + 0.5
    fit = predictor.calibrate(widths, observed, control_width=8)
    assert fit.baseline_fixed and fit.n_points == 3
    # B is the control's floor 3 p_8 + 0.5, so C fits 3 (p - p_8) ~ C p through the origin on the other widths
    p, p_control = predicted[:-1], predicted[-1]
    assert fit.C == pytest.approx(3.0 * (1.0 - p_control * p.sum() / (p @ p)), rel=1e-9)
    assert p_control > 0 and fit.C < 3.0
    table = predictor.predict(widths)
    assert "calibrated_floor" in table
    affine = predictor.calibrate(widths, observed)
    assert affine.C == pytest.approx(3.0) and affine.B == pytest.approx(0.5)
    assert table["calibrated_floor"].notna().all()
    with pytest.raises(ValueError, match="control_width=16 is not among widths"):
        predictor.calibrate(widths, observed, control_width=16)


def test_save_and_load_keep_kind_and_calibration(tmp_path, stats):
    predictor = FloorPredictor(stats, capacity_kind=FittedCapacity(1.2, 0.6, "dt_signed"))
    widths = [1, 2, 4, 8]
    predictor.calibrate(widths, [2.0, 1.5, 1.2, 1.0])
    predictor.save_pretrained(tmp_path)
    assert {"config.json", "feature_stats.json", "feature_stats.safetensors", "README.md"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["capacity_kind"] == {"a": 1.2, "b": 0.6, "base": "dt_signed"}
    loaded = FloorPredictor.from_pretrained(tmp_path)
    assert loaded.capacity_kind == predictor.capacity_kind
    assert loaded.calibration.C == pytest.approx(predictor.calibration.C)
    assert loaded.predict(widths).equals(predictor.predict(widths))
    card = (tmp_path / "README.md").read_text()
    assert "library_name: hf-geokd" in card and "| 32 |" in card and "dt_signed" in card


def test_widths_are_checked(stats):
    predictor = FloorPredictor(stats)
    with pytest.raises(ValueError, match="exceed the teacher's hidden size 64"):
        predictor.predict([32, 128])
    assert FloorPredictor(stats, allow_wider=True).predict([128])["kept"].item() == 400
    for bad in ([], [0], [-4], [1.5], [True], True, ["128"], "128", [None]):
        with pytest.raises(ValueError, match="widths"):
            predictor.predict(bad)
    assert predictor.predict(np.int64(32))["width"].tolist() == [32]
