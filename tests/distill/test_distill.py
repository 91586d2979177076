import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, TrainerCallback

from hf_geokd.data import causal_lm_collator, stream_token_blocks
from hf_geokd.distill import DistillationConfig, DistillationTrainer, LossFloorCallback, build_student
from hf_geokd.distill import kl as kl_module
from hf_geokd.distill.kl import chunked_distillation_loss, naive_distillation_loss

ROOT = Path(__file__).resolve().parents[2]


def ragged_batch(vocab: int, generator: torch.Generator) -> dict:
    lengths = [13, 7, 10, 4]
    rows = [{"input_ids": torch.randint(0, vocab, (n,), generator=generator).tolist()} for n in lengths]
    return causal_lm_collator(rows)


@pytest.mark.parametrize("ce_weight", [0.0, 0.25])
def test_chunked_loss_matches_full_logits_reference(tiny_artifacts, ce_weight):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher").double()
    student = build_student(teacher.config, 16, seed=0, num_attention_heads=4).double()
    batch = ragged_batch(teacher.config.vocab_size, torch.Generator().manual_seed(0))
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        teacher_out = teacher(**inputs, output_hidden_states=True)
    student_out = student(**inputs, output_hidden_states=True)
    reference = naive_distillation_loss(
        student_out.logits.double(), teacher_out.logits.double(), batch["labels"], 2.0, ce_weight
    )
    reference_grads = torch.autograd.grad(reference, list(student.parameters()))
    student_out = student(**inputs, output_hidden_states=True)
    chunked = chunked_distillation_loss(
        student_out.hidden_states[-1],
        student.get_output_embeddings().weight,
        teacher_out.hidden_states[-1],
        teacher.get_output_embeddings().weight,
        batch["labels"],
        temperature=2.0,
        chunk_size=5,
        ce_weight=ce_weight,
    )
    grads = torch.autograd.grad(chunked.loss, list(student.parameters()))
    assert chunked.n_tokens == sum(n - 1 for n in [13, 7, 10, 4])
    torch.testing.assert_close(chunked.loss, reference.to(chunked.loss.dtype), rtol=1e-5, atol=0)
    for got, want in zip(grads, reference_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)
    # evaluation under no_grad gives the same sums without computing any gradient
    core = kl_module._student_chunk
    calls = []
    kl_module._student_chunk = lambda *a: calls.append(a[-1]) or core(*a)
    try:
        with torch.no_grad():
            evaluated = chunked_distillation_loss(
                student_out.hidden_states[-1], student.get_output_embeddings().weight, teacher_out.hidden_states[-1],
                teacher.get_output_embeddings().weight, batch["labels"], temperature=2.0, chunk_size=5,
                ce_weight=ce_weight,
            )
    finally:
        kl_module._student_chunk = core
    assert calls and not any(calls) and not evaluated.loss.requires_grad
    torch.testing.assert_close(evaluated.loss, chunked.loss.detach(), rtol=1e-10, atol=0)
    torch.testing.assert_close(evaluated.kl_sum, chunked.kl_sum, rtol=1e-10, atol=0)


def test_vocabulary_mismatch_is_refused(tiny_artifacts):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    student = build_student(teacher.config, 16, num_attention_heads=4, vocab_size=teacher.config.vocab_size + 1)
    with pytest.raises(ValueError, match="vocabulary"):
        DistillationTrainer(
            model=student, teacher_model=teacher, args=DistillationConfig(output_dir="unused", use_cpu=True)
        )


class GradientRecorder(TrainerCallback):
    def __init__(self):
        self.gradients = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients = [p.grad.detach().clone() for p in model.parameters()]


def one_step(tiny_artifacts, tmp_path, batch_size: int, accumulation: int) -> tuple[list[torch.Tensor], float]:
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    student = build_student(teacher.config, 16, seed=0, num_attention_heads=4)
    generator = torch.Generator().manual_seed(3)
    rows = [
        {"input_ids": torch.randint(1, 300, (int(n),), generator=generator).tolist()}
        for n in torch.randint(4, 30, (8,), generator=generator)
    ]
    recorder = GradientRecorder()
    args = DistillationConfig(
        output_dir=str(tmp_path / f"ga{accumulation}"),
        max_steps=1,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        max_grad_norm=0.0,
        seed=0,
        kl_chunk_size=17,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=rows,
        data_collator=causal_lm_collator,
        callbacks=[recorder],
    )
    trainer.train()
    return recorder.gradients, trainer.state.log_history[0]["kl"]


