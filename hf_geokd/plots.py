"""PNG figures of predicted and observed floors (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .calibration import PowerLawFit, TwoComponentFit  # noqa: E402


def _save(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)
    return path


def plot_predicted_floors(tables: Mapping[str, pd.DataFrame], path: str | Path, title: str = "") -> Path:
    """Predicted floor (share of feature energy) vs student width, one line per capacity kind, d* dotted."""
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for index, (kind, table) in enumerate(tables.items()):
        color = f"C{index}"
        floors = table["predicted_floor"].to_numpy(dtype=float)
        axis.plot(table["width"], np.where(floors > 0, floors, np.nan), "o-", color=color, label=kind)
        d_star = table.attrs.get("critical_width")
        if d_star is not None:
            axis.axvline(d_star, color=color, linestyle=":", linewidth=1)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("student width d_S")
    axis.set_ylabel("predicted floor L*(d_S) (share of energy)")
    axis.set_title(title or "Predicted floor vs width (dotted: d*)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(title="capacity g(alpha)")
    return _save(figure, path)


def plot_calibration(predicted, observed, fit: TwoComponentFit, path: str | Path, labels=None, title: str = "") -> Path:
    """Observed vs predicted floors with the affine (Eq. 3) and linear fits."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    figure, axis = plt.subplots(figsize=(5.6, 4.2))
    axis.scatter(predicted, observed, color="C3", zorder=3, label="observed")
    for x, y, label in zip(predicted, observed, labels if labels is not None else [None] * predicted.size):
        if label is not None:
            axis.annotate(str(label), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    grid = np.linspace(0, predicted.max() * 1.05, 50)
    axis.plot(grid, fit.C * grid + fit.B, "-", color="C0", label=f"C L* + B: C={fit.C:.3g}, B={fit.B:.3g}, R²={fit.r2:.3f}")
    axis.plot(grid, fit.linear_C * grid, "--", color="0.5", label=f"linear: C={fit.linear_C:.3g}, R²={fit.linear_r2:.2f}")
    axis.set_xlabel("predicted geometric floor L* (Eq. 2)")
    axis.set_ylabel("observed floor")
    axis.set_title(title or "Two-component calibration (Eq. 3)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_power_law(widths, observed, fit: PowerLawFit, path: str | Path, title: str = "") -> Path:
    """Observed floor vs width with the fitted a d^-gamma + c (Eq. 4)."""
    widths, observed = np.asarray(widths, float), np.asarray(observed, float)
    figure, axis = plt.subplots(figsize=(5.6, 4.2))
    axis.plot(widths, observed, "o", color="C3", label="observed")
    grid = np.geomspace(widths.min(), widths.max(), 100)
    axis.plot(grid, fit.predict(grid), "-", color="C0",
              label=f"{fit.a:.3g} d^-{fit.gamma:.3g} + {fit.c:.3g} (R²={fit.r2:.3f})")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("student width d_S")
    axis.set_ylabel("observed floor")
    axis.set_title(title or "Power law (Eq. 4)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_spectrum(stats, path: str | Path) -> Path:
    """Feature importance (share of energy) vs rank, log-log (the paper's Figure 5a)."""
    values = stats.normalized_contributions.numpy()
    figure, axis = plt.subplots(figsize=(5.6, 4.0))
    axis.loglog(np.arange(1, values.size + 1), values, color="C0")
    axis.set_xlabel("feature rank")
    axis.set_ylabel("E[z_i^2] ||W_dec,i||^2 / total")
    axis.set_title(f"Importance spectrum\nF = {stats.n_features:,}, L0 = {stats.l0:.1f}, alpha = {stats.alpha:.4f}",
                   fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    return _save(figure, path)
