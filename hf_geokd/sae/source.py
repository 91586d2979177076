"""The feature statistics of any SAE, wherever they come from: stored beside it, measured on a model, or approximated
from its sparsity file. What :meth:`hf_geokd.FloorPredictor.from_sae` builds a predictor from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checks import sae_subfolder
from ..sources import local_folder
from ..stats import FeatureStats, stored_feature_stats
from .hooks import resolve_model
from .load import load_sae, load_sae_and_sparsity, release_location, sae_folder_listing, sae_folders
from .measure import measure_feature_stats
from .sparsity import stats_from_sparsity


def sae_feature_stats(
    repo_or_dir: str | Path,
    sae_id: str | None = None,
    model=None,
    dataset=None,
    hook_name: str | None = None,
    n_tokens: int = 1_000_000,
    allow_pickle: bool = False,
    approximate: bool = False,
    **measure_kwargs: Any,
) -> FeatureStats:
    """The :class:`FeatureStats` of an SAE (a folder, a Hub repo and the SAE's folder in it, or a sae-lens release).

    In order: the statistics stored beside the SAE (``train_sae`` and ``push_sae_to_hub`` put them there); else,
    given ``model`` (an object or a repo id) and ``dataset`` (held-out tokens), measured with
    :func:`measure_feature_stats` (``hook_name``, ``n_tokens`` and ``measure_kwargs`` passed on); else, with
    ``approximate=True``, from the SAE's ``sparsity.safetensors`` with no forward pass (:func:`stats_from_sparsity`).
    ``metadata["sae"]`` records where the SAE came from.
    """
    location = (str(repo_or_dir), sae_id)
    if "/" not in str(repo_or_dir) and not Path(repo_or_dir).exists():
        # a name without a namespace may be a sae-lens registry release, whose repo sae-lens knows
        location = release_location(str(repo_or_dir), sae_id) or location
    stats = stored_feature_stats(*location)
    if stats is None:
        if model is not None and dataset is not None:
            sae = load_sae(repo_or_dir, sae_id, allow_pickle=allow_pickle)
            stats = measure_feature_stats(sae, resolve_model(model), dataset, hook_name, n_tokens, **measure_kwargs)
        elif approximate:
            stats = _approximate_stats(repo_or_dir, sae_id, allow_pickle, measure_kwargs)
        else:
            _check_folder_exists(repo_or_dir, sae_id)
            raise ValueError(
                f"{repo_or_dir} has no feature_stats.json beside the SAE: pass model= and dataset= to measure "
                "them, or approximate=True to use the SAE's sparsity file with no forward pass."
            )
    subfolder = sae_subfolder(sae_id)
    stats.metadata.setdefault("sae", str(repo_or_dir) + (f" ({subfolder})" if subfolder else ""))
    return stats


def _check_folder_exists(repo_or_dir: str | Path, sae_id: str | None) -> None:
    """A local folder with no sub-folder ``sae_id`` is named as such (with the SAE folders there are), not as an SAE
    without statistics; so is a folder whose SAEs are all in sub-folders, given no ``sae_id``."""
    subfolder = sae_subfolder(sae_id)
    source = local_folder(repo_or_dir)
    if source is not None and subfolder is not None and not (source / subfolder).is_dir():
        load_sae(repo_or_dir, sae_id)  # raises FileNotFoundError listing the SAE folders there are
    if source is not None and subfolder is None:
        folders = sae_folders(source)
        if folders and "." not in folders:
            raise ValueError(f"{repo_or_dir} holds its SAEs in sub-folders: pass sae_id= "
                             f"({sae_folder_listing(folders)}).")


def _approximate_stats(repo_or_dir: str | Path, sae_id: str | None, allow_pickle: bool,
                       measure_kwargs: dict[str, Any]) -> FeatureStats:
    """Statistics from the SAE's sparsity file (no forward pass); only ``alive_threshold`` applies there."""
    unused = sorted(set(measure_kwargs) - {"alive_threshold"})
    if unused:
        raise ValueError(f"{unused} apply to measuring with a model; the no-forward path takes only alive_threshold.")
    sae, log_sparsity = load_sae_and_sparsity(repo_or_dir, sae_id, allow_pickle=allow_pickle)
    if log_sparsity is None:
        raise ValueError(f"{repo_or_dir} ships no sparsity.safetensors: pass model= and dataset= instead.")
    return stats_from_sparsity(sae, log_sparsity, **measure_kwargs)
