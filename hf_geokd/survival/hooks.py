"""Where the student is read: the layer at the teacher hook's relative depth, and a forward that stops there.

The SAE is only duck-typed here (``encode``, ``W_dec``, ``cfg``), so this subpackage does not import sae-lens.
"""

from __future__ import annotations

import re

import torch

_LAYER_HOOK = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)$")


class _StopForward(Exception):
    """Raised by the hook once the activation is captured: the layers after it are not run."""


def sae_hook_name(sae) -> str | None:
    """The hook an SAE was trained on, when its config says (sae-lens: ``cfg.metadata.hook_name``)."""
    return getattr(getattr(sae.cfg, "metadata", None), "hook_name", None)


def hook_module(model: torch.nn.Module, hook_name: str) -> torch.nn.Module:
    """The submodule called ``hook_name``; a clear error lists the numbered blocks when it is absent."""
    modules = dict(model.named_modules())
    if hook_name not in modules:
        blocks = [name for name in modules if _LAYER_HOOK.match(name) and ".layers." in f".{name}"]
        hint = f" Blocks of this model: {blocks[0]} ... {blocks[-1]}." if blocks else ""
        raise ValueError(f"hook {hook_name!r} is not a module of {type(model).__name__}.{hint}")
    return modules[hook_name]


def count_layers(model: torch.nn.Module, prefix: str) -> int:
    """How many modules are called ``{prefix}{i}`` for i = 0, 1, ... (the blocks of a layer stack)."""
    names = {name for name, _ in model.named_modules()}
    count = 0
    while f"{prefix}{count}" in names:
        count += 1
    return count


def matching_hook(teacher: torch.nn.Module, hook_name: str, student: torch.nn.Module) -> str:
    """The student's block at the same relative depth as the teacher's ``hook_name`` (``gpt_neox.layers.i``).

    Block i of L_T (depth (i + 1) / L_T) maps to block j = round((i + 1) L_S / L_T) - 1 of the student's L_S, so
    equal depths give the same index. Pass ``student_hook`` explicitly for hooks that are not numbered blocks.
    """
    match = _LAYER_HOOK.match(hook_name)
    if match is None:
        raise ValueError(f"hook {hook_name!r} is not a numbered block (like 'gpt_neox.layers.2'): pass student_hook=.")
    prefix, index = match["prefix"], int(match["index"])
    teacher_layers, student_layers = count_layers(teacher, prefix), count_layers(student, prefix)
    if teacher_layers == 0 or student_layers == 0:
        raise ValueError(f"no blocks named {prefix}0, {prefix}1, ... in the teacher or the student: "
                         "pass student_hook=.")
    student_index = max(0, round((index + 1) * student_layers / teacher_layers) - 1)
    return f"{prefix}{student_index}"


class ResidualReader:
    """Runs a model up to one module and returns that module's output (the residual stream) for the real tokens."""

    def __init__(self, model: torch.nn.Module, hook_name: str) -> None:
        self.model, self.hook_name = model, hook_name
        self.module = hook_module(model, hook_name)

    @torch.no_grad()
    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[n_real_tokens, d] activations at the hook for ``batch`` (``input_ids``, ``attention_mask``)."""
        captured: dict[str, torch.Tensor] = {}

        def capture(_module, _inputs, output):
            captured["x"] = output[0] if isinstance(output, tuple) else output
            raise _StopForward

        handle = self.module.register_forward_hook(capture)
        try:
            self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        except _StopForward:
            pass
        finally:
            handle.remove()
        if "x" not in captured:
            raise ValueError(f"the forward pass never reached {self.hook_name!r}: is it on the model's forward path?")
        x = captured["x"][batch["attention_mask"].bool()].float()
        if not torch.isfinite(x).all():
            raise ValueError(f"NaN or infinite activations at {self.hook_name}: check the model's dtype and inputs.")
        return x
