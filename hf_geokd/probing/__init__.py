"""Linear probes for binary concepts on pooled hidden states (paper section 7), their concepts and callback."""

from .callback import ProbeCallback
from .concepts import Concept, balanced, offline_concepts, paper_concepts
from .probes import probe_accuracy, run_probes

__all__ = ["Concept", "ProbeCallback", "balanced", "offline_concepts", "paper_concepts", "probe_accuracy", "run_probes"]
