"""Distil a teacher into a narrow GPTNeoX student (paper section 6).

    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/distill.py \
        recipes/pythia-410m/distill.yaml --width 128 --output_dir students/pythia-410m-w128

Several widths train in one run with one teacher forward per batch (``--width 128 256 512 768 1024``), each student
in its own folder ``output_dir/w<width>/`` with its own model card.
Every YAML key is a command-line flag; flags after the YAML file override it. ``--streaming true`` streams the
documents (each process its own shards, constant memory); ``--dry_run true`` prints the data plan and drives the data
path without the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import accumulation_for_global_batch, parse_recipe_args
from hf_geokd.data import (
    DataPlan,
    causal_lm_collator,
    load_token_blocks,
    measure_stream,
    open_documents,
    stream_token_blocks,
)
from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    LossFloorCallback,
    MultiStudentDistillationTrainer,
    StudentFloorsCallback,
    build_student,
)
from hf_geokd.naming import student_name


@dataclass
class BatchArguments:
    global_batch_size: int | None = field(
        default=None,
        metadata={"help": "Sequences per optimizer step over all processes (the paper: 32). Sets "
                          "gradient_accumulation_steps from per_device_train_batch_size and the number of processes."},
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
    """Training and held-out blocks: streamed and sharded across processes, or made in memory."""
    if data_args.streaming:
        documents = open_documents(data_args.dataset_name, data_args.dataset_config, data_args.dataset_path)
        train, held_out = stream_token_blocks(documents, tokenizer, data_args.block_size,
                                              text_column=data_args.text_column, num_shards=data_args.num_shards,
                                              held_out=data_args.eval_blocks)
        config.accelerator_config.dispatch_batches = False  # each process reads its own shards, split once
        return train, held_out
    blocks = load_token_blocks(
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


def main() -> None:
    student_args, data_args, batch_args, floor_args, config = parse_recipe_args(
        (StudentArguments, DataArguments, BatchArguments, FloorArguments, DistillationConfig)
    )
    if batch_args.global_batch_size is not None:
        try:
            config.gradient_accumulation_steps = accumulation_for_global_batch(
                batch_args.global_batch_size, config.per_device_train_batch_size, config.world_size)
        except ValueError as error:
            raise SystemExit(f"distill.py: {error}") from error
    if config.teacher_model_name_or_path is None:
        raise SystemExit("distill.py: set teacher_model_name_or_path (a repo id or a folder).")
    tokenizer = AutoTokenizer.from_pretrained(student_args.tokenizer_name or config.teacher_model_name_or_path)
    train, held_out = token_blocks(data_args, tokenizer, config)
    if data_args.dry_run:
        dry_run(data_args, config, train, held_out)
        return
    teacher = AutoModelForCausalLM.from_pretrained(config.teacher_model_name_or_path)
    if len(set(student_args.width)) != len(student_args.width):
        raise SystemExit(f"distill.py: --width lists a width twice ({student_args.width}).")
    students = [
        build_student(teacher.config, width, seed=config.seed, num_attention_heads=student_args.num_attention_heads)
        for width in student_args.width
    ]
    sweep = len(students) > 1
    if sweep and config.push_to_hub:
        raise SystemExit("distill.py: push_to_hub pushes one student; after a sweep, upload each output_dir/w<width>/ "
                         "folder to its own repo (huggingface-cli upload).")
    floor_settings = {"tolerance": floor_args.floor_tolerance, "stop_when_converged": floor_args.stop_when_converged,
                      "absolute_tolerance": floor_args.floor_absolute_tolerance}
    trainer = (MultiStudentDistillationTrainer if sweep else DistillationTrainer)(
        model=students if sweep else students[0],
        teacher_model=teacher,
        args=config,
        train_dataset=train,
        eval_dataset=held_out,
        data_collator=causal_lm_collator,
        callbacks=[(StudentFloorsCallback([student_name(w) for w in student_args.width], **floor_settings) if sweep
                    else LossFloorCallback(**floor_settings))],
    )
    checkpoint = config.resume_from_checkpoint
    if checkpoint is None and any(Path(config.output_dir).glob("checkpoint-*")):
        checkpoint = True  # resume the latest checkpoint of an interrupted run
    trainer.train(resume_from_checkpoint=checkpoint)
    metrics = trainer.evaluate()
    trainer.save_model()
    names = [student_name(width) for width in student_args.width] if sweep else [""]
    for name in names:
        tokenizer.save_pretrained(Path(config.output_dir, name))
    checksums = trainer.accelerator.gather(torch.tensor(
        [sum(p.detach().double().sum().item() for p in student.parameters()) for student in students]
    )[None]).tolist()
    if trainer.is_world_process_zero():
        run = {
            "width": student_args.width if sweep else student_args.width[0],
            "world_size": trainer.accelerator.num_processes,
            "parameter_checksums": checksums if sweep else [row[0] for row in checksums],
            "floor": ({name: metrics.get(f"eval_{name}_loss_floor") for name in names} if sweep
                      else metrics.get("eval_loss_floor")),
            "metrics": metrics,
        }
        (Path(config.output_dir) / "run_info.json").write_text(json.dumps(run, indent=2))
        trainer.create_model_card(dataset_name=data_args.dataset_name or data_args.dataset_path)
        if config.push_to_hub:
            trainer.push_to_hub()


if __name__ == "__main__":
    main()
