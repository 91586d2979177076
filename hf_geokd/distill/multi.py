"""Several students of one teacher in one run (the paper's width sweep): one teacher forward per batch.

Each student gets, per batch, exactly the update it would get trained alone on the same batches with the same seed
and settings: its loss is its own (1 - w) T^2 KL + w CE per valid token (the fused chunked loss, with the teacher's
logits and soft-max computed once per chunk for all students), the students share no parameter, so the gradient of
the summed loss is each student's own gradient; the gradients are clipped student by student (a global clip-norm
would couple students that share nothing); AdamW keeps its moments per parameter, so one optimizer over all students
is one independent optimizer state per student. Checkpoints hold one ``from_pretrained`` folder per student
(``checkpoint-N/w128/``) next to the shared optimizer, scheduler and RNG states, so a crashed run resumes.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.trainer_callback import ExportableState
from transformers.training_args import OptimizerNames

from ..naming import student_name
from .floor import FloorEstimate, LossFloorCallback
from .kl import multi_student_distillation_loss
from .trainer import DistillationConfig, DistillationTrainer, student_card

STUDENTS_FILE = "students.json"


class StudentGroup(nn.Module):
    """Students side by side as one module (what ``Trainer`` and accelerate wrap), ``group.students[name]``.

    ``forward`` returns each student's outputs with its hidden states (the last, after the final norm, is what its
    lm_head consumes) and logits for one position only; the loss is computed from them by the fused chunked KL.
    """

    accepts_loss_kwargs = True  # Trainer passes num_items_in_batch: the loss is normalised by the global token count
    loss_type = "ForCausalLM"  # ... counted, as for a causal LM, over the shifted labels (labels[..., 1:])

    def __init__(self, students: Mapping[str, PreTrainedModel] | Sequence[PreTrainedModel]):
        super().__init__()
        students = _named_students(students)
        for name in students:
            if not isinstance(name, str) or not name or "/" in name or "." in name:
                raise ValueError(f"student name {name!r} must be a non-empty folder name without '/' or '.'.")
        _check_no_shared_parameters(students)
        self.students = nn.ModuleDict(students)
        self.stopped: set[str] = set()  # students whose training has ended (StudentFloorsCallback): not run

    @property
    def names(self) -> list[str]:
        return list(self.students)

    @property
    def active(self) -> list[str]:
        """The students still training, in order."""
        return [name for name in self.students if name not in self.stopped]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs: Any) -> dict[str, CausalLMOutputWithPast]:
        # The outputs keep one position's logits: through them DDP's unused-parameter search reaches every lm_head.
        return {
            name: self.students[name](input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                      logits_to_keep=1, use_cache=False)
            for name in self.active
        }

    def activation_checkpointing_enable(self, **kwargs: Any) -> None:
        for student in self.students.values():
            student.activation_checkpointing_enable(**kwargs)


def _named_students(students: Mapping[str, PreTrainedModel] | Sequence[PreTrainedModel]) -> dict[str, Any]:
    """The students by name (``w<width>`` for a list), each checked to be a model."""
    if isinstance(students, Mapping):
        named = dict(students)
    elif isinstance(students, Sequence) and not isinstance(students, str):
        for index, student in enumerate(students):
            _check_student(student, f"model[{index}]")
        names = [student_name(student.config.hidden_size) for student in students]
        if len(set(names)) != len(names):
            raise ValueError(f"two students have the same width ({names}): pass a dict of names to students.")
        named = dict(zip(names, students))
    else:
        raise ValueError(f"model must be a list of students or a dict of named students, got "
                         f"{type(students).__name__}: for one student, use DistillationTrainer(model=...), or pass "
                         "[student].")
    if not named:
        raise ValueError("StudentGroup needs at least one student.")
    for name, student in named.items():
        _check_student(student, f"student {name!r}")
    return named


def _check_student(student: Any, label: str) -> None:
    """A student is a ``transformers`` model (its config, lm_head and ``save_pretrained`` are used)."""
    if not isinstance(student, PreTrainedModel):
        raise ValueError(f"{label} is {type(student).__name__}, not a transformers model: pass students built with "
                         "hf_geokd.build_student(teacher_config, width).")


def _check_no_shared_parameters(students: Mapping[str, nn.Module]) -> None:
    """Students share no parameter: one module under two names would be trained twice per step."""
    owners: dict[int, str] = {}
    for name, student in students.items():
        for parameter in student.parameters():
            other = owners.setdefault(id(parameter), name)
            if other != name:
                raise ValueError(f"students {other!r} and {name!r} share parameters (the same model passed twice?): "
                                 "a shared parameter would get both students' updates each step. Build one model "
                                 "per student (hf_geokd.build_student).")


class StudentFloorsCallback(TrainerCallback, ExportableState):
    """A :class:`LossFloorCallback` per student: from ``eval_<name>_loss`` it adds ``eval_<name>_loss_floor``,
    ``eval_<name>_loss_asymptote`` and ``eval_<name>_floor_converged`` after each evaluation.

    With ``stop_when_converged=True`` each student stops at the first evaluation that finds it converged, as it would
    trained alone with ``LossFloorCallback(stop_when_converged=True)``: from then on it is neither run nor updated
    (its optimizer state stays as it was), and ``stopped`` records the step; the run ends when every student has
    stopped. Its evaluations and stops are kept in the checkpointed trainer state, so a resumed run keeps counting.
    """

    def __init__(self, names: Sequence[str], fraction: float = 0.1, tolerance: float = 0.01, min_evaluations: int = 5,
                 stop_when_converged: bool = False, histories: Mapping[str, Mapping[str, list]] | None = None,
                 stopped: Mapping[str, int] | None = None, absolute_tolerance: float = 0.0):
        histories = histories or {}
        self.fraction, self.tolerance, self.min_evaluations = fraction, tolerance, min_evaluations
        self.absolute_tolerance = absolute_tolerance
        self.stop_when_converged = stop_when_converged
        self.stopped: dict[str, int] = dict(stopped or {})
        self.trackers = {
            name: LossFloorCallback("eval_loss", fraction, histories.get(name, {}).get("evaluations"),
                                    histories.get(name, {}).get("steps"), tolerance, min_evaluations,
                                    absolute_tolerance=absolute_tolerance)
            for name in names
        }

    def estimates(self) -> dict[str, FloorEstimate | None]:
        """Each student's :class:`FloorEstimate` (None before its first evaluation)."""
        return {name: tracker.estimate() for name, tracker in self.trackers.items()}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if isinstance(model, StudentGroup):  # a resumed run: the students stopped before the crash stay stopped
            model.stopped.update(self.stopped)
        return control

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        for name, tracker in self.trackers.items():
            if not metrics or f"eval_{name}_loss" not in metrics:
                continue
            view = {"eval_loss": metrics[f"eval_{name}_loss"]}
            tracker.on_evaluate(args, state, control, metrics=view)
            for key in ("loss_floor", "loss_asymptote", "floor_converged"):
                metrics[f"eval_{name}_{key}"] = view[f"eval_{key}"]
            if self.stop_when_converged and view["eval_floor_converged"] == 1.0 and name not in self.stopped:
                self.stopped[name] = int(state.global_step)
                if isinstance(model, StudentGroup):
                    model.stopped.add(name)
        if self.stop_when_converged and len(self.stopped) == len(self.trackers):
            control.should_training_stop = True
        return control

    def state(self) -> dict:
        histories = {name: {"evaluations": t.evaluations, "steps": t.steps} for name, t in self.trackers.items()}
        return {"args": {"names": list(self.trackers), "fraction": self.fraction, "tolerance": self.tolerance,
                         "min_evaluations": self.min_evaluations, "stop_when_converged": self.stop_when_converged,
                         "histories": histories, "stopped": self.stopped,
                         "absolute_tolerance": self.absolute_tolerance},
                "attributes": {}}


