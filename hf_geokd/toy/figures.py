"""The toy sweep's figures: the paper's Figures 2, 3 and 13, and kept features against d g(alpha)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..reporting.plots import new_figure, save_figure


def floor_grid(points: pd.DataFrame, path: str | Path, prediction: str = "paper") -> Path:
    """Figure 2: floor vs d_S per (n, alpha) panel, one colour per d_T; mean +- std solid, Eq. 2 dashed, d* dotted."""
    ns, alphas = sorted(points["n"].unique()), sorted(points["alpha"].unique())
    figure, axes = new_figure(len(ns), len(alphas), figsize=(3.2 * len(alphas), 2.6 * len(ns)), squeeze=False)
    for row, n in enumerate(ns):
        for col, alpha in enumerate(alphas):
            axis = axes[row][col]
            panel = points[(points["n"] == n) & (points["alpha"] == alpha)]
            for index, (d_t, group) in enumerate(panel.groupby("d_T")):
                color = f"C{index}"
                axis.errorbar(group["d_S"], group["floor"], yerr=group["floor_std"].fillna(0), color=color,
                              marker="o", markersize=3, capsize=2, label=f"d_T={d_t}")
                axis.plot(group["d_S"], group[f"pred_{prediction}"], "--", color=color, linewidth=1)
            d_star = panel["d_star_paper"].iloc[0]
            if d_star <= panel["d_S"].max() + 1:
                axis.axvline(d_star, color="0.3", linestyle=":", linewidth=1)
            axis.set_title(f"n={n}, alpha={alpha}", fontsize=9)
            axis.tick_params(labelsize=7)
            if row == len(ns) - 1:
                axis.set_xlabel("d_S", fontsize=8)
            if col == 0:
                axis.set_ylabel("floor", fontsize=8)
    axes[0][0].legend(fontsize=6)
    figure.suptitle(
        f"Toy floors: measured (solid, mean ± std over seeds), Eq. 2 with g={prediction} (dashed), d* (dotted)",
        fontsize=10,
    )
    return save_figure(figure, path)


def predicted_vs_actual(points: pd.DataFrame, kinds: list[str], path: str | Path) -> Path:
    """Figure 3: predicted vs measured floor, log-log, one panel per capacity kind, colour = alpha."""
    figure, axes = new_figure(1, len(kinds), figsize=(3.3 * len(kinds), 3.4), squeeze=False)
    positive = points["floor"] > 0
    low = points.loc[positive, "floor"].min() / 2
    high = points["floor"].max() * 2
    for axis, kind in zip(axes[0], kinds):
        for index, (alpha, group) in enumerate(points[positive].groupby("alpha")):
            predicted = group[f"pred_{kind}"].clip(lower=low)
            axis.scatter(group["floor"], predicted, s=8, color=f"C{index}", label=f"alpha={alpha}")
        axis.plot([low, high], [low, high], "k--", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(kind, fontsize=9)
        axis.set_xlabel("measured floor", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel("predicted floor (0 drawn at the bottom)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    return save_figure(figure, path)


def universal_scaling(points: pd.DataFrame, path: str | Path) -> Path:
    """Figure 13: floor / total feature energy vs d_S / d* (paper kind), all configurations."""
    figure, axis = new_figure(figsize=(5.6, 4.0))
    for index, (alpha, group) in enumerate(points.groupby("alpha")):
        axis.scatter(
            group["d_S"] / group["d_star_paper"],
            group["floor"] / group["total_energy"],
            s=8,
            color=f"C{index}",
            label=f"alpha={alpha}",
        )
    axis.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
    axis.set_xlabel("d_S / d*  (d* = n / g_paper(alpha))")
    axis.set_ylabel("floor / sum_i I_i E[x_i^2]")
    axis.set_title("Normalised floor vs d_S / d*")
    axis.legend(fontsize=7)
    axis.grid(True, alpha=0.3)
    return save_figure(figure, path)


def kept_features_plot(points: pd.DataFrame, path: str | Path, fitted_label: str, fitted_kept: np.ndarray) -> Path:
    """Features kept (||W_i|| > threshold, mean over seeds) vs d_S, against min(d g(alpha), n) and the fitted g_eff."""
    alphas = sorted(points["alpha"].unique())
    figure, axes = new_figure(1, len(alphas), figsize=(3.2 * len(alphas), 3.2), squeeze=False)
    for axis, alpha in zip(axes[0], alphas):
        panel = points[points["alpha"] == alpha]
        for index, (n, group) in enumerate(panel.groupby("n")):
            by_width = group.groupby("d_S")
            axis.plot(
                by_width["kept"].mean().index,
                by_width["kept"].mean(),
                "o-",
                color=f"C{index}",
                markersize=3,
                label=f"measured n={n}",
            )
            axis.plot(
                by_width["kept_paper"].mean().index, by_width["kept_paper"].mean(), "--", color=f"C{index}", linewidth=1
            )
            fitted = pd.Series(fitted_kept[group.index], index=group["d_S"]).groupby(level=0).mean()
            axis.plot(fitted.index, fitted, ":", color=f"C{index}", linewidth=1.5)
        axis.set_title(f"alpha={alpha}", fontsize=9)
        axis.set_xlabel("d_S", fontsize=8)
    axes[0][0].set_ylabel("features kept", fontsize=8)
    axes[0][0].legend(fontsize=6)
    figure.suptitle(f"Kept features: measured (solid), min(d g_paper, n) (dashed), {fitted_label} (dotted)", fontsize=9)
    return save_figure(figure, path)
