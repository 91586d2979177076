"""One streaming pass over a token stream that turns an SAE on a teacher layer into ``FeatureStats``.

For every token the teacher's activation x at ``hook_name`` is encoded, z = SAE(x), and float64 running sums are
kept per latent: firing count, sum of z_i^2. Nothing per token is stored, so memory does not grow with n_tokens.
The teacher's forward stops right after the hooked module (the rest of the model is not needed).

    frequency_i = count_i / N;  alive: frequency_i > alive_threshold;  F = #alive
    L0 = sum_{alive} count_i / N  (mean active alive latents per token);  alpha = 1 - L0 / F
    contribution_i = E[z_i^2] ||W_dec,i||^2   (the energy latent i writes into the residual stream)

The contribution is invariant to how decoder norms are split between encoder and decoder, so it equals E[z_i^2]
after ``fold_W_dec_norm`` (unit decoder rows) without modifying the SAE (paper section 5.2: I_i = E[z_i^2]). For an
SAE fed x * s (an unfolded norm scaling factor s) it is divided by s^2: the residual stream's units, as if folded.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from ..checks import check_positive_int
from ..data import causal_lm_collator
from ..stats import FeatureStats
from .hooks import hook_point, read_hook, sae_hook_name
from .processing import Processing, sae_processing
from .processing import norm_scaling_factor as norm_scaling_factor_of
from .tl_hooks import HookPoint

DEFAULT_ALIVE_THRESHOLD = 1e-5


def _real_tokens(row, index: int) -> dict[str, list[int]]:
    """The row's real tokens: ``input_ids`` where its own ``attention_mask`` (if any) is 1, padding dropped.

    The mask must be one run of ones (left or right padding); a row with holes in its mask, or with no real token,
    is refused by name rather than measured wrongly.
    """
    if isinstance(row, (str, bytes)):
        raise ValueError(
            f"row {index} is text ({row[:30]!r}), not token ids: tokenize the dataset first (a dict of columns is "
            "iterated by its keys: pass a list of rows or a datasets.Dataset)."
        )
    tokens = row.get("input_ids") if isinstance(row, dict) else row
    if tokens is None:
        raise ValueError(f"row {index} has no input_ids (keys: {sorted(row)}): pass tokenized rows.")
    tokens = torch.as_tensor(tokens, dtype=torch.long).reshape(-1)
    mask = row.get("attention_mask") if isinstance(row, dict) else None
    if mask is not None:
        mask = torch.as_tensor(mask).reshape(-1).bool()
        if mask.shape != tokens.shape:
            raise ValueError(
                f"row {index} has {tokens.numel()} input_ids but {mask.numel()} attention_mask values: pass one each."
            )
        real = mask.nonzero().flatten()
        if real.numel() and real[-1] - real[0] + 1 != real.numel():
            raise ValueError(
                f"row {index}'s attention_mask has holes (ones, zeros, ones): only left or right padding is "
                "supported; pass each sequence as its own row."
            )
        tokens = tokens[mask]
    if tokens.numel() == 0:
        raise ValueError(f"row {index} has no tokens{' under its attention_mask' if mask is not None else ''}: "
                         "drop empty rows from the dataset.")
    return {"input_ids": tokens.tolist()}


def _batches(dataset, batch_size: int) -> Iterable[dict[str, torch.Tensor]]:
    """Right-padded batches of {input_ids, attention_mask} from rows with ``input_ids`` (and optionally their own
    ``attention_mask``, whose padding is dropped) or bare token lists."""
    rows: list[dict] = []
    for index, row in enumerate(dataset):
        rows.append(_real_tokens(row, index))
        if len(rows) == batch_size:
            yield causal_lm_collator(rows)
            rows = []
    if rows:
        yield causal_lm_collator(rows)


def _check_vocabulary(input_ids: torch.Tensor, vocab_size: int | None) -> None:
    """Name a token id outside [0, vocab_size) before the embedding fails with "index out of range in self"."""
    if vocab_size is None or input_ids.numel() == 0:
        return
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"token id {bad} is outside the model's vocabulary [0, {vocab_size}): the dataset was tokenized for "
            "another model (use this model's tokenizer)."
        )


def _check_measure_arguments(n_tokens: int, batch_size: int, alive_threshold: float) -> None:
    check_positive_int(n_tokens, "n_tokens")
    check_positive_int(batch_size, "batch_size")
    if isinstance(alive_threshold, bool) or not isinstance(alive_threshold, (int, float)) or not (
        0.0 <= alive_threshold < 1.0
    ):
        raise ValueError(
            f"alive_threshold must be a firing frequency in [0, 1) (paper: 1e-5), got {alive_threshold!r}."
        )


def _looks_like_sae(candidate) -> bool:
    cfg = getattr(candidate, "cfg", None)
    return (callable(getattr(candidate, "encode", None)) and hasattr(candidate, "W_dec") and hasattr(cfg, "d_in")
            and hasattr(cfg, "d_sae"))


def check_sae_and_models(sae, models: dict[str, object], call: str) -> None:
    """Refuse by name a missing SAE, a model that is not a torch module, or the SAE and a model passed in each
    other's place (``call`` shows the right order), before an attribute lookup fails with "no attribute 'cfg'"."""
    if not _looks_like_sae(sae):
        swapped = [name for name, model in models.items() if _looks_like_sae(model)]
        if swapped:
            raise ValueError(f"the SAE was passed as {swapped[0]} and a {type(sae).__name__} as sae: swap them, the "
                             f"order is {call}.")
        raise ValueError(f"sae must be an SAE (sae-lens's, with encode, W_dec and cfg.d_in / cfg.d_sae), got "
                         f"{'None' if sae is None else type(sae).__name__}: load one with hf_geokd.load_sae(...).")
    for name, model in models.items():
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{name} must be a model (a torch.nn.Module, e.g. from AutoModelForCausalLM), got "
                             f"{'None' if model is None else type(model).__name__}: the order is {call}.")


