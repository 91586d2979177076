"""What an SAE saw in training, reproduced on a raw ``transformers`` model's activations.

sae-lens trains (and evaluates) on ``HookedTransformer.from_pretrained_no_processing(model_name,
**model_from_pretrained_kwargs)``, the kwargs being recorded in the SAE's ``cfg.metadata`` (and set by the registry's
``config_overrides``, e.g. ``{"center_writing_weights": True}`` for ``gpt2-small-res-jb``). On the hooks
:mod:`.tl_hooks` reads, the flags act as follows (each checked against TransformerLens in the tests):

- ``center_writing_weights``: every matrix writing to the residual stream has its mean over d_model removed, so each
  residual-stream activation (resid_pre/mid/post, attn_out, mlp_out) becomes x - mean_d(x). TransformerLens skips it
  for RMSNorm models (Llama, Gemma), and ``hook_normalized`` does not change (a LayerNorm ignores the mean).
- ``fold_ln``, ``fold_value_biases``, ``center_unembed``, ``refactor_factored_attn_matrices``: change only
  LayerNorm weights, per-head values, attention matrices and logits, none of the hooks read here.
- ``dtype``, ``device``, ``n_devices``, ``move_to_device``, ``default_prepend_bos``, ``default_padding_side``: how the
  model is placed and how strings are tokenised (pass tokens as the SAE was trained: with a BOS if ``prepend_bos``).
- anything else (e.g. ``checkpoint_index``, ``revision``: another set of weights) is refused: we cannot tell what it
  does to the activations.

``normalize_activations`` (sae-lens 6): ``constant_norm_rescale`` and ``layer_norm`` run inside ``SAE.encode``;
``expected_average_only_in`` does not (sae-lens folds the factor into the weights when it saves a finished SAE, or
from the registry's ``norm_scaling_factor``), so an unfolded SAE gets x * s with s = sqrt(d_in) / E||x||, given or
estimated as sae-lens's ``ActivationScaler`` does; an unfolded ``covariance_whitening`` is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .tl_hooks import HookPoint

# model_from_pretrained_kwargs we reproduce (center_writing_weights) or that do not change the hooks read here
SUPPORTED_MODEL_KWARGS = frozenset({
    "fold_ln", "fold_value_biases", "center_unembed", "refactor_factored_attn_matrices", "dtype", "torch_dtype",
    "device", "n_devices", "move_to_device", "default_prepend_bos", "default_padding_side", "center_writing_weights",
})
IN_ENCODE = frozenset({"none", "constant_norm_rescale", "layer_norm"})


@dataclass(frozen=True)
class Processing:
    """The map from a raw activation x to what the SAE was trained on: centre over d_model, then scale.

    ``estimate_scale``: the SAE needs a norm scaling factor that nobody gave; :func:`norm_scaling_factor` estimates it.
    """

    center: bool = False
    scale: float | None = None
    estimate_scale: bool = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            x = x - x.mean(-1, keepdim=True)
        return x if self.scale is None else x * self.scale

    def describe(self) -> dict:
        return {"centered": self.center, "norm_scaling_factor": self.scale}


def _metadata(sae, key: str):
    metadata = getattr(sae.cfg, "metadata", None)
    return None if metadata is None else getattr(metadata, key, None)


def sae_processing(sae, point: HookPoint, model_name: str, norm_scaling_factor: float | None = None) -> Processing:
    """The :class:`Processing` that ``sae``'s config asks for at ``point``; a clear error for what we cannot do."""
    if _metadata(sae, "hook_head_index") is not None or getattr(sae.cfg, "reshape_activations", "none") != "none":
        raise ValueError(
            f"the SAE reads one attention head or per-head activations at {point.hook_name!r}; only residual-stream, "
            "attention-output, MLP-output and normalised hooks are supported."
        )
    kwargs = dict(_metadata(sae, "model_from_pretrained_kwargs") or {})
    unknown = sorted(set(kwargs) - SUPPORTED_MODEL_KWARGS)
    if unknown:
        raise ValueError(
            f"the SAE was trained on TransformerLens's model loaded with {kwargs}; {unknown} may change the "
            f"activations at {point.hook_name!r} and we cannot reproduce it on {model_name}. Load the matching weights "
            "yourself and, if the key is harmless, drop it from sae.cfg.metadata.model_from_pretrained_kwargs."
        )
    center = bool(kwargs.get("center_writing_weights")) and point.residual and point.norm != "RMS"
    if center and point.norm is None:
        raise ValueError(
            "the SAE was trained with center_writing_weights=True, which TransformerLens applies to LayerNorm "
            f"models only, and we do not know {model_name}'s norm at {point.hook_name!r}. Use a TransformerLens hook "
            "name on a GPTNeoX, GPT-2 or Llama-style model."
        )
    mode = getattr(sae.cfg, "normalize_activations", "none") or "none"
    if mode in IN_ENCODE:
        if norm_scaling_factor is not None:
            raise ValueError(f"the SAE's normalize_activations is {mode!r}: norm_scaling_factor does not apply to it.")
        return Processing(center)
    if mode == "expected_average_only_in":
        if norm_scaling_factor is not None:
            if not (math.isfinite(norm_scaling_factor) and norm_scaling_factor > 0):
                raise ValueError(f"norm_scaling_factor must be a positive number, got {norm_scaling_factor}.")
            return Processing(center, float(norm_scaling_factor))
        return Processing(center, estimate_scale=True)
    raise ValueError(
        f"the SAE's normalize_activations is {mode!r} and its weights are not folded: we cannot reproduce it. Fold it "
        "(sae.fold_activation_norm_scaling_factor / fold_whitening with the training statistics) first."
    )


def norm_scaling_factor(activations, d_in: int) -> float:
    """sqrt(d_in) / E||x|| over an iterable of [tokens, d_in] batches (sae-lens ``ActivationScaler``)."""
    total, count = 0.0, 0
    for x in activations:
        total += float(x.norm(dim=-1).double().sum())
        count += x.shape[0]
    if count == 0 or total == 0:
        raise ValueError("no non-zero activations to estimate the norm scaling factor from: pass norm_scaling_factor=.")
    return math.sqrt(d_in) / (total / count)
