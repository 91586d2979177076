"""One streaming pass that measures which of a teacher's SAE latents a student's residual stream carries.

Per batch: the teacher runs up to the SAE's hook (x_T), the SAE encodes it (z = SAE(x_T), the targets), and every
reader runs up to its own hook: the student (x_S), randomly initialised students of the same architecture (the
null), the student's activations paired with other positions (the shuffled control; rolled by half the batch's
tokens) and the teacher itself (the ceiling). Whole sequences go to the read-out's train or held-out split, and
only moment sums are kept (``RidgeReadout``), so memory does not grow with the number of tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from ..checks import check_positive_int
from ..data import causal_lm_collator
from ..sae.hooks import sae_hook_name
from ..sae.measure import training_processing
from ..sae.processing import Processing
from .hooks import ResidualReader, matching_hook
from .readout import RidgeReadout, TokenBaseline
from .relu_probe import ReluProbe
from .result import CEILING_READER, RANDOM_PREFIX, SHUFFLED_READER, STUDENT_READER, TOKEN_READER, FeatureSurvival

TOKEN_BASELINE_MAX_CELLS = 50_000_000  # vocab x latents: above this the per-token table is left out unless asked


def _batches(dataset, batch_size: int) -> Iterable[dict[str, torch.Tensor]]:
    rows: list[dict] = []
    for row in dataset:
        rows.append(row if isinstance(row, dict) else {"input_ids": row})
        if len(rows) == batch_size:
            yield causal_lm_collator(rows)
            rows = []
    if rows:
        yield causal_lm_collator(rows)


def random_students(student: torch.nn.Module, seeds: Sequence[int]) -> list[torch.nn.Module]:
    """Randomly initialised copies of ``student``'s architecture (``type(student)(student.config)``), one per seed."""
    config = getattr(student, "config", None)
    if config is None and seeds:
        raise ValueError(f"{type(student).__name__} has no .config to build random students from: pass "
                         "null_students=[model, ...] (untrained models of the same width) or null_students=0.")
    models = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(type(student)(config))
    return models


