"""The optional Liger backend: its convention checked against our reference where liger-kernel and Triton are
installed (on the CPU through Triton's interpreter), and the fallback to the chunked loss everywhere else."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from hf_geokd.distill import DistillationConfig, DistillationTrainer, build_student
from hf_geokd.distill.liger import liger_unavailable

HAS_LIGER = importlib.util.find_spec("liger_kernel") is not None and importlib.util.find_spec("triton") is not None


@pytest.mark.skipif(not HAS_LIGER, reason="liger-kernel and triton are not installed (optional extra)")
@pytest.mark.parametrize("ce_weight", [0.0, 0.3])
def test_liger_backend_equals_the_chunked_loss(tiny_artifacts, ce_weight):
    # Triton's CPU interpreter runs the same kernels on the CPU; it is read when Triton is imported: a fresh process
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("liger_equivalence.py")),
                          str(tiny_artifacts / "teacher"), str(ce_weight)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    chunked, liger = results["chunked"], results["liger"]
    assert liger["n_tokens"] == chunked["n_tokens"] == 30
    assert liger["loss"] == pytest.approx(chunked["loss"], rel=1e-4)
    assert liger["kl_sum"] == pytest.approx(chunked["kl_sum"], rel=1e-4)  # T^2 and the sum over tokens
    assert liger["eval_ce_sum"] == pytest.approx(chunked["eval_ce_sum"], rel=1e-4)  # evaluation logs CE at any w
    assert liger["eval_loss"] == pytest.approx(chunked["eval_loss"], rel=1e-4)
    if ce_weight > 0:
        assert liger["ce_sum"] == pytest.approx(chunked["ce_sum"], rel=1e-4)
    else:  # training at w = 0 skips the CE pass
        assert math.isnan(liger["ce_sum"])
    for got, want in zip(liger["grads"], chunked["grads"]):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-3, atol=1e-6)


def test_liger_falls_back_to_the_chunked_loss_with_a_warning_where_it_cannot_run(tiny_artifacts, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert liger_unavailable(torch.device("cpu")) is not None
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    student = build_student(teacher.config, 16, num_attention_heads=4)
    args = DistillationConfig(output_dir="unused", use_cpu=True, loss_backend="liger", report_to=[])
    with pytest.warns(UserWarning, match="falls back to the chunked loss"):
        trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args)
    assert trainer.loss_backend == "chunked"
    with pytest.raises(ValueError, match="loss_backend must be one of"):
        DistillationConfig(output_dir="unused", use_cpu=True, loss_backend="fused")
