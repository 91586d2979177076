"""One streaming pass that measures which of a teacher's SAE latents a student's residual stream carries.

Per batch: the teacher runs up to the SAE's hook (x_T), the SAE encodes it (z = SAE(x_T), the targets), and every
reader runs up to its own hook: the student (x_S), randomly initialised students of the same architecture (the
null), the student's activations paired with other positions (the shuffled control; rolled by half the batch's
tokens) and the teacher itself (the ceiling). Whole sequences go to the read-out's train or held-out split, and
only moment sums are kept (``RidgeReadout``), so memory does not grow with the number of tokens.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

from ..sae.hooks import sae_hook_name
from ..sae.measure import _batches, _check_vocabulary, check_sae_and_models, training_processing
from ..sae.processing import Processing
from .config import FeatureSurvivalConfig
from .hooks import ResidualReader, matching_hook
from .readout import RidgeReadout, TokenBaseline
from .relu_probe import ReluProbe
from .result import CEILING_READER, RANDOM_PREFIX, SHUFFLED_READER, STUDENT_READER, TOKEN_READER, FeatureSurvival

TOKEN_BASELINE_MAX_CELLS = 50_000_000  # vocab x latents: above this the per-token table is left out unless asked
CALL = "measure_feature_survival(teacher, sae, student, dataset, config=FeatureSurvivalConfig(...))"
SETTINGS = tuple(field.name for field in dataclasses.fields(FeatureSurvivalConfig))


# ------------------------------------------------------------------------------------------------ the arguments
def survival_config(config: FeatureSurvivalConfig | None, keywords: dict[str, Any]
                    ) -> tuple[FeatureSurvivalConfig, list[torch.nn.Module] | None]:
    """The settings to measure with, and the null models when the previous signature passed them.

    Before ``FeatureSurvivalConfig``, every setting was a keyword of ``measure_feature_survival`` and
    ``null_students`` could be a list of models: both still work, with a ``FutureWarning``.
    """
    unknown = sorted(set(keywords) - set(SETTINGS))
    if unknown:
        raise TypeError(f"measure_feature_survival() got unexpected keyword arguments {unknown}: the settings are the "
                        f"fields of FeatureSurvivalConfig ({', '.join(SETTINGS)}).")
    if not keywords:
        if config is not None and not isinstance(config, FeatureSurvivalConfig):
            raise TypeError(f"config must be a FeatureSurvivalConfig, got {type(config).__name__}.")
        return config or FeatureSurvivalConfig(), None
    if config is not None:
        raise TypeError(f"pass the settings in config= or as keywords ({', '.join(keywords)}), not both: "
                        "dataclasses.replace(config, ...) changes some of them.")
    nulls = keywords.get("null_students")
    models = list(nulls) if isinstance(nulls, (list, tuple)) else None  # the previous null_students=[model, ...]
    settings = {**keywords, "null_students": len(models)} if models is not None else keywords
    new_call = f"config=FeatureSurvivalConfig({', '.join(f'{key}=...' for key in keywords)})"
    warnings.warn(f"measure_feature_survival's setting keywords ({', '.join(keywords)}) are deprecated and will be "
                  f"removed: pass {new_call}{', null_models=[...]' if models is not None else ''} instead.",
                  FutureWarning, stacklevel=4)
    return FeatureSurvivalConfig(**settings), models


def _check_rows(dataset) -> None:
    """Refuse one flat sequence of token ids (a 1-D tensor or array, a list of ints) where rows are expected."""
    shape = getattr(dataset, "shape", None)
    flat_list = isinstance(dataset, (list, tuple)) and len(dataset) > 0 and isinstance(dataset[0], numbers.Integral)
    if (shape is not None and len(shape) != 2) or flat_list:
        what = f"a {len(shape)}-D array of shape {tuple(shape)}" if shape is not None else "a flat list of token ids"
        raise ValueError(f"dataset is {what}: pass rows of token ids (a [rows, tokens] tensor, a list of rows or a "
                         "datasets.Dataset with input_ids); a single sequence is [ids], a long one "
                         "ids.reshape(-1, block_size).")


def _null_students(student: torch.nn.Module, config: FeatureSurvivalConfig,
                   null_models: Sequence[torch.nn.Module] | None) -> list[torch.nn.Module]:
    """The random-init control: the given models, or ``config.null_students`` fresh ones (seeds seed + 1000 + k)."""
    if null_models is not None:
        return list(null_models)
    return random_students(student, [config.seed + 1000 + k for k in range(config.null_students)])


def random_students(student: torch.nn.Module, seeds: Sequence[int]) -> list[torch.nn.Module]:
    """Randomly initialised copies of ``student``'s architecture (``type(student)(student.config)``), one per seed."""
    config = getattr(student, "config", None)
    if config is None and seeds:
        raise ValueError(f"{type(student).__name__} has no .config to build random students from: pass "
                         "null_models=[model, ...] (untrained models of the same width) or null_students=0.")
    models = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(type(student)(config))
    return models


