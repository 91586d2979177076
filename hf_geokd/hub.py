"""Sharing SAEs with their feature statistics on the Hub (sae-lens layout, one folder per SAE)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .stats import STATS_CONFIG_NAME, STATS_WEIGHTS_NAME, FeatureStats


def stored_feature_stats(repo_or_dir: str | Path, sae_id: str | None = None) -> FeatureStats | None:
    """The ``FeatureStats`` saved beside an SAE (local folder or Hub repo), or None when there are none."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    source = Path(repo_or_dir)
    if source.exists():
        folder = source / sae_id if sae_id not in (None, ".") else source
        return FeatureStats.load(folder) if (folder / STATS_CONFIG_NAME).is_file() else None
    prefix = "" if sae_id in (None, ".") else f"{sae_id.strip('/')}/"
    try:
        paths = [hf_hub_download(str(repo_or_dir), prefix + name) for name in (STATS_CONFIG_NAME, STATS_WEIGHTS_NAME)]
    except EntryNotFoundError:
        return None
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(f"{repo_or_dir} is neither a local folder nor a Hub repo we can reach.") from error
    return FeatureStats.load(Path(paths[0]).parent)


def push_sae_to_hub(folder: str | Path, repo_id: str, sae_id: str | None = None, private: bool | None = None) -> str:
    """Upload an SAE folder with sae-lens's uploader (cfg, weights, sparsity), then our ``feature_stats`` files and a
    predicted-floor plot into the same folder of the repo, and a model card from ``model_cards/sae.md`` (hook, F, L0,
    alpha, d* per capacity kind, predicted floor table and plot).

    ``sae_id`` is the folder inside the repo (default: the SAE's hook name, as sae-lens releases do). Returns it.
    """
    from huggingface_hub import HfApi
    from sae_lens import upload_saes_to_huggingface

    from .capacity import CAPACITY_KINDS, quiet_capacity_warnings
    from .cards import default_widths, render_card
    from .plots import plot_predicted_floors
    from .predictor import FloorPredictor
    from .sae import detect_format, load_sae, sae_hook_name

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
        with tempfile.TemporaryDirectory() as tmp, quiet_capacity_warnings():
            tables = {kind: FloorPredictor(stats, kind).predict(default_widths(stats.d_in)) for kind in CAPACITY_KINDS}
            plot_predicted_floors(tables, Path(tmp) / "predicted_floors.png", f"Predicted floors, {sae_id}")
            render_card("sae", predictor=predictor, repo_id=repo_id, sae_id=sae_id, plot_path=plot_path).save(
                Path(tmp) / "README.md")
            api.upload_file(path_or_fileobj=str(Path(tmp) / "predicted_floors.png"), path_in_repo=plot_path,
                            repo_id=repo_id, commit_message=f"Predicted floors of {sae_id}")
            api.upload_file(path_or_fileobj=str(Path(tmp) / "README.md"), path_in_repo="README.md", repo_id=repo_id,
                            commit_message="Model card with predicted floors")
    return sae_id
