"""Fits that turn predicted geometric floors into observed distillation floors.

- Two-component calibration (paper Eq. 3): L_obs = C * L*_pred + B. With a measured baseline B (the d_S = d_T
  control run) only C is fitted; otherwise C and B are fitted together (affine least squares). The pure linear fit
  L_obs = C * L*_pred is reported beside it for contrast (the paper's Table 4). Observed floors are losses (>= 0);
  a fit with C <= 0 (floors that do not fall as the predicted floor falls: rising with width, or flat) is refused,
  not returned; an affine fit with B < 0 is returned, flagged (:class:`CalibrationWarning`, its summary), and its
  predictions are clipped at 0, since a floor is never negative.
- Power law (paper Eq. 4): L_obs(d_S) = a * d_S^-gamma + c, fitted by profile least squares: for each gamma the
  best (a, c) is linear in closed form, and gamma minimises the profiled residual over a grid in (0, 4] refined
  twice around its best point.

Both report R^2 = 1 - SS_res / SS_tot and percentile bootstrap intervals (resampling points with replacement).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .checks import check_paired
from .files import known_fields

BOOTSTRAP_SAMPLES = 2000
GAMMA_RANGE = (1e-3, 4.0)
GRID_POINTS = 1000


class PowerLawWarning(UserWarning):
    """The observed floors do not have Eq. 4's shape: the fitted a, gamma and c do not describe them."""


class CalibrationWarning(UserWarning):
    """An Eq. 3 fit whose intercept B is negative: C L* + B falls below 0 where L* < -B / C, and those calibrated
    floors are clipped at 0."""


def check_bootstrap_settings(seed: int, confidence: float) -> None:
    """Name a bootstrap seed that is not an integer >= 0, or a confidence outside (0, 1)."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1) (the coverage of the bootstrap intervals, e.g. 0.95), "
                         f"got {confidence!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")


def numbers_of(values, name: str) -> np.ndarray:
    """``values`` as a float64 vector; a ValueError naming ``name`` when they are not numbers (a string, None)."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of numbers, got the string {values!r}.")
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a sequence of numbers (one per student), got {values!r}: {error}.") from error


def r_squared(observed: np.ndarray, fitted: np.ndarray) -> float:
    """Coefficient of determination 1 - sum (y - f)^2 / sum (y - mean y)^2 (negative when worse than the mean)."""
    total = float(np.sum((observed - observed.mean()) ** 2))
    residual = float(np.sum((observed - fitted) ** 2))
    return 1.0 - residual / total if total > 0 else float("nan")


