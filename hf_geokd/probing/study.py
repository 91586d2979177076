"""A probing study that can fail: each concept probed on a teacher and its students beside the controls, and the rule
that says whether a model carries it.

For each concept, on the same ``seeds`` group splits (documents kept apart), held-out accuracy of a logistic probe on

- ``bag_of_tokens``: the token counts of each text alone (:mod:`.controls`);
- ``random_init``: the pooled hidden states of a randomly initialised copy of the teacher;
- each model: its pooled hidden states (layer ``layer``).

Beside each accuracy: its 95% interval (corrected resampled t, :func:`.split.resampled_interval`), the shuffled-label
accuracy, the control-task accuracy (Hewitt and Liang, 2019) and the selectivity = accuracy - control accuracy.

**Rule.** A model *carries* a concept when, on the same splits, its accuracy beats both the bag-of-tokens probe and the
random-init teacher's by more than ``margin``, with the lower end of the 95% interval of each paired difference
(accuracy_model - accuracy_baseline, per split) above ``margin``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForCausalLM

from .concepts import GroupedConcept
from .controls import control_task_labels, token_counts, token_ids
from .probes import pooled_hidden_states, split_scores, splits_for
from .sources import FAMILIES, NO_OFFLINE_SOURCE
from .split import resampled_interval

BAG_OF_TOKENS = "bag_of_tokens"
RANDOM_INIT = "random_init"
BASELINES = (BAG_OF_TOKENS, RANDOM_INIT)
MIN_PER_CLASS = 5  # examples per class below which a probe's split has nothing to test on


def check_probe_settings(families: Sequence[str], per_class: int, seeds: int, margin: float, where: str = "") -> None:
    """The settings of a probing study, checked before anything is trained: ``families`` a list of distinct names of
    :data:`~hf_geokd.probing.sources.FAMILIES`, ``per_class`` an integer >= 5, ``seeds`` an integer >= 2 (an
    interval needs two splits), ``margin`` in [0, 1). Each error names the key (prefixed by ``where``) and the fix."""
    where = f"{where}: " if where else ""
    if not isinstance(families, (list, tuple)) or not all(isinstance(name, str) for name in families):
        raise ValueError(f"{where}probe_families must be a list of family names, e.g. [code, is_question], got "
                         f"{families!r}; choose among {sorted(FAMILIES)}.")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        reasons = "".join(f" ({name}: {NO_OFFLINE_SOURCE[name]})" for name in unknown if name in NO_OFFLINE_SOURCE)
        raise ValueError(f"{where}probe_families {unknown}: no such offline concept family{reasons}; choose among "
                         f"{sorted(FAMILIES)}.")
    if len(set(families)) != len(families):
        raise ValueError(f"{where}probe_families {list(families)} names a family twice; give each once.")
    for key, value, low in (("probe_per_class", per_class, MIN_PER_CLASS), ("probe_seeds", seeds, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{where}{key} must be an integer >= {low}, got {value!r}.")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise ValueError(f"{where}probe_margin must be an accuracy margin in [0, 1), e.g. 0.02, got {margin!r}.")


def _representation_row(features: torch.Tensor, concept: GroupedConcept, control: np.ndarray, seeds: int,
                        test_fraction: float) -> tuple[dict, np.ndarray]:
    splits = splits_for(concept.labels, seeds, test_fraction, concept.groups)
    accuracies, aurocs = split_scores(features, concept.labels, splits)
    shuffled = np.random.default_rng(10_000).permutation(np.asarray(concept.labels))
    control_splits = splits_for(control, seeds, test_fraction, concept.groups)
    control_accuracy = split_scores(features, control, control_splits)[0].mean()
    low, high = resampled_interval(accuracies, test_fraction, bounds=(0.0, 1.0))
    row = {"accuracy": accuracies.mean(), "accuracy_low": low, "accuracy_high": high, "auroc": np.nanmean(aurocs),
           "shuffled_accuracy": split_scores(features, shuffled, splits)[0].mean(),
           "control_accuracy": control_accuracy, "selectivity": accuracies.mean() - control_accuracy}
    return row, accuracies


ModelOrLoader = torch.nn.Module | Callable[[], torch.nn.Module]


def random_init_model(config, seed: int, device: str | torch.device | None = None,
                      dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The ``random_init`` baseline: the teacher's architecture (its ``config``) with weights drawn from ``seed``
    alone, whatever drew from torch's random state before."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).to(device=device, dtype=dtype).eval()


def probe_study(models: Mapping[str, ModelOrLoader], concepts: Mapping[str, GroupedConcept], layer: int, tokenizer,
                random_model: ModelOrLoader, seeds: int = 5, test_fraction: float = 0.2, margin: float = 0.02,
                batch_size: int = 16, max_length: int = 128, max_types: int = 5000) -> pd.DataFrame:
    """One row per (representation, concept): the baselines ``bag_of_tokens`` and ``random_init``, then every model
    of ``models`` (name -> model, in the order given), with the columns of the module docstring; model rows add
    ``vs_bag_of_tokens`` / ``vs_random_init`` (mean paired difference) with their interval's lower end (``_low``)
    and ``carried`` (the rule).

    A model (or ``random_model``) may be given as a loader, a function of no argument that returns it: it is then
    called once, probed on every concept, and let go before the next one loads, so that a width sweep of large
    students never holds more than one of them at a time."""
    if not models:
        raise ValueError("models is empty: give the teacher (and students) to probe, name -> model.")
    clash = set(models) & set(BASELINES)
    if clash:
        raise ValueError(f"models may not be named {sorted(clash)}: those names are the baselines' rows.")
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 (an interval needs two splits), got {seeds}.")
    for name, concept in concepts.items():
        if not isinstance(concept, GroupedConcept):
            raise ValueError(f"concept {name!r} must be a GroupedConcept (texts, labels, groups): the study splits "
                             "by document; build it with grouped_concept or wheel_concepts.")
    ids = {name: token_ids(tokenizer, concept.texts, max_length) for name, concept in concepts.items()}
    controls = {name: control_task_labels(ids[name]) for name in concepts}
    rows: dict[tuple[str, str], dict] = {}
    per_split: dict[tuple[str, str], np.ndarray] = {}

    def probe(model_name: str, model: torch.nn.Module | None) -> None:
        for name, concept in concepts.items():
            features = (token_counts(ids[name], max_types)[0] if model is None else
                        pooled_hidden_states(model, tokenizer, concept.texts, layer, batch_size, max_length))
            row, per_split[model_name, name] = _representation_row(features, concept, controls[name], seeds,
                                                                   test_fraction)
            if model_name not in BASELINES:
                carried = True
                for baseline in BASELINES:
                    difference = per_split[model_name, name] - per_split[baseline, name]
                    low = resampled_interval(difference, test_fraction)[0]
                    row[f"vs_{baseline}"], row[f"vs_{baseline}_low"] = difference.mean(), low
                    carried &= bool(low > margin)
                row["carried"] = carried
            rows[model_name, name] = {"model": model_name, "concept": name, "examples": len(concept.texts),
                                      "documents": len(set(concept.groups)), **row}

    probe(BAG_OF_TOKENS, None)
    for model_name, model in {RANDOM_INIT: random_model, **models}.items():
        if isinstance(model, torch.nn.Module):
            probe(model_name, model)
        else:
            probe(model_name, model())
            gc.collect()  # the loaded model is let go here, before the next loads, even one that holds a cycle
    table = pd.DataFrame([rows[model_name, name] for name in concepts for model_name in (*BASELINES, *models)])
    table.attrs["margin"] = margin
    return table


def carried_concepts(table: pd.DataFrame) -> dict[str, list[str]]:
    """Model -> the concepts it carries under the rule (from :func:`probe_study`'s table)."""
    models = table[~table["model"].isin(BASELINES)]
    return {model: sorted(group.loc[group["carried"].astype(bool), "concept"])
            for model, group in models.groupby("model", sort=False)}
