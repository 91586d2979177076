import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, GPTNeoXForCausalLM, TrainerCallback

from hf_geokd.data import causal_lm_collator, stream_token_blocks
from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    LossFloorCallback,
    MultiStudentDistillationTrainer,
    StudentFloorsCallback,
    build_student,
    chunked_distillation_loss,
    multi_student_distillation_loss,
)

WIDTHS = (16, 32)
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config(output_dir: Path, **overrides) -> DistillationConfig:
    settings = dict(output_dir=str(output_dir), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-2,
                    max_grad_norm=0.05, use_cpu=True, report_to=[], save_steps=3, eval_strategy="steps",
                    eval_steps=3, logging_steps=3, seed=0, kl_chunk_size=37, ce_weight=0.25)
    return DistillationConfig(**{**settings, **overrides})


def run(tiny_artifacts, output_dir: Path, widths, callbacks=(), resume=None, streamed=False, **overrides):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    students = [build_student(teacher.config, width, seed=width, num_attention_heads=4) for width in widths]
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    train, held_out = blocks.select(range(48)), blocks.select(range(64, 80))
    if streamed:  # a lazy stream of 4 shards; its first 16 blocks are held out
        train, held_out = stream_token_blocks(blocks.select(range(16, 96)), None, 32, num_shards=4, held_out=16)
    common = dict(teacher_model=teacher, args=config(output_dir, **overrides), train_dataset=train,
                  eval_dataset=held_out, data_collator=causal_lm_collator)
    if len(widths) == 1:
        trainer = DistillationTrainer(model=students[0], callbacks=[LossFloorCallback(), *callbacks], **common)
    else:
        trainer = MultiStudentDistillationTrainer(model=students, callbacks=list(callbacks), **common)
    trainer.train(resume_from_checkpoint=resume)
    return students, trainer


def test_shared_teacher_pass_gives_each_student_its_own_loss_and_gradients(tiny_artifacts):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, teacher.config.vocab_size, (3, 11), generator=generator)
    labels[0, 7:] = -100
    teacher_hidden = torch.randn(3, 11, 32, generator=generator)
    hiddens = [torch.randn(3, 11, d, generator=generator, requires_grad=True) for d in (8, 16)]
    heads = [torch.randn(teacher.config.vocab_size, d, generator=generator, requires_grad=True) for d in (8, 16)]
    teacher_head = teacher.get_output_embeddings().weight.detach()
    together = multi_student_distillation_loss(hiddens, heads, teacher_hidden, teacher_head, labels, 2.0, 7, 0.3)
    torch.stack([r.loss for r in together]).sum().backward()
    for hidden, head, result in zip(hiddens, heads, together):
        got = (hidden.grad.clone(), head.grad.clone())
        hidden.grad = head.grad = None
        alone = chunked_distillation_loss(hidden, head, teacher_hidden, teacher_head, labels, 2.0, 7, 0.3)
        alone.loss.backward()
        assert alone.loss.item() == result.loss.item() and alone.kl_sum.item() == result.kl_sum.item()
        torch.testing.assert_close(got[0], hidden.grad, rtol=0, atol=0)
        torch.testing.assert_close(got[1], head.grad, rtol=0, atol=0)


