"""Capacity g(alpha): how many sparse features one hidden dimension can carry.

Every kind maps a sparsity ``alpha`` (a feature is active with probability ``p = 1 - alpha``) to features per
dimension:

- ``paper``: g = 1 / (p ln(1/p)) (paper Eq. 1). It has its minimum e at alpha = 1 - 1/e and diverges as
  alpha -> 0, so it is only meaningful for alpha >= 1 - 1/e; below that a :class:`CapacityWarning` is raised.
- ``dt_signed`` / ``dt_nonneg``: the exact Donoho-Tanner weak threshold for l1 recovery of signed / non-negative
  sparse vectors, g = 1 / psi(p), with the statistical dimension
  psi(eps) = min_tau [eps (1 + tau^2) + (1 - eps) c J(tau)],  J(tau) = (1 + tau^2) Phi(-tau) - tau phi(tau),
  c = 2 and tau >= 0 (signed), c = 1 and tau real (non-negative). Monotone, g(0) = 1.
- ``mono``: g = 1 / (p (1 + ln(1/p))), a monotone closed form with g(0) = 1 close to ``dt_signed``.
- ``info``: g = 1 / p, the information ceiling for any decoder.
- a :class:`FittedCapacity` object: g_eff = a * g_base^b, fitted to measured floors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .checks import check_alpha, check_contributions, check_positive_int, check_width

PAPER_VALID_ALPHA = 1.0 - 1.0 / math.e
CAPACITY_KINDS = ("paper", "dt_signed", "dt_nonneg", "mono", "info")


class CapacityWarning(UserWarning):
    """The paper's g(alpha) is used outside the regime where it is a capacity (alpha < 1 - 1/e)."""


