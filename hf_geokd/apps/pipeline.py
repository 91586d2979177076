"""The stages the demo and the teacher zoo share, each resumable from the files it leaves in a run folder:

corpus -> tokenizer + blocks -> teacher (``transformers.Trainer``) -> students of several widths distilled in one
``MultiStudentDistillationTrainer`` run, each to the convergence rule (``students/w<width>/floor.json``) -> feature
survival of each student (``survival/d_S=<width>/``).

A stage whose output exists is read, not run again. A student that did not converge is trained again from its start
when a later invocation allows more steps (the same steps repeat exactly, then it goes on); its survival, measured on
the weights it had, is then removed so that it is measured again. An invocation may be given a deadline, and may be
stopped with Ctrl-C (SIGINT) or SIGTERM: the student run then saves a checkpoint at the end of the step and stops, and
the next invocation resumes from it.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import (
    AutoTokenizer,
    GPTNeoXForCausalLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..data import blocks_dataset, causal_lm_collator, train_bpe_tokenizer
from ..distill import (
    DistillationConfig,
    MultiStudentDistillationTrainer,
    StudentFloorsCallback,
    build_student,
    pythia_like_config,
    steps_to_converge,
)
from ..distill.checkpoints import last_complete_checkpoint
from ..naming import student_label, student_name
from ..stop_signals import stop_signal_handlers
from ..survival import FeatureSurvival, FeatureSurvivalConfig, measure_feature_survival
from ..survival.result import SURVIVAL_CONFIG_NAME

FLOOR_FILE = "floor.json"
RUN_MARKER = "geokd_run.json"


class DeadlineReached(Exception):
    """An invocation's time limit passed: what is done is saved, the next invocation continues from it."""


class StopRequested(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped an invocation: what is done is saved, the next invocation continues from
    it. A ``KeyboardInterrupt``, so that whatever stops on Ctrl-C stops on it."""


def claim_folder(out: Path, kind: str) -> None:
    """Make ``out`` a run folder of ``kind`` (``demo``, ``zoo``), or refuse a non-empty folder that another command
    or project wrote: nothing there is overwritten. The claim is a small marker file (``geokd_run.json``)."""
    marker = out / RUN_MARKER
    if marker.is_file():
        claimed = json.loads(marker.read_text()).get("kind")
        if claimed != kind:
            raise FileExistsError(f"{out} is a `geokd {claimed}` folder, not a `geokd {kind}` one: pass another --out.")
        return
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file: pass a folder (new, or one this command wrote).")
    if out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} is not empty and was not written by `geokd {kind}`: its files would be "
                              "overwritten. Pass a new folder (or one this command wrote).")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"kind": kind}) + "\n")


def tokenizer_and_blocks(documents: list[str], teacher_dir: Path, vocab_size: int, block_size: int,
                         held_out_share: float = 0.1):
    """(tokenizer, train blocks, held-out blocks): the last ``held_out_share`` of the documents (at least one) is
    held out; the tokenizer is the teacher's when it exists, else a byte-level BPE trained on the training part."""
    held_out = max(1, int(len(documents) * held_out_share))
    train_documents, test_documents = documents[:-held_out], documents[-held_out:]
    if (teacher_dir / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    else:
        tokenizer = train_bpe_tokenizer(train_documents, vocab_size)
    return (tokenizer, blocks_dataset(train_documents, tokenizer, block_size),
            blocks_dataset(test_documents, tokenizer, block_size))


@dataclass
class TeacherSettings:
    """A Pythia-shaped teacher and how long it is trained (AdamW, lr 3e-3, cosine, 20 warm-up steps)."""

    hidden: int
    layers: int
    heads: int
    steps: int
    batch_size: int
    block_size: int
    seed: int = 0
    use_cpu: bool = not torch.cuda.is_available()


def train_teacher(folder: Path, settings: TeacherSettings, tokenizer, train, test) -> GPTNeoXForCausalLM:
    """The teacher saved in ``folder`` (with its tokenizer and ``eval.json``), trained first when absent."""
    if (folder / "model.safetensors").is_file():
        return GPTNeoXForCausalLM.from_pretrained(folder)
    torch.manual_seed(settings.seed)
    model = GPTNeoXForCausalLM(pythia_like_config(len(tokenizer), settings.hidden, settings.layers, settings.heads,
                                                  max_position_embeddings=settings.block_size))
    args = TrainingArguments(output_dir=str(folder.parent / f"{folder.name}-run"), max_steps=settings.steps,
                             per_device_train_batch_size=settings.batch_size, learning_rate=3e-3, warmup_steps=20,
                             lr_scheduler_type="cosine", weight_decay=0.01, logging_steps=50, save_strategy="no",
                             report_to=[], use_cpu=settings.use_cpu, seed=settings.seed)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test.select(range(min(64, len(test)))),
                      data_collator=causal_lm_collator)
    trainer.train()
    metrics = trainer.evaluate()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "eval.json").write_text(json.dumps(metrics, indent=2))
    shutil.rmtree(args.output_dir, ignore_errors=True)
    return model


