"""A refined floor model: soft retention, scored against the teacher, with superposition interference.

Eq. 2 of the paper keeps the F_S = floor(d_S g) most important features exactly and drops the rest, so it predicts
a floor of exactly 0 once d_S g >= F. Trained models behave differently in three measurable ways (see the toy
report): they keep fewer features than d g (an effective capacity), the transition from kept to dropped is gradual
in rank, and kept features still pay for sharing dimensions (interference). A distilled student is also scored
against its teacher, which has already lost features of its own. The soft floor puts the three together:

    k(d)      = d g_eff(alpha)                                   effective kept count (g_eff: any capacity kind)
    r_d(i)    = 1 / (1 + (i / k(d))^s)                           retention of the feature of rank i at width d
    L(d_S)    = sum_i c_i [r_T(i) - r_S(i)]_+                    energy the teacher carries and the student drops
              + lambda p (k(d_S) / d_S - 1)_+ sum_i c_i r_S(i)   interference among the features it keeps

with c_i the contribution of feature i (Eq. 2's I_i E[x_i^2]), p = 1 - alpha, r_T the teacher's retention
(r_T = 1 when the statistics describe the teacher's own features, as an SAE's do) and two shape parameters:
the softness s (s -> infinity recovers Eq. 2's step) and the interference weight lambda. The interference term
follows from the Welch bound: k unit vectors in d < k dimensions have sum_{j != i} (w_i . w_j)^2 >= k / d - 1, and
each other feature is active with probability p, so every kept feature sees cross-talk of order p (k/d - 1) of its
own energy. Parameters are fitted to measured floors (``fit_soft_floor``): across configurations for the toy, or
shipped with a predictor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .capacity import CapacityKind, FittedCapacity, capacity, quiet_capacity_warnings
from .checks import check_alpha, check_contributions, check_width


@dataclass(frozen=True)
class SoftFloor:
    """Shape of the refined floor model (see the module docstring): softness s > 0, interference lambda >= 0."""

    softness: float = 7.0
    interference: float = 0.09

    def __post_init__(self) -> None:
        if not (math.isfinite(self.softness) and self.softness > 0):
            raise ValueError(f"softness must be a finite number > 0, got {self.softness!r}.")
        if not (math.isfinite(self.interference) and self.interference >= 0):
            raise ValueError(f"interference must be a finite number >= 0, got {self.interference!r}.")

    def retention(self, ranks: np.ndarray, kept: np.ndarray | float) -> np.ndarray:
        """r(i) = 1 / (1 + (i / k)^s) for ranks i = 1, 2, ... (0 where k = 0); broadcasts ``kept`` over rows."""
        kept = np.asarray(kept, dtype=np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(kept > 0, 1.0 / (1.0 + np.exp(self.softness * np.log(ranks / np.maximum(kept, 1e-300)))),
                            0.0)

    def floor(self, contributions, width: int, alpha: float, kind: CapacityKind = "paper",
              teacher_width: int | None = None) -> float:
        """L(d_S) in the units of ``contributions`` (sorted here in descending order).

        ``teacher_width``: the width of a teacher that itself keeps only k(d_T) of these features (the toy model,
        whose statistics describe the data); None when the statistics are the teacher's own features (an SAE).
        """
        values = np.sort(check_contributions(contributions))[::-1]
        width = check_width(width)
        alpha = check_alpha(alpha)
        with quiet_capacity_warnings():  # callers report the paper kind's regime
            g = capacity(alpha, kind)
        teacher = None if teacher_width is None else check_width(teacher_width) * g
        return float(self.floors(values[None], np.array([width]), np.array([alpha]), np.array([width * g]),
                                 None if teacher is None else np.array([teacher]))[0])

    def floors(self, values: np.ndarray, widths: np.ndarray, alphas: np.ndarray, kept: np.ndarray,
               teacher_kept: np.ndarray | None) -> np.ndarray:
        """The floor of many students at once: ``values`` [P, F] contributions sorted descending (zero-padded),
        ``widths``, ``alphas``, ``kept`` (k(d_S)) and ``teacher_kept`` (k(d_T), or None: the teacher keeps all)."""
        ranks = np.arange(1, values.shape[1] + 1, dtype=np.float64)[None, :]
        student = self.retention(ranks, kept[:, None])
        teacher = 1.0 if teacher_kept is None else self.retention(ranks, teacher_kept[:, None])
        dropped = np.sum(values * np.clip(teacher - student, 0.0, None), axis=1)
        overload = np.clip(kept / widths - 1.0, 0.0, None)
        return dropped + self.interference * (1.0 - alphas) * overload * np.sum(values * student, axis=1)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SoftFloorFit:
    """A fitted soft floor: its shape and the effective capacity it uses, with the fit's log-space residual."""

    shape: SoftFloor
    capacity_kind: FittedCapacity
    rms_log_error: float
    n_points: int

    def floor(self, contributions, width: int, alpha: float, teacher_width: int | None = None) -> float:
        return self.shape.floor(contributions, width, alpha, self.capacity_kind, teacher_width)

    def to_dict(self) -> dict:
        return {"shape": self.shape.to_dict(), "capacity_kind": self.capacity_kind.to_dict(),
                "rms_log_error": self.rms_log_error, "n_points": self.n_points}

    @classmethod
    def from_dict(cls, data: dict) -> SoftFloorFit:
        """A fit from :meth:`to_dict`'s dict; an incomplete or malformed one is a named error."""
        keys = {"shape", "capacity_kind", "rms_log_error", "n_points"}
        if not isinstance(data, dict) or not keys <= set(data):
            raise ValueError(f"a soft floor must be 'soft', a SoftFloorFit or its dict with keys {sorted(keys)}, got "
                             f"{data!r}.")
        try:
            return cls(SoftFloor(**data["shape"]), FittedCapacity(**data["capacity_kind"]),
                       float(data["rms_log_error"]), int(data["n_points"]))
        except TypeError as error:
            raise ValueError(f"a soft floor's dict is malformed ({error}): {data!r}.") from error


