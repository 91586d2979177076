"""Recipe plumbing in the alignment-handbook style: ``script.py config.yaml --key value`` (CLI overrides YAML), the
token blocks a recipe trains on, and user errors as one line with exit status 2 (as the ``geokd`` commands do)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from datasets import Dataset
from transformers import HfArgumentParser

from ..data import load_token_blocks, pack_blocks

# transformers' messages about the hardware, and the flag that fixes each on this machine.
HARDWARE_HINTS = {"doesn't support bf16": "set --bf16 false to train in float32 without a GPU"}


def yaml_to_argv(path: str | Path) -> list[str]:
    """Turn a flat YAML mapping into ``--key value`` arguments (lists become several values, mappings JSON)."""
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
        if isinstance(value, list):
            argv.extend(str(item) for item in value)
        else:
            argv.append(json.dumps(value) if isinstance(value, dict) else str(value))
    return argv


def recipe_argv(argv: list[str] | None = None) -> list[str]:
    """``[config.yaml] [--key value ...]`` (default: the command line) as flags, the YAML's first."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = yaml_to_argv(argv[0]) + argv[1:]
    return argv


def peek_recipe_args(dataclass_type: type, argv: list[str]) -> Any:
    """The fields of one dataclass among a recipe's flags, the other flags left alone (to decide how to parse)."""
    return HfArgumentParser(dataclass_type).parse_args_into_dataclasses(args=argv, return_remaining_strings=True)[0]


def parse_recipe_args(dataclass_types: tuple[type, ...], argv: list[str] | None = None, *,
                      defaults: Mapping[str, Any] | None = None,
                      reserved: Mapping[str, str] | None = None) -> tuple[Any, ...]:
    """Parse ``[config.yaml] [--key value ...]`` into the given dataclasses; later values override earlier ones.

    Args:
        defaults: the recipe's own defaults for fields of the dataclasses (e.g. the device it trains on).
        reserved: flags the recipe sets itself, each with what sets it: giving one is an error, not ignored.

    Raises:
        ValueError: a reserved flag is given, or a dataclass refuses a value (named, with a hint for the hardware
            errors of ``TrainingArguments``).
    """
    argv = recipe_argv(argv)
    for flag, owner in (reserved or {}).items():
        if f"--{flag}" in argv:
            raise ValueError(f"--{flag} is set by this recipe ({owner}): leave it out.")
    parser = HfArgumentParser(dataclass_types)
    parser.set_defaults(**(defaults or {}))
    try:
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:
        hints = [hint for message, hint in HARDWARE_HINTS.items() if message in str(error)]
        raise ValueError(" ".join([str(error), *hints])) from error


def fail(message: str) -> NoReturn:
    """End a recipe on a user error: one line naming the script, exit status 2."""
    print(f"{Path(sys.argv[0]).name}: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


@contextmanager
def recipe_errors() -> Iterator[None]:
    """Report the user errors of a recipe's setup (bad values, missing or damaged files, an unreachable Hub) as one
    line with exit status 2 instead of a traceback."""
    try:
        yield
    except (ValueError, OSError) as error:
        fail(str(error))


def recipe_token_blocks(tokenizer, block_size: int, n_blocks: int, **source: Any) -> Dataset:
    """``n_blocks`` blocks of exactly ``block_size`` tokens from ``load_token_blocks``'s sources.

    Saved token blocks of another length are cut again into ``block_size`` blocks (as the streaming path packs them),
    so that the run trains on the blocks its plan counts.
    """
    blocks = load_token_blocks(tokenizer, block_size, n_blocks, **source)
    saved = len(blocks[0]["input_ids"])
    if saved == block_size and all(len(row) == block_size for row in blocks["input_ids"]):
        return blocks
    needed = -(-n_blocks * block_size // saved) + 1  # saved blocks that hold n_blocks of block_size
    rows = load_token_blocks(tokenizer, block_size, max(needed, n_blocks), **source)["input_ids"]
    packed = pack_blocks(rows, block_size, n_blocks)
    if not packed:
        raise ValueError(f"the saved blocks hold fewer than {block_size} tokens in all: lower the block size.")
    print(f"saved blocks of {saved} tokens cut into {len(packed):,} blocks of {block_size}", flush=True)
    return Dataset.from_dict({"input_ids": packed})


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
