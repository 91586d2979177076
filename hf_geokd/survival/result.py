"""FeatureSurvival: which of a teacher's SAE latents a student's residual stream still carries, and what it implies.

Per alive latent i (sorted by importance I_i = E[z_i^2] ||W_dec,i||^2, descending), R^2_i(reader) is the held-out
fraction of variance of z_i that a ridge read-out of the reader's residual explains. The score is normalised by the
same read-out on the teacher's own residual (the ceiling), s_i = R^2_i(student) / R^2_i(teacher); it is 1 for the
teacher against itself. Latent i survives when it is scorable, s_i > threshold and s_i exceeds its null (the best
normalised score of the controls: randomly initialised students of the same width and the shuffled pairing).

The staircase (paper section 3, Theorem 1): a width-d_S student keeps the F_S = d_S g(alpha) most important
features. Its measured counterpart is the cutoff k* of the best step function "survives up to rank k, not beyond"
over the importance ranks, and the measured capacity is g_eff = k* / d_S.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata, spearmanr

from ..capacity import CAPACITY_KINDS, FittedCapacity, kept_features, quiet_capacity_warnings
from ..files import read_json, read_safetensors, require_files, write_tensors_and_json

SURVIVAL_WEIGHTS_NAME = "feature_survival.safetensors"
SURVIVAL_CONFIG_NAME = "feature_survival.json"
REPORTED_THRESHOLDS = (0.3, 0.5, 0.7)
CEILING_READER = "teacher"
STUDENT_READER = "student"
SHUFFLED_READER = "shuffled"
TOKEN_READER = "token"
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


@dataclass
class FeatureSurvival:
    """Survival of a teacher's SAE latents in one student (see the module docstring for the definitions).

    Attributes:
        latent: SAE indices of the alive latents, in descending importance.
        importance: I_i = E[z_i^2] ||W_dec,i||^2 on all measured tokens, descending.
        frequency: firing frequency of each latent on all measured tokens.
        held_out_firings: how often each latent fired on the held-out tokens.
        r2: held-out R^2 per latent for each reader: ``teacher`` (the ceiling), ``student``, ``random_<seed>``,
            ``shuffled`` and, when measured, ``token`` (token identity).
        student_width, teacher_width: d_S and d_T.
        l0, alpha: the teacher SAE's L0 and sparsity 1 - L0 / F on the measured tokens (F = alive latents).
        hook_name, student_hook: where the teacher's SAE and the student were read.
        n_train, n_test: tokens in the read-out's train and held-out splits.
        threshold: the normalised score above which a latent survives.
        min_firings: held-out firings a latent needs to be scored.
        min_ceiling: the teacher's own R^2 a latent needs to be scored.
        ridge: the read-out's relative ridge penalty.
        metadata: provenance (models, dataset, seeds), stored as json.
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
    hook_name: str
    student_hook: str
    n_train: int
    n_test: int
    threshold: float = 0.5
    min_firings: int = 20
    min_ceiling: float = 0.05
    ridge: float = 1e-3
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.latent.numel()
        bad = [name for name, values in {"importance": self.importance, "frequency": self.frequency,
                                         "held_out_firings": self.held_out_firings, **self.r2}.items()
               if values.numel() != n]
        if bad:
            raise ValueError(f"{', '.join(bad)} must hold one value per latent ({n}).")
        for required in (CEILING_READER, STUDENT_READER):
            if required not in self.r2:
                raise ValueError(f"r2 lacks the {required!r} reader.")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1) (a share of the ceiling), got {self.threshold}.")

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

    def null(self) -> np.ndarray:
        """Per latent, the best normalised score of the controls (random students, shuffled pairing)."""
        controls = [self.score(name) for name in (*self.random_readers, SHUFFLED_READER) if name in self.r2]
        return np.max(controls, axis=0) if controls else np.full(self.n_features, -np.inf)

    def survived(self, threshold: float | None = None, reader: str = STUDENT_READER) -> np.ndarray:
        """Boolean per latent: scorable, normalised score above ``threshold`` and above the controls' null.

        For a control reader (``random_<seed>``, ``shuffled``, ``token``) only the threshold applies: the null is made
        of the controls, so it is not a bar they are held to.
        """
        threshold = self.threshold if threshold is None else threshold
        score = self.score(reader)
        with np.errstate(invalid="ignore"):
            above = self.scorable & (score > threshold)
            return above & (score > self.null()) if reader == STUDENT_READER else above

    # ---------------------------------------------------------------------------------------------- staircase
    def k_star(self, threshold: float | None = None, reader: str = STUDENT_READER) -> int:
        """k*: the fitted importance-rank cutoff of the survivors (the measured F_S)."""
        scorable = self.scorable
        ranks = np.arange(1, self.n_features + 1)[scorable]
        return step_cutoff(self.survived(threshold, reader)[scorable], ranks)

    def g_eff(self, threshold: float | None = None) -> float:
        """Measured capacity g_eff = k* / d_S (features per student dimension)."""
        return self.k_star(threshold) / self.student_width

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
            "threshold": self.threshold,
        }
        for threshold in sorted({*REPORTED_THRESHOLDS, self.threshold}):
            out[f"survived@{threshold:g}"] = int(self.survived(threshold).sum())
        out["k_star"] = self.k_star()
        out["g_eff"] = self.g_eff()
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
        data = asdict(self)
        for name in ("latent", "importance", "frequency", "held_out_firings", "r2"):
            data.pop(name)
        data["readers"] = sorted(self.r2)
        return data

    def save(self, directory: str | Path) -> Path:
        """Write ``feature_survival.safetensors`` (per-latent vectors) and ``feature_survival.json`` (the rest)."""
        tensors = {"latent": self.latent, "importance": self.importance, "frequency": self.frequency,
                   "held_out_firings": self.held_out_firings, **{f"r2.{k}": v for k, v in self.r2.items()}}
        return write_tensors_and_json(directory, tensors, self.scalars(), SURVIVAL_WEIGHTS_NAME, SURVIVAL_CONFIG_NAME)

    @classmethod
    def load(cls, directory: str | Path) -> FeatureSurvival:
        """Read a result written by :meth:`save`."""
        directory = require_files(directory, (SURVIVAL_WEIGHTS_NAME, SURVIVAL_CONFIG_NAME), "FeatureSurvival",
                                  "FeatureSurvival.save or measure_feature_survival")
        scalars = read_json(directory / SURVIVAL_CONFIG_NAME)
        scalars.pop("readers")
        tensors = read_safetensors(directory / SURVIVAL_WEIGHTS_NAME)
        r2 = {k.removeprefix("r2."): v for k, v in tensors.items() if k.startswith("r2.")}
        return cls(latent=tensors["latent"], importance=tensors["importance"], frequency=tensors["frequency"],
                   held_out_firings=tensors["held_out_firings"], r2=r2, **scalars)
