"""Which checkpoint a run resumes: the newest one that ``Trainer`` finished saving."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME

CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def is_complete(checkpoint: str | Path) -> bool:
    """Whether ``Trainer`` finished saving ``checkpoint``: it writes ``trainer_state.json`` last, after the weights,
    the optimizer, the scheduler and the RNG states."""
    return Path(checkpoint, TRAINER_STATE_NAME).is_file()


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that ``Trainer`` finished saving, or None when there is none.

    A newer checkpoint without ``trainer_state.json`` was cut short (the process was killed while saving): resuming
    from it stops with a ``FileNotFoundError`` deep inside ``Trainer.train``, and its weights may be half-written. It
    is skipped with a warning instead (and written over when the run saves at that step again)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = sorted((int(match.group(1)), path) for path in folder.iterdir()
                   if path.is_dir() and (match := CHECKPOINT.fullmatch(path.name)))
    for _, checkpoint in reversed(steps):
        if is_complete(checkpoint):
            return str(checkpoint)
        warnings.warn(f"{checkpoint} has no {TRAINER_STATE_NAME}: its saving was cut short, so it is skipped and the "
                      "run resumes from the checkpoint before it (or from the start). Delete it once you have read "
                      "this.", stacklevel=2)
    return None
