"""Held-out scoring of floor predictors: measured floors, predictors, protocols, metrics, reports."""

from .harness import ValidationResults, floor_accuracy_module, score_predictors
from .metrics import floor_accuracy
from .observations import Observations, load_observations
from .report import write_validation_report

__all__ = ["Observations", "ValidationResults", "floor_accuracy", "floor_accuracy_module", "load_observations",
           "score_predictors", "write_validation_report"]
