"""hf-geokd: geometric limits of knowledge distillation (arXiv 2604.04037) for the Hugging Face ecosystem.

Layout (one import rule, checked by tests/core/test_layout.py): the core modules at this level (capacity,
calibration, stats, floors, predictor, paper, checks, tables, cards, naming, ...) import no subpackage, except the
one deferred entry point ``FloorPredictor.from_sae`` into ``hf_geokd.sae`` (which never imports the predictor: no
import circle, counting imports inside functions); the subpackages (data, sae, distill, probing, toy, reporting,
...) import the core; ``apps`` (CLI, demo, zoo, corpus, recipe parsing) imports everything.

The core imports eagerly; names from subpackages that need transformers, accelerate or sae-lens load on first use,
so that ``geokd predict`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .ablation_floors import AblationFloors
from .calibration import PowerLawFit, TwoComponentFit, fit_power_law, fit_two_component
from .capacity import (
    CAPACITY_KINDS,
    CapacityWarning,
    FittedCapacity,
    capacity,
    critical_width,
    kept_features,
    predicted_floor,
)
from .predictor import FloorPredictor
from .soft_floor import SHIPPED_SOFT_FLOOR, SoftFloor, SoftFloorFit, fit_soft_floor
from .stats import FeatureStats

__version__ = "0.2.0"

if TYPE_CHECKING:  # what the lazy names below resolve to, for IDEs and type checkers
    from . import toy
    from .distill import (
        DistillationConfig,
        DistillationTrainer,
        LossFloorCallback,
        MultiStudentDistillationTrainer,
        build_student,
        estimate_floor,
        pythia_config,
        student_config,
    )
    from .probing import ProbeCallback, run_probes
    from .sae import (
        SAETrainingConfig,
        load_sae,
        measure_ablation_floors,
        measure_feature_stats,
        push_sae_to_hub,
        train_sae,
    )
    from .survival import FeatureSurvival, FeatureSurvivalConfig, measure_feature_survival
    from .validate import load_observations, score_predictors

_LAZY = {
    "toy": ("hf_geokd.toy", None),
    "pythia_config": ("hf_geokd.distill", "pythia_config"),
    "student_config": ("hf_geokd.distill", "student_config"),
    "build_student": ("hf_geokd.distill", "build_student"),
    "DistillationConfig": ("hf_geokd.distill", "DistillationConfig"),
    "DistillationTrainer": ("hf_geokd.distill", "DistillationTrainer"),
    "LossFloorCallback": ("hf_geokd.distill", "LossFloorCallback"),
    "MultiStudentDistillationTrainer": ("hf_geokd.distill", "MultiStudentDistillationTrainer"),
    "estimate_floor": ("hf_geokd.distill", "estimate_floor"),
    "load_observations": ("hf_geokd.validate", "load_observations"),
    "score_predictors": ("hf_geokd.validate", "score_predictors"),
    "train_sae": ("hf_geokd.sae", "train_sae"),
    "SAETrainingConfig": ("hf_geokd.sae", "SAETrainingConfig"),
    "measure_ablation_floors": ("hf_geokd.sae", "measure_ablation_floors"),
    "load_sae": ("hf_geokd.sae", "load_sae"),
    "measure_feature_stats": ("hf_geokd.sae", "measure_feature_stats"),
    "push_sae_to_hub": ("hf_geokd.sae", "push_sae_to_hub"),
    "run_probes": ("hf_geokd.probing", "run_probes"),
    "ProbeCallback": ("hf_geokd.probing", "ProbeCallback"),
    "measure_feature_survival": ("hf_geokd.survival", "measure_feature_survival"),
    "FeatureSurvival": ("hf_geokd.survival", "FeatureSurvival"),
    "FeatureSurvivalConfig": ("hf_geokd.survival", "FeatureSurvivalConfig"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hf_geokd' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AblationFloors", "FeatureSurvivalConfig", "SAETrainingConfig", "measure_ablation_floors",
    "SHIPPED_SOFT_FLOOR", "MultiStudentDistillationTrainer", "SoftFloor", "SoftFloorFit", "estimate_floor",
    "fit_soft_floor", "load_observations", "score_predictors",
    "CAPACITY_KINDS", "CapacityWarning", "DistillationConfig", "DistillationTrainer", "FeatureStats",
    "FeatureSurvival", "FittedCapacity", "FloorPredictor", "LossFloorCallback", "PowerLawFit", "ProbeCallback",
    "TwoComponentFit", "build_student", "capacity", "critical_width", "fit_power_law", "fit_two_component",
    "kept_features", "load_sae", "measure_feature_stats", "measure_feature_survival", "predicted_floor",
    "push_sae_to_hub", "pythia_config", "run_probes", "student_config", "toy", "train_sae",
]