def _bootstrap(
    x: np.ndarray, y: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], tuple[float, ...]], n_params: int, seed: int,
    confidence: float,
) -> list[tuple[float, float]]:
    """Percentile intervals of ``fit``'s parameters over resamples that have at least two distinct x values."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP_SAMPLES):
        index = rng.integers(0, x.size, x.size)
        if np.unique(x[index]).size < min(n_params, x.size):
            continue
        try:
            draws.append(fit(x[index], y[index]))
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
    if not draws:
        return [(float("nan"), float("nan"))] * n_params
    values = np.asarray(draws)
    tail = 100.0 * (1.0 - confidence) / 2.0
    return [
        (float(np.percentile(values[:, k], tail)), float(np.percentile(values[:, k], 100 - tail)))
        for k in range(n_params)
    ]


@dataclass
class TwoComponentFit:
    """L_obs = C * L*_pred + B (paper Eq. 3), with the linear fit (B = 0) beside it.

    C > 0 always (:func:`fit_two_component` refuses any other fit, and so does :meth:`from_dict`). B may come out
    negative from an affine fit; :meth:`predict` then clips C L* + B at 0 wherever it is negative (a floor is never
    negative) and warns (:class:`CalibrationWarning`) naming how many predictions it clipped; :attr:`clipped_below`
    and :meth:`summary` say from which predicted floor down that happens.
    """

    C: float
    B: float
    r2: float
    baseline_fixed: bool
    linear_C: float
    linear_r2: float
    C_interval: tuple[float, float]
    B_interval: tuple[float, float]
    n_points: int

    def __post_init__(self) -> None:
        for name in ("C", "B"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"the calibration's {name} must be a finite number, got {value!r}: recalibrate.")
        if self.C <= 0:
            raise ValueError(f"the calibration's C = {self.C:.4g} is <= 0: observed floors that do not fall as the "
                             "predicted floor falls are not Eq. 3; recalibrate on converged floors.")

    @property
    def clipped_below(self) -> float:
        """The predicted floor below which C L* + B < 0 (-B / C) and :meth:`predict` returns 0; 0 when B >= 0."""
        return max(0.0, -self.B / self.C)

    def predict(self, predicted_floor) -> np.ndarray:
        """C * ``predicted_floor`` + B, clipped at 0 (with a :class:`CalibrationWarning` when any value is)."""
        values = self.C * np.asarray(predicted_floor, dtype=np.float64) + self.B
        negative = values < 0
        if np.any(negative):
            warnings.warn(
                f"{int(np.sum(negative))} calibrated floor(s) C L* + B < 0 clipped at 0 (B = {self.B:.4g} < 0: every "
                f"predicted floor below {self.clipped_below:.4g}); the calibration extrapolates below its widths. "
                "Calibrate with the control run's floor as B (control_width= / baseline=) or on more widths.",
                CalibrationWarning,
                stacklevel=2,
            )
        return np.maximum(values, 0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TwoComponentFit:
        data = known_fields(cls, data, "the saved calibration")
        data["C_interval"] = tuple(data["C_interval"])
        data["B_interval"] = tuple(data["B_interval"])
        return cls(**data)

    def summary(self) -> str:
        mode = "B fixed from the control run" if self.baseline_fixed else "affine, C and B fitted"
        sign = "-" if self.B < 0 else "+"
        exact = self.n_points == (1 if self.baseline_fixed else 2)
        quality = (f"n = {self.n_points}: an exact fit through its points, R^2 tests nothing" if exact
                   else f"R^2 = {self.r2:.4f}, n = {self.n_points}")
        text = (
            f"L_obs = {self.C:.4g} * L*_pred {sign} {abs(self.B):.4g}  ({mode}; {quality}); "
            f"linear L_obs = {self.linear_C:.4g} * L*_pred: R^2 = {self.linear_r2:.4f}"
        )
        if self.B < 0:
            text += (f". B < 0: calibrated floors are clipped at 0 for predicted floors below "
                     f"{self.clipped_below:.4g}")
        return text


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    design = np.stack([x, np.ones_like(x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(slope), float(intercept)


def _slope_through(x: np.ndarray, y: np.ndarray) -> float:
    denominator = float(np.dot(x, x))
    if denominator == 0.0:
        raise ValueError("predicted floors are all zero: C cannot be fitted (the students keep every feature).")
    return float(np.dot(x, y)) / denominator


def fit_two_component(
    predicted: Sequence[float],
    observed: Sequence[float],
    baseline: float | None = None,
    seed: int = 0,
    confidence: float = 0.95,
) -> TwoComponentFit:
    """Fit the observed floors as C * predicted + B (paper Eq. 3).

    Args:
        predicted: geometric floors L*(d_S) from Eq. 2, one per student (>= 0).
        observed: measured distillation floors (e.g. per-token KL), one per student (finite, >= 0).
        baseline: B measured independently (the d_S = d_T control's floor, >= 0). Given: only C is fitted, by least
            squares of (observed - B) on predicted. None: C and B are fitted together.
        seed: seed of the bootstrap resampling.
        confidence: coverage of the percentile bootstrap intervals.

    Raises:
        ValueError: a negative or non-finite floor or baseline, too few points, or a fit with C <= 0: floors that do
            not fall as the predicted floor falls (they rise with width, or are flat) are not described by Eq. 3, and
            its predictions would fall as the student narrows. An affine fit with B < 0 is returned, with a
            :class:`CalibrationWarning` (its predictions are clipped at 0: see :class:`TwoComponentFit`).
    """
    minimum = 1 if baseline is not None else 2
    check_bootstrap_settings(seed, confidence)
    x, y = check_paired(numbers_of(predicted, "predicted"), numbers_of(observed, "observed"), "predicted", "observed",
                        minimum)
    if np.any(x < 0):
        raise ValueError("predicted floors must be >= 0 (they are sums of non-negative contributions).")
    if np.any(y < 0):
        raise ValueError(f"observed floors must be >= 0 (a distillation floor is a KL or cross-entropy), got "
                         f"{y[y < 0].tolist()} at positions {np.flatnonzero(y < 0).tolist()}: pass the measured "
                         "floors, not differences or log-losses.")
    linear_C = _slope_through(x, y)
    linear_r2 = r_squared(y, linear_C * x)
    if baseline is not None:
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, np.floating, np.integer)) or not (
                math.isfinite(baseline) and baseline >= 0):
            raise ValueError(f"baseline must be a finite number >= 0 (the control run's floor), got {baseline!r}.")
        B = float(baseline)
        C = _slope_through(x, y - B)
        fit = lambda xs, ys: (_slope_through(xs, ys - B), B)  # noqa: E731
    else:
        if np.unique(x).size < 2:
            raise ValueError("predicted needs at least two distinct values for an affine fit; pass baseline= instead.")
        C, B = _affine(x, y)
        fit = _affine
    _check_slope(C, x, y, baseline)
    if B < 0:
        warnings.warn(
            f"the fitted B = {B:.4g} is negative: C L* + B < 0 for predicted floors below {-B / C:.4g}, where the "
            "calibrated floor is clipped at 0. Calibrate with the control run's floor as B (baseline=, or "
            "FloorPredictor.calibrate(..., control_width=)) or on more widths.",
            CalibrationWarning,
            stacklevel=2,
        )
    intervals = _bootstrap(x, y, fit, 2, seed, confidence)
    return TwoComponentFit(
        C=C,
        B=B,
        r2=r_squared(y, C * x + B),
        baseline_fixed=baseline is not None,
        linear_C=linear_C,
        linear_r2=linear_r2,
        C_interval=intervals[0],
        B_interval=intervals[1],
        n_points=int(x.size),
    )


def _check_slope(C: float, x: np.ndarray, y: np.ndarray, baseline: float | None) -> None:
    """Refuse a fit with C <= 0, naming the floors that make it so."""
    if C > 0:
        return
    order = np.argsort(-x)  # widest predicted floor (narrowest student) first
    pairs = ", ".join(f"{x[i]:.3g} -> {y[i]:.3g}" for i in order)
    against = f" above the baseline {baseline:.4g}" if baseline is not None else ""
    raise ValueError(
        f"Eq. 3 fits C = {C:.4g} <= 0: the observed floors{against} do not fall as the predicted floor falls "
        f"(predicted -> observed: {pairs}), i.e. they rise with width or are flat. Eq. 3 does not describe them and "
        "its calibrated floors would grow as students widen. Check the floors: are the runs converged, from the "
        "same metric, paired with the right widths?"
    )


@dataclass
class PowerLawFit:
    """L_obs(d_S) = a * d_S^-gamma + c (paper Eq. 4)."""

    a: float
    gamma: float
    c: float
    r2: float
    a_interval: tuple[float, float] = field(default=(float("nan"), float("nan")))
    gamma_interval: tuple[float, float] = field(default=(float("nan"), float("nan")))
    c_interval: tuple[float, float] = field(default=(float("nan"), float("nan")))
    n_points: int = 0

    def predict(self, widths) -> np.ndarray:
        return self.a * np.asarray(widths, dtype=np.float64) ** (-self.gamma) + self.c

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"L_obs = {self.a:.4g} * d_S^-{self.gamma:.4g} + {self.c:.4g}  (R^2 = {self.r2:.4f}, n = {self.n_points})"
        )


def _profile(widths: np.ndarray, y: np.ndarray, gammas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (a, c) for each fixed gamma in closed form (simple regression on u = d^-gamma), and the residual SS."""
    u = widths[None, :] ** (-gammas[:, None])
    u_centered = u - u.mean(axis=1, keepdims=True)
    y_centered = y - y.mean()
    a = (u_centered @ y_centered) / np.maximum((u_centered**2).sum(axis=1), 1e-300)
    c = y.mean() - a * u.mean(axis=1)
    residual = ((a[:, None] * u + c[:, None] - y[None, :]) ** 2).sum(axis=1)
    return a, c, residual


def least_squares_power_law(
    widths: np.ndarray, y: np.ndarray, gamma_range: tuple[float, float] = GAMMA_RANGE
) -> tuple[float, float, float]:
    """(a, gamma, c) minimising sum (a x^-gamma + c - y)^2: the profiled residual over gamma on a coarse grid, then
    finer grids around the best point (for each gamma, a and c are a closed-form simple regression on x^-gamma)."""
    grid = np.linspace(*gamma_range, GRID_POINTS)
    for _ in range(2):
        best = int(np.argmin(_profile(widths, y, grid)[2]))
        grid = np.linspace(grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)], GRID_POINTS)
    a, c, residual = _profile(widths, y, grid)
    best = int(np.argmin(residual))
    return float(a[best]), float(grid[best]), float(c[best])