@dataclass
class StudentSettings:
    """How students are distilled: at a constant learning rate after 20 warm-up steps (the convergence rule of
    :func:`~hf_geokd.distill.estimate_floor` is meaningful only at a constant rate) until the fitted gain over another
    doubling of the steps is below ``floor_tolerance`` of the floor (or ``floor_absolute_tolerance`` nats, when
    > 0), or ``max_steps``; evaluated every ``eval_every`` steps on ``eval_blocks`` held-out blocks, checkpointed
    every ``checkpoint_every`` steps."""

    max_steps: int
    batch_size: int
    lr: float = 3e-3
    eval_every: int = 40
    checkpoint_every: int = 400
    eval_blocks: int = 48
    floor_tolerance: float = 0.01
    floor_absolute_tolerance: float = 0.0
    temperature: float = 2.0
    seed: int = 0
    teacher_heads: int = 4
    use_cpu: bool = not torch.cuda.is_available()

    def heads(self, width: int) -> int:
        """The teacher's head count when it divides the width, else one head."""
        return self.teacher_heads if width % self.teacher_heads == 0 else 1


class _StopEarly(TrainerCallback):
    """Save a checkpoint and stop the run at the end of the current step once ``deadline`` (a time.time() value;
    None: none) has passed, or once SIGINT (Ctrl-C) or SIGTERM has arrived while :meth:`catching_signals` is active.
    A second signal stops at once (``KeyboardInterrupt``), as Ctrl-C does anywhere else."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.reached = False  # the deadline stopped the run
        self.signal: str | None = None  # the signal that asked the run to stop

    def catching_signals(self):
        """SIGINT and SIGTERM ask the run to stop while inside (:func:`~hf_geokd.stop_signals.stop_signal_handlers`:
        an ignored signal stays ignored, and the handlers are put back afterwards)."""
        return stop_signal_handlers(self._on_signal)

    def _on_signal(self, number: int, _frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(number).name
        print(f"\n[geokd] {self.signal}: saving a checkpoint at the end of this step, then stopping (send it again "
              "to stop at once)", file=sys.stderr, flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.signal is not None or (self.deadline is not None and time.time() >= self.deadline):
            self.reached = self.signal is None
            control.should_save = control.should_training_stop = True
        return control


class _WithoutMetrics:
    """A log printer that leaves out every loss and metric: only the epoch, the tokens seen and the timings."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        shown = {key: value for key, value in (logs or {}).items()
                 if key in ("epoch", "num_input_tokens_seen") or key.endswith(("runtime", "per_second"))}
        return super().on_log(args, state, control, logs=shown, **kwargs)


class _BlindProgress(_WithoutMetrics, ProgressCallback):
    """Trainer's progress bar, its log lines without losses."""


