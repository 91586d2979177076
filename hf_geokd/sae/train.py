"""Train SAEs with sae-lens on a raw Hugging Face causal LM, every hook from one forward pass, each saved with its
``FeatureStats`` beside it: :class:`SAETrainingConfig` holds the settings (TRL's style: a dataclass that a YAML recipe
fills), :func:`train_sae` runs them."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import IterableDataset
from sae_lens import LoggingConfig
from sae_lens.load_model import HookedProxyLM
from sae_lens.multi_sae_training_runner import (  # the exception its own signal handlers raise
    InterruptedException,
    MultiSAETrainingRunner,
    MultiSAETrainingRunnerConfig,
)
from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY, get_sae_training_class

from ..checks import check_positive_int
from ..stats import STATS_CONFIG_NAME, STATS_WEIGHTS_NAME
from ..stop_signals import stop_signal_handlers
from .hooks import hook_module
from .load import SPARSITY_NAME, load_sae
from .measure import measure_feature_stats

PAPER_L1_COEFFICIENT = 8e-4  # the paper's lambda (Appendix D)
SAE_FILES = frozenset({"cfg.json", "sae_weights.safetensors", SPARSITY_NAME, STATS_CONFIG_NAME, STATS_WEIGHTS_NAME})
RUNNER_CONFIG_NAME = "runner_cfg.json"
# Fields of the architecture's sae-lens config that SAETrainingConfig (or the model) sets: sae_kwargs may not.
OWNED_SAE_FIELDS = {
    "d_in": "it is the model's hidden size",
    "d_sae": "set expansion_factor (d_sae = expansion_factor x d_in)",
    "l1_coefficient": "set l1_coefficient",
    "k": "set k",
}
# Fields of sae-lens's runner config that SAETrainingConfig or train_sae's arguments set: runner_kwargs may not.
OWNED_RUNNER_FIELDS = {
    **{name: f"it is SAETrainingConfig's field {name}: set it there"
       for name in ("context_size", "training_tokens", "train_batch_size_tokens", "lr", "device", "seed")},
    **{name: "train_sae sets it from its arguments"
       for name in ("saes", "hook_names", "model_name", "model_class_name", "dataset_path", "output_path")},
}
RUNNER_FIELDS = {f.name for f in dataclasses.fields(MultiSAETrainingRunnerConfig) if not f.name.startswith("_")}


@dataclass
class SAETrainingConfig:
    """Settings of :func:`train_sae`: one SAE per hook, trained by sae-lens.

    Every field is also a flag of ``recipes/train_sae.py`` (and a key of its YAML files). Each value is checked when
    the config is made, and a bad one raises ``ValueError`` naming the field and the fix.

    Parameters:
        architecture: a sae-lens training architecture: ``standard`` (ReLU + L1, the paper's), ``topk``,
            ``batchtopk``, ``jumprelu``, ``gated``, ``abstopk``, ``matryoshka_batchtopk``, ``matching_pursuit``.
        expansion_factor: latents per input dimension (d_sae = expansion_factor x the model's hidden size).
        l1_coefficient: the L1 penalty of ``standard`` and ``gated`` SAEs; None: the paper's 8e-4 for ``standard``,
            sae-lens's default for ``gated``. Refused for architectures without an L1 penalty.
        k: active latents per token of the top-k architectures; None: sae-lens's default (100). Refused for the
            others; at most d_sae.
        lr: Adam learning rate (it decays to lr / 10).
        training_tokens: tokens each SAE trains on (at least one batch).
        train_batch_size_tokens: tokens per optimizer step.
        context_size: tokens per sequence fed to the model; None: the length of the dataset's blocks.
        measure_tokens: tokens that measure each SAE's ``FeatureStats`` after training.
        device: where the SAEs train (``cpu``, ``cuda``, ``cuda:1``, ...).
        seed: sets each SAE's initialisation (the same whichever hooks train beside it) and the order in which
            sae-lens's buffer shuffles the activations. Train several SAEs of one teacher with different seeds to see
            how much of a result is the SAE's.
        sae_kwargs: more fields of the architecture's sae-lens training config (e.g. ``{"use_sparse_activations":
            true}`` for ``topk``); a JSON object when given as a string (the command line).
        runner_kwargs: more fields of sae-lens's ``MultiSAETrainingRunnerConfig`` (e.g. ``lr_warm_up_steps``); a JSON
            object when given as a string.
        overwrite: replace what ``output_dir/<hook>`` holds: a complete SAE trained before, or files that are not an
            SAE ``train_sae`` wrote. Off: those are refused (an interrupted run's SAE, without its statistics, is
            always replaced).
    """

    architecture: str = field(
        default="standard",
        metadata={"help": "sae-lens training architecture: standard (the paper's ReLU + L1), topk, batchtopk, ..."})
    expansion_factor: int = field(default=32, metadata={"help": "Latents per input dimension (d_sae / d_in)."})
    l1_coefficient: float | None = field(
        default=None, metadata={"help": "L1 penalty (standard, gated); default: the paper's 8e-4 for standard."})
    k: int | None = field(default=None, metadata={"help": "Active latents per token (top-k architectures)."})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate."})
    training_tokens: int = field(default=2_000_000, metadata={"help": "Tokens each SAE trains on."})
    train_batch_size_tokens: int = field(default=4096, metadata={"help": "Tokens per optimizer step."})
    context_size: int | None = field(default=None, metadata={"help": "Tokens per sequence; default: the block length."})
    measure_tokens: int = field(default=100_000, metadata={"help": "Tokens that measure each SAE's FeatureStats."})
    device: str = field(default="cpu", metadata={"help": "Where the SAEs train (cpu, cuda, ...)."})
    seed: int = field(default=42, metadata={"help": "Sets each SAE's initialisation and the activations' order."})
    sae_kwargs: dict | str | None = field(
        default=None, metadata={"help": "More fields of the architecture's sae-lens config (a JSON object)."})
    runner_kwargs: dict | str | None = field(
        default=None, metadata={"help": "More fields of sae-lens's MultiSAETrainingRunnerConfig (a JSON object)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a trained SAE or foreign files in output_dir."})

    def __post_init__(self) -> None:
        self.sae_kwargs = _json_object(self.sae_kwargs, "sae_kwargs")
        self.runner_kwargs = _json_object(self.runner_kwargs, "runner_kwargs")
        self._check_architecture()
        self._check_sizes()
        self._check_sparsity()
        self._check_sae_kwargs()
        self._check_runner_kwargs()
        self._check_device()

    @property
    def sae_config_class(self) -> type:
        """sae-lens's training config class of ``architecture``."""
        return get_sae_training_class(self.architecture)[1]

    def _check_architecture(self) -> None:
        if self.architecture not in SAE_TRAINING_CLASS_REGISTRY:
            raise ValueError(f"architecture={self.architecture!r} is not a sae-lens training architecture: use one of "
                             f"{sorted(SAE_TRAINING_CLASS_REGISTRY)} ('standard' is the paper's ReLU + L1).")

    def _check_sizes(self) -> None:
        for name in ("expansion_factor", "training_tokens", "train_batch_size_tokens", "measure_tokens"):
            check_positive_int(getattr(self, name), name)
        if self.context_size is not None:
            check_positive_int(self.context_size, "context_size")
        if self.training_tokens < self.train_batch_size_tokens:
            raise ValueError(
                f"training_tokens={self.training_tokens} is less than one batch (train_batch_size_tokens="
                f"{self.train_batch_size_tokens}): the SAE would not train a single step. Raise training_tokens or "
                "lower train_batch_size_tokens."
            )
        _check_positive_real(self.lr, "lr")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}.")
        if not isinstance(self.overwrite, bool):
            raise ValueError(f"overwrite must be True or False, got {self.overwrite!r}.")

    def _check_sparsity(self) -> None:
        fields = _config_fields(self.architecture)
        for name, value in (("l1_coefficient", self.l1_coefficient), ("k", self.k)):
            if value is not None and name not in fields:
                users = sorted(a for a in SAE_TRAINING_CLASS_REGISTRY if name in _config_fields(a))
                raise ValueError(f"{name}={value!r} does not apply to architecture={self.architecture!r}: it is a "
                                 f"setting of {users}. Leave it unset, or pick one of those architectures.")
        if self.l1_coefficient is not None:
            _check_positive_real(self.l1_coefficient, "l1_coefficient", allow_zero=True)
        if self.k is not None:
            check_positive_int(self.k, "k")

    def _check_sae_kwargs(self) -> None:
        owned = sorted(set(self.sae_kwargs) & set(OWNED_SAE_FIELDS))
        if owned:
            raise ValueError(f"sae_kwargs may not set {owned[0]!r}: {OWNED_SAE_FIELDS[owned[0]]}.")
        fields = _config_fields(self.architecture)
        unknown = sorted(set(self.sae_kwargs) - fields)
        if unknown:
            raise ValueError(f"sae_kwargs {unknown} are not fields of sae-lens's {self.sae_config_class.__name__} "
                             f"({self.architecture!r}); its fields: {sorted(fields)}.")

    def _check_runner_kwargs(self) -> None:
        owned = sorted(set(self.runner_kwargs) & set(OWNED_RUNNER_FIELDS))
        if owned:
            raise ValueError(f"runner_kwargs may not set {owned[0]!r}: {OWNED_RUNNER_FIELDS[owned[0]]}.")
        unknown = sorted(set(self.runner_kwargs) - RUNNER_FIELDS)
        if unknown:
            names = [f.name for f in dataclasses.fields(self)] + sorted(RUNNER_FIELDS)
            close = {name: difflib.get_close_matches(name, names, n=1) for name in unknown}
            hints = "; ".join(f"{name}: did you mean {match[0]}?" for name, match in close.items() if match)
            raise ValueError(f"{unknown} are neither SAETrainingConfig fields nor fields of sae-lens's "
                             f"MultiSAETrainingRunnerConfig{f' ({hints})' if hints else ''}. SAETrainingConfig's "
                             f"fields: {[f.name for f in dataclasses.fields(self)]}.")

    def _check_device(self) -> None:
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device={self.device!r} is not a torch device: use 'cpu' or 'cuda'.") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but torch sees no CUDA device: set device='cpu'.")

    def sae_settings(self, d_in: int) -> dict[str, Any]:
        """The fields of the architecture's sae-lens config for a model of hidden size ``d_in``."""
        settings: dict[str, Any] = {"d_in": d_in, "d_sae": self.expansion_factor * d_in,
                                    "normalize_activations": "expected_average_only_in"}
        if self.l1_coefficient is not None or self.architecture == "standard":
            settings["l1_coefficient"] = PAPER_L1_COEFFICIENT if self.l1_coefficient is None else self.l1_coefficient
        if self.k is not None:
            settings["k"] = self.k
        settings.update(self.sae_kwargs)
        self._check_k(settings)
        return settings

    def _check_k(self, settings: dict[str, Any]) -> None:
        """k at most d_sae (known once the model gives d_in), sae-lens's default k included."""
        fields = {f.name: f for f in dataclasses.fields(self.sae_config_class)}
        if "k" not in fields:
            return
        k = settings.get("k", fields["k"].default)
        if k > settings["d_sae"]:
            source = f"k={k}" if self.k is not None else f"sae-lens's default k={k}"
            raise ValueError(f"{source} exceeds d_sae = expansion_factor x d_in = {self.expansion_factor} x "
                             f"{settings['d_in']} = {settings['d_sae']}: set k to at most {settings['d_sae']}, or "
                             "raise expansion_factor.")


