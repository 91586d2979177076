"""The one owner of how a student of a width sweep is named, in folders, metrics, tables and plots."""

from __future__ import annotations

from .checks import check_width


def student_name(width: int) -> str:
    """A width-``width`` student's name in a width sweep (``w128``): its folder under ``students/``, its metrics'
    prefix (``eval_w128_kl``) and its key in :class:`~hf_geokd.distill.StudentGroup`."""
    return f"w{check_width(width)}"


def student_label(width: int) -> str:
    """How results name a width-``width`` student (``d_S=128``): table rows, plot legends and result folders."""
    return f"d_S={check_width(width)}"
