"""save_pretrained replaces nothing the user made without overwrite=True, and never drops the card silently."""

import json

import pytest
import torch

from hf_geokd import FeatureStats, FloorPredictor


@pytest.fixture
def predictor() -> FloorPredictor:
    spectrum = torch.arange(1, 201, dtype=torch.float64) ** -1.5
    return FloorPredictor(FeatureStats.from_counts(200, 8.0, spectrum, d_in=64))


def test_a_foreign_config_is_refused_then_replaced_only_when_told(tmp_path, predictor):
    foreign = '{"model_type": "gpt_neox", "hidden_size": 64}'
    (tmp_path / "config.json").write_text(foreign)
    with pytest.raises(FileExistsError, match=r"already holds config.json, not this predictor.s: .* overwrite=True"):
        predictor.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").read_text() == foreign
    assert not (tmp_path / "feature_stats.json").exists()
    predictor.save_pretrained(tmp_path, overwrite=True)
    assert "capacity_kind" in json.loads((tmp_path / "config.json").read_text())


def test_different_stats_are_refused_and_the_same_stats_are_not(tmp_path, predictor):
    other = FeatureStats.from_counts(3, 1.0, [3.0, 2.0, 1.0])
    other.save(tmp_path / "other")
    with pytest.raises(FileExistsError, match="feature_stats.json, feature_stats.safetensors"):
        predictor.save_pretrained(tmp_path / "other")
    assert FeatureStats.load(tmp_path / "other").n_features == 3
    predictor.stats.save(tmp_path / "same")
    predictor.save_pretrained(tmp_path / "same")  # stats beside an SAE, saved again with the predictor
    assert (tmp_path / "same" / "config.json").is_file()


def test_a_predictor_folder_is_updated_with_its_card(tmp_path, predictor):
    predictor.save_pretrained(tmp_path)
    predictor.calibrate([8, 16, 32], [1.0, 0.8, 0.7])
    predictor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["calibration"] is not None
    assert "calibrated" in (tmp_path / "README.md").read_text().lower()


def test_a_users_readme_is_kept_with_a_warning_or_replaced_when_told(tmp_path, predictor):
    (tmp_path / "README.md").write_text("# my notes\n")
    with pytest.warns(UserWarning, match="README.md already exists .* the predictor's card was not written"):
        predictor.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    predictor.save_pretrained(tmp_path, overwrite=True)
    assert "library_name: hf-geokd" in (tmp_path / "README.md").read_text()


def test_a_file_in_place_of_the_folder_is_named(tmp_path, predictor):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(FileExistsError, match="taken is a file"):
        predictor.save_pretrained(tmp_path / "taken")