def _listed_students(folder: Path) -> list[str]:
    """The students an earlier save listed in ``folder/students.json`` whose folders are still there (a partial
    retrain keeps them listed); none when the file is missing or unreadable."""
    try:
        listed = json.loads(Path(folder, STUDENTS_FILE).read_text()).get("students", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in listed if isinstance(name, str) and (folder / name / "config.json").is_file()]


class MultiStudentDistillationTrainer(DistillationTrainer):
    """Distil one teacher into several students in one run: ``model`` is a list of students (named ``w<width>``),
    a dict of named students, or a :class:`StudentGroup`.

    Logs per student ``<name>_kl``, ``<name>_ce``, ``<name>_loss`` and ``<name>_grad_norm`` (before clipping) in
    training and ``eval_<name>_...`` in evaluation; ``loss`` and ``eval_loss`` are the sums over the students still
    training. Adds a :class:`StudentFloorsCallback` unless one is given. ``save_model`` writes one ``from_pretrained``
    folder per student under ``output_dir`` and :meth:`create_model_card` one card in each.
    """

    def __init__(self, model: StudentGroup | Mapping[str, PreTrainedModel] | Sequence[PreTrainedModel],
                 teacher_model: PreTrainedModel, args: DistillationConfig, **kwargs: Any) -> None:
        group = model if isinstance(model, StudentGroup) else StudentGroup(model)
        if isinstance(args, DistillationConfig):
            if args.deepspeed and args.max_grad_norm > 0:
                raise ValueError("DeepSpeed clips all students' gradients as one vector: set max_grad_norm=0 or use "
                                 "DDP/FSDP2, where each student is clipped on its own.")
            if args.load_best_model_at_end:
                raise ValueError("load_best_model_at_end picks one best checkpoint for all students: leave it off "
                                 "and compare each student's eval_<name>_loss.")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(callback, StudentFloorsCallback) for callback in callbacks):
            callbacks.append(StudentFloorsCallback(group.names))
        super().__init__(group, teacher_model, args, callbacks=callbacks, **kwargs)
        self.student_names = group.names
        self._grad_norms: dict[str, float] = {}
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    @staticmethod
    def _students_of(model: StudentGroup) -> dict[str, PreTrainedModel]:
        return {f"student {name!r}": student for name, student in model.students.items()}

    def _resolve_backend(self, backend: str) -> str:
        """Always the chunked loss: its point here is one teacher soft-max per chunk shared by every student, which
        Liger's per-pair kernel cannot share."""
        if backend == "liger":
            warnings.warn("loss_backend='liger' is not used by the multi-student trainer (it shares each chunk's "
                          "teacher soft-max between students): using the chunked loss.", stacklevel=3)
        return "chunked"

    def _group(self, model: nn.Module | None = None) -> StudentGroup:
        return self.accelerator.unwrap_model(model if model is not None else self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "labels" not in inputs:
            raise ValueError("MultiStudentDistillationTrainer needs 'labels' in each batch (use "
                             "DataCollatorForLanguageModeling(mlm=False)).")
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
        hidden = {name: output.hidden_states[-1] for name, output in outputs.items()}
        with torch.no_grad():
            teacher_hidden = self._final_hidden(self.teacher, inputs)
        group = self._group(model)
        heads = [group.students[name].get_output_embeddings().weight for name in hidden]
        teacher_head = self.accelerator.unwrap_model(self.teacher).get_output_embeddings().weight
        first = next(iter(hidden.values()))
        results = multi_student_distillation_loss(
            list(hidden.values()), heads, teacher_hidden.to(first.dtype), teacher_head.to(heads[0].dtype),
            inputs["labels"], self.args.temperature, self.args.kl_chunk_size, self.args.ce_weight, num_items_in_batch,
            compile_core=self.args.kl_compile,
        )
        loss = torch.stack([result.loss for result in results]).sum()  # no shared parameter: each its own gradient
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        mode = "train" if model.training else "eval"
        for name, result in zip(hidden, results):
            tokens = torch.tensor(float(result.n_tokens), device=result.kl_sum.device)
            self._metrics[mode][name].append(torch.stack([result.kl_sum.float(), result.ce_sum.float(), tokens]))
        return (loss, {"hidden_states": hidden}) if return_outputs else loss

    def _clip_grad_norm(self, model) -> torch.Tensor:
        """Clip each student's gradients to ``max_grad_norm`` on its own; return the norm of all (what Trainer logs).

        The same arithmetic as ``Trainer``'s clip of a single student's parameters (the mixed-precision scaler is
        unscaled once, then ``torch.nn.utils.clip_grad_norm_`` per student).
        """
        if self.args.optim in (OptimizerNames.LOMO, OptimizerNames.ADALOMO):
            raise ValueError("LOMO optimizers clip inside their step: use AdamW with MultiStudentDistillationTrainer.")
        self.accelerator.unscale_gradients()
        norms = {}
        group = self._group(model)
        for name in group.active:
            norm = torch.nn.utils.clip_grad_norm_(list(group.students[name].parameters()), self.args.max_grad_norm)
            norms[name] = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        self._grad_norms = {name: float(norm) for name, norm in norms.items()}
        return torch.stack([norm.float() for norm in norms.values()]).norm()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "eval_" if mode == "eval" else ""
        for name in self.student_names:
            collected = self._metrics[mode].pop(name, [])
            if not collected:
                continue
            kl_sum, ce_sum, tokens = (
                self.accelerator.gather_for_metrics(torch.stack(collected).sum(0)[None]).sum(0).tolist()
            )
            kl, ce = kl_sum / max(tokens, 1.0), ce_sum / max(tokens, 1.0)
            logs[f"{prefix}{name}_kl"] = kl
            logs[f"{prefix}{name}_ce"] = ce
            logs[f"{prefix}{name}_loss"] = (1.0 - self.args.ce_weight) * kl + self.args.ce_weight * ce
            if mode == "train" and name in self._grad_norms:
                logs[f"{name}_grad_norm"] = self._grad_norms[name]
        Trainer.log(self, logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """One ``save_pretrained`` folder per student (``output_dir/<name>/``) and ``students.json`` naming them."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        for name, student in self._group().students.items():
            prefix = f"students.{name}."
            own = None if state_dict is None else {
                key.removeprefix(prefix): value for key, value in state_dict.items() if key.startswith(prefix)
            }
            student.save_pretrained(os.path.join(output_dir, name), state_dict=own)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(os.path.join(output_dir, name))
        names = [*_listed_students(Path(output_dir)), *self.student_names]
        Path(output_dir, STUDENTS_FILE).write_text(json.dumps({"students": list(dict.fromkeys(names))}, indent=2))
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Reload every student from its folder of the checkpoint through ``from_pretrained``."""
        for name, student in self._group(model).students.items():
            folder = Path(resume_from_checkpoint, name)
            if not (folder / "config.json").is_file():
                present = sorted(path.name for path in Path(resume_from_checkpoint).iterdir() if path.is_dir())
                raise ValueError(
                    f"{resume_from_checkpoint} has no student folder {name}/ (it holds {present}): resume with the "
                    "students the run was started with, or start a new output_dir."
                )
            reloaded = type(student).from_pretrained(folder, dtype=student.dtype)
            student.load_state_dict(reloaded.state_dict())

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None,
                          tags: str | list[str] | None = None, **kwargs: Any) -> None:
        """Write ``README.md`` into each student's folder (``output_dir/<name>/``), with that student's floor."""
        if not self.is_world_process_zero():
            return
        tracker = next((c for c in self.callback_handler.callbacks if isinstance(c, StudentFloorsCallback)), None)
        estimates = tracker.estimates() if tracker is not None else {}
        base = model_name or self.args.output_dir.rstrip("/").split("/")[-1]
        teacher = self.accelerator.unwrap_model(self.teacher)
        for name, student in self._group().students.items():
            card = student_card(student, teacher, self.args, self.state, estimates.get(name), f"{base}-{name}",
                                dataset_name, tags, kwargs, floor_tracked=tracker is not None)
            Path(self.args.output_dir, name).mkdir(parents=True, exist_ok=True)
            card.save(str(Path(self.args.output_dir, name, "README.md")))
