"""hf-geokd: geometric limits of knowledge distillation (arXiv 2604.04037) for the Hugging Face ecosystem.

The theory (capacity, floors, fits, predictor) imports eagerly; the parts that need transformers, accelerate or
sae-lens import on first use, so that ``geokd predict`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .calibration import PowerLawFit, TwoComponentFit, fit_power_law, fit_two_component
from .capacity import CAPACITY_KINDS, CapacityWarning, FittedCapacity, capacity, critical_width, kept_features, predicted_floor
from .predictor import FloorPredictor
from .stats import FeatureStats

__version__ = "0.1.0"

_LAZY = {
    "toy": ("hf_geokd.toy", None),
    "pythia_config": ("hf_geokd.students", "pythia_config"),
    "student_config": ("hf_geokd.students", "student_config"),
    "build_student": ("hf_geokd.students", "build_student"),
    "DistillationConfig": ("hf_geokd.distill", "DistillationConfig"),
    "DistillationTrainer": ("hf_geokd.distill", "DistillationTrainer"),
    "LossFloorCallback": ("hf_geokd.distill", "LossFloorCallback"),
    "train_sae": ("hf_geokd.sae", "train_sae"),
    "load_sae": ("hf_geokd.sae", "load_sae"),
    "measure_feature_stats": ("hf_geokd.measure", "measure_feature_stats"),
    "push_sae_to_hub": ("hf_geokd.hub", "push_sae_to_hub"),
    "run_probes": ("hf_geokd.probing", "run_probes"),
    "ProbeCallback": ("hf_geokd.probing", "ProbeCallback"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hf_geokd' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


__all__ = [
    "CAPACITY_KINDS", "CapacityWarning", "FeatureStats", "FittedCapacity", "FloorPredictor", "PowerLawFit",
    "TwoComponentFit", "capacity", "critical_width", "fit_power_law", "fit_two_component", "kept_features",
    "predicted_floor", *_LAZY,
]