def _vocab_size(teacher: torch.nn.Module, student: torch.nn.Module) -> int | None:
    """The teacher's vocabulary size, after checking the student reads the same tokens."""
    vocabs = [getattr(getattr(model, "config", None), "vocab_size", None) for model in (teacher, student)]
    if None not in vocabs and vocabs[0] != vocabs[1]:
        raise ValueError(f"teacher vocab_size {vocabs[0]} != student vocab_size {vocabs[1]}: the student must read "
                         "the teacher's tokens (build it with build_student(teacher.config, width)).")
    return vocabs[0]


def _token_baseline(config: FeatureSurvivalConfig, vocab_size: int | None, d_sae: int) -> bool:
    """Whether the token-identity control is measured: as asked, or when vocab x latents fits
    ``TOKEN_BASELINE_MAX_CELLS``; when the null was to count it and it is left out, say so."""
    if config.token_baseline and vocab_size is None:
        raise ValueError("token_baseline=True needs teacher.config.vocab_size.")
    if config.token_baseline is not None:
        return config.token_baseline
    measured = vocab_size is not None and vocab_size * d_sae <= TOKEN_BASELINE_MAX_CELLS
    if not measured and config.beyond_token:
        cells = "an unknown vocabulary" if vocab_size is None else f"vocab x latents = {vocab_size * d_sae:,} cells"
        warnings.warn(f"the token-identity control is not measured ({cells}, above {TOKEN_BASELINE_MAX_CELLS:,}): "
                      "survivors are counted above the random-init and shuffled controls only. Pass "
                      "token_baseline=True to measure it (2 x vocab x latents float64 sums), or beyond_token=False "
                      "to count without it.", stacklevel=5)
    return measured


# ---------------------------------------------------------------------------------------------------- the pass
class _Batch(NamedTuple):
    held_out: torch.Tensor  # [n] bool: the token's sequence is scored, not fitted on
    tokens: torch.Tensor  # [n] token ids
    z: torch.Tensor  # [n, d_sae] SAE latents of the teacher's activations (the targets)
    activations: dict[str, torch.Tensor]  # reader -> [n, d_reader]