def _warn_if_not_a_decay(a: float, gamma: float, c: float) -> None:
    low, high = GAMMA_RANGE
    step = (high - low) / (GRID_POINTS - 1)
    if a <= 0:
        warnings.warn(
            f"the observed floors do not fall with width (fitted a = {a:.4g} <= 0, gamma = {gamma:.4g}): Eq. 4 "
            "describes a decay, so a, gamma and c are meaningless here. Check the floors (are they in width order, "
            "converged, from the same metric?).",
            PowerLawWarning,
            stacklevel=3,
        )
    elif gamma < low + step or gamma > high - step:
        warnings.warn(
            f"gamma = {gamma:.4g} sits at the edge of its search range [{low:g}, {high:g}]: the best fit lies "
            "outside it and a, c are compensating; the data do not pin a power law down (too few or too flat points).",
            PowerLawWarning,
            stacklevel=3,
        )
    if a > 0 and c < 0:
        warnings.warn(
            f"the fitted floor c = {c:.4g} is negative: a loss floor cannot be, so this fit is an interpolation, not "
            "Eq. 4's plateau (the floors still fall at the widest width, or the runs have not converged); do not "
            "extrapolate it past the widths it was fitted on.",
            PowerLawWarning,
            stacklevel=3,
        )


def fit_power_law(
    widths: Sequence[float], observed: Sequence[float], seed: int = 0, confidence: float = 0.95
) -> PowerLawFit:
    """Fit L_obs(d_S) = a * d_S^-gamma + c (paper Eq. 4) by profile least squares over gamma in (0, 4].

    Warns (:class:`PowerLawWarning`) when the floors do not fall with width (fitted a <= 0), when the best gamma
    sits at an edge of its search range (the least-squares optimum lies outside it) or when the fitted floor c is
    negative: the numbers are then returned for inspection but do not describe a power-law decay to a floor.
    """
    check_bootstrap_settings(seed, confidence)
    x, y = check_paired(numbers_of(widths, "widths"), numbers_of(observed, "observed"), "widths", "observed", 3)
    if np.any(x <= 0):
        raise ValueError("widths must all be positive for a power law in d_S.")
    if np.unique(x).size < 3:
        raise ValueError("widths needs at least three distinct values to fit a, gamma and c.")
    a, gamma, c = least_squares_power_law(x, y)
    _warn_if_not_a_decay(a, gamma, c)
    intervals = _bootstrap(x, y, least_squares_power_law, 3, seed, confidence)
    return PowerLawFit(
        a=a,
        gamma=gamma,
        c=c,
        r2=r_squared(y, a * x ** (-gamma) + c),
        a_interval=intervals[0],
        gamma_interval=intervals[1],
        c_interval=intervals[2],
        n_points=int(x.size),
    )
