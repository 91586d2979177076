"""FeatureSurvival: which of a teacher's SAE latents a student's residual stream still carries, and what it implies.

Per alive latent i (sorted by importance I_i = E[z_i^2] ||W_dec,i||^2, descending), R^2_i(reader) is the held-out
fraction of variance of z_i that a ridge read-out of the reader's residual explains. The score is normalised by the
same read-out on the teacher's own residual (the ceiling), s_i = R^2_i(student) / R^2_i(teacher); it is 1 for the
teacher against itself. Latent i survives when it is scorable, s_i > threshold and s_i exceeds its null, the best
normalised score of the controls: randomly initialised students of the same width, the shuffled pairing and (with
``beyond_token``, the default, when it was measured) the token identity. The token-identity read-out is a per-token
mean, not a linear read-out of a residual, so its normalised score can exceed 1: a latent that the current token
alone predicts better than the teacher's own linear read-out survives in no student under that null. Both counts,
with and without the token identity in the null, are in ``summary()``.

The staircase (paper section 3, Theorem 1): a width-d_S student keeps the F_S = d_S g(alpha) most important
features. Its measured counterpart is the cutoff k* of the best step function "survives up to rank k, not beyond"
over the importance ranks, and the measured capacity is g_eff = k* / d_S.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata, spearmanr

from ..capacity import CAPACITY_KINDS, FittedCapacity, kept_features, quiet_capacity_warnings
from ..checks import check_width
from ..files import write_tensors_and_json
from .config import FeatureSurvivalConfig
from .storage import (
    SHUFFLED_READER,
    SURVIVAL_CONFIG_NAME,
    SURVIVAL_WEIGHTS_NAME,
    TOKEN_READER,
    VECTORS,
    read_result,
    result_tensors,
    same_tensors,
)

__all__ = ["CEILING_READER", "RANDOM_PREFIX", "SHUFFLED_READER", "STUDENT_READER", "SURVIVAL_CONFIG_NAME",
           "SURVIVAL_WEIGHTS_NAME", "TOKEN_READER", "FeatureSurvival", "ordering_auc", "step_cutoff"]

REPORTED_THRESHOLDS = (0.3, 0.5, 0.7)
CEILING_READER = "teacher"
STUDENT_READER = "student"
RANDOM_PREFIX = "random_"
ORDERINGS = ("importance", "frequency", "random")


def step_cutoff(survived: np.ndarray, ranks: np.ndarray) -> int:
    """k*: the rank cutoff of the best step "survives at ranks <= k, not beyond" (most latents classified right).

    ``ranks`` are 1-based importance ranks of the latents labelled by ``survived`` (ranks of unscorable latents are
    simply absent); k* is 0 or one of them, the smallest among equally good cutoffs.
    """
    order = np.argsort(ranks)
    gains = np.concatenate([[0.0], np.cumsum(np.where(survived[order], 1.0, -1.0))])
    best = int(np.argmax(gains))
    return 0 if best == 0 else int(ranks[order][best - 1])


def ordering_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """AUC of ``values`` for telling survivors from the rest (Mann-Whitney U / (n_pos n_neg)); NaN if one class."""
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _control_kind(reader: str) -> str:
    return "random" if reader.startswith(RANDOM_PREFIX) else reader


def _check_positive_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (tokens in the read-out's split), got {value!r}.")


@dataclass(eq=False)
class FeatureSurvival:
    """Survival of a teacher's SAE latents in one student (see the module docstring for the definitions).

    Attributes:
        latent: SAE indices of the alive latents, in descending importance.
        importance: I_i = E[z_i^2] ||W_dec,i||^2 on all measured tokens, descending.
        frequency: firing frequency of each latent on all measured tokens.
        held_out_firings: how often each latent fired on the held-out tokens.
        r2: held-out R^2 per latent for each reader: ``teacher`` (the ceiling), ``student``, ``random_<k>``,
            ``shuffled`` and, when measured, ``token`` (token identity).
        student_width, teacher_width: d_S and d_T.
        l0, alpha: the teacher SAE's L0 and sparsity 1 - L0 / F on the measured tokens (F = alive latents).
        n_train, n_test: tokens in the read-out's train and held-out splits.
        config: the :class:`FeatureSurvivalConfig` it was measured with, its hooks resolved (``hook_name``,
            ``student_hook``), ``null_students`` the number used and ``token_baseline`` whether it was measured.
            Its scoring settings (``threshold``, ``min_firings``, ``min_ceiling``, ``beyond_token``) are applied
            when the result is read, so ``dataclasses.replace(result, config=...)`` rescores it.
        metadata: provenance (tokens, models, dataset), stored as json.
    """

    latent: torch.Tensor
    importance: torch.Tensor
    frequency: torch.Tensor
    held_out_firings: torch.Tensor
    r2: dict[str, torch.Tensor]
    student_width: int
    teacher_width: int
    l0: float
    alpha: float
    n_train: int
    n_test: int
    config: FeatureSurvivalConfig
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.config, FeatureSurvivalConfig):
            raise ValueError(f"config must be a FeatureSurvivalConfig, got {type(self.config).__name__}.")
        if self.config.hook_name is None or self.config.student_hook is None:
            raise ValueError("config.hook_name and config.student_hook must name the hooks the result was read at.")
        self._check_vectors()
        self._check_r2()
        self._check_counts()

    def _check_vectors(self) -> None:
        n = self.latent.numel()
        if n == 0:
            raise ValueError("latent is empty: a result holds one or more alive latents.")
        bad = [name for name, values in {"importance": self.importance, "frequency": self.frequency,
                                         "held_out_firings": self.held_out_firings, **self.r2}.items()
               if values.numel() != n]
        if bad:
            raise ValueError(f"{', '.join(bad)} must hold one value per latent ({n}).")
        checks = {"importance": (self.importance, "finite and >= 0 (energies)", lambda v: v >= 0),
                  "frequency": (self.frequency, "in [0, 1] (firing rates)", lambda v: (v >= 0) & (v <= 1)),
                  "held_out_firings": (self.held_out_firings, "finite and >= 0 (counts)", lambda v: v >= 0)}
        for name, (values, rule, valid) in checks.items():
            values = values.double()
            if not bool((torch.isfinite(values) & valid(values)).all()):
                raise ValueError(f"{name} must be {rule} for every latent: the result is damaged.")

    def _check_r2(self) -> None:
        for required in (CEILING_READER, STUDENT_READER):
            if required not in self.r2:
                raise ValueError(f"r2 lacks the {required!r} reader.")
        scorable = self.scorable
        for reader, values in self.r2.items():
            values = values.double().numpy()
            if np.isinf(values).any():
                raise ValueError(f"r2[{reader!r}] holds infinite values: the result is damaged.")
            missing = int((np.isnan(values) & scorable).sum())
            if missing:
                raise ValueError(f"r2[{reader!r}] is NaN for {missing} scorable latents (the teacher's read-out scored "
                                 "them): the result is damaged; measure it again.")

    def _check_counts(self) -> None:
        self.student_width = check_width(self.student_width, "student_width")
        self.teacher_width = check_width(self.teacher_width, "teacher_width")
        _check_positive_count(self.n_train, "n_train")
        _check_positive_count(self.n_test, "n_test")
        if not (isinstance(self.l0, (int, float)) and math.isfinite(self.l0) and 0 <= self.l0 <= self.n_features):
            raise ValueError(f"l0 must lie in [0, F = {self.n_features}] (active latents per token), got {self.l0!r}.")
        expected = 1 - self.l0 / self.n_features
        if not (isinstance(self.alpha, (int, float)) and abs(self.alpha - expected) <= 1e-9):
            raise ValueError(f"alpha = {self.alpha!r} disagrees with 1 - l0 / F = {expected}: the result is damaged.")

    # ------------------------------------------------------------------------------------------------ settings
    @property
    def hook_name(self) -> str:
        """The teacher's hook (the SAE's)."""
        return self.config.hook_name

    @property
    def student_hook(self) -> str:
        return self.config.student_hook

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def min_firings(self) -> int:
        return self.config.min_firings

    @property
    def min_ceiling(self) -> float:
        return self.config.min_ceiling

    @property
    def ridge(self) -> float:
        return self.config.ridge

    # ------------------------------------------------------------------------------------------------- scores
    @property
    def n_features(self) -> int:
        """F: alive latents."""
        return self.latent.numel()

    @property
    def random_readers(self) -> list[str]:
        return sorted(name for name in self.r2 if name.startswith(RANDOM_PREFIX))

    @property
    def scorable(self) -> np.ndarray:
        """Latents with enough held-out firings and a teacher ceiling worth normalising by."""
        ceiling = self.r2[CEILING_READER].numpy()
        with np.errstate(invalid="ignore"):
            return ((self.held_out_firings.numpy() >= self.min_firings) & np.isfinite(ceiling)
                    & (ceiling >= self.min_ceiling))

    def score(self, reader: str = STUDENT_READER) -> np.ndarray:
        """Normalised held-out score R^2(reader) / R^2(teacher) per latent (NaN where not scorable)."""
        if reader not in self.r2:
            raise ValueError(f"no reader {reader!r}: measured readers are {sorted(self.r2)}.")
        values = self.r2[reader].numpy() / self.r2[CEILING_READER].numpy()
        return np.where(self.scorable, values, np.nan)

    def controls(self, beyond_token: bool | None = None) -> list[str]:
        """The readers whose best score makes the null: random-init students, the shuffled pairing and, when
        ``beyond_token`` (default: the config's) and measured, the token identity."""
        beyond_token = self.config.beyond_token if beyond_token is None else beyond_token
        names = [*self.random_readers, SHUFFLED_READER, *([TOKEN_READER] if beyond_token else [])]
        return [name for name in names if name in self.r2]

    def null_label(self, beyond_token: bool | None = None) -> str:
        """The kinds of control in the null, e.g. ``random,shuffled,token`` (``none`` without controls)."""
        return ",".join(dict.fromkeys(_control_kind(name) for name in self.controls(beyond_token))) or "none"

    def null(self, beyond_token: bool | None = None) -> np.ndarray:
        """Per latent, the best normalised score of the controls in the null (see :meth:`controls`)."""
        controls = [self.score(name) for name in self.controls(beyond_token)]
        return np.max(controls, axis=0) if controls else np.full(self.n_features, -np.inf)

    def survived(self, threshold: float | None = None, reader: str = STUDENT_READER,
                 beyond_token: bool | None = None) -> np.ndarray:
        """Boolean per latent: scorable, normalised score above ``threshold`` and above the null.

        For a control reader (``random_<k>``, ``shuffled``, ``token``) only the threshold applies: the null is made
        of the controls, so it is not a bar they are held to.
        """
        threshold = self.threshold if threshold is None else threshold
        score = self.score(reader)
        with np.errstate(invalid="ignore"):
            above = self.scorable & (score > threshold)
            return above & (score > self.null(beyond_token)) if reader == STUDENT_READER else above

    # ---------------------------------------------------------------------------------------------- staircase
    def k_star(self, threshold: float | None = None, reader: str = STUDENT_READER,
               beyond_token: bool | None = None) -> int:
        """k*: the fitted importance-rank cutoff of the survivors (the measured F_S)."""
        scorable = self.scorable
        ranks = np.arange(1, self.n_features + 1)[scorable]
        return step_cutoff(self.survived(threshold, reader, beyond_token)[scorable], ranks)

    def g_eff(self, threshold: float | None = None, beyond_token: bool | None = None) -> float:
        """Measured capacity g_eff = k* / d_S (features per student dimension)."""
        return self.k_star(threshold, beyond_token=beyond_token) / self.student_width

    def predicted_kept(self) -> dict[str, int]:
        """F_S = min(floor(d_S g(alpha)), F) under every capacity kind, for the teacher's measured alpha."""
        with quiet_capacity_warnings():  # the summary reports alpha beside these
            return {kind: kept_features(self.student_width, self.alpha, self.n_features, kind)
                    for kind in CAPACITY_KINDS if not (kind == "paper" and self.alpha == 0)}

    def measured_capacity(self, threshold: float | None = None) -> FittedCapacity:
        """g_eff as a constant capacity kind for :class:`hf_geokd.FloorPredictor` (a * g_base^0 = g_eff)."""
        return FittedCapacity.from_kept_counts([self.student_width], [self.k_star(threshold)])
    # ---------------------------------------------------------------------------------------------- summaries
    def ordering_values(self, name: str, seed: int = 0) -> np.ndarray:
        """Per latent, the value an ordering ranks by (higher first): ``importance`` (E[z^2] ||W_dec||^2, the
        energy the latent writes), ``frequency`` (firing rate) or ``random`` (uniform draws from ``seed``)."""
        if name == "random":
            return np.random.default_rng(seed).random(self.n_features)
        if name not in ORDERINGS:
            raise ValueError(f"unknown ordering {name!r}: choose from {ORDERINGS}.")
        return getattr(self, name).numpy()

    def ordering_aucs(self, seed: int = 0) -> dict[str, float]:
        """AUC of each latent ordering for predicting survival: importance, firing frequency, random."""
        scorable = self.scorable
        labels = self.survived()[scorable]
        return {name: ordering_auc(self.ordering_values(name, seed)[scorable], labels) for name in ORDERINGS}

    def importance_spearman(self, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
        """Spearman(importance, normalised score) over scorable latents, with a 95% bootstrap interval."""
        scorable = self.scorable
        x, y = self.importance.numpy()[scorable], self.score()[scorable]
        if x.size < 3:
            return float("nan"), float("nan"), float("nan")
        rho = float(spearmanr(x, y).statistic)
        index = np.random.default_rng(seed).integers(0, x.size, (n_boot, x.size))
        rank_x, rank_y = rankdata(x[index], axis=1), rankdata(y[index], axis=1)  # Spearman = Pearson of ranks
        rank_x -= rank_x.mean(1, keepdims=True)
        rank_y -= rank_y.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            samples = (rank_x * rank_y).sum(1) / np.sqrt((rank_x**2).sum(1) * (rank_y**2).sum(1))
        low, high = np.nanpercentile(samples, [2.5, 97.5])
        return rho, float(low), float(high)

    def summary(self) -> dict[str, Any]:
        """Counts and the staircase in one json-ready mapping (what reports and tables print)."""
        scorable = self.scorable
        out: dict[str, Any] = {
            "student_width": self.student_width, "teacher_width": self.teacher_width, "n_features": self.n_features,
            "alpha": self.alpha, "scorable": int(scorable.sum()), "unscorable": int((~scorable).sum()),
            "threshold": self.threshold, "null": self.null_label(),
        }
        for threshold in sorted({*REPORTED_THRESHOLDS, self.threshold}):
            out[f"survived@{threshold:g}"] = int(self.survived(threshold).sum())
        out["k_star"] = self.k_star()
        out["g_eff"] = self.g_eff()
        out.update(self.counts_by_null())
        out.update({f"F_S[{kind}]": kept for kind, kept in self.predicted_kept().items()})
        for reader in sorted(self.r2):
            if reader != CEILING_READER:
                out[f"mean_score[{reader}]"] = float(np.nanmean(self.score(reader))) if scorable.any() else math.nan
        randoms = self.random_readers
        if randoms:
            out["survived_random_mean"] = float(np.mean([self.survived(reader=r).sum() for r in randoms]))
        out.update({f"auc[{name}]": value for name, value in self.ordering_aucs().items()})
        rho, low, high = self.importance_spearman()
        out.update({"spearman_importance": rho, "spearman_low": low, "spearman_high": high})
        return out

    def counts_by_null(self) -> dict[str, int]:
        """Survivors at the threshold and k* with the token identity out of the null and, when it was measured, in
        it: ``survived@0.5[random,shuffled]``, ``k_star[random,shuffled]``, ``survived@0.5[random,shuffled,token]``,
        ``k_star[random,shuffled,token]`` (the labels name the controls in each null)."""
        out = {}
        for beyond_token in dict.fromkeys((False, TOKEN_READER in self.r2)):
            label = self.null_label(beyond_token)
            out[f"survived@{self.threshold:g}[{label}]"] = int(self.survived(beyond_token=beyond_token).sum())
            out[f"k_star[{label}]"] = self.k_star(beyond_token=beyond_token)
        return out

    def table(self) -> pd.DataFrame:
        """One row per alive latent in importance order: rank, SAE index, importance, frequency, scores, survived."""
        table = pd.DataFrame({"rank": np.arange(1, self.n_features + 1), "latent": self.latent.numpy(),
                              "importance": self.importance.numpy(), "frequency": self.frequency.numpy(),
                              "held_out_firings": self.held_out_firings.numpy(), "scorable": self.scorable})
        for reader in sorted(self.r2):
            table[f"r2_{reader}"] = self.r2[reader].numpy()
        table["score"] = self.score()
        table["null"] = self.null()
        table["survived"] = self.survived()
        return table

    # -------------------------------------------------------------------------------------------------- files
    def scalars(self) -> dict[str, Any]:
        """Everything but the per-latent vectors, json-ready (the config as a mapping, the readers listed)."""
        return {"student_width": self.student_width, "teacher_width": self.teacher_width, "l0": self.l0,
                "alpha": self.alpha, "n_train": self.n_train, "n_test": self.n_test,
                "config": dataclasses.asdict(self.config), "metadata": self.metadata, "readers": sorted(self.r2)}

    def same_as(self, other: FeatureSurvival) -> bool:
        """True when ``other`` holds the same result: equal settings, metadata and per-latent values (NaN = NaN)."""
        mine, theirs = self._vectors(), other._vectors()
        return (self.scalars() == other.scalars() and mine.keys() == theirs.keys()
                and all(same_tensors(mine[name], theirs[name]) for name in mine))

    def _vectors(self) -> dict[str, torch.Tensor]:
        return result_tensors({name: getattr(self, name) for name in VECTORS}, self.r2)

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``feature_survival.safetensors`` (per-latent vectors) and ``feature_survival.json`` (the rest).

        A folder that already holds a feature-survival result is left as it is when that result equals this one,
        and refused with ``FileExistsError`` otherwise, unless ``overwrite=True``.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory} is a file: pass a folder to save the FeatureSurvival in.")
        present = [name for name in (SURVIVAL_WEIGHTS_NAME, SURVIVAL_CONFIG_NAME) if (directory / name).exists()]
        if present and not overwrite:
            if self._saved_in(directory):
                return directory
            raise FileExistsError(f"{directory} already holds {', '.join(present)} of another feature-survival "
                                  "result: save into another folder, or pass overwrite=True to replace it.")
        return write_tensors_and_json(directory, self._vectors(), self.scalars(), SURVIVAL_WEIGHTS_NAME,
                                      SURVIVAL_CONFIG_NAME)

    def _saved_in(self, directory: Path) -> bool:
        """Whether ``directory`` holds a readable result equal to this one."""
        try:
            return self.same_as(FeatureSurvival.load(directory))
        except (ValueError, FileNotFoundError):
            return False

    @classmethod
    def load(cls, directory: str | Path) -> FeatureSurvival:
        """Read a result written by :meth:`save` (also one saved before ``FeatureSurvivalConfig`` existed: see
        :mod:`hf_geokd.survival.storage`). Unknown keys are ignored with a warning; a missing or damaged entry raises
        ``ValueError`` naming the file."""
        kwargs = read_result(directory, cls)
        try:
            return cls(**kwargs)
        except ValueError as error:
            raise ValueError(f"{Path(directory) / SURVIVAL_CONFIG_NAME}: {error}") from error
