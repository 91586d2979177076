"""load_sae and resolve_model name a missing path, a missing repo and a damaged file."""

import json
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub.errors import RepositoryNotFoundError
from safetensors.torch import save_file

from hf_geokd.sae import resolve_model
from hf_geokd.sae.load import RAW_CONFIG_NAME, load_sae


def raw_sae(folder):
    folder.mkdir()
    save_file({"W_enc": torch.eye(4), "b_enc": torch.zeros(4), "W_dec": torch.eye(4), "b_dec": torch.zeros(4)},
              str(folder / "sae.safetensors"))
    (folder / RAW_CONFIG_NAME).write_text(json.dumps({"activation": "relu", "hook_name": "features"}))
    return folder


def sae_lens_sae(folder):
    raw = load_sae(raw_sae(folder.with_name(folder.name + "-raw")))
    raw.save_model(folder)
    return folder


@pytest.mark.parametrize("missing", ["./no/such/sae", "a/b/c"])
def test_a_missing_path_is_named(missing):
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        load_sae(missing)
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        resolve_model(missing)


@pytest.mark.parametrize(
    ("make", "name", "content", "message"),
    [
        (raw_sae, RAW_CONFIG_NAME, b"{", "is not valid JSON"),
        (raw_sae, "sae.safetensors", b"\x00" * 9, "is not a readable safetensors file"),
        (sae_lens_sae, "cfg.json", b"[", "is not valid JSON"),
        (sae_lens_sae, "sae_weights.safetensors", b"garbage!" * 4, "is not a readable safetensors file"),
    ],
)
def test_a_damaged_file_is_named(tmp_path, make, name, content, message):
    folder = make(tmp_path / "sae")
    (folder / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"{folder / name} {message}"):
        load_sae(folder)


def test_a_missing_hub_repo_is_named(monkeypatch):
    def missing_repo(*args, **kwargs):
        raise RepositoryNotFoundError("404 Client Error", response=SimpleNamespace(headers={}, request=None))

    monkeypatch.setattr("hf_geokd.sae.load.snapshot_download", missing_repo)
    with pytest.raises(FileNotFoundError, match="me/no-sae is not a local folder, and the Hub has no repo"):
        load_sae("me/no-sae", sae_id="layers.3")


@pytest.mark.parametrize("sae_id", ["../" * 8 + "etc", "/etc", "layers/../../x", "~/saes"])
def test_an_sae_id_outside_the_repo_is_refused_before_any_download(monkeypatch, tmp_path, sae_id):
    calls = []
    monkeypatch.setattr("hf_geokd.sae.load.snapshot_download", lambda *args, **kwargs: calls.append(args))
    for source in ("me/saes", raw_sae(tmp_path / "sae")):
        with pytest.raises(ValueError, match="points outside the repo: pass the SAE's folder relative to"):
            load_sae(source, sae_id=sae_id)
    assert calls == []


def test_a_missing_sae_folder_is_named_with_the_folders_there_are(monkeypatch, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    raw_sae(root / "layers.3")
    sae_lens_sae(root / "layers.5")
    with pytest.raises(FileNotFoundError, match=r"repo has no folder 'nope' \(the folder sae_id names does not "
                                                r"exist\): check sae_id; its SAE folders: 'layers.3', 'layers.5'"):
        load_sae(root, sae_id="nope")
    assert load_sae(root, sae_id="layers.3/").cfg.d_sae == 4  # a trailing slash is not part of the name
    monkeypatch.setattr("hf_geokd.sae.load.snapshot_download", lambda *args, **kwargs: str(tmp_path / "snapshot"))
    monkeypatch.setattr("hf_geokd.sae.load.HfApi.list_repo_files",
                        lambda self, repo_id: ["README.md", "a/cfg.json", "a/sae_weights.safetensors"])
    with pytest.raises(FileNotFoundError, match="me/saes has no folder 'nope' .* its SAE folders: 'a'"):
        load_sae("me/saes", sae_id="nope")
