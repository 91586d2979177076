"""A teacher of the zoo: one YAML entry, every setting of its run (corpus, teacher, SAEs, students), checked.

The shipped zoo (``shipped.yaml`` beside this module) varies every axis that the theory says should not matter and
a sceptic says might: teacher width and depth, vocabulary size, training length, SAE architecture (top-k, ReLU + L1,
batch-top-k), SAE size and k, the hooked layer, and the corpus (prose and source code). A user adds a teacher by
adding an entry; ``defaults`` apply to every entry that does not set a key itself.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ...data.corpora import CORPORA
from ...probing.sources import FAMILIES
from ...probing.study import check_probe_settings

ARCHITECTURES = ("topk", "batchtopk", "standard")  # the top-k family takes sae_k; standard (ReLU + L1) takes sae_l1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PRESETS = ("shipped", "smoke")
WIDTH_FACTORS = (0.125, 0.2, 0.33, 0.5, 0.7, 1.0, 1.4)  # student widths as multiples of d*, when not given
# settings of the exploratory probing study: not registered, so they may change after a teacher is registered
EXPLORATORY_KEYS = ("probe_families", "probe_per_class", "probe_seeds", "probe_margin")


@dataclass
class ZooTeacher:
    """One teacher of the zoo and how everything of its run is made.

    Attributes:
        name: the teacher's folder name in the zoo (letters, digits, ``-``, ``_``, ``.``).
        corpus: an embedded corpus (``wiki`` or ``code``: see :mod:`hf_geokd.data.corpora`).
        vocab_size, block_size: the byte-level BPE trained on the corpus, and the tokens per training block.
        hidden, layers, heads, teacher_steps, batch_size: the Pythia-shaped teacher and its training (AdamW, lr 3e-3,
            cosine, batch_size blocks per step).
        sae_layer: the SAE reads ``gpt_neox.layers.<sae_layer>`` (the residual stream after that block).
        sae_architecture, sae_expansion, sae_k, sae_l1: the SAE (top-k family: k; ``standard`` ReLU + L1: the L1
            coefficient), with ``sae_expansion`` x hidden latents, trained on ``sae_tokens`` tokens.
        sae_seeds: one SAE per seed (the spread of every prediction over SAE seeds).
        stats_tokens, ablation_tokens: held-out tokens for each SAE's statistics and its ablation floors.
        widths: student widths; empty: chosen from d* (dt_signed, median over the SAE seeds) in the predict stage,
            some below and some above it. The control d_S = d_T is always added.
        calibration_students: how many of the narrowest students calibrate Eq. 3 (trained in the predict stage).
        student_max_steps: the students' distillation and convergence rule, with ``student_lr``, ``eval_every``,
            ``checkpoint_every``, ``eval_blocks``, ``floor_tolerance``, ``floor_absolute_tolerance`` and
            ``temperature`` (:class:`hf_geokd.apps.pipeline.StudentSettings`).
        survival_tokens: tokens of each student's feature-survival measurement (with the first seed's SAE).
        probe_families, probe_per_class, probe_seeds, probe_margin: the score stage's probing study (exploratory,
            not registered): the offline concept families (:data:`hf_geokd.probing.sources.FAMILIES`; empty: no
            probing), examples per class, document-grouped splits, and the carried rule's margin
            (:class:`hf_geokd.apps.probe_stage.ProbeSettings`), with the first seed's SAE for the concept latents.
        seed: the teacher's and the students' seed.
    """

    name: str
    corpus: str = "wiki"
    vocab_size: int = 4096
    block_size: int = 128
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    teacher_steps: int = 1600
    batch_size: int = 16
    sae_layer: int = 2
    sae_architecture: str = "topk"
    sae_expansion: int = 8
    sae_k: int | None = 16
    sae_l1: float | None = None
    sae_tokens: int = 1_000_000
    sae_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    stats_tokens: int = 50_000
    ablation_tokens: int = 20_000
    widths: list[int] = field(default_factory=list)
    calibration_students: int = 2
    student_max_steps: int = 16_000
    student_lr: float = 3e-3
    eval_every: int = 40
    checkpoint_every: int = 400
    eval_blocks: int = 48
    floor_tolerance: float = 0.01
    floor_absolute_tolerance: float = 0.01
    temperature: float = 2.0
    survival_tokens: int = 20_000
    probe_families: list[str] = field(default_factory=lambda: list(FAMILIES))
    probe_per_class: int = 300
    probe_seeds: int = 5
    probe_margin: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        where = f"zoo teacher {self.name!r}"
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise ValueError(f"zoo teacher name {self.name!r} must be a folder name (letters, digits, -, _, .).")
        for key, example in (("widths", "[8, 12, 24]"), ("sae_seeds", "[0, 1, 2]"),
                             ("probe_families", "[code, is_question]")):
            if not isinstance(getattr(self, key), list):
                raise ValueError(f"{where}: {key} must be a list, e.g. {example}, got {getattr(self, key)!r}.")
        if not isinstance(self.corpus, str) or self.corpus not in CORPORA:
            raise ValueError(f"{where}: corpus {self.corpus!r} is not an embedded corpus; choose one of "
                             f"{sorted(CORPORA)}.")
        if self.sae_architecture not in ARCHITECTURES:
            raise ValueError(f"{where}: sae_architecture {self.sae_architecture!r} is not one of {ARCHITECTURES}.")
        for key in ("vocab_size", "block_size", "hidden", "layers", "heads", "teacher_steps", "batch_size",
                    "sae_expansion", "sae_tokens", "stats_tokens", "ablation_tokens", "calibration_students",
                    "student_max_steps", "eval_every", "checkpoint_every", "eval_blocks", "survival_tokens"):
            _positive_int(getattr(self, key), key, where)
        if self.hidden % self.heads:
            raise ValueError(f"{where}: hidden = {self.hidden} is not a multiple of heads = {self.heads}.")
        _integer(self.seed, "seed", where)
        _integer(self.sae_layer, "sae_layer", where)
        if not 0 <= self.sae_layer < self.layers:
            raise ValueError(f"{where}: sae_layer must be a block index in [0, layers = {self.layers}), got "
                             f"{self.sae_layer!r}.")
        if self.sae_architecture == "standard":
            if self.sae_k is not None or not _positive_number(self.sae_l1):
                raise ValueError(f"{where}: a standard (ReLU + L1) SAE takes sae_l1 > 0 and no sae_k (set sae_k: "
                                 "null).")
        elif self.sae_l1 is not None or not (isinstance(self.sae_k, int) and 0 < self.sae_k
                                             <= self.sae_expansion * self.hidden):
            raise ValueError(f"{where}: a {self.sae_architecture} SAE takes sae_k in [1, d_sae = "
                             f"{self.sae_expansion * self.hidden}] and no sae_l1.")
        if not self.sae_seeds or len(set(self.sae_seeds)) != len(self.sae_seeds) or not all(
                isinstance(seed, int) and not isinstance(seed, bool) for seed in self.sae_seeds):
            raise ValueError(f"{where}: sae_seeds must be distinct integers, got {self.sae_seeds!r}.")
        for width in self.widths:
            _positive_int(width, "widths", where)
        if self.widths != sorted(set(self.widths)):
            raise ValueError(f"{where}: widths must be distinct and in increasing order (the narrowest calibrate), "
                             f"got {self.widths}.")
        for width in self.widths:
            if width >= self.hidden:
                raise ValueError(f"{where}: width {width} is not narrower than the teacher ({self.hidden}); the "
                                 "control d_S = d_T is added by itself.")
        if self.widths and len(self.widths) <= self.calibration_students:
            raise ValueError(f"{where}: {len(self.widths)} widths leave nothing to predict after "
                             f"{self.calibration_students} calibration students.")
        check_probe_settings(self.probe_families, self.probe_per_class, self.probe_seeds, self.probe_margin, where)
        for key in ("student_lr", "temperature", "floor_tolerance"):
            if not _positive_number(getattr(self, key)):
                raise ValueError(f"{where}: {key} must be a finite number > 0, got {getattr(self, key)!r}.")
        if not (_positive_number(self.floor_absolute_tolerance) or self.floor_absolute_tolerance == 0):
            raise ValueError(f"{where}: floor_absolute_tolerance must be >= 0, got {self.floor_absolute_tolerance!r}.")

    @property
    def hook_name(self) -> str:
        return f"gpt_neox.layers.{self.sae_layer}"

    def registered_settings(self) -> dict[str, Any]:
        """Every setting a registration fixes: all keys but :data:`EXPLORATORY_KEYS`."""
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in EXPLORATORY_KEYS}

    def sae_settings(self) -> dict[str, Any]:
        """The keyword settings of :func:`hf_geokd.sae.train_sae` (without the seed)."""
        settings = {"architecture": self.sae_architecture, "expansion_factor": self.sae_expansion,
                    "training_tokens": self.sae_tokens, "train_batch_size_tokens": 2048}
        if self.sae_architecture == "standard":
            settings["l1_coefficient"] = self.sae_l1
        else:
            settings["k"] = self.sae_k
        return settings


def _positive_int(value, key: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {key} must be a positive integer, got {value!r}.")


def _integer(value, key: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}.")


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def student_widths(d_star: float, hidden: int) -> list[int]:
    """Student widths around d* when a teacher gives none: d* x :data:`WIDTH_FACTORS` rounded to a multiple of 4,
    narrower than the teacher; topped up with a geometric grid below the teacher when d* leaves fewer than six."""
    widths = {max(4, 4 * round(d_star * factor / 4)) for factor in WIDTH_FACTORS}
    widths = {width for width in widths if width < hidden}
    grid = [4 * round(value / 4) for value in
            [4 * (0.75 * hidden / 4) ** (step / 7) for step in range(8)]]
    for width in grid:
        if len(widths) >= 6:
            break
        if 4 <= width < hidden:
            widths.add(width)
    return sorted(widths)


def select_teachers(teachers: list[ZooTeacher], only: list[str] | None) -> list[ZooTeacher]:
    """The teachers named in ``only`` (all when None or empty), in the zoo's order; a name not in the zoo, or a bare
    string, is an error."""
    if not teachers or not all(isinstance(teacher, ZooTeacher) for teacher in teachers):
        raise ValueError("teachers must be a non-empty list of ZooTeacher (hf_geokd.apps.zoo.load_zoo reads a YAML "
                         "file into one).")
    if isinstance(only, str):
        raise ValueError(f"only must be a list of teacher names, got the string {only!r}: pass [{only!r}].")
    names = [teacher.name for teacher in teachers]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"--only {unknown}: no such teacher in this zoo ({names}).")
    return [teacher for teacher in teachers if not only or teacher.name in only]


def load_zoo(source: str | Path | None = None, preset: str = "shipped") -> list[ZooTeacher]:
    """The teachers of a zoo YAML file (``source``), or of a preset shipped with hf-geokd (``shipped``: the
    registered zoo; ``smoke``: two tiny teachers for tests). Each entry is ``defaults`` updated with its own keys;
    an unknown key, a duplicate name or a bad value is an error naming the teacher, the key and the fix."""
    if source is None:
        if preset not in PRESETS:
            raise ValueError(f"unknown zoo preset {preset!r}: choose from {PRESETS} or pass a YAML file.")
        text = resources.files("hf_geokd.apps.zoo").joinpath(f"{preset}.yaml").read_text()
        source_name = f"the {preset} zoo"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"--teachers {path} does not exist: pass a zoo YAML file (see the shipped one, "
                                    "hf_geokd/apps/zoo/shipped.yaml).")
        text, source_name = path.read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{source_name} is not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("teachers"), list) or not data["teachers"]:
        raise ValueError(f"{source_name} must hold a mapping with a non-empty list `teachers:` (and optional "
                         "`defaults:`).")
    unknown_top = sorted(set(data) - {"teachers", "defaults"})
    if unknown_top:
        raise ValueError(f"{source_name}: unknown top-level keys {unknown_top}: only `defaults` and `teachers`.")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ValueError(f"{source_name}: `defaults` must be a mapping of ZooTeacher keys, got {defaults!r}.")
    known = {f.name for f in dataclasses.fields(ZooTeacher)}
    teachers = []
    for index, entry in enumerate(data["teachers"]):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError(f"{source_name}: teacher #{index + 1} must be a mapping with a `name`.")
        unknown = sorted(set(defaults) - known) + sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{source_name}: teacher {entry['name']!r} has unknown keys {unknown}; known keys: "
                             f"{sorted(known)}.")
        teachers.append(ZooTeacher(**{**defaults, **entry}))
    names = [teacher.name for teacher in teachers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{source_name}: teacher names must be unique, {duplicates} repeat.")
    return teachers
