"""Watching a registered zoo blind: ``geokd zoo --status`` and the score stage's log lines show progress, never a
held-out floor or loss."""

import json

import pytest
import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from hf_geokd.apps.cli import main
from hf_geokd.apps.pipeline import hide_losses
from hf_geokd.apps.zoo import ZooTeacher, zoo_status

HIDDEN_FLOOR = 0.123456


def registered(folder, predicted=(24, 32), control=64):
    folder.mkdir(parents=True)
    (folder / "registration.json").write_text(json.dumps({
        "predicted_widths": list(predicted), "control_width": control,
        "primary": {"predictor": "Eq. 2 (dt_signed, continuous) + Eq. 3"}}))


def student(folder, width, converged=True):
    (folder / "students" / f"w{width}").mkdir(parents=True)
    (folder / "students" / f"w{width}" / "floor.json").write_text(json.dumps(
        {"width": width, "observed_floor": HIDDEN_FLOOR, "converged": converged}))


@pytest.fixture
def zoo(tmp_path):
    out = tmp_path / "zoo"
    (out / "predicting" / "teacher").mkdir(parents=True)
    registered(out / "training")
    student(out / "training", 24)
    (out / "training" / "students" / "checkpoint-400").mkdir()
    (out / "training" / "students" / "checkpoint-400" / "trainer_state.json").write_text("{}")
    (out / "training" / "students" / "checkpoint-800").mkdir()  # cut short while saving: no trainer state
    (out / "training" / "timings.json").write_text(json.dumps([{"stage": "predict", "seconds": 1800.0},
                                                               {"stage": "score", "seconds": None}]))
    registered(out / "scored")
    for width, converged in ((24, True), (32, False), (64, True)):
        student(out / "scored", width, converged)
    (out / "scored" / "scores.json").write_text(json.dumps({"scores": [
        {"predictor": "exponential a e^(-b d) (+ c)", "mare_pct": 9.0},
        {"predictor": "Eq. 2 (dt_signed, continuous) + Eq. 3", "mare_pct": 12.34}]}))
    teachers = [ZooTeacher(name) for name in ("absent", "predicting", "training", "scored")]
    return out, teachers


def test_the_status_counts_progress_and_shows_no_floor_before_scoring(zoo):
    out, teachers = zoo
    table = zoo_status(out, teachers).set_index("teacher")
    assert list(table["stage"]) == ["not started", "predict", "score", "scored"]
    training = table.loc["training"]
    assert (training["students final"], training["converged"], training["checkpoint"]) == (
        "1 of 3", "1 of 1", "step 400 of 16,000")
    assert training["registration"] == "no version control"
    assert training["hours recorded"] == "0.50"  # an untimed invocation (null) adds nothing
    scored = table.loc["scored"]
    assert (scored["students final"], scored["converged"], scored["primary MARE %"]) == ("3 of 3", "2 of 3", "12.3")
    assert str(HIDDEN_FLOOR)[:5] not in table.to_string()


def test_geokd_zoo_status_prints_the_table_and_refuses_a_missing_folder(zoo, tmp_path, capsys):
    out, teachers = zoo
    (tmp_path / "zoo.yaml").write_text(json.dumps({"teachers": [{"name": t.name} for t in teachers]}))
    assert main(["zoo", "--out", str(out), "--teachers", str(tmp_path / "zoo.yaml"), "--status",
                 "--only", "training"]) == 0
    printed = capsys.readouterr().out
    assert "| training | score |" in printed and "scored" not in printed
    assert main(["zoo", "--out", str(tmp_path / "nowhere"), "--teachers", str(tmp_path / "zoo.yaml"),
                 "--status"]) != 0
    assert "holds no zoo yet" in capsys.readouterr().err


class Bar:
    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_hidden_losses_leave_the_printed_lines_and_keep_the_trainer_state(tmp_path, capsys, disable_tqdm):
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, disable_tqdm=disable_tqdm)
    trainer = Trainer(model=torch.nn.Linear(1, 1), args=args)
    hide_losses(trainer)
    kinds = [type(callback) for callback in trainer.callback_handler.callbacks]
    assert ProgressCallback not in kinds and PrinterCallback not in kinds
    bar = Bar()
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, ProgressCallback):
            callback.training_bar = bar
    trainer.log({"loss": 0.4321, "eval_w8_kl": 0.8765, "epoch": 2.0, "eval_runtime": 1.5})
    printed = "".join(bar.lines) + capsys.readouterr().out
    assert "epoch" in printed and "eval_runtime" in printed
    assert "0.4321" not in printed and "0.8765" not in printed and "kl" not in printed
    assert trainer.state.log_history[-1]["eval_w8_kl"] == 0.8765  # the floors' callbacks and checkpoints see it