def _config_fields(architecture: str) -> set[str]:
    """The field names of sae-lens's training config of ``architecture``."""
    return {f.name for f in dataclasses.fields(get_sae_training_class(architecture)[1])}


def _json_object(value: dict | str | None, name: str) -> dict[str, Any]:
    """``value`` as a dict: None is empty, a string is parsed as a JSON object (what a recipe's flag holds)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ValueError(f"{name} must be a JSON object such as '{{\"aux_loss_coefficient\": 0.5}}', got "
                             f"{value!r} ({error}).") from error
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a mapping of field names to values, got {value!r}.")
    return dict(value)


def _check_positive_real(value: Any, name: str, allow_zero: bool = False) -> None:
    """A finite real number > 0 (or >= 0)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not real or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")


def resolve_training_config(config: SAETrainingConfig | None, settings: dict[str, Any]) -> SAETrainingConfig:
    """One :class:`SAETrainingConfig` from ``config`` and keyword settings (which override it): the keywords that
    are not its fields are sae-lens runner fields, as ``train_sae``'s extra keywords always were."""
    if isinstance(config, numbers.Integral) and not isinstance(config, bool):  # the old positional expansion_factor
        if "expansion_factor" in settings:
            raise TypeError("train_sae() got multiple values for argument 'expansion_factor'.")
        warnings.warn("train_sae's fifth positional argument is now config=SAETrainingConfig(...): pass "
                      f"expansion_factor={config} as a keyword (a positional expansion_factor will stop working).",
                      FutureWarning, stacklevel=3)
        config, settings = None, {**settings, "expansion_factor": config}
    if config is not None and not isinstance(config, SAETrainingConfig):
        raise TypeError(f"config must be an SAETrainingConfig, got {type(config).__name__} ({config!r}): pass the "
                        "settings as keywords (expansion_factor=32, ...) or config=SAETrainingConfig(...).")
    names = {f.name for f in dataclasses.fields(SAETrainingConfig)}
    fields = {key: value for key, value in settings.items() if key in names}
    runner = {key: value for key, value in settings.items() if key not in names}
    base = config or SAETrainingConfig()
    if runner:
        given = fields.get("runner_kwargs", base.runner_kwargs)
        fields["runner_kwargs"] = {**_json_object(given, "runner_kwargs"), **runner}
    return dataclasses.replace(base, **fields) if fields else base


