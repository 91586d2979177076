"""A missing path, a missing Hub repo and a damaged file each raise an error naming them; unknown keys only warn."""

import json
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub.errors import RepositoryNotFoundError

from hf_geokd import FeatureStats, FloorPredictor
from hf_geokd.stats import stored_feature_stats


@pytest.fixture
def saved(tmp_path):
    predictor = FloorPredictor(FeatureStats.from_counts(5, 1.0, torch.arange(5, 0, -1.0), d_in=4))
    predictor.calibrate([1, 2, 3], [0.9, 0.5, 0.4])
    predictor.save_pretrained(tmp_path / "predictor")
    return tmp_path / "predictor"


@pytest.mark.parametrize("missing", ["./nowhere/predictor", "runs/a/b", "/no/such/folder"])
def test_a_missing_local_path_is_named_as_a_path(missing):
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        FloorPredictor.from_pretrained(missing)
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        stored_feature_stats(missing)


def test_a_file_is_not_a_folder(saved):
    with pytest.raises(NotADirectoryError, match="config.json is a file: pass the folder"):
        FloorPredictor.from_pretrained(saved / "config.json")


def test_a_missing_hub_repo_is_named(monkeypatch):
    def missing_repo(*args, **kwargs):
        raise RepositoryNotFoundError("404 Client Error", response=SimpleNamespace(headers={}, request=None))

    monkeypatch.setattr("huggingface_hub.hub_mixin.hf_hub_download", missing_repo)
    monkeypatch.setattr("hf_geokd.predictor.hf_hub_download", missing_repo)
    monkeypatch.setattr("hf_geokd.stats.hf_hub_download", missing_repo)
    message = "me/no-such-repo is not a local folder, and the Hub has no repo of that name"
    with pytest.raises(FileNotFoundError, match=message):
        FloorPredictor.from_pretrained("me/no-such-repo")
    with pytest.raises(FileNotFoundError, match=message):
        stored_feature_stats("me/no-such-repo")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("feature_stats.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{", "is not a readable safetensors file"),
        ("feature_stats.safetensors", b"", "is not a readable safetensors file"),
        ("feature_stats.json", b'{"n_features": 5,', "is not valid JSON"),
        ("config.json", b"not json", "is not valid JSON"),
    ],
)
def test_a_damaged_file_is_named(saved, name, content, message):
    (saved / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"{saved / name} {message}"):
        FloorPredictor.from_pretrained(saved)


def test_unknown_keys_from_a_newer_version_warn_and_load(saved):
    stats = json.loads((saved / "feature_stats.json").read_text())
    (saved / "feature_stats.json").write_text(json.dumps({**stats, "firing_histogram": [1, 2]}))
    config = json.loads((saved / "config.json").read_text())
    config["calibration"]["C_std"] = 0.1
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"feature_stats.json has keys .* \(firing_histogram\)"):
        with pytest.warns(UserWarning, match=r"calibration has keys .* \(C_std\)"):
            loaded = FloorPredictor.from_pretrained(saved)
    assert loaded.stats.n_features == 5 and loaded.calibration.n_points == 3


def test_a_missing_key_or_inconsistent_value_names_the_file(saved):
    stats = json.loads((saved / "feature_stats.json").read_text())
    (saved / "feature_stats.json").write_text(json.dumps({k: v for k, v in stats.items() if k != "l0"}))
    with pytest.raises(ValueError, match=r"feature_stats.json lacks l0"):
        FeatureStats.load(saved)
    (saved / "feature_stats.json").write_text(json.dumps({**stats, "alpha": 0.5}))
    with pytest.raises(ValueError, match=r"feature_stats.json: alpha=0.5 disagrees"):
        FeatureStats.load(saved)
