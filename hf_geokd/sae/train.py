"""Train SAEs with sae-lens on a raw Hugging Face causal LM, every hook from one forward pass, each saved with its
``FeatureStats`` beside it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from datasets import IterableDataset
from sae_lens import LoggingConfig
from sae_lens.load_model import HookedProxyLM
from sae_lens.multi_sae_training_runner import MultiSAETrainingRunner, MultiSAETrainingRunnerConfig
from sae_lens.registry import get_sae_training_class

from .hooks import hook_module
from .load import load_sae
from .measure import measure_feature_stats


def train_sae(
    model, dataset, hook_names: Iterable[str] | str, output_dir: str | Path, expansion_factor: int = 32,
    architecture: str = "standard", l1_coefficient: float = 8e-4, k: int | None = None, lr: float = 3e-4,
    training_tokens: int = 2_000_000, train_batch_size_tokens: int = 4096, context_size: int | None = None,
    measure_tokens: int = 100_000, measure_dataset=None, device: str = "cpu", seed: int = 42,
    sae_kwargs: dict[str, Any] | None = None, **runner_kwargs: Any,
) -> dict[str, Path]:
    """Train one SAE per hook with sae-lens on a raw Hugging Face causal LM, all from the same teacher forward passes,
    and save each in sae-lens's layout with our ``FeatureStats`` beside it (measured on ``measure_dataset``,
    held-out tokens, when given).

    One forward per batch of prompts runs up to the deepest hook and feeds every SAE (sae-lens's
    ``MultiSAETrainingRunner``): the paper's three layers cost one pass over the tokens, not three. Each SAE has its
    own optimizer, schedules and activation scaling, and is initialised from ``seed`` alone, so an SAE trained with
    other hooks equals the one trained on its hook alone (the activation buffer shuffles every hook with the same
    permutation).

    Args:
        model: a ``transformers`` causal LM (e.g. GPTNeoX); hooks are module paths, ``gpt_neox.layers.{i}`` being
            the residual stream after block i.
        dataset: ``input_ids`` blocks of equal length: a ``datasets.Dataset`` or a streamed ``IterableDataset``
            (``hf_geokd.data.stream_token_blocks``).
        architecture: any sae-lens training architecture (``standard`` = ReLU + L1 as in the paper, ``topk``,
            ``batchtopk``, ``jumprelu``, ``gated``, ...).
        l1_coefficient: the paper's lambda = 8e-4 (standard); ``k`` for top-k architectures.
        sae_kwargs: more fields of the architecture's sae-lens training config (e.g. ``use_sparse_activations=True``
            for ``topk``: decode through a sparse matrix product).
        runner_kwargs: more ``MultiSAETrainingRunnerConfig`` fields.

    Returns:
        ``{hook_name: folder}``, each folder ``output_dir / hook_name``.
    """
    hook_names = [hook_names] if isinstance(hook_names, str) else list(dict.fromkeys(hook_names))
    if not hook_names:
        raise ValueError("pass at least one hook name (a module path such as gpt_neox.layers.2).")
    first = _first_block(dataset)
    context_size = context_size or len(first)
    for hook_name in hook_names:
        hook_module(model, hook_name)
    d_in = model.config.hidden_size
    output_dir = Path(output_dir)
    training_class, config_class = get_sae_training_class(architecture)
    sae_settings: dict[str, Any] = {"d_in": d_in, "d_sae": expansion_factor * d_in,
                                    "normalize_activations": "expected_average_only_in"}
    if architecture == "standard":
        sae_settings["l1_coefficient"] = l1_coefficient
    elif k is not None:
        sae_settings["k"] = k
    sae_settings.update(sae_kwargs or {})
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = set(sae_settings) - fields
    if unknown:
        raise ValueError(f"sae_kwargs {sorted(unknown)} are not fields of sae-lens's {config_class.__name__} "
                         f"({architecture!r}); its fields: {sorted(fields)}.")
    configs = {hook_name: config_class(**sae_settings) for hook_name in hook_names}
    saes = {}
    for hook_name in hook_names:  # the same initial SAE whichever hooks train beside it
        torch.manual_seed(seed)
        saes[hook_name] = training_class(configs[hook_name])
    settings = dict(
        saes=configs, hook_names={hook_name: hook_name for hook_name in hook_names},
        model_name=getattr(model.config, "name_or_path", "") or "hf-model", model_class_name="AutoModelForCausalLM",
        dataset_path="", context_size=context_size, training_tokens=training_tokens,
        train_batch_size_tokens=train_batch_size_tokens,
        n_batches_in_buffer=max(2, -(-train_batch_size_tokens // context_size) * 2), store_batch_size_prompts=8,
        lr=lr, lr_end=lr / 10, device=device, seed=seed, logger=LoggingConfig(log_to_wandb=False),
        output_path=str(output_dir), checkpoint_path=str(output_dir / "checkpoints"), n_checkpoints=0,
        n_batches_for_norm_estimate=32,
    )
    settings.update(runner_kwargs)
    torch.manual_seed(seed)
    runner = MultiSAETrainingRunner(
        MultiSAETrainingRunnerConfig(**settings), override_dataset=dataset, override_saes=saes,
        override_model=HookedProxyLM(model, tokenizer=None, hook_names=hook_names),
    )
    runner.run()
    folders: dict[str, Path] = {}
    for hook_name in hook_names:
        folder = output_dir / hook_name
        sae = load_sae(folder, device=device)
        stats = measure_feature_stats(sae, model, measure_dataset if measure_dataset is not None else dataset,
                                      hook_name, measure_tokens, device=device)
        stats.save(folder)
        folders[hook_name] = folder
    return folders


def _first_block(dataset) -> list[int]:
    """The first ``input_ids`` block; a clear error when the dataset has none."""
    columns = dataset.column_names or []
    if "input_ids" not in columns:
        raise ValueError("dataset must hold token blocks in an 'input_ids' column (datasets.Dataset or a stream "
                         "from hf_geokd.data.stream_token_blocks).")
    if isinstance(dataset, IterableDataset):
        row = next(iter(dataset), None)
    else:
        row = dataset[0] if len(dataset) else None
    if row is None:
        raise ValueError("dataset must be non-empty: it holds no token block.")
    return list(row["input_ids"])
