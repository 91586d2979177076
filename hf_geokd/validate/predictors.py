"""The predictors scored side by side: the paper's, ours, and the baselines a sceptic would try.

Each predictor maps training rows (measured floors it may use) and test rows (floors it must predict) of an
:class:`~hf_geokd.validate.observations.Observations` to predictions. ``fits`` says what it may learn from:

- ``nothing``: a zero-shot formula (Eq. 2 under one capacity kind; the soft floor with a shape fitted elsewhere).
  Only meaningful where floors are in Eq. 2's units.
- ``nothing`` in loss units: the ablation floor (nats measured on the teacher with the latents a width-d_S student
  cannot carry removed at its SAE's hook: :func:`hf_geokd.sae.measure_ablation_floors`), when the observations
  carry it (an ``ablation`` column).
- ``same_config``: parameters fitted on the calibration widths of the same teacher (Eq. 2 + Eq. 3's C and B, with
  Eq. 2's floor() cut or its continuous rank; the ablation floor + Eq. 3; the soft floor + Eq. 3; Eq. 2 with g_eff
  measured by feature survival on the calibration students + Eq. 3) and the curves a sceptic fits to the same
  students without any theory: the power law a d^-gamma + c, the parameter law E + A N^-a, the exponential
  a e^(-b d) + c, the inverse width a / d + c and the log-linear a - b ln d. With two calibration widths the
  three-parameter curves drop their constant (two points fix two parameters); a three-parameter fit that leaves the
  physical range (a negative floor or amplitude) is replaced by its two-parameter form.
- ``other_configs``: parameters shared across teachers, fitted on the other configurations (the soft floor's four
  parameters; g_eff = a g^b fitted to kept-feature counts) and applied zero-shot to the held-out one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..calibration import least_squares_power_law
from ..capacity import (
    CAPACITY_KINDS,
    CapacityKind,
    FittedCapacity,
    capacity,
    kind_name,
    predicted_floor,
    quiet_capacity_warnings,
)
from ..soft_floor import SoftFloorFit, fit_soft_floor
from .observations import Observations


@dataclass
class Predictor:
    """A named way to predict floors; ``fits`` is ``nothing``, ``same_config`` or ``other_configs``."""

    name: str
    fits: str
    min_train: int = 0

    def predict(self, observations: Observations, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


def geometric_floor(observations: Observations, rows: pd.DataFrame, kind: CapacityKind,
                    kept_rule: str = "floor") -> np.ndarray:
    """Eq. 2 at each row, as a share of the teacher's feature energy (loss units) or raw (energy units)."""
    values = []
    with quiet_capacity_warnings():
        for config, width in zip(rows["config"], rows["width"]):
            stats = observations.stats[config]
            values.append(predicted_floor(stats.contributions, int(width), stats.alpha, kind,
                                          normalize=observations.units == "loss", kept_rule=kept_rule))
    return np.array(values)


def soft_floor_values(observations: Observations, rows: pd.DataFrame, fit: SoftFloorFit) -> np.ndarray:
    """The soft floor at each row (share of the teacher's energy in loss units, raw in energy units)."""
    values = []
    for config, width, teacher_width in zip(rows["config"], rows["width"], rows["teacher_width"]):
        stats = observations.stats[config]
        value = fit.floor(stats.contributions, int(width), stats.alpha,
                          int(teacher_width) if observations.teacher_relative else None)
        values.append(value / stats.total_energy if observations.units == "loss" else value)
    return np.array(values)


