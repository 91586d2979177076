"""The probing study at a glance: per concept, each model's accuracy beside the two baselines it must beat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..reporting.plots import new_figure, save_figure
from .study import BAG_OF_TOKENS, BASELINES, RANDOM_INIT


def _concept_panel(axis, rows: pd.DataFrame, models: list[str]) -> None:
    """One concept: the models' accuracies with their 95% intervals (filled where carried), the baselines as lines."""
    by_model = rows.set_index("model")
    for baseline, style in ((BAG_OF_TOKENS, "--"), (RANDOM_INIT, ":")):
        axis.axhline(by_model.loc[baseline, "accuracy"], color="0.35", ls=style, lw=1.2,
                     label=baseline.replace("_", " ") + " accuracy")
    accuracy = by_model.loc[models, "accuracy"].to_numpy(float)
    errors = np.abs(by_model.loc[models, ["accuracy_low", "accuracy_high"]].to_numpy(float).T - accuracy)
    carried = by_model.loc[models, "carried"].astype(bool).to_numpy()
    positions = np.arange(len(models))
    axis.errorbar(positions, accuracy, yerr=np.nan_to_num(errors), fmt="none", ecolor="C0", lw=1, capsize=2)
    axis.plot(positions[carried], accuracy[carried], "o", color="C0", ms=7, label="carried")
    axis.plot(positions[~carried], accuracy[~carried], "o", mfc="white", color="C0", ms=7, label="not carried")
    axis.set_xticks(positions, [model.replace("d_S=", "") for model in models], rotation=60, fontsize=8)
    axis.set_title(str(rows["concept"].iloc[0]), fontsize=10)
    axis.grid(axis="y", alpha=0.3)


def plot_probe_study(table: pd.DataFrame, path: str | Path, title: str = "Probes") -> Path:
    """One panel per concept of :func:`~hf_geokd.probing.study.probe_study`'s table: x the models in the table's
    order (students by width, the teacher), y held-out accuracy with its 95% interval; a filled marker where the model
    carries the concept, hollow where it does not; dashed the bag-of-tokens probe's accuracy, dotted the random-init
    teacher's."""
    concepts = list(table["concept"].unique())
    models = [model for model in table["model"].unique() if model not in BASELINES]
    figure, axes = new_figure(1, len(concepts), figsize=(0.3 * len(models) * len(concepts) + 2.5, 3.6), sharey=True,
                              squeeze=False)
    for axis, concept in zip(axes[0], concepts):
        _concept_panel(axis, table[table["concept"] == concept], models)
    axes[0][0].set_ylabel("held-out accuracy")
    axes[0][len(concepts) // 2].set_xlabel("student width d_S (teacher last)")
    axes[0][0].legend(loc="lower left", fontsize=7)
    figure.suptitle(title)
    return save_figure(figure, path)