@torch.no_grad()
def activations_at(model, point: HookPoint, dataset, batch_size: int, device: torch.device
                 ) -> Generator[torch.Tensor, None, None]:
    """The activations at ``point`` of every non-padding token, one [tokens, d] batch per forward (which stops right
    after the hooked module). A row's own ``attention_mask`` is honoured, and token ids outside the model's
    vocabulary are refused by name."""
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    for batch in _batches(dataset, batch_size):
        _check_vocabulary(batch["input_ids"], vocab_size)
        yield read_hook(model, point, {key: batch[key].to(device) for key in ("input_ids", "attention_mask")})


@contextmanager
def _first_tokens(batches: Generator[torch.Tensor, None, None], n_tokens: int) -> Iterator[Iterator[torch.Tensor]]:
    """The first ``n_tokens`` rows of ``batches``; the hook is removed on leaving, even after an error."""

    def rows() -> Iterator[torch.Tensor]:
        seen = 0
        for x in batches:
            yield x[: n_tokens - seen]
            seen += x.shape[0]
            if seen >= n_tokens:
                return

    try:
        yield rows()
    finally:
        batches.close()


def training_processing(sae, model, point: HookPoint, dataset, batch_size: int, device: torch.device,
                        norm_scaling_factor: float | None = None, norm_estimate_tokens: int = 65_536) -> Processing:
    """The :class:`Processing` the SAE was trained with at ``point`` (:func:`sae_processing`), its norm scaling factor
    estimated as sqrt(d_in) / E||x|| on the first ``norm_estimate_tokens`` tokens when the SAE needs one that was
    not given (one more pass over them: ``dataset`` must be re-iterable)."""
    processing = sae_processing(sae, point, type(model).__name__, norm_scaling_factor)
    if not processing.estimate_scale:
        return processing
    if iter(dataset) is dataset:
        raise ValueError("estimating the SAE's norm scaling factor needs a second pass over the data, and dataset "
                         "is a one-shot iterator: pass a re-iterable dataset or norm_scaling_factor=.")
    with _first_tokens(activations_at(model, point, dataset, batch_size, device), norm_estimate_tokens) as first:
        scale = norm_scaling_factor_of((Processing(processing.center)(x) for x in first), sae.cfg.d_in)
    return replace(processing, scale=scale, estimate_scale=False)


