"""Sparse autoencoders on a teacher: load any layout, measure feature statistics, train with sae-lens, share, and
ablate (floors in nats without a student)."""

from .ablation import measure_ablation_floors
from .hooks import hook_module, resolve_model, sae_hook_name
from .hub import push_sae_to_hub
from .load import detect_format, load_sae, load_sae_and_sparsity
from .measure import measure_feature_stats
from .source import sae_feature_stats
from .sparsity import stats_from_sparsity
from .train import SAETrainingConfig, train_sae

__all__ = ["SAETrainingConfig", "detect_format", "hook_module", "load_sae", "load_sae_and_sparsity",
           "measure_ablation_floors", "measure_feature_stats", "push_sae_to_hub", "resolve_model",
           "sae_feature_stats", "sae_hook_name", "stats_from_sparsity", "train_sae"]
