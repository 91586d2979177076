"""Where an artifact comes from: a local folder or a Hub repo id, and one clear error for each way that fails.

A source that exists on disk is a local folder. One that does not is a Hub repo id only when it has a repo id's form
(``name`` or ``owner/name``); anything else (``./out``, ``runs/a/b``, ``~/x``) is a local path that does not exist,
and is named as such instead of failing the Hub's repo id validation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from huggingface_hub.errors import (
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

# What the Hub client raises when a repo cannot be read at all (not: a file missing from a repo that exists).
HUB_UNREACHABLE = (RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled)
Loaded = TypeVar("Loaded")


def local_folder(source: str | Path) -> Path | None:
    """The folder ``source`` names when it exists on disk, None when it is a Hub repo id.

    Raises ``NotADirectoryError`` for an existing file and ``FileNotFoundError`` for a path that neither exists nor
    has a repo id's form.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{source} is a file: pass the folder that holds it.")
    if isinstance(source, Path) or str(source).startswith((".", "/", "~")):
        raise FileNotFoundError(f"{source} does not exist: check the path.")
    try:
        validate_repo_id(str(source))
    except HFValidationError as error:
        raise FileNotFoundError(
            f"{source} does not exist, and it is not a Hub repo id ('name' or 'owner/name'): check the path."
        ) from error
    return None


def hub_error(source: str, error: Exception) -> FileNotFoundError:
    """The error to raise (from ``error``) when the Hub repo ``source`` cannot be read."""
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        reason = ("the Hub cannot be reached (offline: HF_HUB_OFFLINE is set, or no connection) and the repo is not "
                  "in the local cache")
    elif isinstance(error, RevisionNotFoundError):
        reason = "the Hub repo has no such revision"
    else:
        reason = "the Hub has no repo of that name (or it is private or gated: log in with `hf auth login`)"
    return FileNotFoundError(f"{source} is not a local folder, and {reason}.")


def hub_cause(error: BaseException) -> BaseException | None:
    """The Hub client's error behind ``error`` (transformers wraps it in an ``OSError``), or None when there is none."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, HUB_UNREACHABLE):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def load_pretrained(loader: Callable[..., Loaded], source: str | Path, **kwargs: Any) -> Loaded:
    """``loader(source, **kwargs)`` (a ``from_pretrained``), failing as the library's own commands do: a local path
    that does not exist, or a Hub repo that cannot be read (offline, missing, private), is named in one sentence
    instead of transformers' ``OSError``."""
    local_folder(source)
    try:
        return loader(str(source), **kwargs)
    except OSError as error:
        cause = hub_cause(error)
        if cause is None:
            raise
        raise hub_error(str(source), cause) from error
