"""Floors in nats before any student is trained: the teacher with the latents a width-d_S student cannot carry
removed at its SAE's hook (what :func:`hf_geokd.sae.measure_ablation_floors` measures).

For a width d_S, the SAE latents ranked beyond the kept rank r(d_S) (Eq. 2's cut: floor(d_S g) or the real-valued
d_S g) are subtracted from the teacher's activation, the SAE's reconstruction error left in place,

    x' = x - sum_{i ranked beyond r} m_i z_i W_dec,i        (m_i: 1 for a dropped latent, a fraction at the cut)

the rest of the teacher runs on x', and the floor is the same quantity a distilled student's floor is, per token:

    L_abl(d_S) = T^2 E_t[ KL(softmax(u_t / T) || softmax(u'_t / T)) ]     (nats per token; u, u': logits)

The splice reference replaces x by the SAE's full reconstruction (every latent kept, the error removed): what the SAE
itself costs. The ablated teacher's later layers never adapt to what is removed, where a student's do: the ablation
floor is an estimate of a student's floor in the same units, not the same quantity (at d_S = d_T a student can copy
its teacher, while the ablation still removes the latents beyond d_T g when d* > d_T).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from .checks import check_positive_int, check_width, sae_subfolder
from .files import known_fields, read_json
from .sources import HUB_UNREACHABLE, hub_error, local_folder

ABLATION_FLOORS_NAME = "ablation_floors.json"
ABLATION_RULES = ("floor", "continuous", "soft")  # the cuts: Eq. 2's two kept rules, and the soft floor's retention


@dataclass
class AblationFloors:
    """Measured ablation floors of one teacher (and one or several SAEs ablated together), one value per width.

    Attributes:
        widths: student widths d_S.
        kl: T^2 KL(teacher || ablated teacher) per token at each width, in nats (the units of a student's floor).
        ce: the ablated teacher's cross-entropy per token on the same tokens.
        kept: the rank at which each SAE's spectrum was cut at each width (of the first SAE when several).
        splice_kl, splice_ce: the same with the SAE's full reconstruction in place of the activation.
        teacher_ce: the teacher's own cross-entropy per token.
        temperature: T of the KL (the distillation temperature: the paper's T = 2).
        n_tokens: tokens measured (next-token positions).
        capacity_kind: the capacity g that set the kept ranks (a kind name, or a fitted capacity's dict).
        kept_rule: ``floor``, ``continuous`` or ``soft`` (see :func:`hf_geokd.sae.measure_ablation_floors`).
        hooks: where the latents were removed.
        metadata: provenance (SAEs, dataset, settings).
    """

    widths: list[int]
    kl: list[float]
    ce: list[float]
    kept: list[float]
    splice_kl: float
    splice_ce: float
    teacher_ce: float
    temperature: float
    n_tokens: int
    capacity_kind: str | dict
    kept_rule: str
    hooks: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {len(self.widths), len(self.kl), len(self.ce), len(self.kept)}
        if len(lengths) != 1 or not self.widths:
            raise ValueError(f"AblationFloors needs one kl, ce and kept value per width, got lengths "
                             f"{sorted(lengths)}.")
        self.widths = [check_width(width, "an ablation floor's width") for width in self.widths]
        if len(set(self.widths)) != len(self.widths):
            raise ValueError(f"AblationFloors widths repeat: {self.widths}.")
        values = [*self.kl, *self.ce, self.splice_kl, self.splice_ce, self.teacher_ce]
        if not all(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0 for value in values):
            raise ValueError("ablation floors and cross-entropies must be finite numbers >= 0.")
        if not (isinstance(self.temperature, (int, float)) and 0 < self.temperature < math.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}.")
        check_positive_int(self.n_tokens, "n_tokens")
        if self.kept_rule not in ABLATION_RULES:
            raise ValueError(f"kept_rule must be one of {ABLATION_RULES}, got {self.kept_rule!r}.")

    def same_settings(self, other: AblationFloors) -> bool:
        """Whether ``other`` was measured the same way (widths, capacity, cut, temperature, hooks, tokens)."""
        keys = ("widths", "capacity_kind", "kept_rule", "temperature", "hooks", "n_tokens")
        return all(getattr(self, key) == getattr(other, key) for key in keys)

    def floor(self, width: int) -> float:
        """The measured floor at ``width`` (nats per token); a width that was not measured is an error."""
        if width not in self.widths:
            raise ValueError(f"no ablation floor was measured at width {width}: measured at {self.widths}.")
        return self.kl[self.widths.index(width)]

    def table(self) -> pd.DataFrame:
        """One row per width: the kept rank, the ablation floor (nats), the ablated CE, and the CE increase."""
        return pd.DataFrame({"width": self.widths, "kept_rank": self.kept, "ablation_floor": self.kl,
                             "ablated_ce": self.ce, "ce_increase": np.array(self.ce) - self.teacher_ce})

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``ablation_floors.json`` into ``directory``; return its path. Different floors already there are
        kept (``FileExistsError``) unless ``overwrite=True``; the same floors are left as they are."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory} is a file: pass a folder to save the ablation floors in.")
        path = directory / ABLATION_FLOORS_NAME
        if path.is_file() and not overwrite:
            try:
                same = AblationFloors.load(directory) == self
            except ValueError:
                same = False
            if same:
                return path
            raise FileExistsError(f"{path} holds other ablation floors: save elsewhere, or pass overwrite=True to "
                                  "replace them.")
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> AblationFloors:
        """Read what :meth:`save` wrote; a damaged or incomplete file is named."""
        path = Path(directory) / ABLATION_FLOORS_NAME
        try:
            return cls(**known_fields(cls, read_json(path), path))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error

    @classmethod
    def stored(cls, directory: str | Path) -> AblationFloors | None:
        """The ablation floors saved in ``directory``, or None when there are none."""
        return cls.load(directory) if (Path(directory) / ABLATION_FLOORS_NAME).is_file() else None


def stored_ablation_floors(repo_or_dir: str | Path, sae_id: str | None = None, **download: Any
                           ) -> AblationFloors | None:
    """The ablation floors saved beside an SAE or a predictor (a local folder or a Hub repo, ``sae_id`` the SAE's
    folder in it), or None when there are none (``download``: ``hf_hub_download``'s revision, cache_dir, ...)."""
    subfolder = sae_subfolder(sae_id)
    source = local_folder(repo_or_dir)
    if source is not None:
        return AblationFloors.stored(source / subfolder if subfolder else source)
    name = f"{subfolder}/{ABLATION_FLOORS_NAME}" if subfolder else ABLATION_FLOORS_NAME
    try:
        path = hf_hub_download(str(repo_or_dir), name, **download)
    except HUB_UNREACHABLE as error:
        raise hub_error(str(repo_or_dir), error) from error
    except EntryNotFoundError:
        return None
    return AblationFloors.load(Path(path).parent)
