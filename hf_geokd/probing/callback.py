"""Probing during training: a ``TrainerCallback`` that probes the model at every evaluation."""

from __future__ import annotations

from collections.abc import Mapping

from transformers import TrainerCallback

from .concepts import Concept
from .probes import run_probes


class ProbeCallback(TrainerCallback):
    """Probes the model at every evaluation (e.g. of a ``DistillationTrainer``) and adds ``eval_probe_<concept>``
    (accuracy) to the evaluation metrics; ``history`` keeps one row per (step, concept)."""

    def __init__(self, concepts: Mapping[str, Concept], layer: int, tokenizer, seeds: int = 3) -> None:
        self.concepts, self.layer, self.tokenizer, self.seeds = concepts, layer, tokenizer, seeds
        self.history: list[dict] = []

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if model is None or not state.is_world_process_zero:
            return control
        table = run_probes(model, self.concepts, self.layer, self.tokenizer, seeds=self.seeds)
        for row in table.itertuples():
            if metrics is not None:
                metrics[f"eval_probe_{row.concept}"] = row.accuracy
            self.history.append({"step": state.global_step, "concept": row.concept, "accuracy": row.accuracy})
        return control