def _stream(readers: dict[str, ResidualReader], sae, processing: Processing, dataset, n_tokens: int,
            batch_size: int, held_out: float, shuffled: bool, seed: int, device: torch.device, desc: str | bool):
    """Per batch: (held-out mask, token ids, SAE latents z, activations per reader) for the first ``n_tokens`` real
    tokens; the split of whole sequences is drawn from ``seed``, so every pass sees the same split. The SAE encodes
    the teacher's activation after the processing it was trained with; the readers read raw activations."""
    generator = torch.Generator().manual_seed(seed)
    d_in, hook_name, seen = sae.cfg.d_in, readers[CEILING_READER].hook_name, 0
    with tqdm(total=n_tokens, desc=desc or "", unit="tok", disable=not desc) as bar:
        for batch in _batches(dataset, batch_size):
            batch = {key: batch[key].to(device) for key in ("input_ids", "attention_mask")}
            rows_held_out = (torch.rand(batch["input_ids"].shape[0], generator=generator) < held_out).to(device)
            mask = batch["attention_mask"].bool()
            keep = min(int(mask.sum()), n_tokens - seen)
            x_teacher = readers[CEILING_READER](batch)
            if x_teacher.shape[-1] != d_in:
                raise ValueError(f"activations at {hook_name} have width {x_teacher.shape[-1]}, "
                                 f"the SAE expects {d_in}: this SAE belongs to another model.")
            z = sae.encode(processing(x_teacher).to(sae.W_dec.dtype))[:keep].float()
            activations = {name: (x_teacher if name == CEILING_READER else reader(batch))[:keep]
                           for name, reader in readers.items()}
            if shuffled:
                activations[SHUFFLED_READER] = activations[STUDENT_READER].roll(max(1, keep // 2), dims=0)
            yield rows_held_out[:, None].expand_as(mask)[mask][:keep], batch["input_ids"][mask][:keep], z, activations
            seen += keep
            bar.update(keep)
            if seen >= n_tokens:
                return


def _relu_r2(readouts: dict[str, RidgeReadout], stream, epochs: int, lr: float,
             n_batches: int) -> dict[str, torch.Tensor]:
    """Held-out R^2 of ReLU probes started from each reader's ridge fit: ``epochs`` training passes of ``n_batches``
    steps, one scoring pass."""
    epochs = check_positive_int(epochs, "probe_epochs")
    probes = {name: ReluProbe(readout, lr, epochs * n_batches) for name, readout in readouts.items()}
    for epoch in range(epochs):
        for split, _, z, activations in stream(f"ReLU probes, epoch {epoch + 1}/{epochs}"):
            for name, x in activations.items():
                probes[name].train_step(x[~split], z[~split])
    for split, _, z, activations in stream("ReLU probes, held-out scores"):
        for name, x in activations.items():
            probes[name].score(x[split], z[split])
    return {name: probe.held_out_r2() for name, probe in probes.items()}


@torch.no_grad()
def measure_feature_survival(
    teacher: torch.nn.Module, sae, student: torch.nn.Module, dataset, *, hook_name: str | None = None,
    student_hook: str | None = None, n_tokens: int = 100_000, batch_size: int = 8, held_out: float = 0.25,
    ridge: float = 1e-3, null_students: int | Sequence[torch.nn.Module] = 3, shuffled: bool = True,
    token_baseline: bool | None = None, probe: str = "linear", probe_epochs: int = 3, probe_lr: float = 0.1,
    threshold: float = 0.5, min_firings: int = 20, min_ceiling: float = 0.05,
    alive_threshold: float = 1e-5, seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
    norm_scaling_factor: float | None = None,
) -> FeatureSurvival:
    """How well the student's residual stream recovers each alive latent of the teacher's SAE, on held-out tokens.

    Args:
        teacher: the teacher, a ``transformers`` model.
        sae: a sae-lens ``SAE`` (anything with ``encode``, ``W_dec`` and ``cfg.d_in`` / ``cfg.d_sae``). Its hook
            may be a module path or a TransformerLens name, and the processing recorded in its config (centering,
            a norm scaling factor) is applied to what it encodes, as in :func:`hf_geokd.measure_feature_stats`.
        student: the student; read at ``student_hook`` (default: its block at the teacher hook's relative depth,
            one layer only: concatenating layers would break the d_S bound).
        dataset: rows with ``input_ids`` (or token lists), tokens neither model nor the SAE was fitted on.
        n_tokens: tokens to use in all; ``held_out`` is the share of whole sequences scored (not fitted on).
        ridge: relative ridge penalty of the linear read-out (see ``RidgeReadout``).
        null_students: the number of randomly initialised students (seeds ``seed + 1000 + k``) or the models.
        shuffled: also score the student's activations paired with other positions (the false-positive rate).
        token_baseline: also score the token-identity read-out (default: when vocab x latents is small enough).
        probe: ``linear`` (ridge, one pass) or ``relu`` (per-latent ReLU read-outs started from the ridge solution,
            trained ``probe_epochs`` passes over the train split with Adam at ``probe_lr``, then scored in one more
            pass: 2 + probe_epochs passes in all; see ``ReluProbe``).
        threshold, min_firings, min_ceiling: survival threshold and scorability rules (see ``FeatureSurvival``).
        alive_threshold: a latent is alive when its firing frequency exceeds this.
        device: where to run (default: the teacher's). Models are put in eval mode, the SAE is moved in place.
        norm_scaling_factor: for an SAE trained with an unfolded ``expected_average_only_in``: its factor
            (estimated on the data when absent).
    """
    hook_name = hook_name or sae_hook_name(sae)
    if not hook_name:
        raise ValueError("the SAE's config names no hook: pass hook_name= (e.g. 'gpt_neox.layers.2').")
    if probe not in ("linear", "relu"):
        raise ValueError(f"probe must be 'linear' or 'relu', got {probe!r}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must lie in (0, 1) (the share of sequences scored), got {held_out}.")
    n_tokens, batch_size = check_positive_int(n_tokens, "n_tokens"), check_positive_int(batch_size, "batch_size")
    vocabs = {name: getattr(getattr(model, "config", None), "vocab_size", None)
              for name, model in (("teacher", teacher), ("student", student))}
    if None not in vocabs.values() and vocabs["teacher"] != vocabs["student"]:
        raise ValueError(f"teacher vocab_size {vocabs['teacher']} != student vocab_size {vocabs['student']}: the "
                         "student must read the teacher's tokens (build it with build_student(teacher.config, width)).")
    device = torch.device(device) if device is not None else next(teacher.parameters()).device
    student_hook = student_hook or matching_hook(teacher, hook_name, student)
    nulls = (random_students(student, [seed + 1000 + k for k in range(null_students)])
             if isinstance(null_students, int) else list(null_students))
    models = {CEILING_READER: (teacher, hook_name), STUDENT_READER: (student, student_hook),
              **{f"{RANDOM_PREFIX}{k}": (model, student_hook) for k, model in enumerate(nulls)}}
    readers = {}
    for name, (model, hook) in models.items():
        model.to(device).eval()
        readers[name] = ResidualReader(model, hook)
    sae = sae.to(device)
    processing = training_processing(sae, teacher, readers[CEILING_READER].point, dataset, batch_size, device,
                                     norm_scaling_factor)
    d_sae = sae.cfg.d_sae

    vocab = vocabs["teacher"]
    if token_baseline is None:
        token_baseline = vocab is not None and vocab * d_sae <= TOKEN_BASELINE_MAX_CELLS
    if token_baseline and vocab is None:
        raise ValueError("token_baseline=True needs teacher.config.vocab_size.")

    readouts: dict[str, RidgeReadout] = {}
    baseline = TokenBaseline(vocab, d_sae, device) if token_baseline else None
    counts = torch.zeros(2, d_sae, dtype=torch.float64, device=device)
    squares = torch.zeros(d_sae, dtype=torch.float64, device=device)
    seen = n_batches = 0

    def stream(desc: str) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]:
        return _stream(readers, sae, processing, dataset, n_tokens, batch_size, held_out, shuffled, seed, device,
                       progress and desc)

    for split, tokens, z, activations in stream("feature survival"):
        for name, x in activations.items():
            if name not in readouts:
                readouts[name] = RidgeReadout(x.shape[-1], d_sae, ridge, device)
            readouts[name].update(x, z, split)
        if baseline is not None:
            baseline.update(tokens, z, split)
        fired = (z != 0).double()  # sae-lens's L0: right for signed (abs-top-k) latents too
        counts[0] += fired.sum(0)
        counts[1] += fired[split].sum(0)
        squares += z.double().pow(2).sum(0)
        seen += z.shape[0]
        n_batches += 1
    if seen < n_tokens:
        raise ValueError(f"the dataset yields only {seen:,} tokens of the n_tokens={n_tokens:,} requested: pass more "
                         "data or a smaller n_tokens.")

    frequency = counts[0] / seen
    alive = torch.nonzero(frequency > alive_threshold).flatten()
    if alive.numel() == 0:
        raise ValueError(f"no latent of this SAE fires more often than {alive_threshold:g} on {seen:,} tokens.")
    importance = squares / seen * sae.W_dec.detach().double().pow(2).sum(-1)
    order = alive[torch.argsort(importance[alive], descending=True)]
    if probe == "relu":
        r2 = {name: values[order].float().cpu() for name, values in _relu_r2(readouts, stream, probe_epochs,
                                                                              probe_lr, n_batches).items()}
    else:
        r2 = {name: readout.held_out_r2()[order].float().cpu() for name, readout in readouts.items()}
    if baseline is not None:
        r2[TOKEN_READER] = baseline.held_out_r2()[order].float().cpu()
    l0 = float(counts[0][alive].sum() / seen)
    student_readout = readouts[STUDENT_READER]
    return FeatureSurvival(
        latent=order.cpu(), importance=importance[order].cpu(),
        frequency=frequency[order].cpu(), held_out_firings=counts[1][order].cpu(), r2=r2,
        student_width=student_readout.d, teacher_width=readouts[CEILING_READER].d, l0=l0,
        alpha=1 - l0 / alive.numel(), hook_name=hook_name, student_hook=student_hook,
        n_train=student_readout.train.n, n_test=student_readout.test.n, threshold=threshold, min_firings=min_firings,
        min_ceiling=min_ceiling, ridge=ridge,
        metadata={"n_tokens": seen, "held_out": held_out, "seed": seed, "null_students": len(nulls), "probe": probe,
                  "d_sae": d_sae, "dead_latents": d_sae - alive.numel()},
    )
