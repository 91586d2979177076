"""recipes/survival.py under ``accelerate launch`` with two CPU processes: the students are shared out, each result
equals a single-process measurement, and a rerun resumes from the saved results."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM

from hf_geokd.distill import build_student
from hf_geokd.sae import load_sae, train_sae
from hf_geokd.survival import FeatureSurvival, FeatureSurvivalConfig, measure_feature_survival

pytestmark = pytest.mark.slow  # sae-lens training and two launched processes

ROOT = Path(__file__).resolve().parents[2]
HOOK = "gpt_neox.layers.1"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_share_the_students_and_a_rerun_resumes(tiny_artifacts, tmp_path):
    torch.manual_seed(0)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    sae_dir = train_sae(teacher, blocks.select(range(32)), HOOK, tmp_path / "sae", expansion_factor=2,
                        architecture="topk", k=4, training_tokens=2_048, train_batch_size_tokens=256,
                        measure_tokens=512, measure_dataset=blocks.select(range(64, 96)))[HOOK]
    students = []
    for width in (8, 16):
        build_student(teacher.config, width, seed=width).save_pretrained(tmp_path / f"w{width}")
        students.append(str(tmp_path / f"w{width}"))
    out = tmp_path / "survival"
    settings = {"n_tokens": 1024, "batch_size": 8, "null_students": 1, "min_firings": 2}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), "--main_process_port", str(free_port()),
        str(ROOT / "recipes/survival.py"), "--teacher_name_or_path", str(tiny_artifacts / "teacher"),
        "--sae_path", str(sae_dir), "--students", *students, "--output_dir", str(out),
        "--dataset_path", str(tiny_artifacts / "blocks"), "--skip_blocks", "40", "--block_size", "32",
        *[arg for key, value in settings.items() for arg in (f"--{key}", str(value))],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    results = {width: FeatureSurvival.load(out / f"d_S={width}") for width in (8, 16)}
    assert {result.metadata["process"] for result in results.values()} == {0, 1}  # one student per process
    assert (out / "staircase.csv").is_file() and (out / "orderings.png").is_file()
    alone = measure_feature_survival(teacher, load_sae(sae_dir), AutoModelForCausalLM.from_pretrained(students[1]),
                                     blocks.select(range(40, len(blocks))), FeatureSurvivalConfig(**settings),
                                     progress=False)
    for reader, values in alone.r2.items():
        torch.testing.assert_close(results[16].r2[reader], values, rtol=1e-4, atol=1e-5, equal_nan=True)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "d_S=" not in again.stdout.split("|")[0] and "[process" not in again.stdout  # nothing measured again
    assert "| 16 |" in again.stdout  # ... and the study is written from the saved results
    changed = subprocess.run([*command, "--threshold", "0.6"], capture_output=True, text=True, env=env, timeout=600)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert changed.stdout.count("measured with other settings") == 2  # other settings: nothing stale is reused
