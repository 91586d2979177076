"""Ctrl-C or SIGTERM in a student run saves a checkpoint at the end of the step; the next invocation resumes it to the
very weights an uninterrupted run reaches."""

import json
import os
import shutil
import signal

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import GPTNeoXForCausalLM, TrainerCallback

from hf_geokd.apps import pipeline
from hf_geokd.apps.pipeline import StopRequested, StudentSettings, distil_students
from hf_geokd.distill import MultiStudentDistillationTrainer, pythia_like_config
from hf_geokd.distill.checkpoints import last_complete_checkpoint

pytestmark = pytest.mark.slow  # twelve small student runs: 13 s on one core shared with another run

WIDTHS = [8, 16]


class SignalAtStep(TrainerCallback):
    def __init__(self, number: int, step: int, times: int = 1) -> None:
        self.number, self.step, self.times = number, step, times

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.number)


@pytest.fixture(autouse=True)
def signals_as_in_a_terminal():
    """SIGINT and SIGTERM as an interactive shell leaves them, whatever started the tests (a background job has SIGINT
    ignored, and a run leaves an ignored signal ignored)."""
    previous = {number: signal.signal(number, handler) for number, handler in
                ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))}
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(pythia_like_config(vocab_size=64, hidden_size=32, max_position_embeddings=16))
    teacher.save_pretrained(tmp_path / "teacher")
    blocks = Dataset.from_dict({"input_ids": torch.randint(0, 64, (48, 16)).tolist()})
    settings = StudentSettings(max_steps=8, batch_size=4, eval_every=2, checkpoint_every=100, eval_blocks=4,
                               floor_tolerance=1e-9, use_cpu=True)

    def distil(folder, monkeypatch=None, callback=None):
        if callback is not None:
            monkeypatch.setattr(pipeline, "MultiStudentDistillationTrainer", lambda *args, callbacks, **kwargs:
                                MultiStudentDistillationTrainer(*args, callbacks=[*callbacks, callback], **kwargs))
        try:
            distil_students(folder, teacher, tmp_path / "teacher", blocks.select(range(40)),
                            blocks.select(range(40, 48)), WIDTHS, settings, "random tokens")
        finally:
            if monkeypatch is not None:
                monkeypatch.undo()

    return tmp_path, distil


def weights(folder, width):
    return load_file(folder / f"w{width}" / "model.safetensors")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_the_next_invocation_resumes_to_the_same_weights(run, monkeypatch, number):
    tmp_path, distil = run
    handler = signal.getsignal(number)
    with pytest.raises(StopRequested, match=rf"{signal.Signals(number).name} at step 3 of the student run; a "
                                            "checkpoint is saved"):
        distil(tmp_path / "stopped", monkeypatch, SignalAtStep(number, step=2))
    assert signal.getsignal(number) is handler  # the run's handler is gone once it stops
    assert [path.name for path in (tmp_path / "stopped").glob("checkpoint-*")] == ["checkpoint-3"]
    assert not (tmp_path / "stopped" / "w8" / "floor.json").exists()
    distil(tmp_path / "stopped")
    distil(tmp_path / "straight")
    for width in WIDTHS:
        resumed, straight = weights(tmp_path / "stopped", width), weights(tmp_path / "straight", width)
        assert all(torch.equal(resumed[name], straight[name]) for name in straight)
        floor = json.loads((tmp_path / "stopped" / f"w{width}" / "floor.json").read_text())
        assert floor["steps_trained"] == 8 and floor["steps"] == [2, 4, 6, 8]
    assert not list((tmp_path / "stopped").glob("checkpoint-*"))


def test_a_second_signal_stops_at_once_and_one_in_the_last_step_stops_after_the_students_are_saved(run, monkeypatch):
    tmp_path, distil = run
    with pytest.raises(KeyboardInterrupt) as stopped:
        distil(tmp_path / "twice", monkeypatch, SignalAtStep(signal.SIGINT, step=2, times=2))
    assert not isinstance(stopped.value, StopRequested) and not list((tmp_path / "twice").glob("checkpoint-*"))
    with pytest.raises(StopRequested, match="SIGINT as the student run finished; every student is saved"):
        distil(tmp_path / "last", monkeypatch, SignalAtStep(signal.SIGINT, step=7))
    assert all((tmp_path / "last" / f"w{width}" / "floor.json").is_file() for width in WIDTHS)


def test_a_signal_the_process_ignores_stays_ignored(run, monkeypatch):
    tmp_path, distil = run
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
    try:
        distil(tmp_path / "ignored", monkeypatch, SignalAtStep(signal.SIGINT, step=2))
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert json.loads((tmp_path / "ignored" / "w8" / "floor.json").read_text())["steps_trained"] == 8


def test_a_checkpoint_whose_saving_was_cut_short_is_skipped_on_resume(run, monkeypatch):
    """A process killed while saving leaves checkpoint-N without trainer_state.json (Trainer writes it last), and
    Trainer cannot resume from it. The run deletes it and resumes from the complete one before it, to the
    uninterrupted weights."""
    tmp_path, distil = run
    with pytest.raises(StopRequested):
        distil(tmp_path / "cut", monkeypatch, SignalAtStep(signal.SIGTERM, step=2))
    partial = tmp_path / "cut" / "checkpoint-6"
    shutil.copytree(tmp_path / "cut" / "checkpoint-3", partial)
    (partial / "trainer_state.json").unlink()
    chosen = []

    def spy(*args, **kwargs):
        chosen.append(last_complete_checkpoint(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(pipeline, "last_complete_checkpoint", spy)
    with pytest.warns(UserWarning, match="checkpoint-6 has no whole trainer_state.json: its saving was cut short, so "
                                         "it is deleted"):
        distil(tmp_path / "cut")
    assert chosen == [str(tmp_path / "cut" / "checkpoint-3")] and not partial.exists()
    distil(tmp_path / "straight")
    for width in WIDTHS:
        resumed, straight = weights(tmp_path / "cut", width), weights(tmp_path / "straight", width)
        assert all(torch.equal(resumed[name], straight[name]) for name in straight)
