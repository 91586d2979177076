"""The recipes plan what they run, refuse to resume a run with other settings, and end a user's mistake (no GPU for
bf16, no Hub, a reserved flag) in one line with exit status 2."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset, load_from_disk
from transformers import AutoConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes/tiny/distill.yaml"
PAPER = ROOT / "recipes/pythia-410m"


def recipe(name: str):
    """A recipe script as a module (its ``main(argv)`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def failure(capsys, main, argv) -> str:
    """The one line a recipe prints when it refuses ``argv`` with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def tiny_argv(tiny_artifacts, output: Path, *extra: str) -> list[str]:
    return [str(TINY), "--teacher_model_name_or_path", str(tiny_artifacts / "teacher"), "--dataset_path",
            str(tiny_artifacts / "blocks"), "--output_dir", str(output), *extra]


def test_the_plan_counts_the_blocks_the_run_trains_on(tiny_artifacts, tmp_path, capsys):
    distill = recipe("distill")
    argv = tiny_argv(tiny_artifacts, tmp_path / "out", "--dry_run", "true", "--dry_run_blocks", "4")
    distill.main(argv)
    assert "steps: 40 of 8 blocks x 64 tokens = 512 tokens per step" in capsys.readouterr().out
    student_args, data_args, _, _, config = distill.parse_arguments(argv)
    train, held_out = distill.token_blocks(data_args, None, config)  # the saved blocks hold 32 tokens each
    assert {len(row) for row in train["input_ids"]} == {64} and {len(row) for row in held_out["input_ids"]} == {64}
    saved = [token for row in load_from_disk(str(tiny_artifacts / "blocks"))["input_ids"] for token in row]
    recut = [token for blocks in (train, held_out) for row in blocks["input_ids"] for token in row]
    assert recut == saved[:len(recut)]  # the same tokens in the same order, cut at 64


def test_the_paper_recipe_plans_without_a_gpu_and_names_the_flag_to_train_without_one(tiny_artifacts, tmp_path,
                                                                                       capsys):
    Dataset.from_dict({"text": [f"sentence number {i} says something about topic {i % 7}." for i in range(3000)]}
                      ).save_to_disk(str(tmp_path / "documents"))
    distill = recipe("distill")
    argv = [str(PAPER / "distill.yaml"), "--tokenizer_name", str(tiny_artifacts / "teacher"), "--dataset_path",
            str(tmp_path / "documents"), "--num_shards", "1", "--eval_blocks", "4", "--output_dir",
            str(tmp_path / "out")]
    distill.main([*argv, "--dry_run", "true", "--dry_run_blocks", "4"])
    assert "steps: 30,000 of 32 blocks x 512 tokens = 16,384 tokens per step" in capsys.readouterr().out
    if not torch.cuda.is_available():
        line = failure(capsys, distill.main, argv)
        assert "doesn't support bf16" in line and "set --bf16 false to train in float32 without a GPU" in line


def test_the_distill_recipe_needs_an_output_dir(tiny_artifacts, tmp_path, capsys):
    config = tmp_path / "no-output.yaml"
    config.write_text("\n".join(line for line in TINY.read_text().splitlines() if not line.startswith("output_dir")))
    line = failure(capsys, recipe("distill").main, [str(config), "--teacher_model_name_or_path",
                                                    str(tiny_artifacts / "teacher")])
    assert "set output_dir (a key of the YAML file, or --output_dir)" in line
    assert "output_dir: outputs/demo/distill-recipe" in TINY.read_text()


@pytest.mark.slow  # three recipe processes
@pytest.mark.parametrize("script, extra", [
    ("distill", ["--bf16", "false"]),
    ("train_sae", []),
    ("probe", ["--models", "EleutherAI/pythia-410m"]),
])
def test_the_paper_recipes_name_an_unreachable_hub_in_one_line(tmp_path, script, extra):
    yaml_name = {"distill": "distill", "train_sae": "sae", "probe": "probe"}[script]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-cache"), "WANDB_MODE": "disabled"}
    result = subprocess.run([sys.executable, str(ROOT / "recipes" / f"{script}.py"), str(PAPER / f"{yaml_name}.yaml"),
                             "--output_dir", str(tmp_path / "out"), *extra],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"{script}.py: error: EleutherAI/pythia-410m is not a local folder, and the Hub cannot be reached (offline: "
        "HF_HUB_OFFLINE is set, or no connection) and the repo is not in the local cache.")


@pytest.mark.parametrize("flag, value, message", [
    ("--training_tokens", "5", "--training_tokens is set by this recipe (train_blocks x context_size): leave it out"),
    ("--architecture", "bogus", "architecture='bogus' is not a sae-lens training architecture"),
    ("--measure_blocks", "0", "measure_blocks=0 of 8 blocks leaves no held-out block to measure the statistics"),
    ("--train_batch_size_tokens", "4096", "train_blocks=8 x context_size=32 tokens is less than one batch"),
])
def test_the_sae_recipe_names_a_bad_setting_in_one_line(tiny_artifacts, tmp_path, capsys, flag, value, message):
    argv = [str(ROOT / "recipes/tiny/sae.yaml"), "--model_name_or_path", str(tiny_artifacts / "teacher"),
            "--dataset_path", str(tiny_artifacts / "blocks"), "--context_size", "32", "--output_dir",
            str(tmp_path), "--train_blocks", "8", "--measure_blocks", "2", flag, value]
    assert message in failure(capsys, recipe("train_sae").main, argv)


@pytest.mark.slow
def test_the_sae_recipe_trains_with_the_config_fields_of_its_yaml(tiny_artifacts, tmp_path):
    config = tmp_path / "topk.yaml"
    config.write_text(f"model_name_or_path: {tiny_artifacts / 'teacher'}\nhook_names: [gpt_neox.layers.1]\n"
                      f"output_dir: {tmp_path / 'saes'}\ndataset_path: {tiny_artifacts / 'blocks'}\ncontext_size: 64\n"
                      "train_blocks: 32\nmeasure_blocks: 8\narchitecture: topk\nk: 4\nexpansion_factor: 2\n"
                      "train_batch_size_tokens: 256\nseed: 3\nsae_kwargs: {aux_loss_coefficient: 0.5}\ndevice: cpu\n")
    recipe("train_sae").main([str(config)])
    folder = tmp_path / "saes" / "gpt_neox.layers.1"
    saved = json.loads((folder / "cfg.json").read_text())
    assert saved["architecture"] == "topk" and saved["k"] == 4 and saved["d_sae"] == 64
    assert saved["metadata"]["training_architecture_details"]["aux_loss_coefficient"] == 0.5
    runner = json.loads((tmp_path / "saes" / "runner_cfg.json").read_text())
    assert runner["seed"] == 3 and runner["context_size"] == 64 and runner["training_tokens"] == 32 * 64
    assert json.loads((folder / "feature_stats.json").read_text())["n_tokens"] == 8 * 64


@pytest.mark.slow
def test_a_rerun_resumes_only_the_same_run(tiny_artifacts, tmp_path, capsys):
    distill = recipe("distill")
    out = tmp_path / "out"
    short = ["--max_steps", "2", "--save_steps", "1", "--eval_steps", "1", "--per_device_train_batch_size", "4"]
    distill.main(tiny_argv(tiny_artifacts, out, *short))
    assert "T = 2.0" in (out / "README.md").read_text()
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short, "--learning_rate", "0.1",
                                                   "--temperature", "5"))
    assert "holds a run with other settings: temperature 2.0 (now 5.0), learning_rate 0.003 (now " \
           "0.1): rerun with its settings to resume it, pass --start_over true" in line
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short, "--width", "32"))
    assert "width [16] (now [32])" in line
    (out / "recipe_settings.json").unlink()  # a run of an earlier version: which settings it had is unknown
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short))
    assert f"holds checkpoint-2 but no recipe_settings.json saying which run it is of: pass " \
           f"--resume_from_checkpoint {out / 'checkpoint-2'} to resume it as it is" in line
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short, "--width", "32",
                                                   "--resume_from_checkpoint", str(out / "checkpoint-2")))
    assert "checkpoint-2 holds students of width [16], not [32]: pass --width 16 to resume it" in line
    (out / "checkpoint-9").mkdir()  # a save cut short: the process was killed before trainer_state.json
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short,
                                                   "--resume_from_checkpoint", str(out / "checkpoint-9")))
    assert "checkpoint-9 has no whole trainer_state.json: its saving was cut short" in line
    (out / "checkpoint-9").rmdir()
    distill.main(tiny_argv(tiny_artifacts, out, *short, "--learning_rate", "0.1", "--temperature", "5",
                           "--start_over", "true"))
    card = (out / "README.md").read_text()
    assert "T = 5.0" in card and json.loads((out / "recipe_settings.json").read_text())["learning_rate"] == 0.1
    assert sorted(path.name for path in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    distill.main(tiny_argv(tiny_artifacts, out, *short, "--learning_rate", "0.1", "--temperature", "5"))  # resumes
    assert json.loads((out / "run_info.json").read_text())["metrics"]["eval_loss"] > 0
    for checkpoint in out.glob("checkpoint-*"):  # a finished run kept without its checkpoints
        shutil.rmtree(checkpoint)
    model = (out / "model.safetensors").read_bytes()
    line = failure(capsys, distill.main, tiny_argv(tiny_artifacts, out, *short))
    assert "holds a run with other settings: temperature 5.0 (now 2.0)" in line
    assert (out / "model.safetensors").read_bytes() == model


def test_the_probe_recipe_refuses_two_students_of_one_width(tiny_artifacts, tmp_path, capsys):
    from hf_geokd.distill import build_student

    config = AutoConfig.from_pretrained(tiny_artifacts / "teacher")
    for name in ("a", "b"):
        build_student(config, 16).save_pretrained(tmp_path / name)
    argv = ["--models", str(tiny_artifacts / "teacher"), str(tmp_path / "a"), str(tmp_path / "b"), "--layer", "1",
            "--output_dir", str(tmp_path / "out")]
    line = failure(capsys, recipe("probe").main, argv)
    assert "models: more than one student of width d_S=16" in line and not (tmp_path / "out").exists()
