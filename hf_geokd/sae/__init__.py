"""Sparse autoencoders on a teacher: load any layout, measure feature statistics, train with sae-lens, share."""

from .hooks import hook_module, resolve_model, sae_hook_name
from .hub import push_sae_to_hub
from .load import detect_format, load_sae
from .measure import measure_feature_stats
from .train import train_sae

__all__ = ["detect_format", "hook_module", "load_sae", "measure_feature_stats", "push_sae_to_hub", "resolve_model",
           "sae_hook_name", "train_sae"]