@contextmanager
def quiet_capacity_warnings() -> Iterator[None]:
    """Silence :class:`CapacityWarning` where the caller reports the regime itself (or has warned once already)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapacityWarning)
        yield


@dataclass(frozen=True)
class FittedCapacity:
    """Effective capacity g_eff(alpha) = a * g_base(alpha)^b, fitted to measured floors or kept-feature counts."""

    a: float
    b: float
    base: str = "paper"

    def __post_init__(self) -> None:
        if self.base not in CAPACITY_KINDS:
            raise ValueError(f"FittedCapacity.base must be one of {CAPACITY_KINDS}, got {self.base!r}.")
        if not (math.isfinite(self.a) and self.a > 0 and math.isfinite(self.b)):
            raise ValueError(f"FittedCapacity needs a finite a > 0 and a finite b, got a={self.a!r}, b={self.b!r}.")

    @property
    def name(self) -> str:
        if self.b == 0:  # a constant: the base kind plays no part
            return f"constant({self.a:.3g})"
        return f"fitted({self.a:.3g}*{self.base}^{self.b:.3g})"

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "base": self.base}

    @classmethod
    def from_kept_counts(cls, widths: Sequence[float], kept: Sequence[float]) -> FittedCapacity:
        """A constant measured capacity (b = 0) from features kept by students of one teacher: Theorem 1's
        F_S = d_S g is a line through the origin in d_S, whose least-squares slope is g_eff = sum k d / sum d^2."""
        try:
            widths, kept = np.asarray(widths, dtype=float), np.asarray(kept, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"widths and kept must be numbers (one kept-feature count per student width), got "
                             f"{widths!r} and {kept!r}.") from error
        if widths.size == 0 or widths.shape != kept.shape:
            raise ValueError(f"pass one kept-feature count per student width (got {widths.size} widths and "
                             f"{kept.size} counts).")
        if not (np.isfinite(widths).all() and (widths > 0).all()):
            raise ValueError(f"student widths must be finite and > 0, got {widths.tolist()}.")
        if not (np.isfinite(kept).all() and (kept >= 0).all()):
            raise ValueError(f"kept-feature counts must be finite and >= 0, got {kept.tolist()}.")
        slope = float((kept * widths).sum() / (widths * widths).sum())
        if slope == 0:
            raise ValueError("no student keeps any feature (every count is 0): there is no measured capacity.")
        return cls(a=slope, b=0.0, base="dt_signed")


CapacityKind = str | FittedCapacity


def kind_name(kind: CapacityKind) -> str:
    """A printable name for a capacity kind."""
    return kind.name if isinstance(kind, FittedCapacity) else str(kind)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _gaussian_tail_moment(tau: float) -> float:
    """J(tau) = E[(Z - tau)_+^2] = (1 + tau^2) Phi(-tau) - tau phi(tau) for Z ~ N(0, 1)."""
    return (1.0 + tau * tau) * _normal_cdf(-tau) - tau * _normal_pdf(tau)


def statistical_dimension(eps: float, signed: bool = True) -> float:
    """psi(eps): the normalised statistical dimension of the l1 descent cone at an eps-sparse point.

    The objective eps (1 + tau^2) + (1 - eps) c J(tau) is convex in tau; its derivative over 2 is
    eps tau + (1 - eps) c (tau Phi(-tau) - phi(tau)), increasing in tau, whose root is found by bisection.
    """
    if eps <= 0.0:
        return 0.0
    if eps >= 1.0:
        return 1.0
    c = 2.0 if signed else 1.0

    def slope(tau: float) -> float:
        return eps * tau + (1.0 - eps) * c * (tau * _normal_cdf(-tau) - _normal_pdf(tau))

    low, high = (0.0 if signed else -10.0), 40.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if slope(mid) > 0.0:
            high = mid
        else:
            low = mid
    tau = 0.5 * (low + high)
    return eps * (1.0 + tau * tau) + (1.0 - eps) * c * _gaussian_tail_moment(tau)


def _base_capacity(alpha: float, kind: str) -> float:
    p = 1.0 - alpha
    if kind == "paper":
        if alpha == 0.0:
            raise ValueError(
                "capacity(alpha=0, kind='paper') is 1/(1 * ln 1), which diverges (the paper's Table 7 lists 1.0). "
                "Use kind='dt_signed', 'dt_nonneg' or 'mono' for dense features."
            )
        if alpha < PAPER_VALID_ALPHA:
            warnings.warn(
                f"capacity(kind='paper') at alpha={alpha:.4g} < 1 - 1/e = {PAPER_VALID_ALPHA:.4f}: Eq. 1 is outside "
                "its regime (it grows again as alpha -> 0). Use kind='dt_signed' or 'mono' there.",
                CapacityWarning,
                stacklevel=3,
            )
        return 1.0 / (p * math.log(1.0 / p))
    if kind == "dt_signed":
        return 1.0 / statistical_dimension(p, signed=True)
    if kind == "dt_nonneg":
        return 1.0 / statistical_dimension(p, signed=False)
    if kind == "mono":
        return 1.0 / (p * (1.0 + math.log(1.0 / p)))
    if kind == "info":
        return 1.0 / p
    raise ValueError(f"Unknown capacity kind {kind!r}: choose one of {CAPACITY_KINDS} or a FittedCapacity.")


def capacity(alpha: float, kind: CapacityKind = "paper") -> float:
    """Features per hidden dimension g(alpha) for sparsity ``alpha`` in [0, 1) (paper Eq. 1 for kind='paper').

    ``alpha = 0`` (dense features) is accepted by every kind except ``paper``, whose formula diverges there.
    """
    alpha = check_alpha(alpha)
    if isinstance(kind, FittedCapacity):
        return kind.a * _base_capacity(alpha, kind.base) ** kind.b
    return _base_capacity(alpha, kind)


def critical_width(n_features: int, alpha: float, kind: CapacityKind = "paper") -> float:
    """d* = F / g(alpha): the narrowest width that keeps all ``n_features`` features (paper section 3.3)."""
    n_features = check_positive_int(n_features, "n_features")
    return n_features / capacity(alpha, kind)


KEPT_RULES = ("floor", "continuous")


def check_kept_rule(rule: str) -> str:
    """Return ``rule`` after checking it is one of :data:`KEPT_RULES`."""
    if rule not in KEPT_RULES:
        raise ValueError(f"kept_rule must be one of {KEPT_RULES} (Eq. 2's floor(d_S g), or the real-valued rank "
                         f"d_S g interpolated between integer ranks), got {rule!r}.")
    return rule


def kept_features(width: int, alpha: float, n_features: int, kind: CapacityKind = "paper") -> int:
    """F_S = min(floor(d_S * g(alpha)), F): features a width-``width`` student keeps (Theorem 1)."""
    width = check_width(width)
    n_features = check_positive_int(n_features, "n_features")
    # A tiny relative slack keeps exact products (e.g. 2 * 2.0) from flooring one below through rounding.
    return min(int(math.floor(width * capacity(alpha, kind) * (1.0 + 1e-12))), n_features)


def kept_rank(width: int, alpha: float, n_features: int, kind: CapacityKind = "paper",
              kept_rule: str = "floor") -> float:
    """The rank at which Eq. 2 cuts the spectrum: F_S = floor(d_S g) (``kept_rule="floor"``, the paper) or the
    real-valued d_S g (``"continuous"``), capped at F."""
    if check_kept_rule(kept_rule) == "floor":
        return float(kept_features(width, alpha, n_features, kind))
    width = check_width(width)
    n_features = check_positive_int(n_features, "n_features")
    return min(width * capacity(alpha, kind), float(n_features))


def tail_energy(values: np.ndarray, rank: float) -> float:
    """sum_{i > r} v_i for contributions ``values`` sorted in descending order, at a real-valued rank r in [0, F]:
    the integer tail at floor(r) minus the fraction r - floor(r) of the next value (linear between integer ranks)."""
    whole = int(math.floor(rank))
    tail = float(values[whole:].sum())
    if whole < values.size:
        tail -= (rank - whole) * float(values[whole])
    return max(tail, 0.0)


def predicted_floor(
    contributions, width: int, alpha: float, kind: CapacityKind = "paper", normalize: bool = False,
    kept_rule: str = "floor",
) -> float:
    """L*(d_S) = sum_{i > F_S} I_i E[x_i^2] (paper Eq. 2).

    ``contributions`` holds one non-negative value per feature (toy model: I_i E[x_i^2]; SAE: E[z_i^2] ||W_dec,i||^2).
    They are ranked in descending order (the student keeps the most important, assumption A2) and the tail beyond
    F_S is summed. With ``kept_rule="continuous"`` the cut is at the real-valued rank r = d_S g and the tail is
    interpolated linearly between integer ranks, sum_{i > floor(r)} c_i - (r - floor(r)) c_{floor(r)+1}: the floor
    then moves smoothly with g and F instead of jumping by a whole feature (:func:`tail_energy`). With
    ``normalize=True`` the floor is a fraction of the total (the paper's Table 2 units).
    """
    values = np.sort(check_contributions(contributions))[::-1]
    floor = tail_energy(values, kept_rank(width, alpha, values.size, kind, kept_rule))
    if normalize:
        total = float(values.sum())
        if total <= 0.0:
            raise ValueError("contributions sum to zero: there is no energy to normalise by.")
        floor /= total
    return floor


def critical_widths(n_features: int, alpha: float) -> dict[str, float]:
    """d* under every capacity kind (the paper kind is left out at alpha = 0, where Eq. 1 diverges; its regime
    warning is silenced: callers report the regime themselves)."""
    with quiet_capacity_warnings():
        return {kind: critical_width(n_features, alpha, kind) for kind in CAPACITY_KINDS
                if not (kind == "paper" and alpha == 0)}
