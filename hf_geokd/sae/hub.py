"""Sharing SAEs with their feature statistics on the Hub (sae-lens layout, one folder per SAE)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from huggingface_hub import HfApi
from sae_lens import upload_saes_to_huggingface

from ..cards import render_card
from ..predictor import FloorPredictor, default_widths
from ..reporting.plots import plot_predicted_floors
from ..stats import STATS_CONFIG_NAME, STATS_WEIGHTS_NAME, FeatureStats
from .hooks import sae_hook_name
from .load import detect_format, load_sae


def push_sae_to_hub(folder: str | Path, repo_id: str, sae_id: str | None = None, private: bool | None = None) -> str:
    """Upload an SAE folder with sae-lens's uploader (cfg, weights, sparsity), then our ``feature_stats`` files and a
    predicted-floor plot into the same folder of the repo, and a model card from the ``sae`` card template (hook, F, L0,
    alpha, d* per capacity kind, predicted floor table and plot).

    ``sae_id`` is the folder inside the repo (default: the SAE's hook name, as sae-lens releases do). Returns it.
    """
    folder = Path(folder)
    if detect_format(folder) != "sae_lens":
        raise ValueError(f"{folder} is not in sae-lens's layout; save it with SAE.save_model first.")
    sae_id = sae_id or sae_hook_name(load_sae(folder)) or folder.name
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    upload_saes_to_huggingface({sae_id: folder}, repo_id, show_progress=False, add_default_readme=False)
    stats_files = [name for name in (STATS_CONFIG_NAME, STATS_WEIGHTS_NAME) if (folder / name).is_file()]
    if stats_files:
        api.upload_folder(folder_path=folder, path_in_repo=sae_id, repo_id=repo_id, allow_patterns=stats_files,
                          commit_message=f"Add feature statistics of {sae_id}")
        stats = FeatureStats.load(folder)
        predictor = FloorPredictor(stats)
        plot_path = f"{sae_id}/predicted_floors.png"
        with tempfile.TemporaryDirectory() as tmp:
            tables = predictor.predict_every_kind(default_widths(stats.d_in))
            plot_predicted_floors(tables, Path(tmp) / "predicted_floors.png", f"Predicted floors, {sae_id}")
            render_card("sae", **predictor.card_context(), repo_id=repo_id, sae_id=sae_id, plot_path=plot_path).save(
                Path(tmp) / "README.md")
            api.upload_file(path_or_fileobj=str(Path(tmp) / "predicted_floors.png"), path_in_repo=plot_path,
                            repo_id=repo_id, commit_message=f"Predicted floors of {sae_id}")
            api.upload_file(path_or_fileobj=str(Path(tmp) / "README.md"), path_in_repo="README.md", repo_id=repo_id,
                            commit_message="Model card with predicted floors")
    return sae_id
