"""Where an SAE reads a model: hook names (module paths or TransformerLens names), the hooked module, and the model
itself from a name or an object."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from ..sources import local_folder
from .tl_hooks import LAYOUTS, HookPoint, is_transformer_lens_hook, transformer_lens_hook_point


def hook_module(model: torch.nn.Module, hook_name: str) -> torch.nn.Module:
    """The submodule called ``hook_name``; a clear error lists the residual-stream modules when it is absent."""
    modules = dict(model.named_modules())
    if hook_name not in modules:
        layers = [name for name in modules if name.count(".") == 2 and ".layers." in name]
        hint = f" Residual-stream hooks of this model: {layers[0]} ... {layers[-1]}." if layers else ""
        raise ValueError(f"hook_name {hook_name!r} is not a module of {type(model).__name__}.{hint} TransformerLens "
                         "names (blocks.0.hook_resid_post, ...) are read on GPTNeoX, GPT-2 and Llama-style models.")
    return modules[hook_name]


def hook_point(model: torch.nn.Module, hook_name: str) -> HookPoint:
    """Where ``hook_name`` is read: a TransformerLens name (``blocks.4.hook_resid_pre``) mapped onto the model's
    modules (see :mod:`hf_geokd.sae.tl_hooks`), or a module path of the model, whose output is read."""
    if is_transformer_lens_hook(hook_name) and hook_name not in dict(model.named_modules()):
        return transformer_lens_hook_point(model, hook_name)
    hook_module(model, hook_name)
    layout = LAYOUTS.get(getattr(getattr(model, "config", None), "model_type", None))
    return HookPoint(hook_name, hook_name, "output", layout.norm if layout else None)


class _StopForward(Exception):
    """Raised by the hook once the activation is captured: the layers after it are not run."""


def read_hook(model: torch.nn.Module, point: HookPoint, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[n_real_tokens, d]: ``point``'s activation of every token where ``batch["attention_mask"]`` is 1, from one
    forward that stops right after the hooked module (the layers past it are not run)."""
    module = model.get_submodule(point.module_name)
    captured: dict[str, torch.Tensor] = {}

    def capture_output(_module, _inputs, output):
        captured["x"] = output[0] if isinstance(output, tuple) else output
        raise _StopForward

    def capture_input(_module, args, kwargs):
        captured["x"] = args[0] if args else kwargs["hidden_states"]
        raise _StopForward

    handle = (module.register_forward_hook(capture_output) if point.read == "output"
              else module.register_forward_pre_hook(capture_input, with_kwargs=True))
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    except _StopForward:
        pass
    finally:
        handle.remove()
    if "x" not in captured:
        raise ValueError(f"the forward pass never reached {point.hook_name!r}: is it on the model's forward path?")
    return point.transform(captured["x"][batch["attention_mask"].bool()])


def sae_hook_name(sae) -> str | None:
    """The hook an SAE was trained on, when its config says."""
    metadata = getattr(sae.cfg, "metadata", None)
    return getattr(metadata, "hook_name", None)


def resolve_model(model: PreTrainedModel | str | Path) -> PreTrainedModel:
    """A ``transformers`` causal LM from itself, a local folder or a Hub repo id."""
    if isinstance(model, (str, Path)):
        local_folder(model)  # a path that does not exist is named as a path, not as a malformed repo id
        return AutoModelForCausalLM.from_pretrained(model)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a transformers model, a folder or a Hub repo id, got {type(model).__name__}.")
    return model