@pytest.mark.slow
def test_gradient_accumulation_matches_one_large_batch(tiny_artifacts, tmp_path):
    big, big_kl = one_step(tiny_artifacts, tmp_path, batch_size=8, accumulation=1)
    small, small_kl = one_step(tiny_artifacts, tmp_path, batch_size=2, accumulation=4)
    assert small_kl == pytest.approx(big_kl, rel=1e-5)
    for a, b in zip(small, big):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


class CrashAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4:
            raise RuntimeError("simulated crash after the step-4 checkpoint")


def distil(tiny_artifacts, output_dir: Path, callbacks=(), resume=None,
           streamed: bool = False) -> tuple[torch.nn.Module, DistillationTrainer]:
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    student = build_student(teacher.config, 16, seed=0, num_attention_heads=4)
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    train, held_out = blocks.select(range(64)), blocks.select(range(64, 80))
    if streamed:  # the same 80 rows as a lazy stream of 4 shards; its first 16 blocks are held out
        train, held_out = stream_token_blocks(blocks.select(range(16, 96)), None, 32, num_shards=4, held_out=16)
    args = DistillationConfig(
        output_dir=str(output_dir),
        max_steps=8,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        use_cpu=True,
        report_to=[],
        save_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=2,
        seed=0,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=train,
        eval_dataset=held_out,
        data_collator=causal_lm_collator,
        callbacks=[LossFloorCallback(), *callbacks],
    )
    trainer.train(resume_from_checkpoint=resume)
    return student, trainer


@pytest.mark.slow
@pytest.mark.parametrize("streamed", [False, True])
def test_resume_after_a_crash_ends_where_an_uninterrupted_run_ends(tiny_artifacts, tmp_path, streamed):
    reference, trainer = distil(tiny_artifacts, tmp_path / "straight", streamed=streamed)
    with pytest.raises(RuntimeError, match="simulated crash"):
        distil(tiny_artifacts, tmp_path / "crashed", callbacks=[CrashAfterCheckpoint()], streamed=streamed)
    assert (tmp_path / "crashed" / "checkpoint-4" / "model.safetensors").is_file()
    resumed, resumed_trainer = distil(tiny_artifacts, tmp_path / "crashed", resume=True, streamed=streamed)
    for a, b in zip(resumed.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    floor = next(c for c in resumed_trainer.callback_handler.callbacks if isinstance(c, LossFloorCallback))
    assert len(floor.evaluations) == 4  # two before the crash (restored from the checkpoint), two after
    assert floor.floor == pytest.approx(floor.evaluations[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes_runs_the_tiny_recipe(tiny_artifacts, tmp_path):
    output = tmp_path / "student"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"),
        "--main_process_port",
        str(free_port()),
        str(ROOT / "recipes/distill.py"),
        str(ROOT / "recipes/tiny/distill.yaml"),
        "--teacher_model_name_or_path",
        str(tiny_artifacts / "teacher"),
        "--dataset_path",
        str(tiny_artifacts / "blocks"),
        "--output_dir",
        str(output),
        "--max_steps",
        "6",
        "--eval_steps",
        "3",
        "--save_steps",
        "100",
        "--per_device_train_batch_size",
        "4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    # a rank that aborts (gloo, a C++ exception) says why in "terminate called ..." / "what():" lines, not in "Error"
    markers = ("Error", "error:", "terminate called", "what():", "gloo")
    causes = [line for line in result.stderr.splitlines() if any(marker in line for marker in markers)]
    assert result.returncode == 0, "\n".join(causes[:20]) + "\n...\n" + result.stderr[-2000:]
    run = json.loads((output / "run_info.json").read_text())
    assert run["world_size"] == 2
    assert len(run["parameter_checksums"]) == 2 and run["parameter_checksums"][0] == run["parameter_checksums"][1]
    assert (output / "model.safetensors").is_file() and not (output / "pytorch_model.bin").exists()
    card = (output / "README.md").read_text()
    assert "width **16**" in card and "loss floor" in card
