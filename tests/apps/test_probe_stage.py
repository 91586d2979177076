"""The probing stage's reuse: tables are reused only for the same settings and the same inputs, and students without
weights are a clear error."""

import json

import pandas as pd
import pytest
import torch

from hf_geokd.apps.probe_stage import PROBE_TABLES, ProbeSettings, _students, inputs_fingerprint, saved_probes

SETTINGS = ProbeSettings(("code",), 40, 2, 0.02, (4, 8), 2, 0, 64)


@pytest.fixture
def run(tmp_path):
    """A folder with the files the fingerprint reads, and the tables of an earlier invocation."""
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "model.safetensors").write_bytes(b"teacher")
    sae = tmp_path / "sae" / "gpt_neox.layers.1"
    sae.mkdir(parents=True)
    (sae / "sae_weights.safetensors").write_bytes(b"sae")
    for width in SETTINGS.widths:
        (tmp_path / "students" / f"w{width}").mkdir(parents=True)
        (tmp_path / "students" / f"w{width}" / "floor.json").write_text(json.dumps({"observed_floor": 1 / width}))
        (tmp_path / "survival" / f"d_S={width}").mkdir(parents=True)
        (tmp_path / "survival" / f"d_S={width}" / "feature_survival.json").write_text("{}")
    (tmp_path / "probes").mkdir()
    for name in PROBE_TABLES:
        pd.DataFrame({"concept": ["code"]}).to_csv(tmp_path / "probes" / name, index=False)
    fingerprint = inputs_fingerprint(tmp_path, sae, SETTINGS.widths)
    (tmp_path / "probes" / "settings.json").write_text(json.dumps({**SETTINGS.as_json(),
                                                                   "inputs_sha256": fingerprint}))
    return tmp_path, sae


def test_saved_tables_are_reused_for_the_same_settings_and_inputs_only(run):
    out, sae = run
    fingerprint = inputs_fingerprint(out, sae, SETTINGS.widths)
    assert saved_probes(out, SETTINGS, fingerprint) is not None
    other = ProbeSettings(("code",), 50, 2, 0.02, (4, 8), 2, 0, 64)
    assert saved_probes(out, other, fingerprint) is None  # settings changed
    (out / "students" / "w8" / "floor.json").write_text(json.dumps({"observed_floor": 0.1}))  # w8 trained again
    changed = inputs_fingerprint(out, sae, SETTINGS.widths)
    assert changed != fingerprint and saved_probes(out, SETTINGS, changed) is None
    (out / "students" / "w8" / "floor.json").write_text(json.dumps({"observed_floor": 1 / 8}))
    assert inputs_fingerprint(out, sae, SETTINGS.widths) == fingerprint  # content, not modification times
    (sae / "sae_weights.safetensors").write_bytes(b"another sae")
    assert inputs_fingerprint(out, sae, SETTINGS.widths) != fingerprint


def test_students_without_weights_are_a_clear_error(run):
    out, _ = run
    with pytest.raises(ValueError, match=r"the students of width \[4, 8\] have none"):
        _students(out, SETTINGS.widths, torch.device("cpu"))
