"""Sharing SAEs with their feature statistics on the Hub (sae-lens layout, one folder per SAE)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

from huggingface_hub import HfApi, snapshot_download
from sae_lens import upload_saes_to_huggingface

from ..capacity import critical_widths
from ..cards import render_card
from ..floors import default_widths, example_widths, floor_table, floor_tables_every_kind
from ..reporting.plots import plot_predicted_floors
from ..stats import STATS_CONFIG_NAME, STATS_WEIGHTS_NAME, FeatureStats
from ..tables import markdown_table
from .hooks import sae_hook_name
from .load import detect_format, load_sae


def push_sae_to_hub(folder: str | Path, repo_id: str, sae_id: str | None = None, private: bool | None = None) -> str:
    """Upload an SAE folder with sae-lens's uploader (cfg, weights, sparsity), then our ``feature_stats`` files, a
    predicted-floor plot and the SAE's model card (``sae`` template: hook, F, L0, alpha, d* per capacity kind, predicted
    floor table and plot) into the same folder of the repo; the repo's README becomes an index of every SAE folder it
    holds (``sae_index`` template), so pushing layers 8, 12 and 16 one after another lists all three.

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
    with tempfile.TemporaryDirectory() as tmp:
        if stats_files:
            for name in stats_files:
                shutil.copy(folder / name, tmp)
            stats = FeatureStats.load(folder)
            tables = floor_tables_every_kind(stats, default_widths(stats.d_in))
            plot_predicted_floors(tables, Path(tmp) / "predicted_floors.png", f"Predicted floors, {sae_id}")
            render_card("sae", **sae_card_context(stats), repo_id=repo_id, sae_id=sae_id,
                        plot_path="predicted_floors.png").save(Path(tmp) / "README.md")
            api.upload_folder(folder_path=tmp, path_in_repo=sae_id, repo_id=repo_id,
                              commit_message=f"Feature statistics, predicted floors and card of {sae_id}")
    index = render_card("sae_index", repo_id=repo_id, saes=_repo_saes(api, repo_id))
    api.upload_file(path_or_fileobj=str(index).encode(), path_in_repo="README.md", repo_id=repo_id,
                    commit_message="Index of the SAEs and their statistics")
    return sae_id


def sae_card_context(stats: FeatureStats) -> dict:
    """What the SAE card template reads: the statistics, the floor table at the default widths under the paper's
    capacity, and d* per capacity kind."""
    return {"stats": stats, "approximation": stats.metadata.get("approximation"),
            "floor_table": markdown_table(floor_table(stats, default_widths(stats.d_in))),
            "critical_widths": critical_widths(stats.n_features, stats.alpha),
            "example_widths": example_widths(stats.d_in)}


def _repo_saes(api: HfApi, repo_id: str) -> list[SimpleNamespace]:
    """Every SAE folder of the repo (any folder holding a ``cfg.json``), with its feature statistics where it has them
    and d* = F / g under the paper's capacity."""
    files = set(api.list_repo_files(repo_id))
    sae_ids = sorted(path.removesuffix("/cfg.json") for path in files if path.endswith("/cfg.json"))
    measured = [sae_id for sae_id in sae_ids if f"{sae_id}/{STATS_CONFIG_NAME}" in files]
    if measured:  # every SAE's statistics in one download
        snapshot = Path(snapshot_download(repo_id, allow_patterns=[f"{sae_id}/feature_stats.*" for sae_id in measured]))
    return [sae_index_entry(sae_id, FeatureStats.load(snapshot / sae_id) if sae_id in measured else None)
            for sae_id in sae_ids]


def sae_index_entry(sae_id: str, stats: FeatureStats | None) -> SimpleNamespace:
    """One SAE's row of the repo's index card: its folder, its statistics (None where it has none), d* under the
    paper's capacity and the widths of its usage example."""
    critical = None if stats is None else critical_widths(stats.n_features, stats.alpha).get("paper")
    return SimpleNamespace(sae_id=sae_id, stats=stats, critical_width=critical,
                           example_widths=example_widths(None if stats is None else stats.d_in))
