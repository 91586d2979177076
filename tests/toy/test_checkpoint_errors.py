"""A damaged or misplaced toy checkpoint is named before any training starts."""

import json
from dataclasses import asdict

import pytest
import torch
from safetensors.torch import save_file

from hf_geokd.toy import ToySweepConfig, run_toy_sweep

WEIGHTS, INDEX = "toy_sweep_checkpoint.safetensors", "toy_sweep_checkpoint.json"


def sweep(folder):
    return run_toy_sweep(ToySweepConfig.smoke(), checkpoint_dir=folder, progress=False)


def test_a_file_for_the_folder_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(NotADirectoryError, match="taken is a file"):
        sweep(tmp_path / "taken")


@pytest.mark.parametrize(
    ("index", "weights", "message"),
    [
        ('{"config": {', None, f"{INDEX} is not valid JSON"),
        ("[1, 2]", None, f"{INDEX} is not a toy sweep checkpoint index"),
        (None, b"\x00" * 5, f"{WEIGHTS} is not a readable safetensors file"),
        (None, "empty", r"lacks the tensors of units \['n5_teacher'\]"),
    ],
)
def test_a_damaged_checkpoint_is_named(tmp_path, index, weights, message):
    good_index = json.dumps({"config": asdict(ToySweepConfig.smoke()), "units": {"n5_teacher": []}})
    (tmp_path / INDEX).write_text(index or good_index)
    if weights == "empty" or weights is None:
        save_file({"other": torch.zeros(1)}, str(tmp_path / WEIGHTS))
    else:
        (tmp_path / WEIGHTS).write_bytes(weights)
    with pytest.raises(ValueError, match=message):
        sweep(tmp_path)
