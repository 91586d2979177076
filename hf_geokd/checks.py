"""Argument checks shared by every public function: each failure names the argument and the fix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np


def check_alpha(alpha: float, name: str = "alpha", allow_zero: bool = True) -> float:
    """Return ``alpha`` as a float after checking it is a sparsity in [0, 1) (or (0, 1))."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"{name} must be a real number in (0, 1), got {alpha!r} ({type(alpha).__name__}).")
    value = float(alpha)
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (math.isfinite(value) and low_ok and value < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(
            f"{name} must lie in {interval} (the probability that a feature is inactive), got {alpha!r}. "
            "Compute it as 1 - L0 / n_features."
        )
    return value


def check_width(width: int, name: str = "width") -> int:
    """Return ``width`` as an int after checking it is a positive integer (an integral float such as 128.0 is
    accepted; a bool, a fraction or a string is not)."""
    integral = isinstance(width, numbers.Integral) or (isinstance(width, numbers.Real) and float(width).is_integer())
    if isinstance(width, bool) or not integral or width <= 0:
        raise ValueError(f"{name} must be a positive integer (a hidden size), got {width!r}.")
    return int(width)


def check_positive_int(value: int, name: str) -> int:
    """Return ``value`` as an int after checking it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_contributions(contributions: Sequence[float] | np.ndarray, name: str = "contributions") -> np.ndarray:
    """Return a float64 vector after checking it is non-empty, finite and non-negative."""
    if hasattr(contributions, "detach"):  # a torch tensor
        contributions = contributions.detach().cpu().double().numpy()
    array = np.asarray(contributions, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty: pass one non-negative value per feature.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values: check the activations they were measured on.")
    if np.any(array < 0):
        raise ValueError(f"{name} contains negative values ({array.min():.3g}): contributions are energies, >= 0.")
    return array


def check_paired(
    x: Sequence[float], y: Sequence[float], x_name: str, y_name: str, minimum: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return two finite float64 vectors of equal length >= ``minimum``."""
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    ya = np.asarray(y, dtype=np.float64).reshape(-1)
    if xa.shape != ya.shape:
        raise ValueError(f"{x_name} has {xa.size} values but {y_name} has {ya.size}: pass one of each per width.")
    if xa.size < minimum:
        raise ValueError(f"{x_name} and {y_name} need at least {minimum} points for this fit, got {xa.size}.")
    for array, name in ((xa, x_name), (ya, y_name)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    return xa, ya


def sae_subfolder(sae_id: str | None) -> str | None:
    """The SAE's folder inside a repo or directory, or None for its root.

    The one rule for "no sub-folder": None, ``"."``, ``""`` and ``"/"`` all mean the root (sae-lens writes
    ``sae_id="."`` for files at a repo's root); a trailing slash is dropped. An absolute path (``/etc``) and a ``..``
    part are refused: the folder must lie inside the repo.
    """
    if sae_id is None:
        return None
    if not isinstance(sae_id, str):
        raise ValueError(f"sae_id must be a string (the SAE's folder inside the repo), got {sae_id!r}.")
    folder = sae_id.strip()
    if folder in ("", ".", "/"):
        return None
    parts = PurePosixPath(folder.replace("\\", "/")).parts
    if folder.startswith(("/", "\\", "~")) or ".." in parts:
        raise ValueError(f"sae_id={sae_id!r} points outside the repo: pass the SAE's folder relative to the repo's "
                         "root (e.g. 'gpt_neox.layers.8', or '.' for the root).")
    return PurePosixPath(folder).as_posix()
