"""Recipe plumbing in the alignment-handbook style: ``script.py config.yaml --key value`` (CLI overrides YAML)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser


def yaml_to_argv(path: str | Path) -> list[str]:
    """Turn a flat YAML mapping into ``--key value`` arguments (lists become several values)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe config {path} does not exist.")
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values.")
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        argv.extend(str(item) for item in value) if isinstance(value, list) else argv.append(str(value))
    return argv


def parse_recipe_args(dataclass_types: tuple[type, ...], argv: list[str] | None = None) -> tuple[Any, ...]:
    """Parse ``[config.yaml] [--key value ...]`` into the given dataclasses; later values override earlier ones."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = yaml_to_argv(argv[0]) + argv[1:]
    return HfArgumentParser(dataclass_types).parse_args_into_dataclasses(args=argv)


def accumulation_for_global_batch(global_batch_size: int, per_device_batch_size: int, world_size: int) -> int:
    """Gradient-accumulation steps that make ``per_device x processes x steps`` equal the global batch.

    Recipes state the batch of the run (the paper's 32 sequences) rather than one device's, so that the same YAML
    trains on one GPU or eight without changing what is learned; a global batch the processes cannot split evenly
    is refused rather than silently rounded.
    """
    per_step = per_device_batch_size * world_size
    if global_batch_size <= 0 or per_device_batch_size <= 0:
        raise ValueError(f"global_batch_size ({global_batch_size}) and per_device_train_batch_size "
                         f"({per_device_batch_size}) must be positive.")
    if global_batch_size % per_step:
        raise ValueError(
            f"global_batch_size={global_batch_size} is not a multiple of per_device_train_batch_size="
            f"{per_device_batch_size} x {world_size} processes = {per_step}: change per_device_train_batch_size "
            "or the number of processes."
        )
    return global_batch_size // per_step
