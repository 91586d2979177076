"""FeatureSurvivalConfig: the settings of one feature-survival measurement, with their defaults (TRL's style).

One object holds what ``measure_feature_survival`` measures with (where the models are read, how many tokens, the
read-out and its controls) and how a latent is scored (threshold, scorability, which controls make the null). A YAML
recipe fills it through ``HfArgumentParser`` (``recipes/survival.py``), and every ``FeatureSurvival`` stores the one
it was measured with. Each field is checked when the object is built; an error names the field and the fix.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

from ..checks import check_positive_int
from ..sae.measure import DEFAULT_ALIVE_THRESHOLD

PROBES = ("linear", "relu")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_open_fraction(value: Any, name: str, meaning: str) -> None:
    if not (_is_real(value) and 0 < value < 1):
        raise ValueError(f"{name} must lie in (0, 1) ({meaning}), got {value!r}.")


def _check_count(value: Any, name: str, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0 ({meaning}), got {value!r}.")


def _check_optional_name(value: Any, name: str, example: str) -> None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise ValueError(f"{name} must be a module path or a TransformerLens hook name (e.g. {example!r}) or None "
                         f"for the default, got {value!r}.")


def _check_flag(value: Any, name: str, allow_none: bool = False) -> None:
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise ValueError(f"{name} must be true or false{' (or None: automatic)' if allow_none else ''}, "
                         f"got {value!r}.")


@dataclass
class FeatureSurvivalConfig:
    """Settings of a feature-survival measurement (see :func:`hf_geokd.measure_feature_survival`).

    Where and on what:
        hook_name: the teacher's hook (default: the SAE's own); student_hook: the student's (default: its block at
        the same relative depth). n_tokens: real tokens used in all; held_out: the share of whole sequences scored
        (not fitted on); batch_size: rows per forward; seed: the split's draw and the random students' seeds
        (``seed + 1000 + k``); alive_threshold: a latent is alive when its firing frequency exceeds this;
        norm_scaling_factor: for an SAE trained with an unfolded ``expected_average_only_in``, its factor
        (estimated on the data when None).

    The read-out:
        probe: ``linear`` (ridge, one pass) or ``relu`` (per-latent ReLU read-outs started from the ridge solution,
        ``probe_epochs`` passes at Adam learning rate ``probe_lr``, then one scoring pass); ridge: the linear
        read-out's penalty lambda relative to the mean eigenvalue tr(C)/d of the reader's covariance.

    The controls:
        null_students: randomly initialised students of the same architecture; shuffled: the student's activations
        paired with other positions; token_baseline: the token-identity read-out (a per-token mean; None: measured
        when vocab x latents is small enough); beyond_token: count as survivors only latents whose score also
        beats the token-identity read-out (when it is measured). A latent survives when its normalised score
        s_i = R^2_i(student) / R^2_i(teacher) > threshold and s_i > max over the null's controls.

    Scoring:
        threshold: the normalised score above which a latent survives; min_firings: held-out firings a latent needs
        to be scored; min_ceiling: the teacher's own R^2 a latent needs to be scored.
    """

    hook_name: str | None = field(default=None, metadata={"help": "The teacher's hook (default: the SAE's own)."})
    student_hook: str | None = field(
        default=None, metadata={"help": "The student's hook (default: its block at the same relative depth)."})
    n_tokens: int = field(default=100_000, metadata={"help": "Real tokens to use in all (fitted and scored)."})
    batch_size: int = field(default=8, metadata={"help": "Rows per forward pass."})
    held_out: float = field(default=0.25, metadata={"help": "Share of whole sequences scored, not fitted on."})
    seed: int = field(default=0, metadata={"help": "Seed of the split and of the random students (seed + 1000 + k)."})
    alive_threshold: float = field(
        default=DEFAULT_ALIVE_THRESHOLD, metadata={"help": "A latent is alive when it fires more often than this."})
    norm_scaling_factor: float | None = field(
        default=None, metadata={"help": "An unfolded expected_average_only_in SAE's factor (default: estimated)."})
    probe: Literal["linear", "relu"] = field(
        default="linear", metadata={"help": "linear (ridge, one pass) or relu (2 + probe_epochs passes)."})
    ridge: float = field(default=1e-3, metadata={"help": "Ridge penalty, relative to tr(C)/d."})
    probe_epochs: int = field(default=3, metadata={"help": "Training passes of the relu probe."})
    probe_lr: float = field(default=0.1, metadata={"help": "Adam learning rate of the relu probe."})
    null_students: int = field(default=3, metadata={"help": "Randomly initialised students (a control)."})
    shuffled: bool = field(default=True, metadata={"help": "Score the student paired with other positions."})
    token_baseline: bool | None = field(
        default=None, metadata={"help": "Score the token-identity read-out (default: when vocab x latents is small)."})
    beyond_token: bool = field(
        default=True, metadata={"help": "Survivors must also beat the token-identity read-out, when measured."})
    threshold: float = field(default=0.5, metadata={"help": "Normalised score above which a latent survives."})
    min_firings: int = field(default=20, metadata={"help": "Held-out firings a latent needs to be scored."})
    min_ceiling: float = field(default=0.05, metadata={"help": "The teacher's own R^2 a latent needs to be scored."})

    def __post_init__(self) -> None:
        self._check_where()
        self._check_read_out()
        self._check_controls()
        self._check_scoring()

    def _check_where(self) -> None:
        _check_optional_name(self.hook_name, "hook_name", "gpt_neox.layers.2")
        _check_optional_name(self.student_hook, "student_hook", "gpt_neox.layers.1")
        check_positive_int(self.n_tokens, "n_tokens")
        check_positive_int(self.batch_size, "batch_size")
        _check_open_fraction(self.held_out, "held_out", "the share of sequences scored")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}.")
        if not (_is_real(self.alive_threshold) and 0 <= self.alive_threshold < 1):
            raise ValueError(f"alive_threshold must be a firing frequency in [0, 1) (paper: 1e-5), got "
                             f"{self.alive_threshold!r}.")
        scale = self.norm_scaling_factor
        if scale is not None and not (_is_real(scale) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"norm_scaling_factor must be a positive number (the factor the SAE was trained with) "
                             f"or None to estimate it, got {scale!r}.")

    def _check_read_out(self) -> None:
        if self.probe not in PROBES:
            raise ValueError(f"probe must be 'linear' or 'relu', got {self.probe!r}.")
        if not (_is_real(self.ridge) and math.isfinite(self.ridge) and self.ridge >= 0):
            raise ValueError(f"ridge must be a finite number >= 0 (the relative ridge penalty; default 1e-3), got "
                             f"{self.ridge!r}.")
        check_positive_int(self.probe_epochs, "probe_epochs")
        if not (_is_real(self.probe_lr) and math.isfinite(self.probe_lr) and self.probe_lr > 0):
            raise ValueError(f"probe_lr must be a positive learning rate (default 0.1), got {self.probe_lr!r}.")

    def _check_controls(self) -> None:
        _check_count(self.null_students, "null_students", "randomly initialised students; 0 leaves that control out")
        _check_flag(self.shuffled, "shuffled")
        _check_flag(self.token_baseline, "token_baseline", allow_none=True)
        _check_flag(self.beyond_token, "beyond_token")
        if self.token_baseline is False and self.beyond_token:
            raise ValueError("token_baseline=False leaves out the token-identity control that beyond_token=True "
                             "counts survivors against: pass beyond_token=False to count survivors above the "
                             "random-init and shuffled controls only, or measure the token baseline.")

    def _check_scoring(self) -> None:
        _check_open_fraction(self.threshold, "threshold", "a share of the teacher's own score")
        _check_count(self.min_firings, "min_firings", "held-out firings a latent needs to be scored")
        _check_open_fraction(self.min_ceiling, "min_ceiling", "the teacher's own R^2 a latent needs to be scored")
