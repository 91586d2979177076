"""The staircase figure: survival of teacher latents (sorted by importance) in students of several widths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, patheffects

from ..naming import student_label
from ..reporting.plots import new_figure, save_figure
from .result import FeatureSurvival
from .staircase import by_width, null_labels

MAX_COLUMNS = 256


def _binned_survival(result: FeatureSurvival, edges: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Share of scorable latents that survive in each rank bin [edges[j], edges[j + 1]) of the importance order,
    or of ``order`` (latent positions, first rank first)."""
    survived, scorable = result.survived().astype(float), result.scorable
    if order is not None:
        survived, scorable = survived[order], scorable[order]
    shares = np.full(edges.size - 1, np.nan)
    for j in range(edges.size - 1):
        window = slice(int(edges[j]), int(edges[j + 1]))
        if scorable[window].any():
            shares[j] = survived[window][scorable[window]].mean()
    return shares


def plot_staircase(results: Sequence[FeatureSurvival], path: str | Path, title: str = "") -> Path:
    """Left: heatmap of widths x latents by importance rank (share surviving per rank bin), with the measured
    cutoff k* (white) and every capacity kind's F_S = d_S g(alpha) (coloured ticks) per row. Right: share
    surviving vs importance rank (log scale) per width, with k* dashed."""
    results = by_width(results)
    n_features = max(result.n_features for result in results)
    columns = min(MAX_COLUMNS, n_features)
    edges = np.unique(np.linspace(0, n_features, columns + 1).round().astype(int))
    grid = np.array([_binned_survival(result, edges) for result in results])
    figure, (heat, curves) = new_figure(1, 2, figsize=(12.0, 1.2 + 0.55 * len(results) + 2.4))
    cmap = colormaps["viridis"].with_extremes(bad="0.85")  # grey: no scorable latent in the bin
    outline = [patheffects.Stroke(linewidth=4, foreground="black"), patheffects.Normal()]
    image = heat.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest",
                        extent=(0, n_features, len(results) - 0.5, -0.5))
    kinds = list(results[0].predicted_kept())
    for row, result in enumerate(results):
        heat.plot([result.k_star()] * 2, [row - 0.45, row + 0.45], color="white", linewidth=2.5, path_effects=outline)
        for index, (kind, kept) in enumerate(result.predicted_kept().items()):
            heat.plot([kept] * 2, [row - 0.45, row + 0.45], color=f"C{index + 1}", linewidth=1.2,
                      label=f"F_S [{kind}]" if row == 0 else None)
    heat.plot([], [], color="white", linewidth=2.5, path_effects=outline, label="measured k*")
    heat.set_yticks(range(len(results)), [student_label(result.student_width) for result in results])
    heat.set_xlabel("teacher latent, by importance rank")
    heat.set_title("share surviving (rank bins; grey: none scorable)")
    heat.legend(fontsize=7, loc="lower right", facecolor="0.85", ncol=max(1, len(kinds) // 3))
    figure.colorbar(image, ax=heat, fraction=0.04)
    log_edges = np.unique(np.geomspace(1, n_features + 1, 25).round().astype(int)) - 1
    centres = np.sqrt(np.maximum(log_edges[:-1], 1) * log_edges[1:])
    for index, result in enumerate(results):
        color = f"C{index}"
        curves.plot(centres, _binned_survival(result, log_edges), "o-", color=color, markersize=3,
                    label=f"{student_label(result.student_width)}: k*={result.k_star()}")
        if result.k_star() > 0:
            curves.axvline(result.k_star(), color=color, linestyle="--", linewidth=1)
    curves.set_xscale("log")
    curves.set_ylim(-0.03, 1.03)
    curves.set_xlabel("importance rank")
    curves.set_ylabel(f"share surviving (score > {results[0].threshold:g} and > null)")
    curves.set_title(f"null: best of {null_labels(results)}", fontsize=9)
    curves.grid(True, which="both", alpha=0.3)
    curves.legend(fontsize=7)
    figure.suptitle(title or f"Feature survival at {results[0].hook_name}")
    return save_figure(figure, path)


def plot_orderings(results: Sequence[FeatureSurvival], path: str | Path, title: str = "") -> Path:
    """Share surviving vs rank (log scale) under each ordering of the latents, one panel per ordering: importance
    (the energy E[z^2] ||W_dec||^2 the theory ranks by), firing frequency and a random order, each width a line and
    the ordering's AUC for predicting survival in the legend. The theory's staircase is a step in the first panel
    only; a pruning study found rare features survive better, which the frequency panel would show."""
    results = by_width(results)
    n_features = max(result.n_features for result in results)
    log_edges = np.unique(np.geomspace(1, n_features + 1, 25).round().astype(int)) - 1
    centres = np.sqrt(np.maximum(log_edges[:-1], 1) * log_edges[1:])
    aucs = [result.ordering_aucs() for result in results]
    names = list(aucs[0])
    figure, axes = new_figure(1, len(names), figsize=(4.2 * len(names), 3.8), sharey=True)
    for axis, name in zip(np.atleast_1d(axes), names):
        for index, result in enumerate(results):
            order = np.argsort(-result.ordering_values(name), kind="stable")
            axis.plot(centres, _binned_survival(result, log_edges, order), "o-", color=f"C{index}", markersize=3,
                      label=f"{student_label(result.student_width)}: AUC {aucs[index][name]:.2f}")
        axis.set_xscale("log")
        axis.set_ylim(-0.03, 1.03)
        axis.set_xlabel(f"rank by {name} (descending)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("share surviving")
    figure.suptitle(title or f"Survival under each ordering of the latents at {results[0].hook_name}")
    return save_figure(figure, path)
