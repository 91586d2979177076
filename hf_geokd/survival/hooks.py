"""Where the student is read: the block at the teacher hook's relative depth, through the SAE package's hook reader.

A teacher hook is a module path (``gpt_neox.layers.2``: its output) or a TransformerLens name
(``blocks.2.hook_resid_post``), read as :func:`hf_geokd.sae.hooks.hook_point` maps it; the student is read at the
same kind of hook in its own block at the same relative depth.
"""

from __future__ import annotations

import math
import re

import torch

from ..sae.hooks import hook_point, read_hook
from ..sae.tl_hooks import TL_HOOK

_LAYER_HOOK = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)$")


def count_layers(model: torch.nn.Module, prefix: str) -> int:
    """How many modules are called ``{prefix}{i}`` for i = 0, 1, ... (the blocks of a layer stack)."""
    names = {name for name, _ in model.named_modules()}
    count = 0
    while f"{prefix}{count}" in names:
        count += 1
    return count


def _same_depth(index: int, teacher_layers: int, student_layers: int, before: bool = False) -> int:
    """The student block at the teacher's relative depth, ties rounded up. After block i of L_T (depth
    (i + 1) / L_T) maps to after block j = floor((i + 1) L_S / L_T + 1/2) - 1; before block i (``hook_resid_pre``,
    depth i / L_T) maps to before block j = floor(i L_S / L_T + 1/2)."""
    depth = index if before else index + 1
    block = math.floor(depth * student_layers / teacher_layers + 0.5) - (0 if before else 1)
    return min(max(0, block), student_layers - 1)


def matching_hook(teacher: torch.nn.Module, hook_name: str, student: torch.nn.Module) -> str:
    """The student's hook at the same relative depth as the teacher's ``hook_name``: the same site of block j for
    a TransformerLens name (``blocks.i.hook_resid_post`` -> ``blocks.j.hook_resid_post``), block j of the same stack
    for a numbered module path (``gpt_neox.layers.i`` -> ``gpt_neox.layers.j``); equal depths give the same index.
    Pass ``student_hook`` explicitly for other hooks."""
    match = TL_HOOK.fullmatch(hook_name)
    if match is not None and hook_name not in dict(teacher.named_modules()):
        if match["layer"] is None:  # ln_final: the same place in any model
            return hook_name
        layers = [getattr(getattr(model, "config", None), "num_hidden_layers", None) for model in (teacher, student)]
        if None in layers:
            raise ValueError(f"hook {hook_name!r} is a TransformerLens name but a model has no "
                             "config.num_hidden_layers: pass student_hook=.")
        before = match["site"] == "hook_resid_pre"
        return f"blocks.{_same_depth(int(match['layer']), *layers, before=before)}.{match['site']}"
    match = _LAYER_HOOK.match(hook_name)
    if match is None:
        raise ValueError(f"hook {hook_name!r} is not a numbered block (like 'gpt_neox.layers.2'): pass student_hook=.")
    prefix, index = match["prefix"], int(match["index"])
    teacher_layers, student_layers = count_layers(teacher, prefix), count_layers(student, prefix)
    if teacher_layers == 0 or student_layers == 0:
        raise ValueError(f"no blocks named {prefix}0, {prefix}1, ... in the teacher or the student: "
                         "pass student_hook=.")
    return f"{prefix}{_same_depth(index, teacher_layers, student_layers)}"


class ResidualReader:
    """Runs a model up to one hook and returns its activation (the residual stream) for the real tokens."""

    def __init__(self, model: torch.nn.Module, hook_name: str) -> None:
        self.model, self.hook_name = model, hook_name
        self.point = hook_point(model, hook_name)

    @torch.no_grad()
    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[n_real_tokens, d] float32 activations at the hook for ``batch`` (``input_ids``, ``attention_mask``)."""
        x = read_hook(self.model, self.point, batch).float()
        if not torch.isfinite(x).all():
            raise ValueError(f"NaN or infinite activations at {self.hook_name}: check the model's dtype and inputs.")
        return x
