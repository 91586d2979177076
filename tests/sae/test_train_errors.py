"""train_sae refuses bad input before any sae-lens training starts, naming the problem and the fix, and never replaces
a folder it did not write."""

import json
import os
import signal

import pytest
import torch
from datasets import Dataset
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import SAETrainingConfig, load_sae, train_sae
from hf_geokd.sae.train import resolve_training_config

HOOK = "gpt_neox.layers.0"


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(pythia_like_config(64, hidden_size=16, num_hidden_layers=2)).eval()


BLOCKS = Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 4})
QUICK = dict(expansion_factor=2, training_tokens=256, train_batch_size_tokens=64, measure_tokens=16)


@pytest.mark.parametrize("dataset, hooks, kwargs, message", [
    (BLOCKS, [], {}, "pass at least one hook name"),
    (BLOCKS.select([]), HOOK, {}, "dataset must be non-empty"),
    (Dataset.from_dict({"text": ["a b"]}), HOOK, {}, "'input_ids' column"),
    (BLOCKS, "gpt_neox.layers.7", {}, "gpt_neox.layers.1"),  # the valid names are listed
    (BLOCKS, HOOK, {"architecture": "topk", "k": 2, "sae_kwargs": {"use_sparse": True}},
     r"sae_kwargs \['use_sparse'\] are not fields of sae-lens's TopKTrainingSAEConfig"),
])
def test_bad_input_is_refused_with_the_fix(teacher, tmp_path, dataset, hooks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_sae(teacher, dataset, hooks, tmp_path, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"training_tokens": 0}, "training_tokens must be a positive integer, got 0"),
    ({"training_tokens": 100, "train_batch_size_tokens": 4096}, "would not train a single step"),
    ({"sae_kwargs": {"d_in": 8}}, "sae_kwargs may not set 'd_in': it is the model's hidden size"),
    ({"sae_kwargs": {"d_sae": -4}}, r"sae_kwargs may not set 'd_sae': set expansion_factor"),
    ({"l1_coefficient": "abc"}, "l1_coefficient must be a finite number >= 0, got 'abc'"),
    ({"l1_coefficient": float("nan")}, "l1_coefficient must be a finite number >= 0"),
    ({"architecture": "topk", "k": -1}, "k must be a positive integer, got -1"),
    ({"architecture": "bogus"}, r"architecture='bogus' is not a sae-lens training architecture: use one of \["),
    ({"expansion_factor": 0}, "expansion_factor must be a positive integer, got 0"),
    ({"k": 4}, r"k=4 does not apply to architecture='standard': it is a setting of \['abstopk', 'batchtopk'"),
    ({"architecture": "topk", "l1_coefficient": 0.1}, "l1_coefficient=0.1 does not apply to architecture='topk'"),
    ({"lr": 0}, "lr must be a finite number > 0"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"device": "gpu"}, "device='gpu' is not a torch device"),
    ({"sae_kwargs": "{not json"}, "sae_kwargs must be a JSON object"),
    ({"runner_kwargs": {"lr": 1e-3}}, "runner_kwargs may not set 'lr': it is SAETrainingConfig's field lr"),
    ({"expansion": 4}, r"\['expansion'\] are neither SAETrainingConfig fields .* did you mean expansion_factor\?"),
])
def test_bad_settings_are_named_before_training(teacher, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_sae(teacher, BLOCKS, HOOK, tmp_path / "out", **{**QUICK, **kwargs})
    assert not (tmp_path / "out").exists()  # nothing trained, nothing saved
    settings = {key: value for key, value in {**QUICK, **kwargs}.items() if key != "expansion"}
    if "expansion" not in kwargs:  # the config itself refuses the same values
        with pytest.raises(ValueError, match=message):
            SAETrainingConfig(**settings)


@pytest.mark.parametrize("kwargs, message", [
    ({"architecture": "topk", "k": 1000}, r"k=1000 exceeds d_sae = expansion_factor x d_in = 2 x 16 = 32"),
    ({"architecture": "topk"}, r"sae-lens's default k=100 exceeds d_sae = .* = 32: set k to at most 32"),
])
def test_k_beyond_the_sae_width_is_refused(teacher, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_sae(teacher, BLOCKS, HOOK, tmp_path / "out", **QUICK, **kwargs)
    assert not (tmp_path / "out").exists()


def test_a_config_and_keywords_combine_and_a_positional_setting_is_named(teacher, tmp_path):
    config = SAETrainingConfig(**QUICK)
    with pytest.raises(ValueError, match="training_tokens must be a positive integer"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, config, training_tokens=0)  # keywords override the config
    merged = resolve_training_config(config, {"seed": 5, "lr_warm_up_steps": 3})
    assert (merged.seed, merged.expansion_factor, merged.runner_kwargs) == (5, 2, {"lr_warm_up_steps": 3})
    with pytest.raises(TypeError, match=r"config must be an SAETrainingConfig, got str .* config=SAETrainingConfig"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, "standard")
    with pytest.warns(FutureWarning, match="pass expansion_factor=4 as a keyword"):  # the old positional argument
        assert resolve_training_config(4, {"k": 2, "architecture": "topk"}).expansion_factor == 4
    with pytest.raises(TypeError, match="multiple values for argument 'expansion_factor'"):
        resolve_training_config(4, {"expansion_factor": 8})


def foreign_folder(root):
    folder = root / HOOK
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({"model": "another project's config"}))
    return folder


def test_a_folder_train_sae_did_not_write_is_not_replaced(teacher, tmp_path):
    folder = foreign_folder(tmp_path)
    with pytest.raises(FileExistsError, match=rf"{folder} holds a cfg.json that is not a sae-lens SAE of {HOOK}: "
                                              "pass overwrite=True"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK)
    assert json.loads((folder / "cfg.json").read_text()) == {"model": "another project's config"}
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds files train_sae does not write \(notes.txt\)"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK)
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_foreign_runner_config_is_not_replaced(teacher, tmp_path):
    (tmp_path / "runner_cfg.json").write_text("my own file")
    with pytest.raises(FileExistsError, match="runner_cfg.json is not a sae-lens runner config"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK)
    assert (tmp_path / "runner_cfg.json").read_text() == "my own file"


def test_output_dir_that_is_a_file_is_named(teacher, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"output_dir .*file is a file: pass a folder"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path / "file", **QUICK)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / HOOK).write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not an SAE folder"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path / "dir", **QUICK)


