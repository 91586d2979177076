"""Distillation into narrow students: Pythia-shaped student configs, the fused chunked KL, the Trainer pair, floors."""

from .floor import LossFloorCallback
from .kl import chunked_distillation_loss, naive_distillation_loss
from .students import build_student, pythia_config, pythia_like_config, student_config
from .trainer import DistillationConfig, DistillationTrainer

__all__ = ["DistillationConfig", "DistillationTrainer", "LossFloorCallback", "build_student",
           "chunked_distillation_loss", "naive_distillation_loss", "pythia_config", "pythia_like_config",
           "student_config"]
