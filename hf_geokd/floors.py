"""The predicted-floor table of a teacher's statistics: one row per student width (paper Eq. 2, optionally the soft
floor and Eq. 3's calibration). What :meth:`hf_geokd.FloorPredictor.predict` returns and what the SAE card shows."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .calibration import TwoComponentFit
from .capacity import (
    CAPACITY_KINDS,
    CapacityKind,
    capacity,
    check_kept_rule,
    kept_features,
    kind_name,
    predicted_floor,
    quiet_capacity_warnings,
)
from .checks import check_width
from .soft_floor import SoftFloorFit
from .stats import FeatureStats

DEFAULT_WIDTHS = (32, 64, 128, 256, 512, 768, 1024)


def default_widths(d_in: int | None) -> list[int]:
    """The widths tables and plots show by default: the usual ones up to the teacher's hidden size."""
    return [w for w in DEFAULT_WIDTHS if d_in is None or w <= d_in] or [d_in]


def example_widths(d_in: int | None) -> list[int]:
    """Three widths for a usage example: d_T/8, d_T/4 and d_T/2 ([128, 256, 512] when d_T is unknown)."""
    return [max(1, (d_in or 1024) // divisor) for divisor in (8, 4, 2)]


def check_widths(widths: Iterable[int] | int, d_in: int | None, allow_wider: bool = False) -> list[int]:
    """``widths`` as a list of positive ints, each at most the teacher's hidden size ``d_in`` unless
    ``allow_wider``."""
    if isinstance(widths, (str, bytes)):
        raise ValueError(f"widths must be integers (student hidden sizes), got the string {widths!r}.")
    widths = [widths] if isinstance(widths, numbers.Number) else list(widths)
    if not widths:
        raise ValueError("widths is empty: pass one or more student hidden sizes, e.g. [128, 256, 512].")
    checked = [check_width(width, "widths") for width in widths]
    if d_in is not None and not allow_wider and max(checked) > d_in:
        raise ValueError(
            f"widths {[w for w in checked if w > d_in]} exceed the teacher's hidden size {d_in}: a student that "
            "wide is not a compression. Pass allow_wider=True to predict there anyway."
        )
    return checked


def floor_table(
    stats: FeatureStats,
    widths: list[int],
    capacity_kind: CapacityKind = "paper",
    floor_model: SoftFloorFit | None = None,
    calibration: TwoComponentFit | None = None,
    kept_rule: str = "floor",
) -> pd.DataFrame:
    """One row per (already checked) width: capacity kept / dropped features, the predicted floor as a share of the
    teacher's feature energy (Table 2 units), the raw floor, and the calibrated floor C L* + B (Eq. 3) when
    ``calibration`` is given.

    With ``floor_model`` (the soft floor), ``predicted_floor`` is the soft floor, ``eq2_floor`` keeps Eq. 2's value
    beside it, and every column uses the soft floor's own effective capacity g_eff (``capacity_kind`` is ignored:
    :class:`~hf_geokd.FloorPredictor` refuses the two together). ``kept_rule`` is Eq. 2's cut: ``floor`` (F_S =
    floor(d_S g), the paper) or ``continuous`` (the real-valued rank d_S g; ``kept`` then shows floor(d_S g)).
    """
    kind = floor_model.capacity_kind if floor_model is not None else capacity_kind
    kept_rule = check_kept_rule(kept_rule)
    total = stats.total_energy
    if total <= 0:
        raise ValueError("contributions sum to zero: there is no energy to normalise by.")
    rows = []
    with quiet_capacity_warnings():  # the regime is warned once by the predictor and reported by the callers
        for width in widths:
            kept = kept_features(width, stats.alpha, stats.n_features, kind)
            raw = predicted_floor(stats.contributions, width, stats.alpha, kind, kept_rule=kept_rule)
            row: dict[str, Any] = {"width": width, "kept": kept, "dropped": stats.n_features - kept}
            if floor_model is not None:
                row["eq2_floor"] = raw / total
                raw = floor_model.floor(stats.contributions, width, stats.alpha)
            row.update(predicted_floor=raw / total, predicted_floor_raw=raw)
            if calibration is not None:
                row["calibrated_floor"] = float(calibration.predict(row["predicted_floor"]))
            rows.append(row)
        g = capacity(stats.alpha, kind)
    table = pd.DataFrame(rows)
    approximation = stats.metadata.get("approximation")
    if approximation:
        table["approximate"] = True
    table.attrs.update(capacity_kind=kind_name(kind), capacity=g, critical_width=stats.n_features / g,
                       approximation=approximation, kept_rule=kept_rule,
                       floor_model=None if floor_model is None else "soft")
    return table


def floor_tables_every_kind(stats: FeatureStats, widths: list[int], kept_rule: str = "floor"
                            ) -> dict[str, pd.DataFrame]:
    """:func:`floor_table` under every built-in capacity kind, keyed by kind (for side-by-side tables and plots);
    the paper's kind is left out at alpha = 0, where Eq. 1 diverges."""
    return {kind: floor_table(stats, widths, kind, kept_rule=kept_rule) for kind in CAPACITY_KINDS
            if not (kind == "paper" and stats.alpha == 0)}
