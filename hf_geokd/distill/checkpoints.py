"""Which checkpoint a run resumes: the newest one that ``Trainer`` finished saving."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME

CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """Every ``checkpoint-N`` folder in ``folder`` as (N, path), by step (none when ``folder`` does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((int(match.group(1)), path) for path in folder.iterdir()
                  if path.is_dir() and (match := CHECKPOINT.fullmatch(path.name)))


def is_complete(checkpoint: str | Path) -> bool:
    """Whether ``Trainer`` finished saving ``checkpoint``: it writes ``trainer_state.json`` last, after the weights,
    the optimizer, the scheduler and the RNG states, so the file must be there and whole (it parses as JSON).

    Under several processes this is the main process's view: each process writes its own RNG state with no barrier
    before ``trainer_state.json``, so a kill in that gap leaves a checkpoint that passes this check without another
    process's ``rng_state_<rank>.pth``. ``Trainer`` then resumes with that process's random state reset (a run that
    is not bit-identical to an uninterrupted one, but otherwise sound)."""
    try:
        json.loads(Path(checkpoint, TRAINER_STATE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(folder: str | Path, remove_incomplete: bool = False) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that ``Trainer`` finished saving (:func:`is_complete`), or None.

    A newer checkpoint that is not complete was cut short (the process was killed while saving): ``Trainer.train``
    cannot resume from it (a ``FileNotFoundError`` or ``JSONDecodeError`` for its state, or an error loading its
    half-written weights). It is skipped with a warning instead, and deleted when ``remove_incomplete`` (for a folder
    that only this run writes: left in place, a cut-short checkpoint with a higher step can outlive the complete ones
    when ``save_total_limit`` rotates them by step)."""
    for _, checkpoint in reversed(checkpoints(folder)):
        if is_complete(checkpoint):
            return str(checkpoint)
        fate = "deleted" if remove_incomplete else "skipped (delete it once you have read this)"
        warnings.warn(f"{checkpoint} has no whole {TRAINER_STATE_NAME}: its saving was cut short, so it is {fate} and "
                      "the run resumes from the checkpoint before it, or from the start.", stacklevel=2)
        if remove_incomplete:
            shutil.rmtree(checkpoint)
    return None
