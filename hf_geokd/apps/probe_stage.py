"""The probing stage of ``geokd demo`` and ``geokd zoo``: every student and the teacher probed for each concept
beside the controls (:func:`~hf_geokd.probing.probe_study`), and the teacher SAE's latents that carry each concept
with their survival per student (:func:`~hf_geokd.probing.latents.concept_latent_tables`).

Saved in ``<out>/probes/`` (``probes.csv``, ``concept_latents.csv``, ``concept_latents_detail.csv``,
``settings.json``) with ``<out>/probes.png``. ``settings.json`` holds the settings and a fingerprint of every input
(the teacher's and the SAE's weights, each student's ``floor.json``, each survival result); an invocation whose
settings and fingerprint match reuses the tables, so a retrained student, teacher or SAE is probed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from transformers import GPTNeoXForCausalLM

from ..naming import student_label, student_name
from ..probing import GroupedConcept, probe_study
from ..probing.latents import concept_latent_tables, survival_sets
from ..probing.plots import plot_probe_study
from ..probing.study import random_init_model
from ..sae import load_sae
from ..sae.hooks import hook_module

PROBE_TABLES = ("probes.csv", "concept_latents.csv", "concept_latents_detail.csv")


@dataclass(frozen=True)
class ProbeSettings:
    """What a probing stage's tables depend on, besides the files it fingerprints.

    Attributes:
        families: the offline concept families probed (:data:`hf_geokd.probing.sources.FAMILIES`).
        per_class: examples per class and concept.
        seeds: document-grouped train/test splits per probe (the interval needs at least 2).
        margin: the carried rule's margin in accuracy over the bag-of-tokens and random-init controls.
        widths: the students probed (the control d_S = d_T included).
        layer: the probes read ``hidden_states[layer]`` (where the SAE reads: its block index + 1).
        seed: draws the concepts' examples and initialises the random-init teacher.
        max_length: tokens per text (longer texts are cut).
    """

    families: tuple[str, ...]
    per_class: int
    seeds: int
    margin: float
    widths: tuple[int, ...]
    layer: int
    seed: int
    max_length: int

    def as_json(self) -> dict:
        """The settings as ``settings.json`` stores them (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def inputs_fingerprint(out: Path, sae_dir: Path, widths: Sequence[int]) -> str:
    """sha256 over the files the tables are computed from: the teacher's weights, the SAE's weights, and each
    student's ``floor.json`` and survival result (rewritten whenever that student is trained or measured again).
    Each of these files is kept in version control by the zoo, so the fingerprint holds in a clone too."""
    files = [out / "teacher" / "model.safetensors", sae_dir / "sae_weights.safetensors"]
    for width in widths:
        files += [out / "students" / student_name(width) / "floor.json",
                  out / "survival" / student_label(width) / "feature_survival.json"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(out) if path.is_relative_to(out) else path.name).encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def saved_probes(out: Path, settings: ProbeSettings, fingerprint: str) -> tuple[pd.DataFrame, ...] | None:
    """The probe tables of an earlier invocation in ``out``, when they were made with these settings from the same
    inputs (``fingerprint``); None otherwise."""
    folder = out / "probes"
    written = folder / "settings.json"
    if not written.is_file():
        return None
    if json.loads(written.read_text()) != {**settings.as_json(), "inputs_sha256": fingerprint}:
        return None
    return tuple(pd.read_csv(folder / name) for name in PROBE_TABLES)


def _students(out: Path, widths: Sequence[int], device: torch.device) -> dict[str, Callable[[], GPTNeoXForCausalLM]]:
    """A loader of every student to probe (each student is loaded on ``device`` when its turn comes, one at a time);
    students without weights (a zoo's weights are not committed) are a clear error, before any probe runs."""
    folders = {width: out / "students" / student_name(width) for width in widths}
    missing = [width for width, folder in folders.items() if not (folder / "model.safetensors").is_file()]
    if missing:
        raise ValueError(f"probing needs the students' weights, and the students of width {missing} have none in "
                         f"{out / 'students'} (a zoo keeps their floors, not their weights, in version control). "
                         "Restore the probe settings that made the saved tables in probes/, or delete those "
                         "students' floor.json so that they are trained again.")
    return {student_label(width): partial(_load_student, folder, device) for width, folder in folders.items()}


def _load_student(folder: Path, device: torch.device) -> GPTNeoXForCausalLM:
    return GPTNeoXForCausalLM.from_pretrained(folder).to(device).eval()


def probe_students(out: Path, settings: ProbeSettings, make_concepts: Callable[[], Mapping[str, GroupedConcept]],
                   tokenizer, teacher: GPTNeoXForCausalLM, sae_dir: Path, hook: str, survival_results: Sequence, *,
                   batch_size: int, title: str) -> tuple[pd.DataFrame, ...]:
    """The probe study of every student in ``out/students`` and the teacher, beside a random-init teacher, and the
    concept-to-latent tables of the SAE in ``sae_dir`` (reading ``hook``), with the survival of each latent from
    ``survival_results``; saved, plotted and returned as (study, latent summary, latent detail).
    ``make_concepts`` is called only when the saved tables cannot be reused."""
    fingerprint = inputs_fingerprint(out, sae_dir, settings.widths)
    saved = saved_probes(out, settings, fingerprint)
    if saved is not None:
        return saved
    folder = out / "probes"
    (folder / "settings.json").unlink(missing_ok=True)  # tables half rewritten are never taken for finished ones
    device = next(teacher.parameters()).device
    students = _students(out, settings.widths, device)
    concepts = make_concepts()
    random_teacher = partial(random_init_model, teacher.config, settings.seed, device, teacher.dtype)
    study = probe_study({**students, "teacher": teacher}, concepts, settings.layer, tokenizer, random_teacher,
                        settings.seeds, margin=settings.margin, batch_size=batch_size,
                        max_length=settings.max_length)
    sae = load_sae(sae_dir, device=str(device))
    dtype = next(sae.parameters()).dtype
    survived, ranks = survival_sets(survival_results)
    summary, detail = concept_latent_tables(teacher, tokenizer, concepts, hook_module(teacher, hook),
                                            lambda hidden: sae.encode(hidden.to(dtype)), survived, ranks,
                                            margin=settings.margin, batch_size=batch_size,
                                            max_length=settings.max_length)
    folder.mkdir(parents=True, exist_ok=True)
    for table, name in zip((study, summary, detail), PROBE_TABLES):
        table.to_csv(folder / name, index=False)
    plot_probe_study(study, out / "probes.png", title)
    (folder / "settings.json").write_text(json.dumps({**settings.as_json(), "inputs_sha256": fingerprint},
                                                     indent=1) + "\n")
    return study, summary, detail
