"""Distil a teacher into a narrow GPTNeoX student (paper section 6).

    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/distill.py \
        recipes/pythia-410m/distill.yaml --width 128 --output_dir students/pythia-410m-w128

Several widths train in one run with one teacher forward per batch (``--width 128 256 512 768 1024``), each student
in its own folder ``output_dir/w<width>/`` with its own model card.
Every YAML key is a command-line flag; flags after the YAML file override it. ``--streaming true`` streams the
documents (each process its own shards, constant memory); ``--dry_run true`` prints the data plan and drives the data
path without the models (or the hardware: bf16 is not checked).

A rerun in the same ``output_dir`` resumes its latest checkpoint only when the run's settings (``recipe_settings.json``
beside the checkpoints) are the same; other settings are refused by name unless ``--start_over true``. User errors
(a bad value, a missing file, an unreachable Hub) end in one line with exit status 2.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import (
    accumulation_for_global_batch,
    parse_recipe_args,
    peek_recipe_args,
    recipe_argv,
    recipe_errors,
    recipe_token_blocks,
)
from hf_geokd.data import DataPlan, causal_lm_collator, measure_stream, open_documents, stream_token_blocks
from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    LossFloorCallback,
    MultiStudentDistillationTrainer,
    StudentFloorsCallback,
    build_student,
)
from hf_geokd.distill.checkpoints import is_complete, last_complete_checkpoint
from hf_geokd.files import read_json
from hf_geokd.naming import student_name
from hf_geokd.sources import load_pretrained

SETTINGS_FILE = "recipe_settings.json"
# The DistillationConfig fields that change what a run learns: a checkpoint resumes only under the same values.
LEARNING_FIELDS = ("teacher_model_name_or_path", "temperature", "ce_weight", "learning_rate", "weight_decay",
                   "lr_scheduler_type", "warmup_steps", "max_steps", "seed", "max_grad_norm", "optim", "adam_beta1",
                   "adam_beta2", "adam_epsilon", "teacher_dtype", "bf16", "fp16")


@dataclass
class RunArguments:
    global_batch_size: int | None = field(
        default=None,
        metadata={"help": "Sequences per optimizer step over all processes (the paper: 32). Sets "
                          "gradient_accumulation_steps from per_device_train_batch_size and the number of processes."},
    )
    start_over: bool = field(
        default=False,
        metadata={"help": "Train from scratch in an output_dir that holds an earlier run's checkpoints (its "
                          "checkpoint-* folders are removed first). Off: the same settings resume, others are "
                          "refused."},
    )


@dataclass
class FloorArguments:
    floor_tolerance: float = field(
        default=0.01,
        metadata={"help": "Converged when the fitted gain L(t) - L(2t) of L_inf + A t^-b is at most this share of the "
                          "floor (use a constant learning rate after warm-up for the rule to mean anything)."},
    )
    floor_absolute_tolerance: float = field(
        default=0.0,
        metadata={"help": "Also converged when that gain is at most this many nats (0: off). Needed for students whose "
                          "floor tends to 0 (past the critical width, the d_S = d_T control): the relative rule alone "
                          "never converges them."},
    )
    stop_when_converged: bool = field(default=False, metadata={"help": "Stop training once the floor has converged "
                                                                        "(every student, in a sweep)."})


@dataclass
class StudentArguments:
    width: list[int] = field(metadata={"help": "Student hidden size d_S; several widths train together in one run."})
    num_attention_heads: int | None = field(default=None, metadata={"help": "Default: 8 at <= 128, 16 above."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Default: the teacher's."})


@dataclass
class DataArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, streamed."})
    dataset_config: str | None = field(default=None)
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by Dataset.save_to_disk."})
    text_column: str = field(default="text")
    block_size: int = field(default=512)
    train_blocks: int = field(default=32 * 30_000, metadata={"help": "Blocks held in memory (not streaming)."})
    eval_blocks: int = field(default=256)
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream, tokenise and pack the documents lazily, each process its own shards, in constant "
                          "memory (the paper's scale). Off: every block is made in memory before training."},
    )
    num_shards: int = field(default=64, metadata={"help": "Shards of a saved dataset when streaming."})
    dry_run: bool = field(
        default=False,
        metadata={"help": "Print the data plan, drive this process's data path for dry_run_blocks blocks without "
                          "the models (throughput, memory) and stop."},
    )
    dry_run_blocks: int = field(default=2_000)


def token_blocks(data_args: DataArguments, tokenizer, config: DistillationConfig):
    """Training and held-out blocks of ``block_size`` tokens: streamed and sharded across processes, or made in
    memory (saved blocks of another length are cut again to ``block_size``, as the stream does)."""
    if data_args.streaming:
        documents = open_documents(data_args.dataset_name, data_args.dataset_config, data_args.dataset_path)
        train, held_out = stream_token_blocks(documents, tokenizer, data_args.block_size,
                                              text_column=data_args.text_column, num_shards=data_args.num_shards,
                                              held_out=data_args.eval_blocks)
        config.accelerator_config.dispatch_batches = False  # each process reads its own shards, split once
        return train, held_out
    blocks = recipe_token_blocks(
        tokenizer, data_args.block_size, data_args.train_blocks + data_args.eval_blocks,
        dataset_name=data_args.dataset_name, dataset_config=data_args.dataset_config,
        dataset_path=data_args.dataset_path, text_column=data_args.text_column,
    )
    split = blocks.train_test_split(
        test_size=min(data_args.eval_blocks, len(blocks) // 5), seed=config.seed, shuffle=False
    )
    return split["train"], split["test"]


def dry_run(data_args: DataArguments, config: DistillationConfig, train, held_out) -> None:
    """The run's data plan, and this process's share of the stream driven without the models."""
    world, rank = config.world_size, config.process_index
    n_shards = getattr(train, "num_shards", 1)
    plan = DataPlan(data_args.block_size, config.per_device_train_batch_size * config.gradient_accumulation_steps
                    * world, config.max_steps, world, n_shards, len(held_out))
    if data_args.streaming and n_shards >= world:
        train = train.shard(num_shards=world, index=rank)
    report = f"{plan.describe()}\ndata path: {measure_stream(train, data_args.dry_run_blocks).describe()}"
    print("\n".join(f"[rank {rank}] {line}" for line in report.splitlines()))


def parse_arguments(argv: list[str] | None = None):
    """The recipe's arguments; a dry run is parsed without the hardware (bf16 on a machine without a GPU is fine for
    a plan), and output_dir must be given (TrainingArguments would write to ./trainer_output)."""
    argv = recipe_argv(argv)
    if peek_recipe_args(DataArguments, argv).dry_run:
        argv += ["--use_cpu", "true"]
    if "--output_dir" not in argv:
        raise ValueError("set output_dir (a key of the YAML file, or --output_dir): where the students and their "
                         "checkpoints go.")
    student_args, data_args, run_args, floor_args, config = parse_recipe_args(
        (StudentArguments, DataArguments, RunArguments, FloorArguments, DistillationConfig), argv
    )
    if run_args.global_batch_size is not None:
        config.gradient_accumulation_steps = accumulation_for_global_batch(
            run_args.global_batch_size, config.per_device_train_batch_size, config.world_size)
    if config.teacher_model_name_or_path is None:
        raise ValueError("set teacher_model_name_or_path (a repo id or a folder).")
    if len(set(student_args.width)) != len(student_args.width):
        raise ValueError(f"--width lists a width twice ({student_args.width}).")
    if len(student_args.width) > 1 and config.push_to_hub:
        raise ValueError("push_to_hub pushes one student; after a sweep, upload each output_dir/w<width>/ folder to "
                         "its own repo (huggingface-cli upload).")
    return student_args, data_args, run_args, floor_args, config


def run_settings(student_args: StudentArguments, data_args: DataArguments, config: DistillationConfig) -> dict:
    """What the run learns from: its students, data, batch and the learning settings (JSON values)."""
    settings: dict[str, Any] = {
        "width": student_args.width, "num_attention_heads": student_args.num_attention_heads,
        "dataset": [data_args.dataset_name, data_args.dataset_config, data_args.dataset_path],
        "streaming": data_args.streaming, "block_size": data_args.block_size,
        "global_batch_size": config.per_device_train_batch_size * config.gradient_accumulation_steps
        * config.world_size,
        **{name: getattr(config, name) for name in LEARNING_FIELDS},
    }
    return json.loads(json.dumps(settings, default=str))


RESUME_FIXES = ("rerun with its settings to resume it, pass --start_over true to train from scratch there, or choose "
                "another --output_dir")


def resume_point(config: DistillationConfig, settings: dict, start_over: bool) -> str | None:
    """The checkpoint this run resumes (None: from scratch). A folder holding a run with other settings (its
    checkpoints or its finished students), checkpoints of other widths or of an unknown run are refused by name,
    unless ``start_over``."""
    explicit = config.resume_from_checkpoint
    if start_over:
        if explicit is not None:
            raise ValueError("--start_over true and --resume_from_checkpoint contradict each other: pass one.")
        return None
    if explicit is not None and not Path(explicit).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {explicit} does not exist: pass a checkpoint-* folder.")
    if explicit is not None and not is_complete(explicit):
        raise ValueError(f"--resume_from_checkpoint {explicit} has no whole trainer_state.json: its saving was cut "
                         "short (or it is no Trainer checkpoint); pass the checkpoint before it.")
    output = Path(config.output_dir)
    latest = last_complete_checkpoint(output) if explicit is None else None
    checkpoint = Path(explicit or latest) if (explicit or latest) else None
    folder = checkpoint.parent if checkpoint is not None else output
    recorded = folder / SETTINGS_FILE
    if recorded.is_file():
        check_same_settings(recorded, settings)
    elif checkpoint is not None and explicit is None:
        raise ValueError(f"{folder} holds {checkpoint.name} but no {SETTINGS_FILE} saying which run it is of: pass "
                         f"--resume_from_checkpoint {checkpoint} to resume it as it is, or {RESUME_FIXES}.")
    if checkpoint is None:
        return None
    check_widths(checkpoint, settings["width"])
    return str(checkpoint)


def check_same_settings(recorded: Path, settings: dict) -> None:
    """The run recorded in ``recorded`` had these settings; otherwise name the ones that differ."""
    changed = [f"{name} {old!r} (now {settings.get(name)!r})" for name, old in read_json(recorded).items()
               if settings.get(name) != old]
    if changed:
        raise ValueError(f"{recorded.parent} holds a run with other settings: {', '.join(changed)}: {RESUME_FIXES}.")


def check_widths(checkpoint: Path, widths: list[int]) -> None:
    """The checkpoint holds students of exactly these widths (one at its top, or one folder per student)."""
    configs = [checkpoint / "config.json"] if (checkpoint / "config.json").is_file() else sorted(
        checkpoint.glob("*/config.json"))
    found = sorted(read_json(path).get("hidden_size") for path in configs)
    if found != sorted(widths):
        raise ValueError(f"{checkpoint} holds students of width {found}, not {sorted(widths)}: pass --width "
                         f"{' '.join(map(str, found))} to resume it, or choose another --output_dir.")


def prepare_output(config: DistillationConfig, settings: dict, start_over: bool) -> None:
    """Before training, on the main process: remove the checkpoints of a run started over, record the settings."""
    output = Path(config.output_dir)
    if not config.should_save:
        return
    if start_over:
        for checkpoint in output.glob("checkpoint-*"):
            shutil.rmtree(checkpoint)
    output.mkdir(parents=True, exist_ok=True)
    (output / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


@dataclass
class PreparedRun:
    """What a run trains: its arguments, data and models, and the checkpoint it resumes (None: from scratch)."""

    student_args: StudentArguments
    data_args: DataArguments
    floor_args: FloorArguments
    config: DistillationConfig
    tokenizer: Any
    train: Any
    held_out: Any
    teacher: Any
    students: list
    checkpoint: str | None


def setup(argv: list[str] | None = None) -> PreparedRun | None:
    """Everything before training, where a user's mistake is reported in one line: arguments, tokenizer, data,
    models, and the checkpoint to resume. None after a dry run."""
    student_args, data_args, run_args, floor_args, config = parse_arguments(argv)
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained,
                                student_args.tokenizer_name or config.teacher_model_name_or_path)
    train, held_out = token_blocks(data_args, tokenizer, config)
    if data_args.dry_run:
        dry_run(data_args, config, train, held_out)
        return None
    settings = run_settings(student_args, data_args, config)
    checkpoint = resume_point(config, settings, run_args.start_over)
    teacher = load_pretrained(AutoModelForCausalLM.from_pretrained, config.teacher_model_name_or_path)
    students = [
        build_student(teacher.config, width, seed=config.seed, num_attention_heads=student_args.num_attention_heads)
        for width in student_args.width
    ]
    config.distributed_state.wait_for_everyone()  # every process has read the folder before it changes
    prepare_output(config, settings, run_args.start_over)
    config.distributed_state.wait_for_everyone()
    return PreparedRun(student_args, data_args, floor_args, config, tokenizer, train, held_out, teacher, students,
                       checkpoint)


def main(argv: list[str] | None = None) -> None:
    with recipe_errors():
        run = setup(argv)
    if run is None:
        return
    config, widths = run.config, run.student_args.width
    sweep = len(run.students) > 1
    floor_settings = {"tolerance": run.floor_args.floor_tolerance, "absolute_tolerance":
                      run.floor_args.floor_absolute_tolerance, "stop_when_converged":
                      run.floor_args.stop_when_converged}
    trainer = (MultiStudentDistillationTrainer if sweep else DistillationTrainer)(
        model=run.students if sweep else run.students[0],
        teacher_model=run.teacher,
        args=config,
        train_dataset=run.train,
        eval_dataset=run.held_out,
        data_collator=causal_lm_collator,
        callbacks=[(StudentFloorsCallback([student_name(w) for w in widths], **floor_settings) if sweep
                    else LossFloorCallback(**floor_settings))],
    )
    trainer.train(resume_from_checkpoint=run.checkpoint)
    metrics = trainer.evaluate()
    trainer.save_model()
    names = [student_name(width) for width in widths] if sweep else [""]
    for name in names:
        run.tokenizer.save_pretrained(Path(config.output_dir, name))
    checksums = trainer.accelerator.gather(torch.tensor(
        [sum(p.detach().double().sum().item() for p in student.parameters()) for student in run.students]
    )[None]).tolist()
    if trainer.is_world_process_zero():
        info = {
            "width": widths if sweep else widths[0],
            "world_size": trainer.accelerator.num_processes,
            "parameter_checksums": checksums if sweep else [row[0] for row in checksums],
            "floor": ({name: metrics.get(f"eval_{name}_loss_floor") for name in names} if sweep
                      else metrics.get("eval_loss_floor")),
            "metrics": metrics,
        }
        (Path(config.output_dir) / "run_info.json").write_text(json.dumps(info, indent=2))
        trainer.create_model_card(dataset_name=run.data_args.dataset_name or run.data_args.dataset_path)
        if config.push_to_hub:
            trainer.push_to_hub()


if __name__ == "__main__":
    main()
