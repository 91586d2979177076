"""Narrow GPTNeoX students of a teacher (paper Table 8), and the Pythia suite's configs embedded for offline use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, GPTNeoXConfig, GPTNeoXForCausalLM, PretrainedConfig

from ..checks import check_width

# (hidden, layers, heads, vocab) of each Pythia model; FFN is 4x hidden, 2048 positions, rotary on 25% of each head.
PYTHIA_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "14m": (128, 6, 4, 50304),
    "31m": (256, 6, 8, 50304),
    "70m": (512, 6, 8, 50304),
    "160m": (768, 12, 12, 50304),
    "410m": (1024, 24, 16, 50304),
    "1b": (2048, 16, 8, 50304),
    "1.4b": (2048, 24, 16, 50304),
    "2.8b": (2560, 32, 32, 50304),
    "6.9b": (4096, 32, 32, 50432),
    "12b": (5120, 36, 40, 50688),
}


def _pythia_size(name: str) -> str:
    """'EleutherAI/pythia-410m-deduped' -> '410m'."""
    size = name.split("/")[-1].lower().removeprefix("pythia-")
    for suffix in ("-deduped", "-v0", "-seed1", "-seed2", "-seed3"):
        size = size.removesuffix(suffix)
    return size


def pythia_config(name: str) -> GPTNeoXConfig:
    """The config of a Pythia model, without the Hub: ``pythia_config("EleutherAI/pythia-410m")``.

    Accepts ``70m``, ``pythia-70m``, ``EleutherAI/pythia-70m`` and the ``-deduped`` variants.
    """
    size = _pythia_size(name)
    if size not in PYTHIA_SHAPES:
        raise ValueError(f"{name!r} is not a Pythia model; known sizes: {', '.join(PYTHIA_SHAPES)}.")
    hidden, layers, heads, vocab = PYTHIA_SHAPES[size]
    return GPTNeoXConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000,
        max_position_embeddings=2048, layer_norm_eps=1e-5, use_parallel_residual=True, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=0, attention_dropout=0.0, hidden_dropout=0.0,
    )


def pythia_like_config(vocab_size: int, hidden_size: int = 64, num_hidden_layers: int = 2, num_attention_heads: int = 4,
                       max_position_embeddings: int = 256) -> GPTNeoXConfig:
    """A Pythia-shaped GPTNeoX config of any size (parallel residual, rotary on 25%, untied embeddings, FFN 4x):
    the tiny teachers of the embedded default and the tests."""
    return GPTNeoXConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=4 * hidden_size, rotary_pct=0.25,
        max_position_embeddings=max_position_embeddings, use_parallel_residual=True, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )


def default_heads(width: int) -> int:
    """The paper's Table 8 rule: 8 heads at d_S = 128 (and below), 16 above."""
    return 8 if width <= 128 else 16


def resolve_config(teacher: PretrainedConfig | str) -> PretrainedConfig:
    """A config object from a config, a Pythia name (offline) or any repo id / folder (AutoConfig)."""
    if isinstance(teacher, PretrainedConfig):
        return teacher
    is_pythia_name = "pythia" in teacher.lower() or "/" not in teacher
    if is_pythia_name and not Path(teacher).exists() and _pythia_size(teacher) in PYTHIA_SHAPES:
        return pythia_config(teacher)
    return AutoConfig.from_pretrained(teacher)


def student_config(teacher_config: PretrainedConfig | str, width: int, num_attention_heads: int | None = None,
                   intermediate_multiple: int = 4, **overrides: Any) -> GPTNeoXConfig:
    """The config of a width-``width`` student of a GPTNeoX teacher (paper Table 8).

    Same depth, vocabulary, rotary settings, positions and norms as the teacher; hidden size d_S; FFN
    ``intermediate_multiple`` x d_S; heads from :func:`default_heads` unless given (they must divide d_S).
    """
    teacher = resolve_config(teacher_config)
    if teacher.model_type != "gpt_neox":
        raise ValueError(f"student_config builds GPTNeoX students; the teacher is a {teacher.model_type!r} model.")
    width = check_width(width)
    heads = num_attention_heads or default_heads(width)
    if width % heads:
        raise ValueError(f"width {width} is not divisible by num_attention_heads={heads}: pick heads that divide it.")
    config = GPTNeoXConfig.from_dict(teacher.to_dict())
    config.hidden_size = width
    config.intermediate_size = intermediate_multiple * width
    config.num_attention_heads = heads
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def build_student(teacher_config_or_name: PretrainedConfig | str, width: int, seed: int | None = None,
                  **config_kwargs: Any) -> GPTNeoXForCausalLM:
    """A freshly initialised student: ``build_student("EleutherAI/pythia-410m", 128)`` (17.6M parameters)."""
    config = student_config(teacher_config_or_name, width, **config_kwargs)
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    return GPTNeoXForCausalLM(config)
