"""The probing stage of ``geokd demo`` and ``geokd zoo``: every student and the teacher probed for each concept
beside the controls (:func:`~hf_geokd.probing.probe_study`), and the teacher SAE's latents that carry each concept
with their survival per student (:func:`~hf_geokd.probing.latents.concept_latent_tables`).

Saved in ``<out>/probes/`` (``probes.csv``, ``concept_latents.csv``, ``concept_latents_detail.csv``,
``settings.json``) with ``<out>/probes.png``; an invocation whose settings match and whose students have not been
retrained since reuses the tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import GPTNeoXForCausalLM

from ..naming import student_label, student_name
from ..probing import GroupedConcept, probe_study
from ..probing.latents import concept_latent_tables, survival_sets
from ..probing.plots import plot_probe_study
from ..sae import load_sae
from ..sae.hooks import hook_module

PROBE_TABLES = ("probes.csv", "concept_latents.csv", "concept_latents_detail.csv")


@dataclass(frozen=True)
class ProbeSettings:
    """What a probing stage's tables depend on (compared with ``probes/settings.json`` to reuse them).

    Attributes:
        families: the offline concept families (:data:`hf_geokd.probing.sources.FAMILIES`; empty: the demo's two
            older concepts).
        per_class: examples per class and concept.
        seeds: document-grouped train/test splits per probe (the interval needs at least 2).
        margin: the carried rule's margin in accuracy over the bag-of-tokens and random-init controls.
        widths: the students probed (the control d_S = d_T included).
        layer: the probes read ``hidden_states[layer]`` (where the SAE reads: its block index + 1).
    """

    families: tuple[str, ...]
    per_class: int
    seeds: int
    margin: float
    widths: tuple[int, ...]
    layer: int

    def as_json(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def saved_probes(out: Path, settings: ProbeSettings) -> tuple[pd.DataFrame, ...] | None:
    """The probe tables of an earlier invocation in ``out``, when they were made with these settings and no student
    has been trained since (a student whose weights are gone, as in a clone of a zoo, keeps its tables)."""
    folder = out / "probes"
    written = folder / "settings.json"
    if not written.is_file() or json.loads(written.read_text()) != settings.as_json():
        return None
    models = [out / "students" / student_name(width) / "model.safetensors" for width in settings.widths]
    if any(path.is_file() and path.stat().st_mtime_ns > written.stat().st_mtime_ns for path in models):
        return None
    return tuple(pd.read_csv(folder / name) for name in PROBE_TABLES)


def probe_students(out: Path, settings: ProbeSettings, concepts: Callable[[], Mapping[str, GroupedConcept]],
                   tokenizer, teacher: GPTNeoXForCausalLM, sae_dir: Path, hook: str, survival_results: Sequence,
                   seed: int, batch_size: int, max_length: int, title: str) -> tuple[pd.DataFrame, ...]:
    """The probe study of every student in ``out/students`` and the teacher, beside a random-init teacher (seeded
    with ``seed``), and the concept-to-latent tables of the SAE in ``sae_dir`` (reading ``hook``), with the survival
    of each latent from ``survival_results``; saved, plotted and returned as (study, latent summary, latent
    detail). ``concepts`` is called only when the saved tables cannot be reused."""
    saved = saved_probes(out, settings)
    if saved is not None:
        return saved
    concepts = concepts()
    device = next(teacher.parameters()).device
    torch.manual_seed(seed)
    random_teacher = GPTNeoXForCausalLM(teacher.config).to(device).eval()
    models = {student_label(width): GPTNeoXForCausalLM.from_pretrained(out / "students" / student_name(width)
                                                                       ).to(device).eval()
              for width in settings.widths}
    study = probe_study({**models, "teacher": teacher}, concepts, settings.layer, tokenizer, random_teacher,
                        settings.seeds, margin=settings.margin, batch_size=batch_size, max_length=max_length)
    sae = load_sae(sae_dir, device=str(device))
    dtype = next(sae.parameters()).dtype
    survived, ranks = survival_sets(survival_results)
    summary, detail = concept_latent_tables(teacher, tokenizer, concepts, hook_module(teacher, hook),
                                            lambda hidden: sae.encode(hidden.to(dtype)), survived, ranks,
                                            margin=settings.margin, batch_size=batch_size, max_length=max_length)
    folder = out / "probes"
    folder.mkdir(parents=True, exist_ok=True)
    for table, name in zip((study, summary, detail), PROBE_TABLES):
        table.to_csv(folder / name, index=False)
    plot_probe_study(study, out / "probes.png", title)
    (folder / "settings.json").write_text(json.dumps(settings.as_json(), indent=1) + "\n")
    return study, summary, detail