@torch.no_grad()
def measure_feature_stats(
    sae, model, dataset, hook_name: str | None = None, n_tokens: int = 1_000_000, batch_size: int = 8,
    alive_threshold: float = DEFAULT_ALIVE_THRESHOLD, device: str | torch.device | None = None, progress: bool = True,
    norm_scaling_factor: float | None = None, norm_estimate_tokens: int = 65_536,
) -> FeatureStats:
    """Measure F, L0, alpha and the contribution spectrum of ``sae`` on ``model``'s activations at ``hook_name``.

    The activations are the ones the SAE was trained on: a TransformerLens hook name is read from the matching
    module input or output (:mod:`hf_geokd.sae.tl_hooks`), then the processing recorded in the SAE's config is
    reproduced (:mod:`hf_geokd.sae.processing`: centering for ``center_writing_weights``, the norm scaling factor of
    ``expected_average_only_in``). A latent fires when z_i != 0 (sae-lens's own L0), right for every architecture:
    a JumpReLU latent above its threshold, a top-k latent selected with a positive pre-activation, a signed abs-top-k.

    Args:
        sae: a sae-lens ``SAE`` of any architecture (see :func:`hf_geokd.load_sae` for other layouts).
        model: the teacher, a ``transformers`` model.
        dataset: rows with ``input_ids`` (a ``datasets.Dataset``, streamed or not) or token lists; use tokens the
            SAE was not trained on. A row's own ``attention_mask`` is honoured: its padding is dropped, so padded
            rows give the same statistics as the same rows unpadded.
        hook_name: a module path (its output is read) or a TransformerLens hook name (default: the SAE's own).
        n_tokens: real (unmasked) tokens to measure on; the dataset must hold at least that many.
        batch_size: rows per forward pass.
        alive_threshold: a latent is alive when its firing frequency exceeds this (paper: 1e-5).
        device: where to run (default: the model's device). The SAE is moved there in place (``nn.Module.to``),
            and the model is put in eval mode; neither is copied, since an SAE of a real model is large.
        norm_scaling_factor: for an SAE whose ``normalize_activations`` is ``expected_average_only_in`` and not
            folded: the factor it was trained with. When absent it is estimated as sqrt(d_in) / E||x|| on the first
            ``norm_estimate_tokens`` tokens (one more pass over them; ``dataset`` must be re-iterable).
    """
    check_sae_and_models(sae, {"model": model}, "measure_feature_stats(sae, model, dataset, ...)")
    _check_measure_arguments(n_tokens, batch_size, alive_threshold)
    check_positive_int(norm_estimate_tokens, "norm_estimate_tokens")
    hook_name = hook_name or sae_hook_name(sae)
    if not hook_name:
        raise ValueError("the SAE's config names no hook: pass hook_name= (e.g. 'gpt_neox.layers.12').")
    point = hook_point(model, hook_name)
    d_in = sae.cfg.d_in
    hidden = getattr(model.config, "hidden_size", d_in)
    if d_in != hidden:
        raise ValueError(
            f"SAE d_in = {d_in} but the model's hidden size is {hidden}: this SAE belongs to another model."
        )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    sae = sae.to(device)
    processing = training_processing(sae, model, point, dataset, batch_size, device, norm_scaling_factor,
                                     norm_estimate_tokens)
    d_sae = sae.cfg.d_sae
    counts = torch.zeros(d_sae, dtype=torch.float64, device=device)
    squares = torch.zeros(d_sae, dtype=torch.float64, device=device)
    seen = 0
    with (tqdm(total=n_tokens, desc=f"SAE stats at {hook_name}", unit="tok", disable=not progress) as bar,
          _first_tokens(activations_at(model, point, dataset, batch_size, device), n_tokens) as activations):
        for x in activations:
            if x.shape[-1] != d_in:
                raise ValueError(f"activations at {hook_name} have width {x.shape[-1]}, the SAE expects {d_in}.")
            x = processing(x.to(sae.W_dec.dtype))
            if not torch.isfinite(x).all():
                raise ValueError(f"NaN or infinite activations at {hook_name}: check the model's dtype and inputs.")
            z = sae.encode(x)
            counts += (z != 0).sum(0, dtype=torch.float64)
            squares += z.double().pow(2).sum(0)
            seen += x.shape[0]
            bar.update(x.shape[0])
    if seen == 0:
        raise ValueError("the dataset is empty: pass rows with input_ids.")
    if seen < n_tokens:
        raise ValueError(
            f"the dataset yields only {seen:,} tokens of the n_tokens={n_tokens:,} requested: pass more "
            "data or a smaller n_tokens."
        )
    frequency = counts / seen
    alive = frequency > alive_threshold
    n_alive = int(alive.sum())
    if n_alive == 0:
        raise ValueError(
            f"no latent of this SAE fires more often than {alive_threshold:g} on {seen:,} tokens: it is dead on this "
            "data (wrong hook or model?), or lower alive_threshold."
        )
    energy = squares / seen * sae.W_dec.detach().double().pow(2).sum(-1) / (processing.scale or 1.0) ** 2
    l0 = float(counts[alive].sum() / seen)
    return FeatureStats.from_counts(
        n_alive,
        l0,
        energy[alive].cpu(),
        latents=alive.nonzero().flatten().cpu(),
        n_tokens=seen,
        hook_name=hook_name,
        d_in=d_in,
        alive_threshold=alive_threshold,
        metadata={"d_sae": d_sae, "dead_latents": d_sae - n_alive, "read": f"{point.read} of {point.module_name}",
                  **processing.describe()},
    )
