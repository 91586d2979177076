"""Linear probes for binary concepts on pooled hidden states (paper section 7): offline concept families with their
documents, controls (bag of tokens, random-init teacher, control task), the carried rule, and the SAE latents that
carry each concept."""

from .callback import ProbeCallback
from .concepts import (
           Concept,
           GroupedConcept,
           balanced,
           grouped_concept,
           offline_concepts,
           paper_concepts,
)
from .latents import ConceptLatents, concept_latents, pooled_latent_activations
from .probes import probe_accuracy, run_probes
from .sources import wheel_concepts
from .split import group_split
from .study import carried_concepts, probe_study

__all__ = ["Concept", "ConceptLatents", "GroupedConcept", "ProbeCallback", "balanced", "carried_concepts",
           "concept_latents", "group_split", "grouped_concept", "offline_concepts", "paper_concepts",
           "pooled_latent_activations", "probe_accuracy", "probe_study", "run_probes", "wheel_concepts"]