def _affine(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Eq. 3, C x + B, fitted by least squares on the calibration rows (an exact line through two points), at
    least 0 (a floor is never negative; :class:`hf_geokd.TwoComponentFit` clips the same way). C <= 0 (observed
    floors that do not grow with the predicted ones) is a failed fit, as :func:`hf_geokd.fit_two_component` says."""
    if np.unique(x_train).size < 2:
        raise ValueError("Eq. 3 needs two calibration points with distinct predicted floors.")
    slope, intercept = np.polyfit(np.asarray(x_train, float), np.asarray(y_train, float), 1)
    if not slope > 0:
        raise ValueError(f"Eq. 3 fits C = {slope:.4g} <= 0: the calibration floors do not grow with the predicted "
                         "ones.")
    return np.clip(slope * np.asarray(x_test, float) + intercept, 0.0, None)


class Geometric(Predictor):
    """Eq. 2 zero-shot (``calibrated=False``) or followed by Eq. 3 fitted on the calibration widths; ``kept_rule``
    ``continuous`` cuts the spectrum at the real-valued rank d_S g instead of floor(d_S g)."""

    def __init__(self, kind: CapacityKind, calibrated: bool, kept_rule: str = "floor") -> None:
        rule = "" if kept_rule == "floor" else f", {kept_rule}"
        name = f"Eq. 2 ({kind_name(kind)}{rule})" + (" + Eq. 3" if calibrated else "")
        super().__init__(name, "same_config" if calibrated else "nothing", 2 if calibrated else 0)
        self.kind, self.calibrated, self.kept_rule = kind, calibrated, kept_rule

    def predict(self, observations, train, test):
        predicted = geometric_floor(observations, test, self.kind, self.kept_rule)
        if not self.calibrated:
            return predicted
        return _affine(geometric_floor(observations, train, self.kind, self.kept_rule), train["observed"].to_numpy(),
                       predicted)


class AblationFloor(Predictor):
    """The ablation floor (nats, no student): zero-shot, or as Eq. 3's L* with C and B fitted on the calibration
    widths. Needs the observations' ``ablation`` column (measured at every width)."""

    def __init__(self, calibrated: bool) -> None:
        name = "ablation floor" + (" + Eq. 3" if calibrated else " (no student)")
        super().__init__(name, "same_config" if calibrated else "nothing", 2 if calibrated else 0)
        self.calibrated = calibrated

    def predict(self, observations, train, test):
        if test["ablation"].isna().any() or (self.calibrated and train["ablation"].isna().any()):
            raise ValueError("the ablation floor was not measured at every width.")
        predicted = test["ablation"].to_numpy(float)
        if not self.calibrated:
            return predicted
        return _affine(train["ablation"].to_numpy(float), train["observed"].to_numpy(), predicted)


class SoftFloorGiven(Predictor):
    """The soft floor with a given shape (fitted elsewhere), zero-shot or followed by Eq. 3 on the calibration
    widths."""

    def __init__(self, fit: SoftFloorFit, label: str, calibrated: bool) -> None:
        name = f"soft floor ({label})" + (" + Eq. 3" if calibrated else "")
        super().__init__(name, "same_config" if calibrated else "nothing", 2 if calibrated else 0)
        self.fit, self.calibrated = fit, calibrated

    def predict(self, observations, train, test):
        predicted = soft_floor_values(observations, test, self.fit)
        if not self.calibrated:
            return predicted
        return _affine(soft_floor_values(observations, train, self.fit), train["observed"].to_numpy(), predicted)


class SoftFloorAcross(Predictor):
    """The soft floor's four parameters fitted on the other configurations, zero-shot on the held-out one."""

    def __init__(self) -> None:
        super().__init__("soft floor (fitted on other configurations)", "other_configs", 4)
        self._fits: dict[tuple[int, ...], SoftFloorFit] = {}  # every protocol holds out the same configurations

    def predict(self, observations, train, test):
        key = tuple(train.index)
        if key not in self._fits:
            self._fits[key] = fit_soft_floor_to(observations, train)
        return soft_floor_values(observations, test, self._fits[key])


def fit_soft_floor_to(observations: Observations, rows: pd.DataFrame) -> SoftFloorFit:
    """:func:`hf_geokd.soft_floor.fit_soft_floor` on measured rows of an Observations."""
    points = []
    for config, width, teacher_width, observed in zip(rows["config"], rows["width"], rows["teacher_width"],
                                                      rows["observed"]):
        stats = observations.stats[config]
        points.append({"contributions": stats.contributions.numpy(), "width": int(width), "alpha": stats.alpha,
                       "observed": float(observed),
                       "teacher_width": int(teacher_width) if observations.teacher_relative else None})
    return fit_soft_floor(points)


class EffectiveCapacity(Predictor):
    """Eq. 2 with g_eff = a g_paper^b fitted (log least squares) to the kept-feature counts of other configurations
    (the toy records how many features each trained student keeps)."""

    def __init__(self) -> None:
        super().__init__("Eq. 2 (g_eff fitted to kept counts on other configurations)", "other_configs", 2)

    def predict(self, observations, train, test):
        usable = train[(train["kept"] > 0) & (train["kept"] < [observations.stats[c].n_features - 0.5
                                                                for c in train["config"]])]
        alphas = np.array([observations.stats[c].alpha for c in usable["config"]])
        if usable.empty or np.unique(alphas).size < 2:
            raise ValueError("fitting g_eff needs unsaturated kept counts at two or more sparsity levels.")
        with quiet_capacity_warnings():
            log_g = np.log([capacity(a, "paper") for a in alphas])
        slope, intercept = np.polyfit(log_g, np.log(usable["kept"].to_numpy() / usable["width"].to_numpy()), 1)
        return geometric_floor(observations, test, FittedCapacity(a=float(np.exp(intercept)), b=float(slope)))


class MeasuredSurvival(Predictor):
    """Eq. 2 with the capacity measured by feature survival on the calibration students only (g_eff, the slope of
    k*(d_S) through the origin: :meth:`hf_geokd.FittedCapacity.from_kept_counts`), then Eq. 3 fitted on the same
    students. Needs the ``k_star`` column (``survival/summary.json`` of a demo folder, or a CSV column)."""

    def __init__(self) -> None:
        super().__init__("Eq. 2 (g_eff measured by survival) + Eq. 3", "same_config", 2)

    def predict(self, observations, train, test):
        kind = FittedCapacity.from_kept_counts(train["width"].to_numpy(), train["k_star"].to_numpy())
        return _affine(geometric_floor(observations, train, kind), train["observed"].to_numpy(),
                       geometric_floor(observations, test, kind))


class PowerLawBaseline(Predictor):
    """Eq. 4 fitted on the calibration widths: a d^-gamma + c with three or more, a d^-gamma with two."""

    def __init__(self) -> None:
        super().__init__("power law a d^-gamma (+ c)", "same_config", 2)

    def predict(self, observations, train, test):
        return _decay_law(train["width"].to_numpy(float), train["observed"].to_numpy(), test["width"].to_numpy(float))


class ParameterLaw(Predictor):
    """Student parameters N_S: E + A N_S^-a with three or more calibration widths, A N_S^-a with two (what the
    distillation scaling law of Busbridge et al. 2025 reduces to at fixed tokens and teacher)."""

    def __init__(self) -> None:
        super().__init__("parameter law A N^-a (+ E)", "same_config", 2)

    def predict(self, observations, train, test):
        if train["parameters"].isna().any() or test["parameters"].isna().any():
            raise ValueError("the parameter law needs the students' parameter counts.")
        return _decay_law(train["parameters"].to_numpy(float), train["observed"].to_numpy(),
                          test["parameters"].to_numpy(float))


class ExponentialBaseline(Predictor):
    """a e^(-b d) + c through three or more calibration widths, a e^(-b d) through two: a floor that collapses
    near some width, which a power law cannot represent."""

    def __init__(self) -> None:
        super().__init__("exponential a e^(-b d) (+ c)", "same_config", 2)

    def predict(self, observations, train, test):
        return _exponential(train["width"].to_numpy(float), train["observed"].to_numpy(), test["width"].to_numpy(float))


class InverseWidthBaseline(Predictor):
    """a / d + c (two parameters at any number of calibration widths; least squares, exact through two), at least 0:
    a floor is never negative."""

    def __init__(self) -> None:
        super().__init__("inverse width a / d + c", "same_config", 2)

    def predict(self, observations, train, test):
        x = train["width"].to_numpy(float)
        if np.unique(x).size < 2:
            raise ValueError("a / d + c needs two distinct calibration widths.")
        a, c = np.polyfit(1.0 / x, train["observed"].to_numpy(float), 1)
        return np.clip(a / test["width"].to_numpy(float) + c, 0.0, None)


class LogLinearBaseline(Predictor):
    """a - b ln d (two parameters; least squares, exact through two), at least 0: a floor is never negative."""

    def __init__(self) -> None:
        super().__init__("log-linear a - b ln d", "same_config", 2)

    def predict(self, observations, train, test):
        x = train["width"].to_numpy(float)
        if np.unique(x).size < 2:
            raise ValueError("a - b ln d needs two distinct calibration widths.")
        slope, intercept = np.polyfit(np.log(x), train["observed"].to_numpy(float), 1)
        return np.clip(intercept + slope * np.log(test["width"].to_numpy(float)), 0.0, None)


SCEPTIC_BASELINES = ("power law a d^-gamma (+ c)", "parameter law A N^-a (+ E)", "exponential a e^(-b d) (+ c)",
                     "inverse width a / d + c", "log-linear a - b ln d")
"""The names of the curves a sceptic fits to the same students without any theory: a theory predictor counts as
better only when it beats the best of them on the same points."""


def _exponential(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """a e^(-b x) + c by least squares through three or more points (kept when a, b, c >= 0: a decay to a floor), else
    a e^(-b x) by a line through (x, ln y); floors that do not fall with width are a failed fit."""
    from scipy.optimize import OptimizeWarning, curve_fit  # Deferred: scipy loads only when a curve is fitted.

    if np.unique(x).size < 2 or np.any(y <= 0):
        raise ValueError("an exponential needs at least two distinct calibration points with positive floors.")
    slope, intercept = np.polyfit(x, np.log(y), 1)
    if slope >= 0:
        raise ValueError("the calibration floors do not fall with width: an exponential decay cannot fit them.")
    if np.unique(x).size >= 3:
        try:
            with warnings.catch_warnings():  # an exact fit through three points has no covariance to estimate
                warnings.simplefilter("ignore", OptimizeWarning)
                (a, b, c), _ = curve_fit(lambda d, a, b, c: a * np.exp(-b * d) + c, x, y,
                                         p0=(float(np.exp(intercept)), float(-slope), 0.0), maxfev=20_000)
            if a >= 0 and b > 0 and c >= 0 and np.isfinite([a, b, c]).all():
                return a * np.exp(-b * x_test) + c
        except RuntimeError:
            pass  # no convergence: the two-parameter form below
    return np.exp(intercept + slope * x_test)


def _decay_law(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """a x^-gamma + c through three or more points, a x^-gamma through two; kept physical: a fit with a negative
    floor c or amplitude a is replaced by the best c = 0 law (log-space least squares), never extrapolated."""
    if np.unique(x).size >= 3:
        a, gamma, c = least_squares_power_law(x, y)
        if a >= 0 and c >= 0:
            return a * x_test ** (-gamma) + c
    if np.unique(x).size < 2 or np.any(y <= 0):
        raise ValueError("a decay law needs at least two distinct calibration points with positive floors.")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return np.exp(intercept) * x_test**slope


def default_predictors(observations: Observations, soft_fit: SoftFloorFit | None, soft_label: str) -> list[Predictor]:
    """Every predictor that applies to these observations, the paper's kinds first, the sceptic's curves last."""
    predictors: list[Predictor] = []
    if observations.units == "energy":
        predictors += [Geometric(kind, calibrated=False) for kind in CAPACITY_KINDS]
    predictors += [Geometric(kind, calibrated=True) for kind in ("paper", "dt_signed")]
    predictors.append(Geometric("dt_signed", calibrated=True, kept_rule="continuous"))
    if "ablation" in observations.table and observations.table["ablation"].notna().all():
        predictors += [AblationFloor(calibrated=False), AblationFloor(calibrated=True)]
    if soft_fit is not None:
        if observations.units == "energy":
            predictors.append(SoftFloorGiven(soft_fit, soft_label, calibrated=False))
        predictors.append(SoftFloorGiven(soft_fit, soft_label, calibrated=True))
    if observations.teacher_relative and observations.table["config"].nunique() > 1:
        predictors.append(SoftFloorAcross())
        if "kept" in observations.table and observations.table["kept"].notna().all():
            predictors.append(EffectiveCapacity())
    if "k_star" in observations.table and observations.table["k_star"].notna().all():
        predictors.append(MeasuredSurvival())
    predictors += [PowerLawBaseline(), ParameterLaw(), ExponentialBaseline(), InverseWidthBaseline(),
                   LogLinearBaseline()]
    return predictors

