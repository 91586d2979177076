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
