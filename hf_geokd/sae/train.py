"""Train SAEs with sae-lens on a raw Hugging Face causal LM, each saved with its ``FeatureStats`` beside it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
from sae_lens.load_model import HookedProxyLM
from sae_lens.registry import get_sae_training_class

from .hooks import hook_module
from .load import load_sae
from .measure import measure_feature_stats


def train_sae(
    model, dataset, hook_names: Iterable[str] | str, output_dir: str | Path, expansion_factor: int = 32,
    architecture: str = "standard", l1_coefficient: float = 8e-4, k: int | None = None, lr: float = 3e-4,
    training_tokens: int = 2_000_000, train_batch_size_tokens: int = 4096, context_size: int | None = None,
    measure_tokens: int = 100_000, measure_dataset=None, device: str = "cpu", seed: int = 42,
    **runner_kwargs: Any,
) -> dict[str, Path]:
    """Train one SAE per hook with sae-lens on a raw Hugging Face causal LM and save each in sae-lens's layout,
    with our ``FeatureStats`` beside it (measured on ``measure_dataset``, held-out tokens, when given).

    Args:
        model: a ``transformers`` causal LM (e.g. GPTNeoX); hooks are module paths, ``gpt_neox.layers.{i}`` being
            the residual stream after block i.
        dataset: a ``datasets.Dataset`` with an ``input_ids`` column of equal-length blocks.
        architecture: any sae-lens training architecture (``standard`` = ReLU + L1 as in the paper, ``topk``,
            ``batchtopk``, ``jumprelu``, ``gated``, ...).
        l1_coefficient: the paper's lambda = 8e-4 (standard); ``k`` for top-k architectures.
        runner_kwargs: more ``LanguageModelSAERunnerConfig`` fields.

    Returns:
        ``{hook_name: folder}``.
    """
    hook_names = [hook_names] if isinstance(hook_names, str) else list(hook_names)
    if len(dataset) == 0 or "input_ids" not in dataset.column_names:
        raise ValueError("dataset must be a non-empty datasets.Dataset with an 'input_ids' column of token blocks.")
    context_size = context_size or len(dataset[0]["input_ids"])
    d_in = model.config.hidden_size
    output_dir = Path(output_dir)
    folders: dict[str, Path] = {}
    for hook_name in hook_names:
        hook_module(model, hook_name)
        _, config_class = get_sae_training_class(architecture)
        sae_settings: dict[str, Any] = {"d_in": d_in, "d_sae": expansion_factor * d_in,
                                        "normalize_activations": "expected_average_only_in"}
        if architecture == "standard":
            sae_settings["l1_coefficient"] = l1_coefficient
        elif k is not None:
            sae_settings["k"] = k
        folder = output_dir / hook_name
        settings = dict(
            sae=config_class(**sae_settings), model_name=getattr(model.config, "name_or_path", "") or "hf-model",
            model_class_name="AutoModelForCausalLM", hook_name=hook_name, dataset_path="", is_dataset_tokenized=True,
            context_size=context_size, training_tokens=training_tokens, train_batch_size_tokens=train_batch_size_tokens,
            n_batches_in_buffer=max(2, -(-train_batch_size_tokens // context_size) * 2), store_batch_size_prompts=8,
            lr=lr, lr_end=lr / 10, device=device, seed=seed, logger=LoggingConfig(log_to_wandb=False),
            output_path=str(folder), checkpoint_path=str(output_dir / "checkpoints" / hook_name), n_checkpoints=0,
            n_batches_for_norm_estimate=32, verbose=False,
        )
        settings.update(runner_kwargs)
        runner = LanguageModelSAETrainingRunner(
            LanguageModelSAERunnerConfig(**settings), override_dataset=dataset,
            override_model=HookedProxyLM(model, tokenizer=None, hook_names=[hook_name]),
        )
        runner.run()
        sae = load_sae(folder, device=device)
        stats = measure_feature_stats(sae, model, measure_dataset if measure_dataset is not None else dataset,
                                      hook_name, measure_tokens, device=device)
        stats.save(folder)
        folders[hook_name] = folder
    return folders
