"""Linear probes for binary concepts on pooled hidden states (paper section 7).

For each text: hidden states of one layer, mean-pooled over non-padding tokens. For each concept and seed:
a stratified 80/20 split (a group split that keeps documents apart when the concept names them), features
standardised on the training part, L2-regularised logistic regression (Newton's method),
accuracy and AUROC on the held-out part. Controls: the same probe on shuffled labels (should sit at chance), and
on a randomly initialised copy of the model (how much a probe finds without learned features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import causal_lm_collator
from .concepts import Concept, GroupedConcept
from .split import group_split, resampled_interval


def encoded_batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int):
    """(indices, padded batch) pairs covering ``texts``, truncated to ``max_length`` tokens: texts of similar length
    share a batch (shortest first), so little compute goes to padding; ``indices`` say which texts a batch holds."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(row) for row in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        yield chosen, causal_lm_collator([{"input_ids": ids[i]} for i in chosen])  # pads without a pad token


@torch.no_grad()
def pooled_hidden_states(model, tokenizer, texts: Sequence[str], layer: int, batch_size: int = 16,
                         max_length: int = 128) -> torch.Tensor:
    """[len(texts), hidden] mean over non-padding tokens of ``hidden_states[layer]`` (0 = embeddings)."""
    if not texts:
        raise ValueError("texts is empty: a probe needs examples of both classes.")
    n_layers = model.config.num_hidden_layers
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer must lie in [0, {n_layers}] (0 = embeddings), got {layer}.")
    device = next(model.parameters()).device
    body = getattr(model, "base_model", model)  # the hidden states without the language-model head
    was_training = model.training
    model.eval()
    pooled = torch.empty(len(texts), model.config.hidden_size, dtype=torch.float64)
    for indices, batch in encoded_batches(tokenizer, texts, batch_size, max_length):
        mask = batch["attention_mask"].to(device)
        hidden = body(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                      output_hidden_states=True).hidden_states[layer].double()
        mask = mask.unsqueeze(-1).double()
        pooled[torch.as_tensor(indices)] = ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).cpu()
    model.train(was_training)
    return pooled


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a split that keeps each class's share in both parts."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cut = max(1, int(round(test_fraction * members.size)))
        test.extend(members[:cut])
        train.extend(members[cut:])
    return np.array(train), np.array(test)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    if positive.size == 0 or negative.size == 0:
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return float(greater / (positive.size * negative.size))


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, l2: float = 1e-2, tolerance: float = 1e-10,
                 max_steps: int = 100) -> torch.Tensor:
    """Weights [d + 1] (bias last) minimising mean binary cross-entropy + ``l2`` ||w||^2 (bias unpenalised), in
    float64, by damped Newton steps until the gradient's largest entry is under ``tolerance``.

    The minimiser lies in the row space of ``features`` (the loss sees the weights only through ``features @ w``, and
    any part outside that space only adds to the penalty), so with more columns than rows the problem is solved in the
    coordinates of that space (at most n unknowns): a bag of thousands of token types costs about what a hidden state
    does."""
    x = features.double()
    y = labels.double()
    basis = torch.eye(x.shape[1], dtype=x.dtype)
    if x.shape[1] > x.shape[0]:
        _, singular, basis = torch.linalg.svd(x, full_matrices=False)
        basis = basis[singular > singular.max() * max(x.shape) * torch.finfo(x.dtype).eps]
    design = torch.cat([x @ basis.T, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)
    penalty = torch.full((design.shape[1],), 2 * l2, dtype=x.dtype)
    penalty[-1] = 0.0
    weights = torch.zeros(design.shape[1], dtype=x.dtype)

    def objective(w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(design @ w, y) + 0.5 * (penalty * w * w).sum()

    loss = objective(weights)
    for _ in range(max_steps):
        probability = torch.sigmoid(design @ weights)
        gradient = design.T @ (probability - y) / y.numel() + penalty * weights
        if gradient.abs().max() < tolerance:
            break
        curvature = (design * (probability * (1 - probability)).unsqueeze(1)).T @ design / y.numel()
        step = torch.linalg.solve(curvature + torch.diag(penalty + 1e-12), gradient)
        scale = 1.0
        while (trial := objective(weights - scale * step)) > loss and scale > 1e-8:
            scale /= 2
        weights, loss = weights - scale * step, trial
    return torch.cat([basis.T @ weights[:-1], weights[-1:]])


def splits_for(labels: Sequence[int], seeds: int, test_fraction: float = 0.2,
               groups: Sequence[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``seeds`` train/test splits: group splits (documents kept apart) when ``groups`` is given, else stratified
    splits. The same arguments give the same splits, so representations probed on them are compared pairwise."""
    y = np.asarray(labels, dtype=np.int64)
    if groups is None:
        return [stratified_split(y, test_fraction, seed) for seed in range(seeds)]
    return [group_split(groups, y, test_fraction, seed) for seed in range(seeds)]


def split_scores(features: torch.Tensor, labels: Sequence[int],
                 splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Held-out accuracy and AUROC of the logistic probe on each split (features standardised on the train part)."""
    y = np.asarray(labels, dtype=np.int64)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("labels must contain both classes 0 and 1.")
    if features.shape[0] != y.size:
        raise ValueError(f"{features.shape[0]} feature rows but {y.size} labels.")
    features = features.double()
    accuracies, aurocs = [], []
    for train, test in splits:
        mean, std = features[train].mean(0), features[train].std(0).clamp_min(1e-8)
        x_train, x_test = (features[train] - mean) / std, (features[test] - mean) / std
        weights = fit_logistic(x_train, torch.as_tensor(y[train], dtype=features.dtype))
        scores = (torch.cat([x_test, torch.ones(len(test), 1, dtype=features.dtype)], 1) @ weights).numpy()
        accuracies.append(float(((scores > 0).astype(np.int64) == y[test]).mean()))
        aurocs.append(auroc(scores, y[test]))
    return np.array(accuracies), np.array(aurocs)


def probe_accuracy(features: torch.Tensor, labels: Sequence[int], seeds: int = 5, test_fraction: float = 0.2,
                   shuffle_labels: bool = False, groups: Sequence[str] | None = None) -> dict[str, float]:
    """Mean, std and 95% interval (:func:`~hf_geokd.probing.split.resampled_interval`) of held-out accuracy, and
    mean AUROC, over ``seeds`` splits (group splits when ``groups`` names each example's document)."""
    y = np.asarray(labels, dtype=np.int64)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("labels must contain both classes 0 and 1.")
    accuracies, aurocs = [], []
    for seed, split in enumerate(splits_for(y, seeds, test_fraction, groups)):
        target = np.random.default_rng(10_000 + seed).permutation(y) if shuffle_labels else y
        accuracy, area = split_scores(features, target, [split])
        accuracies.append(accuracy[0])
        aurocs.append(area[0])
    low, high = resampled_interval(accuracies, test_fraction, bounds=(0.0, 1.0))
    return {"accuracy": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "accuracy_low": low, "accuracy_high": high, "auroc": float(np.nanmean(aurocs))}


def run_probes(model, concepts: Mapping[str, Concept | GroupedConcept], layer: int, tokenizer, seeds: int = 5,
               random_model=None, batch_size: int = 16, max_length: int = 128) -> pd.DataFrame:
    """One row per concept: accuracy (mean, std and interval over seeds), AUROC, the shuffled-label control, and,
    when ``random_model`` is given (same architecture, random weights), its accuracy. A concept given with its
    documents (a :class:`~hf_geokd.probing.concepts.GroupedConcept`) is split by document."""
    rows = []
    for name, concept in concepts.items():
        texts, labels = concept[0], concept[1]
        groups = concept[2] if len(concept) > 2 else None
        features = pooled_hidden_states(model, tokenizer, texts, layer, batch_size, max_length)
        row = {"concept": name, "examples": len(texts), **probe_accuracy(features, labels, seeds, groups=groups)}
        row["shuffled_accuracy"] = probe_accuracy(features, labels, seeds, shuffle_labels=True,
                                                  groups=groups)["accuracy"]
        if random_model is not None:
            random_features = pooled_hidden_states(random_model, tokenizer, texts, layer, batch_size, max_length)
            row["random_init_accuracy"] = probe_accuracy(random_features, labels, seeds, groups=groups)["accuracy"]
        rows.append(row)
    return pd.DataFrame(rows)
