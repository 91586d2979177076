"""Token data for causal LMs: packed blocks from texts or datasets, their collator, and a small BPE tokenizer."""

from .blocks import blocks_dataset, causal_lm_collator, load_token_blocks, pack_blocks
from .tokenizer import train_bpe_tokenizer

__all__ = ["blocks_dataset", "causal_lm_collator", "load_token_blocks", "pack_blocks", "train_bpe_tokenizer"]