class _BlindPrinter(_WithoutMetrics, PrinterCallback):
    """Trainer's log printer (``disable_tqdm``), without losses."""


def hide_losses(trainer: Trainer) -> None:
    """Replace the trainer's log printer by one that prints no loss or metric (the trainer state, its checkpoints
    and every callback still get them all): a registered run can be watched without seeing the floors it is about
    to score."""
    for printer, blind in ((ProgressCallback, _BlindProgress), (PrinterCallback, _BlindPrinter)):
        if trainer.pop_callback(printer) is not None:
            trainer.add_callback(blind())


def student_floor_file(folder: Path, width: int) -> Path:
    return folder / student_name(width) / FLOOR_FILE


def finished(floor_file: Path, max_steps: int) -> bool:
    """Whether a student's floor is final: it converged, or it already had ``max_steps``."""
    if not floor_file.is_file():
        return False
    floor = json.loads(floor_file.read_text())
    if floor["converged"] or floor["steps_trained"] >= max_steps:
        return True
    print(f"[geokd] d_S = {floor['width']} did not converge in {floor['steps_trained']:,} steps: training it again, "
          f"up to {max_steps:,} steps", flush=True)
    return False


def distil_students(folder: Path, teacher, teacher_dir: Path, train, test, widths: list[int],
                    settings: StudentSettings, dataset_name: str, deadline: float | None = None,
                    survival_dir: Path | None = None, show_losses: bool = True) -> None:
    """Distil every width of ``widths`` whose floor is not final, in one ``MultiStudentDistillationTrainer`` run
    (one teacher forward per batch for all), each stopped when it converges; write ``<folder>/w<width>/``, its
    ``floor.json`` and its model card (``dataset_name``: what the card says it was distilled on). A retrained
    student's survival result under ``survival_dir`` is removed (it described the old weights). Raises
    :class:`DeadlineReached` when ``deadline`` stops the run first, :class:`StopRequested` when Ctrl-C or SIGTERM
    does (a checkpoint is kept; a signal in the last step stops once every student is saved). ``show_losses=False``
    prints the run's log lines without any loss (:func:`hide_losses`)."""
    todo = [width for width in widths if not finished(student_floor_file(folder, width), settings.max_steps)]
    if not todo:
        return
    if survival_dir is not None:
        for width in todo:
            shutil.rmtree(survival_dir / student_label(width), ignore_errors=True)
    students = [build_student(teacher.config, width, seed=settings.seed, num_attention_heads=settings.heads(width))
                for width in todo]
    args = DistillationConfig(
        output_dir=str(folder), max_steps=settings.max_steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.lr, warmup_steps=20, lr_scheduler_type="constant_with_warmup", eval_strategy="steps",
        eval_steps=settings.eval_every, logging_steps=settings.eval_every, save_strategy="steps",
        save_steps=settings.checkpoint_every, save_total_limit=1, report_to=[], temperature=settings.temperature,
        use_cpu=settings.use_cpu, seed=settings.seed, teacher_model_name_or_path=str(teacher_dir),
    )
    floors = StudentFloorsCallback([student_name(width) for width in todo], tolerance=settings.floor_tolerance,
                                   absolute_tolerance=settings.floor_absolute_tolerance, stop_when_converged=True)
    stop = _StopEarly(deadline)
    callbacks = [floors, stop]
    eval_set = test.select(range(min(settings.eval_blocks, len(test))))
    trainer = MultiStudentDistillationTrainer(model=students, teacher_model=teacher, args=args, train_dataset=train,
                                              eval_dataset=eval_set, data_collator=causal_lm_collator,
                                              callbacks=callbacks)
    if not show_losses:
        hide_losses(trainer)
    checkpoint = last_complete_checkpoint(folder, remove_incomplete=True)
    with stop.catching_signals():
        trainer.train(resume_from_checkpoint=checkpoint)
    where = f"step {trainer.state.global_step:,} of the student run"
    if stop.signal and trainer.state.global_step < settings.max_steps:
        raise StopRequested(f"{stop.signal} at {where}; a checkpoint is saved: run the same command again to "
                            "continue")
    if stop.reached and trainer.state.global_step < settings.max_steps:
        raise DeadlineReached(f"time limit reached at {where}")
    trainer.save_model()
    trainer.create_model_card(dataset_name=dataset_name)
    # a resumed run replaces the callback with one rebuilt from the checkpoint's state
    floors = next(callback for callback in trainer.callback_handler.callbacks
                  if isinstance(callback, StudentFloorsCallback))
    for width, student in zip(todo, students):
        _write_floor(folder, width, student, floors, trainer)
    for checkpoint in folder.glob("checkpoint-*"):  # every student is saved and has its floor.json
        shutil.rmtree(checkpoint)
    if stop.signal:
        raise StopRequested(f"{stop.signal} as the student run finished; every student is saved: run the same "
                            "command again to continue")