@pytest.mark.slow
def test_students_trained_together_match_students_trained_alone(tiny_artifacts, tmp_path):
    together, trainer = run(tiny_artifacts, tmp_path / "sweep", WIDTHS)
    trainer.save_model()
    trainer.create_model_card(dataset_name="tiny blocks")
    logs = [entry for entry in trainer.state.log_history if "w16_grad_norm" in entry]
    # clipping is active, with a different factor per student: a global clip-norm would not reproduce the singles
    assert all(entry["w16_grad_norm"] > 0.05 and entry["w32_grad_norm"] > 0.05 for entry in logs)
    assert logs[0]["w16_grad_norm"] != pytest.approx(logs[0]["w32_grad_norm"], rel=0.05)
    for width, student in zip(WIDTHS, together):
        (alone,), single = run(tiny_artifacts, tmp_path / f"alone{width}", [width])
        for a, b in zip(student.parameters(), alone.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # fp32 round-off (bit-equal here)
        single_logs = [entry for entry in single.state.log_history if "kl" in entry]
        assert [entry[f"w{width}_kl"] for entry in logs] == pytest.approx([e["kl"] for e in single_logs], rel=1e-5)
        single_evals = [entry["eval_loss"] for entry in single.state.log_history if "eval_loss" in entry]
        sweep_evals = [entry[f"eval_w{width}_loss"] for entry in trainer.state.log_history
                       if f"eval_w{width}_loss" in entry]
        assert sweep_evals == pytest.approx(single_evals, rel=1e-5)  # equal-length blocks: same per-token mean
        folder = tmp_path / "sweep" / f"w{width}"
        reloaded = GPTNeoXForCausalLM.from_pretrained(folder)
        for a, b in zip(reloaded.parameters(), student.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        card = (folder / "README.md").read_text()
        assert f"width **{width}**" in card and "sweep-w" in card and "loss floor" in card
        assert "meet the rule (a forecast) | too few evaluations |" in card  # two evaluations fit no curve
    floors = next(c for c in trainer.callback_handler.callbacks if isinstance(c, StudentFloorsCallback))
    assert [len(t.evaluations) for t in floors.trackers.values()] == [2, 2]
    assert floors.trackers["w16"].evaluations != floors.trackers["w32"].evaluations


class CrashAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("simulated crash after the step-3 checkpoint")


@pytest.mark.slow
@pytest.mark.parametrize("streamed", [False, True])
def test_a_crashed_sweep_resumes_where_an_uninterrupted_one_ends(tiny_artifacts, tmp_path, streamed):
    straight, _ = run(tiny_artifacts, tmp_path / "straight", WIDTHS, streamed=streamed)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tiny_artifacts, tmp_path / "crashed", WIDTHS, callbacks=[CrashAfterCheckpoint()], streamed=streamed)
    checkpoint = tmp_path / "crashed" / "checkpoint-3"
    assert (checkpoint / "w16" / "model.safetensors").is_file() and (checkpoint / "w32" / "config.json").is_file()
    resumed, trainer = run(tiny_artifacts, tmp_path / "crashed", WIDTHS, resume=True, streamed=streamed)
    for a, b in zip([p for s in resumed for p in s.parameters()], [p for s in straight for p in s.parameters()]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    floors = next(c for c in trainer.callback_handler.callbacks if isinstance(c, StudentFloorsCallback))
    assert [t.steps for t in floors.trackers.values()] == [[3, 6], [3, 6]]  # one restored, one after the crash
    with pytest.raises(ValueError, match="no student folder w64"):
        run(tiny_artifacts, tmp_path / "crashed", (16, 64), resume=str(checkpoint))


@pytest.mark.slow
def test_the_recipe_trains_a_list_of_widths_under_accelerate_launch_with_two_processes(tiny_artifacts, tmp_path):
    output = tmp_path / "sweep"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), "--main_process_port", str(free_port()),
        str(ROOT / "recipes/distill.py"), str(ROOT / "recipes/tiny/distill.yaml"),
        "--teacher_model_name_or_path", str(tiny_artifacts / "teacher"),
        "--dataset_path", str(tiny_artifacts / "blocks"),
        "--output_dir", str(output), "--width", "16", "32", "--max_steps", "4", "--eval_steps", "2", "--save_steps",
        "100", "--per_device_train_batch_size", "4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_info = json.loads((output / "run_info.json").read_text())
    assert run_info["world_size"] == 2 and run_info["width"] == [16, 32]
    first, second = run_info["parameter_checksums"]  # one row per process, one column per student
    assert first == second and first[0] != first[1]
    assert set(run_info["floor"]) == {"w16", "w32"} and all(v is not None for v in run_info["floor"].values())
    for width in WIDTHS:
        assert GPTNeoXForCausalLM.from_pretrained(output / f"w{width}").config.hidden_size == width
        assert f"width **{width}**" in (output / f"w{width}" / "README.md").read_text()


@pytest.mark.slow
def test_a_student_stops_alone_under_ddp_with_two_processes(tiny_artifacts, tmp_path):
    """One student stops at step 3 while the other trains to step 6: both ranks agree on the stop and on every
    parameter, the stopped student is left as it was at its stop, and the run does not hang on its unused weights."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), "--main_process_port", str(free_port()),
               str(Path(__file__).with_name("stop_ranks.py")), str(tiny_artifacts), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["checksums"] == ranks[1]["checksums"]
    for rank in ranks:
        assert rank["stopped"] == {"w16": 3} and rank["step"] == 6
        (w16_final, w32_final), (w16_at_stop, w32_at_stop) = rank["checksums"], rank["at_step_3"]
        assert w16_final == w16_at_stop and w32_final != w32_at_stop


@pytest.mark.slow
def test_each_student_stops_when_it_converges_as_it_would_alone(tiny_artifacts, tmp_path):
    settings = dict(max_steps=8, eval_steps=1, save_steps=100)
    floors = StudentFloorsCallback(["w16", "w32"], min_evaluations=3, stop_when_converged=True)
    floors.trackers["w16"].tolerance = 1e9  # converged as soon as the rule can judge: stops at step 3
    floors.trackers["w32"].min_evaluations = 10**6  # never judged: trains all 8 steps
    together, trainer = run(tiny_artifacts, tmp_path / "sweep", WIDTHS, callbacks=[floors], **settings)
    assert floors.stopped == {"w16": 3} and trainer.state.global_step == 8
    assert len(floors.trackers["w16"].evaluations) == 3 and len(floors.trackers["w32"].evaluations) == 8
    for width, student, (tolerance, judged) in zip(WIDTHS, together, ((1e9, 3), (0.01, 10**6))):
        alone_floor = LossFloorCallback(tolerance=tolerance, min_evaluations=judged, stop_when_converged=True)
        teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
        alone = build_student(teacher.config, width, seed=width, num_attention_heads=4)
        blocks = load_from_disk(str(tiny_artifacts / "blocks"))
        single = DistillationTrainer(model=alone, teacher_model=teacher,
                                     args=config(tmp_path / f"alone{width}", **settings),
                                     train_dataset=blocks.select(range(48)), eval_dataset=blocks.select(range(64, 80)),
                                     data_collator=causal_lm_collator, callbacks=[alone_floor])
        single.train()
        assert single.state.global_step == (3 if width == 16 else 8)
        for a, b in zip(student.parameters(), alone.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        assert floors.trackers[f"w{width}"].evaluations == pytest.approx(alone_floor.evaluations, rel=1e-5)
