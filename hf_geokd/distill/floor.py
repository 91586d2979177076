"""The loss floor of a training run, measured from its evaluations."""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class LossFloorCallback(TrainerCallback, ExportableState):
    """The floor of a run: the mean of ``metric`` over the final ``fraction`` of evaluations (paper Appendix E).

    After each evaluation the running floor is written into the metrics as ``eval_loss_floor``; the evaluations
    are kept in the trainer state's checkpointed callbacks, so a resumed run keeps counting.
    """

    def __init__(self, metric: str = "eval_loss", fraction: float = 0.1, evaluations: list[float] | None = None):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction}.")
        self.metric, self.fraction = metric, fraction
        self.evaluations: list[float] = list(evaluations or [])

    @property
    def floor(self) -> float | None:
        if not self.evaluations:
            return None
        count = max(1, round(self.fraction * len(self.evaluations)))
        tail = self.evaluations[-count:]
        return sum(tail) / len(tail)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and self.metric in metrics:
            self.evaluations.append(float(metrics[self.metric]))
            metrics["eval_loss_floor"] = self.floor
        return control

    def state(self) -> dict:
        return {"args": {"metric": self.metric, "fraction": self.fraction, "evaluations": self.evaluations},
                "attributes": {}}
