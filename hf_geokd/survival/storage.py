"""How a ``FeatureSurvival`` lies on disk: ``feature_survival.safetensors`` (per-latent vectors, ``r2.<reader>``) and
``feature_survival.json`` (the rest, with the ``FeatureSurvivalConfig`` it was measured with under ``config``).

Results saved before the config existed (format 1) kept the scoring settings at the top of the json (``threshold``,
``min_firings``, ``min_ceiling``, ``ridge``, ``hook_name``, ``student_hook``) and some measurement settings in
``metadata`` (``held_out``, ``seed``, ``null_students``, ``probe``); they are read into a config, and the settings
that format did not record are listed in ``metadata["unrecorded_settings"]`` (the config shows their defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..files import known_fields, read_json, read_safetensors, require_files
from .config import FeatureSurvivalConfig

SURVIVAL_WEIGHTS_NAME = "feature_survival.safetensors"
SURVIVAL_CONFIG_NAME = "feature_survival.json"
VECTORS = ("latent", "importance", "frequency", "held_out_firings")
R2_PREFIX = "r2."
TOKEN_READER = "token"
SHUFFLED_READER = "shuffled"
FORMAT_1_TOP = ("hook_name", "student_hook", "threshold", "min_firings", "min_ceiling", "ridge")
FORMAT_1_METADATA = ("held_out", "seed", "null_students", "probe")
FORMAT_1_UNRECORDED = ("batch_size", "alive_threshold", "norm_scaling_factor", "probe_epochs", "probe_lr")


def result_tensors(vectors: dict[str, torch.Tensor], r2: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The safetensors file's content: the per-latent vectors and one ``r2.<reader>`` tensor per reader."""
    return {**vectors, **{f"{R2_PREFIX}{reader}": values for reader, values in r2.items()}}


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(vectors, r2 per reader) from the safetensors file; ``ValueError`` naming it when a vector is missing."""
    tensors = read_safetensors(path)
    missing = [name for name in VECTORS if name not in tensors]
    if missing:
        raise ValueError(f"{path} lacks the tensors {', '.join(missing)}: it is not a complete FeatureSurvival file "
                         "(write it again with FeatureSurvival.save).")
    r2 = {name.removeprefix(R2_PREFIX): values for name, values in tensors.items() if name.startswith(R2_PREFIX)}
    return {name: tensors[name] for name in VECTORS}, r2


def _check_readers(scalars: dict[str, Any], r2: dict[str, torch.Tensor], json_path: Path, weights: Path) -> None:
    """The json's ``readers`` list (redundant with the tensors' names) must agree with them when it is there."""
    readers = scalars.pop("readers", None)
    if readers is not None and sorted(readers) != sorted(r2):
        raise ValueError(f"{json_path} lists the readers {sorted(readers)} but {weights} holds R^2 for {sorted(r2)}: "
                         "the two files are not one result (save it again with FeatureSurvival.save).")


def _format_1_config(scalars: dict[str, Any], readers: set[str]) -> dict[str, Any]:
    """Move a format-1 result's settings into a ``config`` mapping (in place); the token control counts in the null
    whenever it was measured, as for a result measured today with the default ``beyond_token=True``."""
    metadata = dict(scalars.get("metadata") or {})
    config = {key: scalars.pop(key) for key in FORMAT_1_TOP if key in scalars}
    config.update({key: metadata.pop(key) for key in FORMAT_1_METADATA if key in metadata})
    if "n_tokens" in metadata:
        config["n_tokens"] = metadata["n_tokens"]
    config.update(shuffled=SHUFFLED_READER in readers, token_baseline=TOKEN_READER in readers,
                  beyond_token=TOKEN_READER in readers)
    metadata["unrecorded_settings"] = list(FORMAT_1_UNRECORDED)
    scalars["metadata"] = metadata
    return config


def _config(data: Any, path: Path) -> FeatureSurvivalConfig:
    """The stored config, unknown keys warned about (a newer version's) and bad values named with the file."""
    settings = known_fields(FeatureSurvivalConfig, data, f"{path} (config)")
    try:
        return FeatureSurvivalConfig(**settings)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def read_result(directory: str | Path, result_class: type) -> dict[str, Any]:
    """The keyword arguments of ``result_class`` (``FeatureSurvival``) saved in ``directory``, in either format.

    Keys the class does not know are ignored with a warning; a missing key, tensor or reader raises ``ValueError``
    naming the file.
    """
    directory = require_files(directory, (SURVIVAL_WEIGHTS_NAME, SURVIVAL_CONFIG_NAME), "FeatureSurvival",
                              "FeatureSurvival.save or measure_feature_survival")
    json_path, weights = directory / SURVIVAL_CONFIG_NAME, directory / SURVIVAL_WEIGHTS_NAME
    scalars = read_json(json_path)
    if not isinstance(scalars, dict):
        raise ValueError(f"{json_path} holds a JSON {type(scalars).__name__}, not an object: it is not a "
                         "FeatureSurvival file.")
    vectors, r2 = _read_tensors(weights)
    _check_readers(scalars, r2, json_path, weights)
    config = scalars.pop("config") if "config" in scalars else _format_1_config(scalars, set(r2))
    return known_fields(result_class, {**scalars, **vectors, "r2": r2, "config": _config(config, json_path)},
                        json_path)


def same_tensors(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Equal shapes and values, NaN equal to NaN."""
    if first.shape != second.shape:
        return False
    equal = first == second
    if first.is_floating_point():
        equal |= torch.isnan(first) & torch.isnan(second)
    return bool(equal.all())
