"""TransformerLens hook names read from a ``transformers`` model: which module, its input or its output.

Most public SAEs (sae-lens's registry: ``gpt2-small-res-jb``, ``pythia-70m-deduped-res-sm``, Gemma Scope, Llama Scope)
name their hook the TransformerLens way. On an unprocessed TransformerLens model each hook equals a tensor of the raw
``transformers`` model (checked against ``HookedTransformer.run_with_cache`` in the tests to 1e-4 in fp32 for GPTNeoX,
GPT-2 and Llama; Mistral, Qwen2 and Gemma 1/2/3 follow the same code paths but are not checked):

    blocks.L.hook_resid_pre       input of decoder layer L (blocks.0: the embedding output)
    blocks.L.hook_resid_mid       input of layer L's second norm (sequential blocks only; parallel ones have none)
    blocks.L.hook_resid_post      output of decoder layer L (not ``hidden_states[L + 1]`` for the last layer, which
                                  is after the final norm)
    blocks.L.hook_attn_out        output of layer L's attention (after the output projection and its bias)
    blocks.L.hook_mlp_out         output of layer L's MLP
    blocks.L.ln1.hook_normalized  input of layer L's first norm, normalised without its affine map (x - mean) / std
    blocks.L.ln2.hook_normalized  the same for the second norm   (RMSNorm models: x / rms)
    ln_final.hook_normalized      the same for the final norm

Reading the raw model with hooks, rather than converting it to a ``HookedTransformer``, costs no second copy of the
weights, stops the forward right after the hook, and needs no TransformerLens-known model name (TransformerLens builds
its config from the official name and hard-codes Llama and Gemma shapes). What the SAE's training-time processing
(``center_writing_weights``, activation normalisation) changes is applied afterwards by :mod:`.processing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class BlockLayout:
    """Where a model family keeps its blocks and their parts (module paths)."""

    blocks: str
    attn: str
    mlp: str
    ln1: str
    ln2: str
    ln_final: str
    norm: Literal["LN", "RMS"]
    attn_out: str | None = None  # a module whose output is attn_out when it is not the attention's own (Gemma 2/3)
    mlp_out: str | None = None


LAYOUTS: dict[str, BlockLayout] = {
    "gpt_neox": BlockLayout("gpt_neox.layers", "attention", "mlp", "input_layernorm", "post_attention_layernorm",
                            "gpt_neox.final_layer_norm", "LN"),
    "gpt2": BlockLayout("transformer.h", "attn", "mlp", "ln_1", "ln_2", "transformer.ln_f", "LN"),
    "llama": BlockLayout("model.layers", "self_attn", "mlp", "input_layernorm", "post_attention_layernorm",
                         "model.norm", "RMS"),
}
LAYOUTS["mistral"] = LAYOUTS["qwen2"] = LAYOUTS["gemma"] = LAYOUTS["llama"]
# Gemma 2/3 normalise each branch's output before adding it back; TransformerLens's attn_out and mlp_out are after it.
LAYOUTS["gemma2"] = LAYOUTS["gemma3_text"] = BlockLayout(
    "model.layers", "self_attn", "mlp", "input_layernorm", "pre_feedforward_layernorm", "model.norm", "RMS",
    attn_out="post_attention_layernorm", mlp_out="post_feedforward_layernorm",
)

TL_HOOK = re.compile(r"blocks\.(?P<layer>\d+)\.(?P<site>hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|"
                     r"hook_mlp_out|ln1\.hook_normalized|ln2\.hook_normalized)|ln_final\.hook_normalized")
TL_SITES = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
            "ln1.hook_normalized", "ln2.hook_normalized")


@dataclass(frozen=True)
class HookPoint:
    """Where to read a hook: ``module``'s input or output, then optionally normalised without the affine map.

    ``norm`` is the model's normalisation family (``LN`` or ``RMS``), which decides whether TransformerLens's
    ``center_writing_weights`` applies; ``normalize`` and ``eps`` give ``hook_normalized``'s computation.
    """

    hook_name: str
    module_name: str
    read: Literal["input", "output"]
    norm: Literal["LN", "RMS"] | None = None
    normalize: Literal["LN", "RMS"] | None = None
    eps: float = 1e-5
    residual: bool = True  # a residual-stream quantity (shifted by centering); hook_normalized is not

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``hook_normalized``'s affine-free norm: (x - mean) / sqrt(var + eps), or x / sqrt(mean x^2 + eps)."""
        if self.normalize == "LN":
            return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=self.eps)
        if self.normalize == "RMS":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x