@dataclass
class _Setup:
    """Everything a pass over the data needs; ``config`` has its hooks, null count and token control resolved."""

    readers: dict[str, ResidualReader]
    sae: Any
    processing: Processing
    dataset: Any
    config: FeatureSurvivalConfig
    device: torch.device
    vocab_size: int | None

    def stream(self, desc: str | bool) -> Iterator[_Batch]:
        """The first ``n_tokens`` real tokens, batch by batch. The split of whole sequences is drawn from the
        config's seed, so every pass sees the same split. The SAE encodes the teacher's activation after the
        processing it was trained with; the readers read raw activations."""
        config, seen = self.config, 0
        generator = torch.Generator().manual_seed(config.seed)
        with tqdm(total=config.n_tokens, desc=desc or "", unit="tok", disable=not desc) as bar:
            for batch in _batches(self.dataset, config.batch_size):
                _check_vocabulary(batch["input_ids"], self.vocab_size)
                keep = min(int(batch["attention_mask"].sum()), config.n_tokens - seen)
                held_out = torch.rand(batch["input_ids"].shape[0], generator=generator) < config.held_out
                yield self._read(batch, held_out, keep)
                seen += keep
                bar.update(keep)
                if seen >= config.n_tokens:
                    return

    def _read(self, batch: dict[str, torch.Tensor], rows_held_out: torch.Tensor, keep: int) -> _Batch:
        """The first ``keep`` real tokens of ``batch``: split, ids, latents and every reader's activations."""
        batch = {key: batch[key].to(self.device) for key in ("input_ids", "attention_mask")}
        mask = batch["attention_mask"].bool()
        x_teacher = self.readers[CEILING_READER](batch)
        d_in = self.sae.cfg.d_in
        if x_teacher.shape[-1] != d_in:
            raise ValueError(f"activations at {self.config.hook_name} have width {x_teacher.shape[-1]}, the SAE "
                             f"expects {d_in}: this SAE belongs to another model.")
        z = self.sae.encode(self.processing(x_teacher).to(self.sae.W_dec.dtype))[:keep].float()
        activations = {name: (x_teacher if name == CEILING_READER else reader(batch))[:keep]
                       for name, reader in self.readers.items()}
        if self.config.shuffled:
            activations[SHUFFLED_READER] = activations[STUDENT_READER].roll(max(1, keep // 2), dims=0)
        held_out = rows_held_out.to(self.device)[:, None].expand_as(mask)[mask][:keep]
        return _Batch(held_out, batch["input_ids"][mask][:keep], z, activations)


def _setup(teacher: torch.nn.Module, sae, student: torch.nn.Module, dataset, config: FeatureSurvivalConfig,
           null_models: Sequence[torch.nn.Module] | None, device: torch.device) -> _Setup:
    """Resolve the hooks, build the readers (models moved to ``device``, in eval mode) and the SAE's processing."""
    hook_name = config.hook_name or sae_hook_name(sae)
    if not hook_name:
        raise ValueError("the SAE's config names no hook: pass hook_name= (e.g. 'gpt_neox.layers.2').")
    vocab_size = _vocab_size(teacher, student)
    student_hook = config.student_hook or matching_hook(teacher, hook_name, student)
    nulls = _null_students(student, config, null_models)
    models = {CEILING_READER: (teacher, hook_name), STUDENT_READER: (student, student_hook),
              **{f"{RANDOM_PREFIX}{k}": (model, student_hook) for k, model in enumerate(nulls)}}
    readers = {}
    for name, (model, hook) in models.items():
        model.to(device).eval()
        readers[name] = ResidualReader(model, hook)
    sae = sae.to(device)
    processing = training_processing(sae, teacher, readers[CEILING_READER].point, dataset, config.batch_size, device,
                                     config.norm_scaling_factor)
    token_baseline = _token_baseline(config, vocab_size, sae.cfg.d_sae)
    resolved = dataclasses.replace(config, hook_name=hook_name, student_hook=student_hook, null_students=len(nulls),
                                   token_baseline=token_baseline, beyond_token=config.beyond_token and token_baseline)
    return _Setup(readers, sae, processing, dataset, resolved, device, vocab_size)


class _Totals:
    """What the first pass accumulates: each reader's read-out moments, the token control's per-token sums, and
    per latent the firings (all tokens, held-out tokens) and sum z^2."""

    def __init__(self, setup: _Setup) -> None:
        d_sae, device = setup.sae.cfg.d_sae, setup.device
        self.d_sae, self.ridge, self.device = d_sae, setup.config.ridge, device
        self.readouts: dict[str, RidgeReadout] = {}
        self.baseline = TokenBaseline(setup.vocab_size, d_sae, device) if setup.config.token_baseline else None
        self.firings = torch.zeros(2, d_sae, dtype=torch.float64, device=device)
        self.squares = torch.zeros(d_sae, dtype=torch.float64, device=device)
        self.seen = self.n_batches = 0

    def add(self, batch: _Batch) -> None:
        for name, x in batch.activations.items():
            if name not in self.readouts:
                self.readouts[name] = RidgeReadout(x.shape[-1], self.d_sae, self.ridge, self.device)
            self.readouts[name].update(x, batch.z, batch.held_out)
        if self.baseline is not None:
            self.baseline.update(batch.tokens, batch.z, batch.held_out)
        fired = (batch.z != 0).double()  # sae-lens's L0: right for signed (abs-top-k) latents too
        self.firings[0] += fired.sum(0)
        self.firings[1] += fired[batch.held_out].sum(0)
        self.squares += batch.z.double().pow(2).sum(0)
        self.seen += batch.z.shape[0]
        self.n_batches += 1


def _first_pass(setup: _Setup, progress: bool) -> _Totals:
    totals = _Totals(setup)
    for batch in setup.stream(progress and "feature survival"):
        totals.add(batch)
    n_tokens = setup.config.n_tokens
    if totals.seen < n_tokens:
        raise ValueError(f"the dataset yields only {totals.seen:,} tokens of the n_tokens={n_tokens:,} requested: "
                         "pass more data or a smaller n_tokens.")
    return totals


def _relu_r2(setup: _Setup, totals: _Totals, progress: bool) -> dict[str, torch.Tensor]:
    """Held-out R^2 of ReLU probes started from each reader's ridge fit: ``probe_epochs`` training passes of
    ``n_batches`` steps, one scoring pass."""
    epochs = setup.config.probe_epochs
    probes = {name: ReluProbe(readout, setup.config.probe_lr, epochs * totals.n_batches)
              for name, readout in totals.readouts.items()}
    for epoch in range(epochs):
        for batch in setup.stream(progress and f"ReLU probes, epoch {epoch + 1}/{epochs}"):
            for name, x in batch.activations.items():
                probes[name].train_step(x[~batch.held_out], batch.z[~batch.held_out])
    for batch in setup.stream(progress and "ReLU probes, held-out scores"):
        for name, x in batch.activations.items():
            probes[name].score(x[batch.held_out], batch.z[batch.held_out])
    return {name: probe.held_out_r2() for name, probe in probes.items()}


def _held_out_r2(setup: _Setup, totals: _Totals, order: torch.Tensor, progress: bool) -> dict[str, torch.Tensor]:
    """Per reader, the held-out R^2 of the alive latents in ``order`` (the config's probe, and the token control)."""
    if setup.config.probe == "relu":
        r2 = _relu_r2(setup, totals, progress)
    else:
        r2 = {name: readout.held_out_r2() for name, readout in totals.readouts.items()}
    if totals.baseline is not None:
        r2[TOKEN_READER] = totals.baseline.held_out_r2()
    return {name: values[order].float().cpu() for name, values in r2.items()}


def _alive_by_importance(setup: _Setup, totals: _Totals) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(alive latents in descending importance, firing frequency, importance) with frequency_i = firings_i / N,
    alive: frequency_i > alive_threshold, importance I_i = E[z_i^2] ||W_dec,i||^2."""
    frequency = totals.firings[0] / totals.seen
    alive = torch.nonzero(frequency > setup.config.alive_threshold).flatten()
    if alive.numel() == 0:
        raise ValueError(f"no latent of this SAE fires more often than alive_threshold="
                         f"{setup.config.alive_threshold:g} on {totals.seen:,} tokens.")
    importance = totals.squares / totals.seen * setup.sae.W_dec.detach().double().pow(2).sum(-1)
    return alive[torch.argsort(importance[alive], descending=True)], frequency, importance


def _result(setup: _Setup, totals: _Totals, progress: bool) -> FeatureSurvival:
    order, frequency, importance = _alive_by_importance(setup, totals)
    l0 = float(totals.firings[0][order].sum() / totals.seen)
    student = totals.readouts[STUDENT_READER]
    return FeatureSurvival(
        latent=order.cpu(), importance=importance[order].cpu(), frequency=frequency[order].cpu(),
        held_out_firings=totals.firings[1][order].cpu(), r2=_held_out_r2(setup, totals, order, progress),
        student_width=student.d, teacher_width=totals.readouts[CEILING_READER].d, l0=l0,
        alpha=1 - l0 / order.numel(), n_train=student.train.n, n_test=student.test.n, config=setup.config,
        metadata={"n_tokens": totals.seen, "d_sae": totals.d_sae, "dead_latents": totals.d_sae - order.numel()},
    )


@torch.no_grad()
def measure_feature_survival(
    teacher: torch.nn.Module, sae, student: torch.nn.Module, dataset, config: FeatureSurvivalConfig | None = None, *,
    null_models: Sequence[torch.nn.Module] | None = None, device: str | torch.device | None = None,
    progress: bool = True, **settings: Any,
) -> FeatureSurvival:
    """How well the student's residual stream recovers each alive latent of the teacher's SAE, on held-out tokens.

    Args:
        teacher: the teacher, a ``transformers`` model.
        sae: a sae-lens ``SAE`` (anything with ``encode``, ``W_dec`` and ``cfg.d_in`` / ``cfg.d_sae``). Its hook
            may be a module path or a TransformerLens name, and the processing recorded in its config (centering,
            a norm scaling factor) is applied to what it encodes, as in :func:`hf_geokd.measure_feature_stats`.
        student: the student; read at ``config.student_hook`` (default: its block at the teacher hook's relative
            depth, one layer only: concatenating layers would break the d_S bound).
        dataset: rows with ``input_ids`` (or token lists; a row's own ``attention_mask`` is honoured), tokens
            neither model nor the SAE was fitted on.
        config: the settings (:class:`FeatureSurvivalConfig`; default: its defaults). The result stores it with the
            hooks, the number of random students and the token control resolved.
        null_models: untrained models of the student's width to serve as the random-init control instead of
            ``config.null_students`` fresh copies of the student's architecture (the result records their number).
        device: where to run (default: the teacher's). Models are put in eval mode, the SAE is moved in place.
        progress: show progress bars.
        **settings: deprecated: the config's fields as keywords (the previous signature; a ``FutureWarning``).
    """
    config, legacy_nulls = survival_config(config, settings)
    if legacy_nulls is not None and null_models is not None:
        raise TypeError("pass the random-init models once, as null_models=[...].")
    check_sae_and_models(sae, {"teacher": teacher, "student": student}, CALL)
    _check_rows(dataset)
    device = torch.device(device) if device is not None else next(teacher.parameters()).device
    setup = _setup(teacher, sae, student, dataset, config, legacy_nulls or null_models, device)
    return _result(setup, _first_pass(setup, progress), progress)
