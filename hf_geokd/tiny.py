"""Tiny Pythia-shaped models and tokenizers for the embedded default and the tests (CPU-sized)."""

from __future__ import annotations

from typing import Iterable

from transformers import GPTNeoXConfig, PreTrainedTokenizerFast


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-NeoX style, ``<|endoftext|>`` as bos/eos/pad) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")


def tiny_pythia_config(vocab_size: int, hidden_size: int = 64, num_hidden_layers: int = 2, num_attention_heads: int = 4,
                       max_position_embeddings: int = 256) -> GPTNeoXConfig:
    """A Pythia-shaped GPTNeoX config (parallel residual, rotary on 25%, untied embeddings, FFN 4x) at CPU size."""
    return GPTNeoXConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=4 * hidden_size, rotary_pct=0.25,
        max_position_embeddings=max_position_embeddings, use_parallel_residual=True, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
