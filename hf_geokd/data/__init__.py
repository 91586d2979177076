"""Token data for causal LMs: packed blocks in memory or streamed and sharded, their collator, a small BPE tokenizer."""

from .blocks import blocks_dataset, causal_lm_collator, load_token_blocks, pack_blocks
from .plan import DataPlan, StreamMeasurement, measure_stream
from .stream import held_out_blocks, iter_blocks, open_documents, stream_token_blocks
from .tokenizer import train_bpe_tokenizer

__all__ = [
    "DataPlan", "StreamMeasurement", "blocks_dataset", "causal_lm_collator", "held_out_blocks", "iter_blocks",
    "load_token_blocks", "measure_stream", "open_documents", "pack_blocks", "stream_token_blocks",
    "train_bpe_tokenizer",
]
