"""Reading the files hf-geokd and its sources write (JSON, safetensors), with errors that name the file.

A damaged or truncated file raises ``ValueError`` naming its path and the fix, instead of the parser's bare message;
a JSON object with keys this version does not know is read with a warning (a file written by a newer version stays
readable by an older one).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; ``ValueError`` naming the file when it is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the file is damaged or truncated; write or download "
                         "it again.") from error


def read_safetensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors in ``path``; ``ValueError`` naming the file when it is not a safetensors file."""
    path = Path(path)
    try:
        return load_file(str(path), device=device)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error}): the file is damaged or truncated; "
                         "write or download it again.") from error


def write_tensors_and_json(directory: str | Path, tensors: dict[str, torch.Tensor], scalars: dict[str, Any],
                           weights_name: str, config_name: str) -> Path:
    """Write ``tensors`` to ``directory / weights_name`` (safetensors) and ``scalars`` to ``directory / config_name``
    (indented JSON), creating the folder; return it (how FeatureStats and FeatureSurvival are saved)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(directory / weights_name))
    (directory / config_name).write_text(json.dumps(scalars, indent=2) + "\n")
    return directory


def require_files(directory: str | Path, names: tuple[str, ...], kind: str, how: str) -> Path:
    """``directory`` as a Path; ``FileNotFoundError`` naming the missing files when it is not a ``kind`` folder
    (``how``: how to write one)."""
    directory = Path(directory)
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}: it is not a {kind} folder (write one with "
                                f"{how}).")
    return directory


def known_fields(cls: type, data: Any, path: str | Path) -> dict[str, Any]:
    """The items of ``data`` (read from ``path``) that are fields of the dataclass ``cls``, warning about the rest.

    Raises ``ValueError`` naming the file when ``data`` is not an object or lacks a required field.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object: it is not a {cls.__name__} file.")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        warnings.warn(
            f"{path} has keys this version of hf-geokd does not know ({', '.join(unknown)}): ignored them (was it "
            "written by a newer version?).",
            stacklevel=3,
        )
    required = [
        name for name, field in fields.items()
        if field.init and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: it is not a complete {cls.__name__} file.")
    return {key: value for key, value in data.items() if key in fields}