def is_transformer_lens_hook(hook_name: str) -> bool:
    """Whether ``hook_name`` is spelled the TransformerLens way (``blocks.L.hook_...``, ``ln_final.hook_...``)."""
    return hook_name.startswith(("blocks.", "ln_final.", "hook_embed", "hook_pos_embed"))


def _eps(module: torch.nn.Module) -> float:
    for name in ("eps", "variance_epsilon", "epsilon"):
        if isinstance(getattr(module, name, None), float):
            return getattr(module, name)
    raise ValueError(f"cannot read the epsilon of the norm {type(module).__name__}.")


def valid_hook_names(model: torch.nn.Module) -> list[str]:
    """Every TransformerLens hook name this module can read on ``model`` (for error messages and docs)."""
    n_layers = model.config.num_hidden_layers
    return [f"blocks.{{0..{n_layers - 1}}}.{site}" for site in TL_SITES] + ["ln_final.hook_normalized"]


def transformer_lens_hook_point(model: torch.nn.Module, hook_name: str) -> HookPoint:
    """Map a TransformerLens hook name onto ``model``'s modules, or fail naming the hook, the model and what works."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    model_name = type(model).__name__
    if model_type not in LAYOUTS:
        raise ValueError(
            f"hook {hook_name!r} is a TransformerLens hook name, which we map onto GPTNeoX, GPT-2, Llama, Mistral, "
            f"Qwen2 and Gemma models only, not {model_name} (model_type {model_type!r}). Pass hook_name= as a module "
            "path of this model (its output is read), e.g. the decoder layer for a hook_resid_post."
        )
    layout = LAYOUTS[model_type]
    match = TL_HOOK.fullmatch(hook_name)
    n_layers = config.num_hidden_layers
    if match is None or (match["layer"] is not None and int(match["layer"]) >= n_layers):
        raise ValueError(
            f"hook {hook_name!r} cannot be read from {model_name} ({n_layers} layers). Valid TransformerLens hook "
            f"names: {', '.join(valid_hook_names(model))}. (Attention-head hooks such as hook_z, MLP neurons and "
            "transcoder outputs are not supported.)"
        )
    if match["layer"] is None:
        return _normalized(model, hook_name, layout.ln_final, layout)
    block = f"{layout.blocks}.{match['layer']}"
    site = match["site"]
    if site == "hook_resid_pre":
        return HookPoint(hook_name, block, "input", layout.norm)
    if site == "hook_resid_post":
        return HookPoint(hook_name, block, "output", layout.norm)
    if site == "hook_attn_out":
        return HookPoint(hook_name, f"{block}.{layout.attn_out or layout.attn}", "output", layout.norm)
    if site == "hook_mlp_out":
        return HookPoint(hook_name, f"{block}.{layout.mlp_out or layout.mlp}", "output", layout.norm)
    if site == "hook_resid_mid":
        if getattr(config, "use_parallel_residual", False):
            raise ValueError(
                f"hook {hook_name!r} does not exist on {model_name} with use_parallel_residual=True: attention and MLP "
                "read the same resid_pre (TransformerLens has no hook_resid_mid there). Use hook_resid_pre."
            )
        return HookPoint(hook_name, f"{block}.{layout.ln2}", "input", layout.norm)
    return _normalized(model, hook_name, f"{block}.{layout.ln1 if site.startswith('ln1') else layout.ln2}", layout)


def _normalized(model: torch.nn.Module, hook_name: str, norm_module: str, layout: BlockLayout) -> HookPoint:
    eps = _eps(model.get_submodule(norm_module))
    return HookPoint(hook_name, norm_module, "input", layout.norm, layout.norm, eps, residual=False)
