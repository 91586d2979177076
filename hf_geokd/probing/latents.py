"""From concepts to features: which of the teacher's SAE latents carry a concept, their importance ranks, and how many
of them survive in each student.

For every latent i, its activation z_i mean-pooled over a text's tokens is the only input of a one-feature classifier
"concept iff sign * z_i > threshold", sign and threshold chosen on the train part of a group split (documents kept
apart) to maximise train accuracy; its held-out accuracy is a_i over n held-out texts.

Latent i *carries* the concept when the lower end of its Wilson interval (level 1 - (1 - level) / K, a Bonferroni
correction over the K latents tried) exceeds ``bar + margin``. The bar is the lexical baseline at the same footing:
the held-out accuracy of the same one-feature classifier on the token type whose count does best on the train part
(a latent that merely counts one token does no better), or a bar the caller gives, or chance (0.5).

Everything here is a pure function of arrays (activations, labels, documents, survival sets, ranks), so the step is
tested on a latent planted into a tiny model; :func:`pooled_latent_activations` reads the activations of a real SAE.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from ..naming import student_label
from .controls import token_counts, token_ids
from .probes import encoded_batches
from .split import group_split


@torch.no_grad()
def pooled_latent_activations(model: torch.nn.Module, tokenizer, texts: Sequence[str], module: torch.nn.Module,
                              encode: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 16,
                              max_length: int = 128) -> torch.Tensor:
    """[len(texts), n_latents] float32: ``encode`` (e.g. an SAE's ``encode``) of ``module``'s output (the SAE's hook,
    a submodule of ``model``), mean-pooled over each text's non-padding tokens."""
    if not texts:
        raise ValueError("texts is empty: give the concept's examples.")
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(
        lambda _module, _inputs, output: captured.append(output[0] if isinstance(output, tuple) else output))
    was_training = model.training
    model.eval()
    pooled: dict[int, torch.Tensor] = {}
    try:
        for indices, batch in encoded_batches(tokenizer, texts, batch_size, max_length):
            captured.clear()
            mask = batch["attention_mask"].to(device)
            model(input_ids=batch["input_ids"].to(device), attention_mask=mask)
            if not captured:
                raise ValueError("module never ran in the forward pass: give a submodule of model (the SAE's hook).")
            hidden = captured[0]
            latents = encode(hidden.reshape(-1, hidden.shape[-1])).reshape(*hidden.shape[:-1], -1).float()
            weights = mask.unsqueeze(-1).float()
            pooled.update(zip(indices.tolist(), ((latents * weights).sum(1) / weights.sum(1).clamp_min(1.0)).cpu()))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.stack([pooled[i] for i in range(len(texts))])


def single_feature_accuracy(features: np.ndarray, labels: Sequence[int], train: np.ndarray, test: np.ndarray,
                            chunk: int = 1024) -> np.ndarray:
    """Held-out accuracy of each column of ``features`` [N, K] as a one-feature classifier (sign and threshold fitted
    on ``train`` rows to maximise train accuracy; thresholds halfway between distinct train values)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"features must be [examples, K] with one row per label ({y.size}), got {x.shape}.")
    y_train, y_test = y[train], y[test]
    n = y_train.size
    out = np.empty(x.shape[1])
    for start in range(0, x.shape[1], chunk):
        block = x[train, start : start + chunk]
        order = np.argsort(block, axis=0, kind="stable")
        values = np.take_along_axis(block, order, 0)
        positives = np.cumsum(y_train[order], axis=0)  # positives at or below each cut
        below = np.arange(1, n + 1)[:, None]
        # cut after row r: predict 1 above. Correct = negatives at or below + positives above.
        correct = (below - positives) + (positives[-1] - positives)
        correct = np.vstack([np.full((1, block.shape[1]), positives[-1]), correct])  # cut below everything
        valid = np.vstack([np.ones((1, block.shape[1]), bool), np.diff(values, axis=0) > 0,
                           np.ones((1, block.shape[1]), bool)])
        up = np.where(valid, correct, -1)
        down = np.where(valid, n - correct, -1)  # the flipped sign
        use_down = down.max(0) > up.max(0)
        cut = np.where(use_down, down.argmax(0), up.argmax(0))
        padded = np.vstack([values[:1] - 1, values, values[-1:] + 1])
        threshold = (padded[cut, np.arange(block.shape[1])] + padded[cut + 1, np.arange(block.shape[1])]) / 2
        predicted = x[test, start : start + chunk] > threshold
        predicted = np.where(use_down, ~predicted, predicted)
        out[start : start + chunk] = (predicted == y_test[:, None].astype(bool)).mean(0)
    return out


def wilson_lower(accuracy: np.ndarray, n: int, level: float) -> np.ndarray:
    """Lower end of the two-sided Wilson score interval at ``level`` for accuracies over ``n`` trials."""
    z = norm.ppf((1 + level) / 2)
    p = np.asarray(accuracy, dtype=np.float64)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half


@dataclass
class ConceptLatents:
    """The latents that carry one concept (see the module docstring).

    Attributes:
        latents: SAE indices of the carrying latents, best held-out accuracy first.
        accuracy, lower: their held-out accuracy and its corrected Wilson lower end.
        ranks: their importance ranks (1 = most important; 0 where the latent has none, e.g. dead).
        survived: width label -> how many of the carrying latents survive in that student.
        bar: the baseline accuracy the lower end must exceed by ``margin``; baseline names it.
        best_latent, best_accuracy: the best single latent overall (carrying or not).
        n_test: held-out texts.
    """

    latents: np.ndarray
    accuracy: np.ndarray
    lower: np.ndarray
    ranks: np.ndarray
    survived: dict[str, int]
    bar: float
    baseline: str
    margin: float
    best_latent: int
    best_accuracy: float
    n_test: int
    tried: int = field(default=0)

    def summary(self) -> dict:
        """One row: counts, ranks and survival per width."""
        ranked = self.ranks[self.ranks > 0]
        return {"carrying_latents": int(self.latents.size), "tried": self.tried, "baseline": self.baseline,
                "bar": self.bar, "margin": self.margin, "best_latent": self.best_latent,
                "best_accuracy": self.best_accuracy,
                "median_rank": float(np.median(ranked)) if ranked.size else float("nan"),
                "best_rank": int(ranked.min()) if ranked.size else 0,
                **{f"survive_{width}": count for width, count in self.survived.items()}}

    def table(self) -> pd.DataFrame:
        """One row per carrying latent."""
        return pd.DataFrame({"latent": self.latents, "accuracy": self.accuracy, "lower": self.lower,
                             "rank": self.ranks})


def concept_latents(activations: np.ndarray | torch.Tensor, labels: Sequence[int], groups: Sequence[str],
                    survival: Mapping[str, Collection[int]] | None = None,
                    importance_rank: Mapping[int, int] | None = None, token_counts: np.ndarray | None = None,
                    bar: float | None = None, margin: float = 0.02, level: float = 0.95, test_fraction: float = 0.2,
                    seed: int = 0, latent_ids: Sequence[int] | None = None) -> ConceptLatents:
    """The latents whose activation alone predicts the concept above the lexical bar (module docstring).

    Args:
        activations: [texts, K] pooled activations (:func:`pooled_latent_activations`).
        labels, groups: the concept's labels and documents (a :class:`~hf_geokd.probing.concepts.GroupedConcept`).
        survival: width label (e.g. ``d_S=128``) -> SAE indices of the latents that survive in that student.
        importance_rank: SAE index -> importance rank (1 = most important).
        token_counts: [texts, V] token counts; the bar is then the best train token type's held-out accuracy.
        bar: a bar given directly (with ``token_counts`` absent); default 0.5 (chance).
        latent_ids: the SAE index of each column (default 0..K-1).
    """
    z = activations.double().numpy() if isinstance(activations, torch.Tensor) else np.asarray(activations, float)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or z.shape[0] != y.size:
        raise ValueError(f"activations must be [texts, latents] with one row per label ({y.size}), got {z.shape}.")
    if token_counts is not None and bar is not None:
        raise ValueError("give token_counts (the bar is then measured) or bar, not both.")
    ids = np.arange(z.shape[1]) if latent_ids is None else np.asarray(latent_ids)
    if ids.size != z.shape[1]:
        raise ValueError(f"latent_ids names {ids.size} latents but activations has {z.shape[1]} columns.")
    train, test = group_split(groups, y, test_fraction, seed)
    accuracy = single_feature_accuracy(z, y, train, test)
    baseline = "chance" if bar is None else "given"
    if token_counts is not None:
        counts = np.asarray(token_counts, dtype=np.float64)
        train_accuracy = single_feature_accuracy(counts[train], y[train], np.arange(train.size), np.arange(train.size))
        best = int(np.argmax(train_accuracy))
        bar = float(single_feature_accuracy(counts[:, best : best + 1], y, train, test)[0])
        baseline = "best single token type"
    bar = 0.5 if bar is None else float(bar)
    lower = wilson_lower(accuracy, test.size, 1 - (1 - level) / max(z.shape[1], 1))
    carrying = np.flatnonzero(lower > bar + margin)
    carrying = carrying[np.argsort(-accuracy[carrying], kind="stable")]
    ranks = np.array([(importance_rank or {}).get(int(i), 0) for i in ids[carrying]], dtype=np.int64)
    survived = {width: int(np.isin(ids[carrying], np.fromiter(kept, dtype=np.int64)).sum())
                for width, kept in (survival or {}).items()}
    best = int(np.argmax(accuracy))
    return ConceptLatents(ids[carrying], accuracy[carrying], lower[carrying], ranks, survived, bar, baseline, margin,
                          int(ids[best]), float(accuracy[best]), int(test.size), tried=int(z.shape[1]))


def survival_sets(results: Sequence) -> tuple[dict[str, set[int]], dict[int, int]]:
    """Width label -> SAE indices of the latents surviving in that student, and SAE index -> importance rank (the
    order of the survival results: I_i = E[z_i^2] ||W_dec,i||^2, descending), from
    :class:`~hf_geokd.survival.FeatureSurvival` results of one SAE (any order; empty gives two empty maps)."""
    results = sorted(results, key=lambda result: result.student_width)
    survived = {student_label(result.student_width): set(result.latent[torch.as_tensor(result.survived())].tolist())
                for result in results}
    ranks = {int(latent): rank for rank, latent in enumerate(results[0].latent.tolist(), start=1)} if results else {}
    return survived, ranks


def concept_latent_tables(model: torch.nn.Module, tokenizer, concepts: Mapping, module: torch.nn.Module,
                          encode: Callable[[torch.Tensor], torch.Tensor], survival: Mapping[str, Collection[int]],
                          importance_rank: Mapping[int, int], margin: float = 0.02, test_fraction: float = 0.2,
                          batch_size: int = 16, max_length: int = 128) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`concept_latents` for every concept (name -> :class:`~hf_geokd.probing.concepts.GroupedConcept`), the
    bar set by the best single token type: the summary (one row per concept, ``survive_<width>`` columns) and the
    detail (one row per carrying latent)."""
    summaries, details = [], []
    for name, concept in concepts.items():
        activations = pooled_latent_activations(model, tokenizer, concept.texts, module, encode, batch_size,
                                                max_length)
        counts, _ = token_counts(token_ids(tokenizer, concept.texts, max_length))
        found = concept_latents(activations, concept.labels, concept.groups, survival, importance_rank,
                                counts.numpy(), margin=margin, test_fraction=test_fraction)
        summaries.append({"concept": name, **found.summary()})
        details.append(found.table().assign(concept=name))
    return pd.DataFrame(summaries), pd.concat(details, ignore_index=True)
