"""FeatureStats: the teacher measurements the predictor needs (F, L0, alpha and the contribution spectrum)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from .checks import check_alpha, check_contributions, check_positive_int, sae_subfolder
from .files import known_fields, read_json, read_safetensors, require_files, write_tensors_and_json
from .sources import HUB_UNREACHABLE, hub_error, local_folder

STATS_WEIGHTS_NAME = "feature_stats.safetensors"
STATS_CONFIG_NAME = "feature_stats.json"


@dataclass
class FeatureStats:
    """Feature statistics of a teacher layer, measured with an SAE (paper section 5) or known by construction.

    Attributes:
        n_features: F, the number of alive features (firing frequency above ``alive_threshold``).
        l0: mean number of active features per token.
        alpha: sparsity, 1 - L0 / F (a feature is active with probability 1 - alpha).
        contributions: one non-negative value per alive feature, sorted in descending order. For an SAE,
            E[z_i^2] ||W_dec,i||^2 (the energy latent i puts into the residual stream); for the toy model,
            I_i E[x_i^2]. Raw units; :attr:`normalized_contributions` divides by the total.
        n_tokens: how many tokens the statistics were measured on (None when known by construction).
        hook_name: where in the teacher they were measured.
        d_in: the teacher's hidden size at that hook.
        alive_threshold: the firing frequency above which a latent counted as alive.
        metadata: free-form provenance (SAE repo, dataset, ...), stored as json.
        latents: the SAE latent index of each contribution (same order), when measured from an SAE: which latents
            a width-d_S student drops (what :func:`hf_geokd.sae.measure_ablation_floors` removes). None when the
            features are not SAE latents or were measured by an earlier version.
    """

    n_features: int
    l0: float
    alpha: float
    contributions: torch.Tensor
    n_tokens: int | None = None
    hook_name: str | None = None
    d_in: int | None = None
    alive_threshold: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    latents: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.n_features = check_positive_int(self.n_features, "n_features")
        values = check_contributions(self.contributions)
        if values.size != self.n_features:
            raise ValueError(
                f"contributions has {values.size} values but n_features is {self.n_features}: "
                "pass one per alive feature."
            )
        order = np.argsort(-values, kind="stable")
        self.contributions = torch.from_numpy(values[order].copy())
        if self.latents is not None:
            latents = torch.as_tensor(self.latents).reshape(-1)
            if latents.numel() != self.n_features or latents.is_floating_point() or latents.unique().numel() != (
                    latents.numel()) or (latents.numel() and int(latents.min()) < 0):
                raise ValueError(f"latents must hold {self.n_features} distinct non-negative SAE latent indices, one "
                                 f"per contribution, got {latents.numel()} values.")
            self.latents = latents.long()[torch.from_numpy(order.copy())]
        if not (math.isfinite(self.l0) and 0.0 <= self.l0 <= self.n_features):
            raise ValueError(f"l0 must lie in [0, n_features={self.n_features}], got {self.l0!r}.")
        self.alpha = check_alpha(self.alpha)
        expected = 1.0 - self.l0 / self.n_features
        if abs(self.alpha - expected) > 1e-6:
            raise ValueError(
                f"alpha={self.alpha} disagrees with 1 - l0 / n_features = {expected}: pass consistent values."
            )

    @classmethod
    def from_counts(cls, n_features: int, l0: float, contributions, **kwargs: Any) -> FeatureStats:
        """Build stats from F and L0, deriving alpha = 1 - L0 / F."""
        n_features = check_positive_int(n_features, "n_features")
        return cls(
            n_features=n_features,
            l0=float(l0),
            alpha=1.0 - float(l0) / n_features,
            contributions=contributions,
            **kwargs,
        )

    @property
    def total_energy(self) -> float:
        return float(self.contributions.sum())

    @property
    def normalized_contributions(self) -> torch.Tensor:
        total = self.total_energy
        if total <= 0:
            raise ValueError("All contributions are zero: there is no energy to normalise by.")
        return self.contributions / total

    def scalars(self) -> dict[str, Any]:
        """Everything but the per-feature vector, as json-ready values."""
        data = asdict(self)
        data.pop("contributions")
        data.pop("latents")
        return data

    def save(self, directory: str | Path) -> Path:
        """Write ``feature_stats.safetensors`` (the spectrum, and the latent indices when known) and
        ``feature_stats.json`` (the scalars)."""
        tensors = {"contributions": self.contributions}
        if self.latents is not None:
            tensors["latents"] = self.latents
        return write_tensors_and_json(directory, tensors, self.scalars(), STATS_WEIGHTS_NAME, STATS_CONFIG_NAME)

    @classmethod
    def load(cls, directory: str | Path) -> FeatureStats:
        """Read stats written by :meth:`save`."""
        directory = require_files(directory, (STATS_WEIGHTS_NAME, STATS_CONFIG_NAME), "FeatureStats",
                                  "FeatureStats.save or measure_feature_stats")
        config, weights = directory / STATS_CONFIG_NAME, directory / STATS_WEIGHTS_NAME
        tensors = read_safetensors(weights)
        if "contributions" not in tensors:
            raise ValueError(f"{weights} holds no 'contributions' tensor (found: {sorted(tensors)}).")
        kwargs = known_fields(cls, {**read_json(config), "contributions": tensors["contributions"],
                                    "latents": tensors.get("latents")}, config)
        try:
            return cls(**kwargs)
        except ValueError as error:
            raise ValueError(f"{config}: {error}") from error


def stored_feature_stats(repo_or_dir: str | Path, sae_id: str | None = None) -> FeatureStats | None:
    """The ``FeatureStats`` saved beside an SAE (a local folder or a Hub repo, ``sae_id`` the SAE's folder in it), or
    None when there are none."""
    subfolder = sae_subfolder(sae_id)
    source = local_folder(repo_or_dir)
    if source is not None:
        folder = source / subfolder if subfolder else source
        return FeatureStats.load(folder) if (folder / STATS_CONFIG_NAME).is_file() else None
    prefix = f"{subfolder}/" if subfolder else ""
    try:
        paths = [hf_hub_download(str(repo_or_dir), prefix + name) for name in (STATS_CONFIG_NAME, STATS_WEIGHTS_NAME)]
    except HUB_UNREACHABLE as error:
        raise hub_error(str(repo_or_dir), error) from error
    except EntryNotFoundError:
        return None
    return FeatureStats.load(Path(paths[0]).parent)