def _write_floor(folder: Path, width: int, student, floors: StudentFloorsCallback, trainer) -> None:
    name = student_name(width)
    tracker = floors.trackers[name]
    estimate = tracker.estimate()
    ce = [entry[f"eval_{name}_ce"] for entry in trainer.state.log_history if f"eval_{name}_ce" in entry]
    row = {"width": width, "parameters": student.num_parameters(), "observed_floor": estimate.floor,
           "asymptote": estimate.asymptote, "asymptote_low": estimate.asymptote_low,
           "asymptote_high": estimate.asymptote_high, "converged": estimate.converged,
           "steps_trained": floors.stopped.get(name, int(trainer.state.global_step)), "reason": estimate.reason,
           "eval_ce": float(np.mean(ce[-max(1, len(ce) // 10):])), "evaluations": estimate.evaluations,
           "amplitude": estimate.amplitude, "exponent": estimate.exponent,
           "steps": tracker.steps, "losses": tracker.evaluations}
    (folder / name / FLOOR_FILE).write_text(json.dumps(row, indent=1))


def student_table(folder: Path, widths: list[int], settings: StudentSettings, train_blocks: int
                  ) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """The students' floors (one row per width, with ``steps_to_converge`` and ``data_passes``) and their curves
    (for :func:`~hf_geokd.reporting.plots.plot_floor_curves`)."""
    rows, curves = [], {}
    for width in widths:
        row = json.loads(student_floor_file(folder, width).read_text())
        row["steps_to_converge"] = steps_to_converge(row["amplitude"], row["exponent"], row["asymptote"],
                                                     settings.floor_tolerance, settings.floor_absolute_tolerance)
        row["data_passes"] = round(row["steps_trained"] * settings.batch_size / train_blocks, 1)
        curves[student_label(width)] = (row.pop("steps"), row.pop("losses"), row["asymptote"], row.pop("amplitude"),
                                        row.pop("exponent"), row["converged"])
        rows.append(row)
    return pd.DataFrame(rows), curves


def student_survival(folder: Path, students_dir: Path, teacher, sae_loader, test, widths: list[int],
                     n_tokens: int, batch_size: int) -> list[FeatureSurvival]:
    """Which teacher SAE latents each student still carries; a student measured by an earlier invocation
    (``<folder>/d_S=<width>/``) is loaded, not measured again. ``sae_loader()`` gives the SAE, called only when a
    student is still to measure."""
    sae = None
    results = []
    for width in widths:
        saved = folder / student_label(width)
        if (saved / SURVIVAL_CONFIG_NAME).is_file():
            results.append(FeatureSurvival.load(saved))
            continue
        if sae is None:
            sae = sae_loader()
        student = GPTNeoXForCausalLM.from_pretrained(students_dir / student_name(width))
        settings = FeatureSurvivalConfig(n_tokens=n_tokens, batch_size=batch_size)
        results.append(measure_feature_survival(teacher, sae, student, test, settings, progress=False))
    return results
