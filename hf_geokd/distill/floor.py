"""The loss floor of a training run, measured from its evaluations, and whether the run has reached it.

Two estimates of the floor of a run whose evaluation loss at step t is L(t):

- ``floor``: the paper's definition (Appendix E), the mean of L over the final 10% of evaluations. It measures
  under-training as much as geometry when the run has not converged.
- ``asymptote``: L_inf of L(t) = L_inf + A t^-b fitted by least squares on the evaluations after the first 10%
  (warm-up transients), with a residual-bootstrap interval. It is only as good as the curve's reach: on a curve
  still far from its asymptote L_inf is not identifiable (the interval says so, and the run is not converged).

Convergence rule (stated in every report and card that prints a floor): a run has converged when the fitted further
improvement over another doubling of its steps, L(t_last) - L(2 t_last) = A t_last^-b (1 - 2^-b), is at most
max(``tolerance`` x floor, ``absolute_tolerance``) (default: 1% of the floor, no absolute term), on at least
``min_evaluations`` tail evaluations. The relative term alone never converges a run whose asymptote is 0 (a student
past the critical width, the d_S = d_T control): there every doubling gains the same share 1 - 2^-b of what is left,
so such runs need an absolute tolerance in the loss's units (nats). The improvement per doubling
is well determined even when the fit cannot pin L_inf (b near 0, a curve still falling as a straight line in log t:
there A t^-b (1 - 2^-b) -> A b ln 2, the slope per doubling), so the rule does not trust an extrapolated L_inf.
The rule is meaningful at a constant learning rate (after warm-up): under a schedule that decays to zero the loss
flattens because the steps shrink, and a run would look converged at its end whatever its floor.

A rising curve is never converged, whatever its fit says (a loss rising 0.5 -> 1.5 fits L_inf + A t^-b with A < 0 and
an L_inf far above the data, and gains nothing per doubling): the run is overfitting or diverging, and its tail mean
is not a floor it has reached. Two checks, each against the same allowance max(``tolerance`` x floor,
``absolute_tolerance``): the fitted tail curve rises by more than the allowance from its first to its last tail
evaluation (A < 0), or the evaluations of the last doubling of steps (at least 3) rise, on a least-squares line in
log2 t, by more than the allowance per doubling and by more than twice the slope's standard error (a U-shaped curve
that has turned upward, which a single decaying power law cannot describe). Losses below ``lower_bound`` (0: a KL or
cross-entropy) are refused rather than fitted.

Steps to converge: where the fitted curve meets the rule, with the floor taken as L(t) itself. With u = A t^-b and
c = 1 - 2^-b the rule reads u c <= max(tolerance (L_inf + u), absolute_tolerance), i.e.
u <= u* = max(tolerance L_inf / (c - tolerance), absolute_tolerance / c) (every t when c <= tolerance), so
t* = (A / u*)^(1/b): infinite when u* = 0 (asymptote 0, no absolute tolerance). It is an extrapolation of the tail
fit, a forecast of how long to train, not a measurement.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..calibration import least_squares_power_law

EXPONENT_RANGE = (1e-3, 4.0)


@dataclass
class FloorEstimate:
    """A run's floor: the paper's tail mean, the fitted asymptote with its interval, and the convergence verdict.

    Attributes:
        floor: mean of the final ``fraction`` of evaluations (paper Appendix E).
        asymptote: L_inf of L(t) = L_inf + A t^-b on the tail (NaN with fewer than 3 tail points).
        asymptote_low, asymptote_high: percentile interval of L_inf over residual-bootstrap refits.
        amplitude, exponent: the fitted A and b.
        improvement_per_doubling: L(t_last) - L(2 t_last) from the fit (0 when the tail does not fall).
        converged: improvement_per_doubling <= max(tolerance * floor, absolute_tolerance) on >= min_evaluations
            tail points, and the curve does not rise (module docstring).
        steps_to_converge: the step from which the fitted curve meets the rule (module docstring; inf: never; NaN
            for a rising curve: no decay to forecast).
        reason: why ``converged`` is what it is, in words.
        evaluations, last_step: how many evaluations there were, and the step of the last.
    """

    floor: float
    asymptote: float
    asymptote_low: float
    asymptote_high: float
    amplitude: float
    exponent: float
    improvement_per_doubling: float
    converged: bool
    reason: str
    evaluations: int
    last_step: int
    steps_to_converge: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_floor(
    steps, losses, fraction: float = 0.1, tail: float = 0.9, tolerance: float = 0.01, min_evaluations: int = 5,
    bootstrap: int = 200, confidence: float = 0.9, seed: int = 0, lower_bound: float | None = 0.0,
    absolute_tolerance: float = 0.0,
) -> FloorEstimate:
    """Floor, asymptote and convergence of a run from its evaluation history (see the module docstring for the rule).

    Args:
        steps: training step of each evaluation (increasing, > 0).
        losses: the evaluation loss at those steps (each >= ``lower_bound``).
        fraction: share of final evaluations averaged into ``floor`` (the paper: 0.1).
        tail: share of final evaluations the asymptote is fitted on.
        tolerance: largest relative improvement per doubling of steps that still counts as converged.
        absolute_tolerance: largest improvement per doubling, in the loss's units, that counts as converged whatever
            the floor (0: the relative rule alone).
        min_evaluations: fewest tail evaluations on which convergence can be declared.
        bootstrap: residual-bootstrap refits for the asymptote's interval (0: none, the interval is NaN).
        confidence: coverage of that interval, in (0, 1).
        seed: seed of the bootstrap.
        lower_bound: the asymptote is kept at or above it, and a loss below it is refused (0: a KL or cross-entropy
            loss is never negative, and a short run's unconstrained fit can put L_inf below 0); None leaves it free.
    """
    t, y = _check_history(steps, losses, lower_bound)
    _check_settings(fraction, tail, tolerance, min_evaluations, bootstrap, confidence, seed)
    _check_absolute_tolerance(absolute_tolerance)
    floor = float(y[-max(1, round(fraction * y.size)):].mean())
    count = max(1, round(tail * y.size))
    t_tail, y_tail = t[-count:], y[-count:]
    nan = float("nan")
    if count < 3:
        return FloorEstimate(floor, nan, nan, nan, nan, nan, nan, False,
                             f"only {count} tail evaluations: at least {min_evaluations} are needed", int(t.size),
                             int(t[-1]))
    amplitude, exponent, asymptote = _fit_above(t_tail, y_tail, lower_bound)
    fitted = amplitude * t_tail ** (-exponent) + asymptote
    low, high = _bootstrap_asymptote(t_tail, y_tail, fitted, bootstrap, confidence, seed, lower_bound)
    improvement = max(0.0, amplitude * t[-1] ** (-exponent) * (1.0 - 2.0 ** (-exponent)))
    relative = improvement / abs(floor) if floor != 0 else math.inf
    allowance = max(tolerance * abs(floor), absolute_tolerance)
    allowed = f"{100 * tolerance:g}% of the floor" + (f" or {absolute_tolerance:.3g}" if absolute_tolerance else "")
    gain = f"another doubling of the steps gains {improvement:.3g} ({100 * relative:.2f}% of the floor"
    rising = _rising(t_tail, y_tail, fitted, allowance, allowed)
    forecast = steps_to_converge(amplitude, exponent, asymptote, tolerance, absolute_tolerance)
    if rising:
        converged, reason, forecast = False, rising, nan
    elif count < min_evaluations:
        converged, reason = False, f"only {count} tail evaluations: at least {min_evaluations} are needed"
    elif improvement <= allowance:
        converged, reason = True, f"{gain}; at most {allowed})"
    else:
        converged, reason = False, f"still falling: {gain}; more than {allowed})"
    return FloorEstimate(floor, asymptote, low, high, amplitude, exponent, improvement, converged, reason,
                         int(t.size), int(t[-1]), forecast)


def _rising(t: np.ndarray, y: np.ndarray, fitted: np.ndarray, allowance: float, allowed: str) -> str | None:
    """Why the tail (steps ``t``, losses ``y``, fitted curve ``fitted``) rises by more than ``allowance``, or None
    when it does not (the two checks of the module docstring)."""
    fitted_rise = float(fitted[-1] - fitted[0])
    if fitted_rise > allowance:
        return (f"rising: the fitted tail curve rises by {fitted_rise:.3g} from step {int(t[0])} to step "
                f"{int(t[-1])} (more than {allowed}); the run is overfitting or diverging, and its tail mean is not a "
                "floor it has reached")
    last = t >= t[-1] / 2.0
    if last.sum() < 3:
        last = np.arange(t.size) >= t.size - 3
    x, values = np.log2(t[last]), y[last]
    spread = float(np.sum((x - x.mean()) ** 2))
    if values.size < 3 or spread == 0:
        return None
    slope = float(np.sum((x - x.mean()) * (values - values.mean())) / spread)
    residual = values - values.mean() - slope * (x - x.mean())
    error = math.sqrt(float(residual @ residual) / (values.size - 2) / spread) if values.size > 2 else math.inf
    if slope > allowance and slope > 2.0 * error:
        return (f"rising: over the last doubling of steps ({int(t[last][0])} to {int(t[-1])}) the loss rises by "
                f"{slope:.3g} per doubling (more than {allowed}, and more than twice its standard error {error:.2g}); "
                "the curve has turned upward (overfitting or a too-high learning rate), so its tail mean is not a "
                "floor it has reached")
    return None


def _check_history(steps, losses, lower_bound: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` and ``losses`` as float64 vectors, after the checks that name each argument and the fix."""
    arrays = []
    for values, name in ((steps, "steps"), (losses, "losses")):
        if isinstance(values, (str, bytes)):
            raise ValueError(f"{name} must be a sequence of numbers, got the string {values!r}.")
        try:
            arrays.append(np.asarray(values, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a sequence of numbers (one per evaluation), got {values!r}: "
                             f"{error}.") from error
    t, y = arrays
    if t.shape != y.shape or t.size == 0:
        raise ValueError(f"steps ({t.size}) and losses ({y.size}) must be non-empty and of equal length.")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise ValueError("steps and losses must be finite: a NaN evaluation loss means the run diverged.")
    if np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise ValueError("steps must be positive and increasing (one evaluation per step).")
    if lower_bound is not None:
        if not _is_real(lower_bound) or not math.isfinite(lower_bound):
            raise ValueError(f"lower_bound must be a finite number or None, got {lower_bound!r}.")
        if np.any(y < lower_bound):
            raise ValueError(f"losses fall below lower_bound={lower_bound:g} (lowest {y.min():.4g}): a KL or "
                             "cross-entropy is never negative, so these are not such losses; pass lower_bound=None "
                             "for a loss that can be negative.")
    return t, y


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_settings(fraction, tail, tolerance, min_evaluations, bootstrap, confidence, seed) -> None:
    """Name the estimation setting that is out of range (or not a number) and the range it must lie in."""
    for name, value in (("fraction", fraction), ("tail", tail)):
        if not _is_real(value) or not 0 < value <= 1:
            raise ValueError(f"{name} must be a number in (0, 1] (a share of the evaluations), got {value!r}.")
    if not _is_real(tolerance) or not 0 < tolerance < math.inf:
        raise ValueError(f"tolerance must be a finite number > 0 (a relative improvement per doubling), got "
                         f"{tolerance!r}.")
    if not _is_real(confidence) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1) (the coverage of the asymptote's interval, e.g. "
                         f"0.9), got {confidence!r}.")
    for name, value, least in (("min_evaluations", min_evaluations, 1), ("bootstrap", bootstrap, 0),
                               ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}.")


def steps_to_converge(amplitude: float, exponent: float, asymptote: float, tolerance: float,
                      absolute_tolerance: float = 0.0) -> float:
    """The step t* from which L(t) = L_inf + A t^-b meets the convergence rule (module docstring):
    t* = (A / u*)^(1/b), u* = max(tolerance L_inf / (c - tolerance), absolute_tolerance / c), c = 1 - 2^-b;
    0 when every step meets it (c <= tolerance or A = 0), inf when none does (u* = 0), NaN when A < 0 (the fitted
    curve rises: there is no decay to forecast, and a rising run is never converged) or a parameter is NaN."""
    if not all(math.isfinite(value) for value in (amplitude, exponent, asymptote)) or amplitude < 0:
        return float("nan")
    c = 1.0 - 2.0 ** (-exponent)
    if amplitude == 0 or c <= tolerance:
        return 0.0
    threshold = max(tolerance * max(asymptote, 0.0) / (c - tolerance), absolute_tolerance / c)
    if threshold <= 0:
        return math.inf
    return float((amplitude / threshold) ** (1.0 / exponent))


def _check_absolute_tolerance(absolute_tolerance: float) -> None:
    if not _is_real(absolute_tolerance) or not 0 <= absolute_tolerance < math.inf:
        raise ValueError(f"absolute_tolerance must be >= 0 (an improvement per doubling in the loss's units; 0 turns "
                         f"it off), got {absolute_tolerance}.")


def _fit_above(t: np.ndarray, y: np.ndarray, lower_bound: float | None) -> tuple[float, float, float]:
    """(A, b, L_inf) of L_inf + A t^-b by least squares, with L_inf >= ``lower_bound`` (None: unbounded). A fit whose
    L_inf falls below the bound is refitted with L_inf at the bound (the constrained optimum lies on it)."""
    amplitude, exponent, asymptote = least_squares_power_law(t, y, EXPONENT_RANGE)
    if lower_bound is None or asymptote >= lower_bound:
        return amplitude, exponent, asymptote
    grid = np.linspace(*EXPONENT_RANGE, 2000)
    powers = t[None, :] ** (-grid[:, None])
    shifted = y - lower_bound
    amplitudes = (powers @ shifted) / np.sum(powers**2, axis=1)
    best = int(np.argmin(np.sum((amplitudes[:, None] * powers - shifted) ** 2, axis=1)))
    return float(amplitudes[best]), float(grid[best]), float(lower_bound)


def _bootstrap_asymptote(t: np.ndarray, y: np.ndarray, fitted: np.ndarray, samples: int, confidence: float,
                         seed: int, lower_bound: float | None) -> tuple[float, float]:
    """Percentile interval of L_inf over refits to the fitted curve plus resampled residuals."""
    if samples <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    residuals = y - fitted
    draws = [_fit_above(t, fitted + rng.choice(residuals, residuals.size), lower_bound)[2] for _ in range(samples)]
    tail = 50.0 * (1.0 - confidence)
    return float(np.percentile(draws, tail)), float(np.percentile(draws, 100.0 - tail))


class LossFloorCallback(TrainerCallback, ExportableState):
    """Tracks a run's floor at every evaluation: the paper's tail mean, the fitted asymptote and convergence.

    After each evaluation it adds to the metrics ``eval_loss_floor`` (mean of the final ``fraction`` of
    evaluations), ``eval_loss_asymptote`` and ``eval_floor_converged`` (1.0 or 0.0) by the rule of
    :func:`estimate_floor`; :meth:`estimate` adds the asymptote's bootstrap interval (for reports and cards). An
    evaluation at the step of the previous one (``trainer.evaluate()`` right after training) replaces it. With
    ``stop_when_converged=True`` training stops at the first evaluation that finds the run converged (a 30,000-step
    distillation ends when its floor is reached). The evaluations and their steps are kept in the trainer state's
    checkpointed callbacks, so a resumed run keeps counting.
    """

    def __init__(self, metric: str = "eval_loss", fraction: float = 0.1, evaluations: list[float] | None = None,
                 steps: list[int] | None = None, tolerance: float = 0.01, min_evaluations: int = 5,
                 stop_when_converged: bool = False, absolute_tolerance: float = 0.0):
        _check_settings(fraction, 1.0, tolerance, min_evaluations, 0, 0.5, 0)
        _check_absolute_tolerance(absolute_tolerance)
        self.metric, self.fraction, self.tolerance = metric, fraction, tolerance
        self.absolute_tolerance = absolute_tolerance
        self.min_evaluations, self.stop_when_converged = min_evaluations, stop_when_converged
        self.evaluations: list[float] = list(evaluations or [])
        self.steps: list[int] = list(steps or range(1, len(self.evaluations) + 1))
        if len(self.steps) != len(self.evaluations):
            raise ValueError(f"steps has {len(self.steps)} entries but evaluations has {len(self.evaluations)}.")

    @property
    def floor(self) -> float | None:
        """The paper's floor: the mean of the final ``fraction`` of evaluations."""
        if not self.evaluations:
            return None
        count = max(1, round(self.fraction * len(self.evaluations)))
        tail = self.evaluations[-count:]
        return sum(tail) / len(tail)

    def estimate(self, bootstrap: int = 200) -> FloorEstimate | None:
        """The full :class:`FloorEstimate` of the evaluations so far (None before the first)."""
        if not self.evaluations:
            return None
        return estimate_floor(self.steps, self.evaluations, self.fraction, tolerance=self.tolerance,
                              min_evaluations=self.min_evaluations, bootstrap=bootstrap,
                              absolute_tolerance=self.absolute_tolerance)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or self.metric not in metrics:
            return control
        step = max(int(state.global_step), 1)
        if self.steps and step <= self.steps[-1]:
            self.evaluations[-1], self.steps[-1] = float(metrics[self.metric]), self.steps[-1]
        else:
            self.evaluations.append(float(metrics[self.metric]))
            self.steps.append(step)
        estimate = self.estimate(bootstrap=0)  # the interval is computed once, for reports and cards
        metrics["eval_loss_floor"] = estimate.floor
        metrics["eval_loss_asymptote"] = estimate.asymptote
        metrics["eval_floor_converged"] = float(estimate.converged)
        if self.stop_when_converged and estimate.converged:
            control.should_training_stop = True
        return control

    def state(self) -> dict:
        return {"args": {"metric": self.metric, "fraction": self.fraction, "evaluations": self.evaluations,
                         "steps": self.steps, "tolerance": self.tolerance, "min_evaluations": self.min_evaluations,
                         "stop_when_converged": self.stop_when_converged,
                         "absolute_tolerance": self.absolute_tolerance},
                "attributes": {}}
