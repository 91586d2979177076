"""Eq. 3 with B from the control student (exploratory, chosen after the ``demo`` teacher was scored).

The registered protocol fits Eq. 3's C and B through the two narrowest students, so B (the floor that remains past
d*) is extrapolated from two students far below d*. The paper measures B instead: the floor of the d_S = d_T control
run. Here B is that control's observed floor and only the curve's other parameter is fitted on the same two
calibration students, for the theory and for the sceptic's curves alike (each gets the same three students):

- Eq. 2 (dt_signed, continuous) + Eq. 3:  L(d) = C P(d) + B,   C = sum_i P_i (L_i - B) / sum_i P_i^2 (Eq. 3, B fixed)
- ablation floor + Eq. 3:                 the same with the ablation floor A(d) in place of P(d)
- exponential:                            L(d) = a e^(-b d) + B, through the two students (exact)
- power law:                              L(d) = a d^(-gamma) + B, through the two students (exact)
- inverse width:                          L(d) = a / d + B, a by least squares

A curve through a calibration floor at or below B cannot be fitted (None). Scored like the registered predictions:
MARE over the held-out students per SAE seed, median and range over the seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...calibration import fit_two_component
from ...capacity import predicted_floor, quiet_capacity_warnings
from ...stats import FeatureStats
from .registration import mare_over_seeds

THEORY = ("Eq. 2 (dt_signed, continuous) + Eq. 3, B from the control", "ablation floor + Eq. 3, B from the control")
CURVES = ("exponential a e^(-b d) + B", "power law a d^-gamma + B", "inverse width a / d + B")


def fixed_b(x_train: np.ndarray, y_train: np.ndarray, b: float, x_test: np.ndarray) -> np.ndarray | None:
    """Eq. 3 with B given (:func:`hf_geokd.fit_two_component` with ``baseline=b``) at ``x_test``; None where it
    cannot be fitted (C <= 0, or every calibration floor predicted 0)."""
    try:
        return fit_two_component(x_train, y_train, baseline=b).predict(x_test)
    except ValueError:
        return None


def curve_predictions(widths: np.ndarray, floors: np.ndarray, b: float, targets: np.ndarray) -> dict:
    """The sceptic's curves with asymptote ``b`` through the calibration students (``widths``, ``floors``: two)."""
    above = floors - b
    predictions: dict[str, np.ndarray | None] = dict.fromkeys(CURVES)
    if len(widths) == 2 and np.all(above > 0) and above[0] != above[1]:
        rate = np.log(above[0] / above[1]) / (widths[1] - widths[0])
        predictions[CURVES[0]] = above[0] * np.exp(-rate * (targets - widths[0])) + b
        gamma = np.log(above[0] / above[1]) / np.log(widths[1] / widths[0])
        predictions[CURVES[1]] = above[0] * (targets / widths[0]) ** -gamma + b
    if np.all(above > 0):
        a = float(np.dot(1 / widths, above) / np.dot(1 / widths, 1 / widths))
        predictions[CURVES[2]] = a / targets + b
    return predictions


def control_anchored_scores(registration: dict, scores: dict, stats: dict[int, FeatureStats]) -> pd.DataFrame:
    """One row per predictor: MARE % over the teacher's held-out students (``mare_pct`` the median over its SAE
    seeds, ``mare_low``, ``mare_high`` their range; ``seeds`` where it could be fitted), with B the control's
    observed floor. ``stats``: each seed's statistics (Eq. 2's spectrum)."""
    observed = scores["observed"]
    b = float(observed[str(registration["control_width"])])
    calibration = np.array(registration["calibration_widths"], float)
    targets = np.array(registration["predicted_widths"], float)
    cal_floors = np.array([observed[str(int(w))] for w in calibration])
    truth = np.array([observed[str(int(w))] for w in targets])
    per_seed: dict[str, list[np.ndarray]] = {name: [] for name in (*THEORY, *CURVES)}
    curves = curve_predictions(calibration, cal_floors, b, targets)
    for seed_key, ablation in registration["ablation_floors"].items():
        seed_stats = stats[int(seed_key)]
        with quiet_capacity_warnings():
            eq2 = np.array([predicted_floor(seed_stats.contributions, int(w), seed_stats.alpha, "dt_signed",
                                            normalize=True, kept_rule="continuous") for w in (*calibration, *targets)])
        ablated = np.array([ablation[str(int(w))] for w in (*calibration, *targets)])
        k = len(calibration)
        theory = {THEORY[0]: fixed_b(eq2[:k], cal_floors, b, eq2[k:]),
                  THEORY[1]: fixed_b(ablated[:k], cal_floors, b, ablated[k:])}
        for name, predicted in {**theory, **curves}.items():
            if predicted is not None:
                per_seed[name].append(predicted)
    rows = [{"predictor": name, **mare_over_seeds(predictions, truth), "seeds": len(predictions),
             "baseline": name in CURVES} for name, predictions in per_seed.items()]
    return pd.DataFrame(rows).sort_values("mare_pct", kind="stable", na_position="last")


def control_anchored_table(out: Path, found: list[tuple[str, dict, dict]]) -> pd.DataFrame:
    """:func:`control_anchored_scores` of every scored teacher (``found``, as :func:`.summary.collect` gives), long
    form (a ``teacher`` column), each seed's statistics read from ``<out>/<teacher>/sae/seed<s>/<hook>/``."""
    frames = []
    for name, registration, scores in found:
        hook = f"gpt_neox.layers.{registration['settings']['sae_layer']}"
        stats = {sae["seed"]: FeatureStats.load(out / name / "sae" / f"seed{sae['seed']}" / hook)
                 for sae in registration["saes"]}
        frames.append(control_anchored_scores(registration, scores, stats).assign(teacher=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
