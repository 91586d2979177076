"""FeatureSurvival on disk: the previous format still reads, a damaged file is named, nothing is overwritten."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from survival_planted import survival_of

from hf_geokd.naming import student_label
from hf_geokd.survival import FeatureSurvival, write_survival_study
from hf_geokd.survival.storage import SURVIVAL_CONFIG_NAME, SURVIVAL_WEIGHTS_NAME

# Saved by the version before FeatureSurvivalConfig (format 1: threshold, ridge, ... at the top of the json, held_out,
# seed, null_students and probe in metadata), from survival_of(planted, list(range(8)), n_tokens=8_000).
FORMAT_1 = Path(__file__).parent / "data" / "legacy_v1"


@pytest.fixture(scope="module")
def result(planted):
    return survival_of(planted, list(range(8)), n_tokens=8_000)


def copy_of_format_1(tmp_path) -> Path:
    return Path(shutil.copytree(FORMAT_1, tmp_path / "old"))


def edit_json(folder: Path, edit) -> None:
    path = folder / SURVIVAL_CONFIG_NAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_result_of_the_previous_format_loads_as_the_same_measurement_today(result):
    old = FeatureSurvival.load(FORMAT_1)
    assert old.config == result.config  # its settings moved into the config, the token control in the null
    assert old.metadata["unrecorded_settings"] == ["batch_size", "alive_threshold", "norm_scaling_factor",
                                                   "probe_epochs", "probe_lr"]
    for reader, values in result.r2.items():
        torch.testing.assert_close(old.r2[reader], values, equal_nan=True)
    assert old.summary() == pytest.approx(result.summary(), nan_ok=True)
    assert old.summary()["survived@0.5[random,shuffled]"] == 8  # what that version counted


def test_save_refuses_to_replace_another_result_and_keeps_an_equal_one(result, tmp_path):
    folder = result.save(tmp_path / "d_S=8")
    before = {name: (folder / name).read_bytes() for name in (SURVIVAL_CONFIG_NAME, SURVIVAL_WEIGHTS_NAME)}
    assert result.save(folder) == folder  # the same result: nothing to replace
    other = replace(result, config=replace(result.config, threshold=0.7))
    with pytest.raises(FileExistsError, match="already holds .* of another feature-survival result.*overwrite=True"):
        other.save(folder)
    assert {name: (folder / name).read_bytes() for name in before} == before
    other.save(folder, overwrite=True)
    assert FeatureSurvival.load(folder).threshold == 0.7
    (tmp_path / "notes.txt").write_text("mine")
    result.save(tmp_path)  # a folder of other files: only the result's two files are written
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_save_into_a_file_is_named(result, tmp_path):
    path = tmp_path / "result.json"
    path.write_text("mine")
    with pytest.raises(NotADirectoryError, match="result.json is a file: pass a folder"):
        result.save(path)
    assert path.read_text() == "mine"


def test_a_study_written_again_keeps_equal_results_and_refuses_changed_ones(result, tmp_path):
    write_survival_study([result], tmp_path)
    assert (tmp_path / student_label(8) / SURVIVAL_CONFIG_NAME).is_file()
    write_survival_study([FeatureSurvival.load(tmp_path / student_label(8))], tmp_path)  # a resumed study
    retrained = replace(result, r2={**result.r2, "student": result.r2["student"] * 0.5})
    with pytest.raises(FileExistsError, match="d_S=8 already holds"):
        write_survival_study([retrained], tmp_path)
    write_survival_study([retrained], tmp_path, overwrite=True)
    assert FeatureSurvival.load(tmp_path / student_label(8)).same_as(retrained)


def test_unknown_keys_warn_and_redundant_readers_may_be_missing(tmp_path):
    folder = copy_of_format_1(tmp_path)
    edit_json(folder, lambda data: data.update(colour="blue") or data.pop("readers"))
    with pytest.warns(UserWarning, match=r"does not know \(colour\)"):
        loaded = FeatureSurvival.load(folder)
    assert loaded.same_as(FeatureSurvival.load(FORMAT_1))
    saved = loaded.save(tmp_path / "new")
    edit_json(saved, lambda data: data["config"].update(smoothing=2))
    with pytest.warns(UserWarning, match=r"\(config\) has keys .* \(smoothing\)"):
        FeatureSurvival.load(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: data.pop("student_width"), "lacks student_width: it is not a complete FeatureSurvival file"),
        (lambda data: data.update(student_width=-4), "student_width must be a positive integer"),
        (lambda data: data.update(l0=float("nan")), "l0 must lie in"),
        (lambda data: data.update(alpha=0.5), "alpha = 0.5 disagrees with 1 - l0 / F"),
        (lambda data: data.update(readers=["student", "teacher"]), "lists the readers .* but .* holds R\\^2 for"),
        (lambda data: data.update(threshold=2.0), r"threshold must lie in \(0, 1\)"),
    ],
)
def test_a_damaged_json_is_named(tmp_path, edit, message):
    folder = copy_of_format_1(tmp_path)
    edit_json(folder, edit)
    with pytest.raises(ValueError, match=message) as error:
        FeatureSurvival.load(folder)
    assert str(folder) in str(error.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda tensors: tensors.update({"r2.student": torch.full_like(tensors["r2.student"], float("nan"))}),
         r"r2\['student'\] is NaN for 32 scorable latents"),
        (lambda tensors: tensors.update({"r2.token": tensors["r2.token"].clone().fill_(float("inf"))}),
         r"r2\['token'\] holds infinite values"),
        (lambda tensors: tensors.pop("importance"), "lacks the tensors importance"),
        (lambda tensors: tensors.update(frequency=tensors["frequency"] + 2), r"frequency must be in \[0, 1\]"),
    ],
)
def test_damaged_tensors_are_named(tmp_path, edit, message):
    folder = copy_of_format_1(tmp_path)
    tensors = load_file(str(folder / SURVIVAL_WEIGHTS_NAME))
    edit(tensors)
    save_file(tensors, str(folder / SURVIVAL_WEIGHTS_NAME))
    with pytest.raises(ValueError, match=message) as error:
        FeatureSurvival.load(folder)
    assert str(folder) in str(error.value)