def train_sae(model, dataset, hook_names: Iterable[str] | str, output_dir: str | Path,
              config: SAETrainingConfig | None = None, *, measure_dataset=None, **settings: Any) -> dict[str, Path]:
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
        output_dir: each SAE goes to ``output_dir / hook_name``. A folder there that holds something other than an
            SAE of ``train_sae``, or a complete SAE trained before, is refused unless ``overwrite=True``.
        config: the settings (:class:`SAETrainingConfig`).
        measure_dataset: held-out blocks for the statistics (default: ``dataset``).
        settings: :class:`SAETrainingConfig` fields as keywords (``expansion_factor=8, k=16, ...``; they override
            ``config``'s), and more fields of sae-lens's ``MultiSAETrainingRunnerConfig``.

    Returns:
        ``{hook_name: folder}``, each folder ``output_dir / hook_name``.
    """
    config = resolve_training_config(config, settings)
    hook_names = [hook_names] if isinstance(hook_names, str) else list(dict.fromkeys(hook_names))
    if not hook_names:
        raise ValueError("pass at least one hook name (a module path such as gpt_neox.layers.2).")
    context_size = config.context_size or len(_first_block(dataset))
    for hook_name in hook_names:
        hook_module(model, hook_name)
    sae_settings = config.sae_settings(model.config.hidden_size)
    output_dir = Path(output_dir)
    _prepare_output(output_dir, hook_names, config.overwrite)
    sae_configs = {hook_name: config.sae_config_class(**sae_settings) for hook_name in hook_names}
    saes = _initial_saes(config, sae_configs)
    runner_config = _runner_config(config, model, sae_configs, context_size, output_dir)
    torch.manual_seed(config.seed)  # the order in which the activation buffer is shuffled
    runner = MultiSAETrainingRunner(runner_config, override_dataset=dataset, override_saes=saes,
                                    override_model=HookedProxyLM(model, tokenizer=None, hook_names=hook_names))
    _run_keeping_signal_handlers(runner)
    return {hook_name: _save_stats(model, output_dir / hook_name, hook_name, config,
                                   measure_dataset if measure_dataset is not None else dataset)
            for hook_name in hook_names}


def _run_keeping_signal_handlers(runner: MultiSAETrainingRunner) -> None:
    """``runner.run()``, with the SIGINT and SIGTERM handlers given back as they were: sae-lens installs its own for
    its training and leaves them, which would turn any later Ctrl-C in the process into its ``InterruptedException``
    (a traceback instead of a clean stop). An interrupted SAE training is a ``KeyboardInterrupt``."""
    try:
        with stop_signal_handlers():
            runner.run()
    except InterruptedException as interrupted:
        raise KeyboardInterrupt("the SAE training was interrupted (run it again: it trains from the start)") \
            from interrupted


def _initial_saes(config: SAETrainingConfig, sae_configs: dict[str, Any]) -> dict[str, Any]:
    """One untrained sae-lens training SAE per hook, each initialised from ``config.seed`` alone (the same SAE
    whichever hooks train beside it)."""
    training_class = get_sae_training_class(config.architecture)[0]
    saes = {}
    for hook_name, sae_config in sae_configs.items():
        torch.manual_seed(config.seed)
        saes[hook_name] = training_class(sae_config)
    return saes


def _runner_config(config: SAETrainingConfig, model, sae_configs: dict[str, Any], context_size: int,
                   output_dir: Path) -> MultiSAETrainingRunnerConfig:
    """sae-lens's runner config: our settings, then ``config.runner_kwargs``."""
    settings = dict(
        saes=sae_configs, hook_names={hook_name: hook_name for hook_name in sae_configs},
        model_name=getattr(model.config, "name_or_path", "") or "hf-model", model_class_name="AutoModelForCausalLM",
        dataset_path="", context_size=context_size, training_tokens=config.training_tokens,
        train_batch_size_tokens=config.train_batch_size_tokens,
        n_batches_in_buffer=max(2, -(-config.train_batch_size_tokens // context_size) * 2), store_batch_size_prompts=8,
        lr=config.lr, lr_end=config.lr / 10, device=config.device, seed=config.seed,
        logger=LoggingConfig(log_to_wandb=False), output_path=str(output_dir),
        checkpoint_path=str(output_dir / "checkpoints"), n_checkpoints=0, n_batches_for_norm_estimate=32,
    )
    return MultiSAETrainingRunnerConfig(**{**settings, **config.runner_kwargs})


def _save_stats(model, folder: Path, hook_name: str, config: SAETrainingConfig, dataset) -> Path:
    """Measure the SAE saved in ``folder`` and write its ``FeatureStats`` beside it."""
    sae = load_sae(folder, device=config.device)
    measure_feature_stats(sae, model, dataset, hook_name, config.measure_tokens, device=config.device).save(folder)
    return folder


def _prepare_output(output_dir: Path, hook_names: list[str], overwrite: bool) -> None:
    """Make room for the SAEs: refuse a file as ``output_dir``, and folders holding something ``train_sae`` did not
    write (or a complete SAE) unless ``overwrite``; clear what will be replaced, so that no statistics of an earlier
    SAE sit beside a new one."""
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"output_dir {output_dir} is a file: pass a folder (each SAE goes to "
                                 "output_dir/<hook>).")
    _check_runner_file(output_dir / RUNNER_CONFIG_NAME, overwrite)
    for hook_name in hook_names:
        folder = output_dir / hook_name
        if not folder.exists():
            continue
        problem = _occupied(folder, hook_name)
        if problem and not overwrite:
            raise FileExistsError(f"{folder} {problem}: pass overwrite=True to replace it, or choose another "
                                  "output_dir.")
        shutil.rmtree(folder) if folder.is_dir() else folder.unlink()


def _occupied(folder: Path, hook_name: str) -> str | None:
    """Why training into ``folder`` would replace something worth keeping, or None when it holds only what an
    interrupted ``train_sae`` run left (an SAE without its statistics)."""
    if not folder.is_dir():
        return "is a file, not an SAE folder"
    names = {path.name for path in folder.iterdir()}
    foreign = sorted(names - SAE_FILES)
    if foreign:
        return f"holds files train_sae does not write ({', '.join(foreign)})"
    if "cfg.json" in names and _config_hook(folder / "cfg.json") != hook_name:
        return f"holds a cfg.json that is not a sae-lens SAE of {hook_name}"
    if STATS_CONFIG_NAME in names:
        return "already holds a trained SAE with its statistics"
    return None


def _config_hook(path: Path) -> str | None:
    """The hook of the sae-lens SAE config in ``path``, or None when it is not one."""
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    metadata = config.get("metadata") if isinstance(config, dict) else None
    return metadata.get("hook_name") if isinstance(metadata, dict) else None


def _check_runner_file(path: Path, overwrite: bool) -> None:
    """sae-lens writes its runner config to ``output_dir/runner_cfg.json``: refuse to replace another file there."""
    if not path.exists() or overwrite:
        return
    try:
        config = json.loads(path.read_text()) if path.is_file() else None
    except (ValueError, UnicodeDecodeError):
        config = None
    if not (isinstance(config, dict) and {"saes", "hook_names"} <= set(config)):
        raise FileExistsError(f"{path} is not a sae-lens runner config, and train_sae writes one there: pass "
                              "overwrite=True to replace it, or choose another output_dir.")


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
