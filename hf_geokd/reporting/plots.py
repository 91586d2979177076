"""PNG figures of predicted and observed floors, spectra and probe accuracies.

Figures are built with matplotlib's object-oriented ``Figure`` (no pyplot): saving a PNG needs no GUI backend and
never switches the backend of a notebook or application that imports hf-geokd.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..calibration import PowerLawFit, TwoComponentFit


def new_figure(rows: int = 1, columns: int = 1, figsize: tuple[float, float] = (5.6, 4.2), **kwargs):
    """A ``Figure`` and its axes (as ``plt.subplots`` returns them), detached from pyplot's global state."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, **kwargs)


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` (a PNG unless ``path`` ends in another image suffix, such as .svg or .pdf; ``.png`` is
    appended to a path without one) creating the folder, and return the path written."""
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    return path


def plot_predicted_floors(tables: Mapping[str, pd.DataFrame], path: str | Path, title: str = "") -> Path:
    """Predicted floor (share of feature energy) vs student width, one line per capacity kind, d* dotted.

    The floor axis is logarithmic down to a tenth of the smallest positive floor and linear below it (symlog), so a
    floor of 0 (every feature kept, d_S >= d*) stays on the plot at 0.
    """
    figure, axis = new_figure(figsize=(6.4, 4.2))
    positive = [float(value) for table in tables.values() for value in table["predicted_floor"] if value > 0]
    for index, (kind, table) in enumerate(tables.items()):
        color = f"C{index}"
        axis.plot(table["width"], table["predicted_floor"].to_numpy(dtype=float), "o-", color=color, label=kind)
        d_star = table.attrs.get("critical_width")
        if d_star is not None:
            axis.axvline(d_star, color=color, linestyle=":", linewidth=1)
    axis.set_xscale("log", base=2)
    axis.set_yscale("symlog", linthresh=min(positive) / 10 if positive else 1e-3)
    axis.set_ylim(bottom=0)
    axis.set_xlabel("student width d_S")
    axis.set_ylabel("predicted floor L*(d_S) (share of energy)")
    axis.set_title(title or "Predicted floor vs width (dotted: d*)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(title="capacity g(alpha)")
    return save_figure(figure, path)


def plot_calibration(predicted, observed, fit: TwoComponentFit, path: str | Path, labels=None, title: str = "") -> Path:
    """Observed vs predicted floors with the affine (Eq. 3) and linear fits."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    figure, axis = new_figure()
    axis.scatter(predicted, observed, color="C3", zorder=3, label="observed")
    for x, y, label in zip(predicted, observed, labels if labels is not None else [None] * predicted.size):
        if label is not None:
            axis.annotate(str(label), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    grid = np.linspace(0, predicted.max() * 1.05, 50)
    axis.plot(
        grid, fit.C * grid + fit.B, "-", color="C0", label=f"C L* + B: C={fit.C:.3g}, B={fit.B:.3g}, R²={fit.r2:.3f}"
    )
    axis.plot(
        grid, fit.linear_C * grid, "--", color="0.5", label=f"linear: C={fit.linear_C:.3g}, R²={fit.linear_r2:.2f}"
    )
    axis.set_xlabel("predicted geometric floor L* (Eq. 2)")
    axis.set_ylabel("observed floor")
    axis.set_title(title or "Two-component calibration (Eq. 3)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def plot_power_law(widths, observed, fit: PowerLawFit, path: str | Path, title: str = "") -> Path:
    """Observed floor vs width with the fitted a d^-gamma + c (Eq. 4)."""
    widths, observed = np.asarray(widths, float), np.asarray(observed, float)
    figure, axis = new_figure()
    axis.plot(widths, observed, "o", color="C3", label="observed")
    grid = np.geomspace(widths.min(), widths.max(), 100)
    axis.plot(
        grid,
        fit.predict(grid),
        "-",
        color="C0",
        label=f"{fit.a:.3g} d^-{fit.gamma:.3g} + {fit.c:.3g} (R²={fit.r2:.3f})",
    )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("student width d_S")
    axis.set_ylabel("observed floor")
    axis.set_title(title or "Power law (Eq. 4)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def plot_spectrum(stats, path: str | Path) -> Path:
    """Feature importance (share of energy) vs rank, log-log (the paper's Figure 5a)."""
    values = stats.normalized_contributions.numpy()
    figure, axis = new_figure(figsize=(5.6, 4.0))
    axis.loglog(np.arange(1, values.size + 1), values, color="C0")
    axis.set_xlabel("feature rank")
    axis.set_ylabel("E[z_i^2] ||W_dec,i||^2 / total")
    axis.set_title(
        f"Importance spectrum\nF = {stats.n_features:,}, L0 = {stats.l0:.1f}, alpha = {stats.alpha:.4f}", fontsize=10
    )
    axis.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


def plot_floor_curves(curves: Mapping[str, tuple], path: str | Path, title: str = "") -> Path:
    """Evaluation loss vs step for several runs, each with its fitted L_inf + A t^-b (dashed) and L_inf (dotted).

    ``curves``: label -> (steps, losses, asymptote, amplitude, exponent, converged).
    """
    figure, axis = new_figure(figsize=(6.4, 4.6))
    for index, (label, (steps, losses, asymptote, amplitude, exponent, converged)) in enumerate(curves.items()):
        color = f"C{index % 10}"
        steps, losses = np.asarray(steps, float), np.asarray(losses, float)
        axis.plot(steps, losses, "-", color=color, lw=1.2, label=f"{label}{'' if converged else ' (not converged)'}")
        if math.isfinite(asymptote):
            tail = steps[steps >= steps.max() * 0.1]
            axis.plot(tail, asymptote + amplitude * tail ** (-exponent), "--", color=color, lw=0.8)
            axis.axhline(asymptote, color=color, ls=":", lw=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("evaluation loss")
    axis.set_title(title or "Distillation curves and fitted asymptotes")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return save_figure(figure, path)


def plot_held_out(predictions: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Predicted vs measured floors of held-out points, one colour per predictor, with the identity line.

    ``predictions``: columns predictor, observed, predicted. Both axes are logarithmic; a prediction <= 0 (a floor of
    exactly 0 past the critical width, or a calibration that extrapolates below 0) has no place on a log axis, so it
    is drawn at the bottom of the predicted axis as a hollow downward triangle in its predictor's colour, and the
    legend says how many there are.
    """
    figure, axis = new_figure(figsize=(6.0, 5.0))
    values = predictions[["observed", "predicted"]].to_numpy(float)
    positive = values[(values > 0).all(axis=1)]
    bottom = _log_bottom(positive)
    not_positive = 0
    for index, (name, rows) in enumerate(predictions.groupby("predictor", sort=False)):
        color = f"C{index % 10}"
        measured = rows[rows["observed"] > 0]
        shown = measured[measured["predicted"] > 0]
        zero = measured[~(measured["predicted"] > 0)]
        axis.plot(shown["observed"], shown["predicted"], "o", ms=3.5, alpha=0.7, color=color, label=name)
        if len(zero):
            not_positive += len(zero)
            axis.plot(zero["observed"], np.full(len(zero), 0.0 if bottom is None else bottom), "v", ms=6, mfc="none",
                      color=color, clip_on=False)
    if positive.size:
        low, high = positive.min(), positive.max()
        axis.plot([low, high], [low, high], "k-", lw=0.8, label="identity")
        axis.set_xscale("log")
        axis.set_yscale("log")
        if not_positive:
            axis.set_ylim(bottom=bottom)
    if not_positive:
        axis.plot([], [], "v", ms=6, mfc="none", color="0.3",
                  label=f"predicted <= 0 ({not_positive}), drawn at the axis bottom")
    axis.set_xlabel("measured floor")
    axis.set_ylabel("predicted floor (held out)")
    axis.set_title(title or "Held-out predictions")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def _log_bottom(positive: np.ndarray) -> float | None:
    """Where a log axis over ``positive`` values (pairs) puts predictions <= 0: half its smallest value (None when
    there is no positive pair: the axes stay linear and they are drawn at 0)."""
    if not positive.size:
        return None
    return float(positive.min()) / 2.0
