"""KL distillation with a ``transformers.Trainer`` subclass (TRL's config + trainer pair).

The loss per valid token is (1 - ce_weight) T^2 KL(teacher_T || student_T) + ce_weight CE(student) (paper
section 6; T = 2 there), computed by :func:`hf_geokd.distill.kl.chunked_distillation_loss` without materialising full
logits, and normalised by the valid tokens of the whole accumulated (and, across processes, gathered) batch, so that
gradient accumulation and multi-process training give the gradients of one large batch.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from huggingface_hub import ModelCard
from transformers import PreTrainedModel, Trainer, TrainerState, TrainingArguments

from ..cards import render_card
from .floor import FloorEstimate, LossFloorCallback
from .kl import chunked_distillation_loss
from .liger import LOSS_BACKENDS, liger_distillation_loss, liger_unavailable

TEACHER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class DistillationConfig(TrainingArguments):
    """``TrainingArguments`` plus the distillation settings (paper Appendix E: T = 2, AdamW 3e-4, cosine, 1,000
    warm-up steps, 32 x 512 tokens, 30,000 steps).

    Args:
        temperature: T of the softened distributions; the KL is multiplied by T^2.
        kl_chunk_size: tokens per chunk of the fused loss (peak logit memory ~ 3 x chunk x vocab x 4 bytes).
        kl_compile: fuse each chunk's soft-max arithmetic with ``torch.compile`` (on a GPU those passes dominate).
        ce_weight: weight w of the student's plain cross-entropy in (1 - w) KL + w CE (0: pure distillation).
        teacher_dtype: dtype of the frozen teacher (``float32``, ``bfloat16`` or ``float16``).
        loss_backend: ``chunked`` (ours, any device) or ``liger`` (Liger's fused linear JSD + cross-entropy kernels,
            CUDA only, ``pip install liger-kernel``; falls back to ``chunked`` with a warning where it cannot run).
        teacher_model_name_or_path: the teacher, for recipes that build everything from the config.
    """

    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T; the KL is scaled by T^2."})
    kl_chunk_size: int = field(default=256, metadata={"help": "Tokens per chunk of the fused KL."})
    ce_weight: float = field(default=0.0, metadata={"help": "w in (1 - w) KL + w CE."})
    kl_compile: bool = field(default=False, metadata={"help": "torch.compile the per-chunk soft-max arithmetic (GPU)."})
    teacher_dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16."})
    loss_backend: str = field(default="chunked", metadata={"help": "chunked (ours) or liger (CUDA, liger-kernel)."})
    teacher_model_name_or_path: str | None = field(default=None, metadata={"help": "Teacher repo id or folder."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluation needs the loss only."})
    include_num_input_tokens_seen: str = field(default="non_padding", metadata={"help": "Count tokens seen."})
    restore_callback_states_from_checkpoint: bool = field(
        default=True, metadata={"help": "Resume LossFloorCallback's evaluations with the run."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.temperature < float("inf"):
            raise ValueError(f"temperature must be a finite number > 0 (the paper uses 2), got {self.temperature}.")
        if self.kl_chunk_size <= 0:
            raise ValueError(f"kl_chunk_size must be a positive number of tokens, got {self.kl_chunk_size}.")
        if not 0.0 <= self.ce_weight <= 1.0:
            raise ValueError(f"ce_weight must lie in [0, 1], got {self.ce_weight}.")
        if self.loss_backend not in LOSS_BACKENDS:
            raise ValueError(f"loss_backend must be one of {LOSS_BACKENDS}, got {self.loss_backend!r}.")
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(f"teacher_dtype must be one of {sorted(TEACHER_DTYPES)}, got {self.teacher_dtype!r}.")


class DistillationTrainer(Trainer):
    """Distil ``teacher_model`` into ``model`` with the fused chunked KL.

    ``compute_loss`` follows ``Trainer``'s signature; the teacher is prepared by accelerate in evaluation mode
    (TRL's pattern). ``kl`` (T^2 KL per token) and ``ce`` (the student's cross-entropy per token) are logged in
    training and evaluation.

    The teacher object you pass is changed in place, as TRL's trainers change theirs: its parameters are frozen
    (``requires_grad_(False)``), it is put in eval mode and cast to ``args.teacher_dtype``. Pass a copy if you
    need the original elsewhere.
    """

    def __init__(self, model: PreTrainedModel, teacher_model: PreTrainedModel, args: DistillationConfig,
                 **kwargs: Any) -> None:
        if not isinstance(args, DistillationConfig):
            raise ValueError("DistillationTrainer needs args=DistillationConfig(...) (it holds the temperature).")
        self._check_models(model, teacher_model)
        super().__init__(model=model, args=args, **kwargs)
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        teacher_model.to(TEACHER_DTYPES[args.teacher_dtype])
        if self.is_deepspeed_enabled:
            self.teacher = self._prepare_deepspeed_teacher(teacher_model)
        else:
            self.teacher = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
        self.loss_backend = self._resolve_backend(args.loss_backend)
        self._metrics: dict[str, dict[str, list[torch.Tensor]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }

    def _resolve_backend(self, backend: str) -> str:
        """The loss backend this run uses: ``liger`` falls back to ``chunked``, with a warning saying why, where
        Liger cannot run."""
        if backend == "liger":
            reason = liger_unavailable(self.args.device)
            if reason is not None:
                warnings.warn(f"loss_backend='liger' falls back to the chunked loss: {reason}.", stacklevel=3)
                return "chunked"
        return backend

    @staticmethod
    def _students_of(model: PreTrainedModel | None) -> dict[str, PreTrainedModel]:
        """The models this trainer trains, by how errors name them (here the one ``model``)."""
        if model is None:
            raise ValueError("model is None: pass the student (hf_geokd.build_student(teacher_config, width)).")
        return {"model": model}

    @classmethod
    def _check_models(cls, model, teacher_model: PreTrainedModel) -> None:
        """A loaded teacher, students that are not the teacher, and the teacher's vocabulary in every student."""
        if not isinstance(teacher_model, PreTrainedModel):
            raise ValueError(f"teacher_model is {type(teacher_model).__name__}, not a loaded transformers model: pass "
                             "AutoModelForCausalLM.from_pretrained(<teacher repo or folder>).")
        teacher_parameters = {id(parameter) for parameter in teacher_model.parameters()}
        for name, student in cls._students_of(model).items():
            if any(id(parameter) in teacher_parameters for parameter in student.parameters()):
                raise ValueError(f"{name} is the teacher (it shares the teacher's parameters, which are frozen): "
                                 "pass a student built with hf_geokd.build_student(teacher.config, width).")
            cls._check_vocabulary(student, teacher_model)

    @staticmethod
    def _check_vocabulary(model: PreTrainedModel, teacher_model: PreTrainedModel) -> None:
        student_vocab = model.get_output_embeddings().weight.shape[0]
        teacher_vocab = teacher_model.get_output_embeddings().weight.shape[0]
        if student_vocab != teacher_vocab:
            raise ValueError(
                f"teacher vocabulary {teacher_vocab} != student vocabulary {student_vocab}: build the student with "
                "hf_geokd.build_student(teacher_config, width), which keeps the teacher's vocabulary."
            )

    def _prepare_deepspeed_teacher(self, teacher: PreTrainedModel):
        import deepspeed

        config = dict(self.accelerator.state.deepspeed_plugin.deepspeed_config)
        if config.get("zero_optimization", {}).get("stage") != 3:
            config["zero_optimization"] = {"stage": 0}
        config.pop("optimizer", None)
        config.pop("scheduler", None)
        engine, *_ = deepspeed.initialize(model=teacher, config=config)
        engine.eval()
        return engine

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Resume, then reload the weights through ``from_pretrained``.

        transformers saves GPTNeoX's ``lm_head`` under its original name ``embed_out.weight``, and ``Trainer``'s
        resume path loads the raw state dict, which leaves ``lm_head`` at its initial values (seen with
        transformers 5.23); ``from_pretrained`` applies the renaming.
        """
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model or self.model)
        reloaded = type(target).from_pretrained(resume_from_checkpoint, dtype=target.dtype)
        target.load_state_dict(reloaded.state_dict())

    @staticmethod
    def _final_hidden(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Final hidden states (after the last norm: what lm_head consumes), with logits kept for one position only."""
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            output_hidden_states=True,
            logits_to_keep=1,
            use_cache=False,
        )
        return outputs.hidden_states[-1]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "labels" not in inputs:
            raise ValueError(
                "DistillationTrainer needs 'labels' in each batch (use DataCollatorForLanguageModeling(mlm=False))."
            )
        student_hidden = self._final_hidden(model, inputs)
        with torch.no_grad():
            teacher_hidden = self._final_hidden(self.teacher, inputs)
        student_head = self.accelerator.unwrap_model(model).get_output_embeddings().weight
        teacher_head = self.accelerator.unwrap_model(self.teacher).get_output_embeddings().weight
        if self.loss_backend == "liger":
            result = liger_distillation_loss(student_hidden, student_head, teacher_hidden, teacher_head,
                                             inputs["labels"], self.args.temperature, self.args.ce_weight,
                                             num_items_in_batch)
        else:
            result = chunked_distillation_loss(
                student_hidden,
                student_head,
                teacher_hidden.to(student_hidden.dtype),
                teacher_head.to(student_head.dtype),
                inputs["labels"],
                self.args.temperature,
                self.args.kl_chunk_size,
                self.args.ce_weight,
                num_items_in_batch,
                compile_core=self.args.kl_compile,
            )
        loss = result.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        mode = "train" if model.training else "eval"
        sums = torch.stack(
            [
                result.kl_sum.float(),
                result.ce_sum.float(),
                torch.tensor(float(result.n_tokens), device=result.kl_sum.device),
            ]
        )
        self._metrics[mode]["sums"].append(sums.detach())
        return (loss, {"hidden_states": student_hidden}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        collected = self._metrics[mode].pop("sums", [])
        if collected:
            kl_sum, ce_sum, tokens = (
                self.accelerator.gather_for_metrics(torch.stack(collected).sum(0)[None]).sum(0).tolist()
            )
            prefix = "eval_" if mode == "eval" else ""
            logs[f"{prefix}kl"] = kl_sum / max(tokens, 1.0)
            logs[f"{prefix}ce"] = ce_sum / max(tokens, 1.0)
        super().log(logs, start_time)

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write ``README.md`` into ``output_dir`` from the ``student`` card template: teacher, width, temperature,
        tokens seen, floor.

        ``tags`` are merged with the model's own ``model_tags`` and ``distillation`` (as TRL's trainers do); other
        keyword arguments (``license``, ``language``, ``base_model``, ...) go into the card's metadata.
        """
        if not self.is_world_process_zero():
            return
        tracker = next((c for c in self.callback_handler.callbacks if isinstance(c, LossFloorCallback)), None)
        card = student_card(
            self.accelerator.unwrap_model(self.model), self.accelerator.unwrap_model(self.teacher), self.args,
            self.state, tracker.estimate() if tracker is not None else None,
            model_name or self.args.output_dir.rstrip("/").split("/")[-1], dataset_name, tags, kwargs,
            floor_tracked=tracker is not None,
        )
        card.save(f"{self.args.output_dir}/README.md")


def student_card(student: PreTrainedModel, teacher: PreTrainedModel, args: DistillationConfig, state: TrainerState,
                 estimate: FloorEstimate | None, model_name: str, dataset_name: str | None = None,
                 tags: str | list[str] | None = None, card_data: dict[str, Any] | None = None,
                 floor_tracked: bool = False) -> ModelCard:
    """The ``student`` card of one distilled student: teacher, width, temperature, tokens seen, floor.

    ``floor_tracked``: a floor callback watched the run, so a missing ``estimate`` means no evaluation ran.
    """
    tag_set = {tags} if isinstance(tags, str) else set(tags or [])
    tag_set.update(getattr(student, "model_tags", None) or [])
    tag_set.add("distillation")
    return render_card(
        "student",
        tags=sorted(tag_set),
        card_data=card_data,
        model_name=model_name,
        teacher=args.teacher_model_name_or_path or teacher.config.name_or_path or "a local teacher",
        width=student.config.hidden_size,
        teacher_width=teacher.config.hidden_size,
        parameters=student.num_parameters(),
        temperature=args.temperature,
        ce_weight=args.ce_weight,
        tokens_seen=state.num_input_tokens_seen,
        steps=state.global_step,
        estimate=estimate,
        floor_tracked=floor_tracked,
        dataset=dataset_name,
    )