def test_a_trained_sae_is_replaced_only_with_overwrite_and_an_interrupted_one_always(teacher, tmp_path):
    folder = train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK)[HOOK]
    first = load_sae(folder).W_enc.detach().clone()
    with pytest.raises(FileExistsError, match="already holds a trained SAE with its statistics: pass overwrite=True"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK, seed=1)
    torch.testing.assert_close(load_sae(folder).W_enc, first, rtol=0, atol=0)
    (folder / "feature_stats.json").unlink()  # as a run that stopped before measuring leaves it
    train_sae(teacher, BLOCKS, HOOK, tmp_path, **QUICK, seed=1)
    assert not torch.equal(load_sae(folder).W_enc, first) and (folder / "feature_stats.json").is_file()
    foreign_folder(tmp_path / "other")
    replaced = train_sae(teacher, BLOCKS, HOOK, tmp_path / "other", **QUICK, overwrite=True)[HOOK]
    assert load_sae(replaced).cfg.metadata.hook_name == HOOK


def test_ctrl_c_handlers_are_given_back_and_an_interrupted_training_is_a_keyboard_interrupt(teacher, tmp_path,
                                                                                              monkeypatch):
    from sae_lens.multi_sae_training_runner import MultiSAETrainer

    numbers = (signal.SIGINT, signal.SIGTERM)
    before = [signal.getsignal(number) for number in numbers]
    train_sae(teacher, BLOCKS, HOOK, tmp_path / "trained", **QUICK)
    assert [signal.getsignal(number) for number in numbers] == before  # sae-lens's own handlers are gone
    monkeypatch.setattr(MultiSAETrainer, "fit", lambda self: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt, match="the SAE training was interrupted"):
        train_sae(teacher, BLOCKS, HOOK, tmp_path / "stopped", **QUICK)
    assert [signal.getsignal(number) for number in numbers] == before
