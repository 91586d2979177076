"""Controls that separate learned features from lexical ones.

- **Bag of tokens**: a linear probe on the token counts of each text alone (no model). A concept that this probe
  already finds is lexical; a model's probe shows a learned feature only by beating it.
- **Control task** (Hewitt and Liang, 2019, "Designing and Interpreting Probes with Control Tasks"): every token
  type t gets a random label c(t) in {0, 1} (fixed by the seed and t alone), and a text's control label is a
  function of its token types only:

      s(x) = (1/|x|) sum_{tokens t of x} c(t),   control(x) = [s(x) > median_x s(x)].

  The labels mean nothing, so a probe can only score on them by memorising token identities. The probe's
  *selectivity* = concept accuracy - control accuracy: high when the representation makes the concept easy but not
  arbitrary token-level labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def token_ids(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """The token ids the model sees for each text (same truncation as the probes)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def token_counts(ids: Sequence[Sequence[int]], max_types: int = 5000) -> tuple[torch.Tensor, np.ndarray]:
    """[len(ids), V] float64 counts of the ``max_types`` token types found in the most texts (ties: lower id first),
    and those types. The choice of types uses no label."""
    if not ids or any(len(row) == 0 for row in ids):
        raise ValueError("ids must hold at least one token per text: drop empty texts before probing.")
    if max_types < 1:
        raise ValueError(f"max_types must be positive, got {max_types}.")
    document_frequency: dict[int, int] = {}
    for row in ids:
        for token in set(row):
            document_frequency[token] = document_frequency.get(token, 0) + 1
    types = np.array(sorted(document_frequency, key=lambda t: (-document_frequency[t], t))[:max_types])
    column = {int(t): j for j, t in enumerate(types)}
    counts = torch.zeros(len(ids), types.size, dtype=torch.float64)
    for i, row in enumerate(ids):
        for token in row:
            j = column.get(int(token))
            if j is not None:
                counts[i, j] += 1
    return counts, types


def type_labels(types: Sequence[int], seed: int = 0) -> np.ndarray:
    """c(t) in {0, 1} for each token type: a fair coin seeded by (seed, t) alone, so a type keeps its label whatever
    other types or texts are present."""
    return np.array([int(np.random.default_rng((seed, int(t))).integers(2)) for t in types], dtype=np.int64)


def control_task_labels(ids: Sequence[Sequence[int]], seed: int = 0) -> np.ndarray:
    """control(x) = [s(x) > median s], s(x) the share of the tokens of x whose type's label c(t) is 1 (see the
    module docstring).

    Raises:
        ValueError: a text without tokens, or labels that end up all equal (texts too alike: more or longer texts).
    """
    if not ids or any(len(row) == 0 for row in ids):
        raise ValueError("ids must hold at least one token per text: drop empty texts before probing.")
    types = sorted({int(t) for row in ids for t in row})
    label = dict(zip(types, type_labels(types, seed)))
    share = np.array([np.mean([label[int(t)] for t in row]) for row in ids])
    control = (share > np.median(share)).astype(np.int64)
    if control.min() == control.max():
        raise ValueError("the control task gave every text the same label: give more, or more varied, texts.")
    return control
