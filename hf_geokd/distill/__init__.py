"""Distillation into narrow students: Pythia-shaped student configs, the fused chunked KL, the Trainer pair, floors,
and width sweeps in one run (several students, one teacher forward per batch)."""

from .floor import FloorEstimate, LossFloorCallback, estimate_floor, steps_to_converge
from .kl import chunked_distillation_loss, multi_student_distillation_loss, naive_distillation_loss
from .multi import MultiStudentDistillationTrainer, StudentFloorsCallback, StudentGroup
from .students import build_student, pythia_config, pythia_like_config, student_config
from .trainer import DistillationConfig, DistillationTrainer

__all__ = [
    "DistillationConfig", "DistillationTrainer", "FloorEstimate", "LossFloorCallback",
    "MultiStudentDistillationTrainer", "StudentFloorsCallback", "StudentGroup", "build_student",
    "chunked_distillation_loss", "estimate_floor", "multi_student_distillation_loss", "naive_distillation_loss",
    "pythia_config", "pythia_like_config", "steps_to_converge", "student_config",
]