def fit_soft_floor(points: list[dict], base: str = "paper") -> SoftFloorFit:
    """Fit g_eff = a g_base^b, the softness s and the interference lambda to measured floors, by least squares on
    log floors (every point weighs the same whatever its scale).

    Args:
        points: one dict per measured floor with ``contributions``, ``width``, ``alpha``, ``observed`` (> 0) and
            optionally ``teacher_width`` (see :meth:`SoftFloor.floor`).
        base: the capacity kind that g_eff rescales.
    """
    from scipy.optimize import least_squares  # Deferred: scipy loads only when a model is fitted.

    usable = [point for point in points if point["observed"] > 0]
    if len(usable) < 4:
        raise ValueError(
            f"fitting the soft floor's four parameters needs at least 4 positive floors, got {len(usable)}."
        )
    observed = np.log([point["observed"] for point in usable])
    rows = [np.sort(check_contributions(point["contributions"]))[::-1] for point in usable]
    values = np.zeros((len(rows), max(row.size for row in rows)))
    for index, row in enumerate(rows):
        values[index, : row.size] = row
    widths = np.array([check_width(point["width"]) for point in usable], dtype=np.float64)
    alphas = np.array([check_alpha(point["alpha"]) for point in usable])
    teacher_widths = [point.get("teacher_width") for point in usable]
    relative = all(width is not None for width in teacher_widths)
    if not relative and any(width is not None for width in teacher_widths):
        raise ValueError("give teacher_width for every point or for none.")
    with quiet_capacity_warnings():
        log_g = np.log([capacity(alpha, base) for alpha in alphas])

    def unpack(theta: np.ndarray) -> tuple[SoftFloor, FittedCapacity]:
        return (SoftFloor(softness=float(np.exp(theta[2])), interference=float(np.exp(theta[3]))),
                FittedCapacity(a=float(np.exp(theta[0])), b=float(theta[1]), base=base))

    def residuals(theta: np.ndarray) -> np.ndarray:
        shape, _ = unpack(theta)
        g_eff = np.exp(theta[0] + theta[1] * log_g)
        teacher = np.array(teacher_widths, dtype=np.float64) * g_eff if relative else None
        predicted = shape.floors(values, widths, alphas, widths * g_eff, teacher)
        return np.log(np.maximum(predicted, 1e-12)) - observed

    start = np.array([0.0, 0.5, math.log(4.0), math.log(0.1)])
    solution = least_squares(residuals, start, bounds=([-5, -2, math.log(0.3), -12], [5, 3, math.log(50), 3]))
    shape, kind = unpack(solution.x)
    return SoftFloorFit(shape, kind, float(np.sqrt(np.mean(solution.fun**2))), len(usable))


SHIPPED_SOFT_FLOOR = SoftFloorFit(
    shape=SoftFloor(softness=6.853, interference=0.08771),
    capacity_kind=FittedCapacity(a=1.3638, b=0.21172, base="paper"),
    rms_log_error=0.2026,
    n_points=264,
)
"""The soft floor fitted (:func:`fit_soft_floor`) to the 264 distillation floors with d_S < d_T of the paper's toy
grid (``geokd toy``, 48 configurations x 20 seeds; docs/results/toy/points.csv). Scored held out on the disjoint
confirmation grid (``geokd toy --preset confirm``) and, with Eq. 3, on the transformer demo."""


def soft_floor_model(model: str | SoftFloorFit | dict | None) -> SoftFloorFit | None:
    """A ``floor_model`` argument as a :class:`SoftFloorFit`: None stays None (Eq. 2), ``"soft"`` is
    :data:`SHIPPED_SOFT_FLOOR`, a dict is a saved fit (:meth:`SoftFloorFit.to_dict`)."""
    if model is None or isinstance(model, SoftFloorFit):
        return model
    if isinstance(model, dict):
        return SoftFloorFit.from_dict(model)
    if model == "soft":
        return SHIPPED_SOFT_FLOOR
    raise ValueError(f"floor_model must be None (Eq. 2), 'soft' (the shipped soft floor) or a SoftFloorFit, got "
                     f"{model!r}.")
