"""Streamed token blocks: documents read lazily, tokenised in batches, packed on the fly, split into shards that
``accelerate`` hands to the processes exactly once.

The stream is a ``datasets.IterableDataset`` built from a generator over ``num_shards`` shards of the documents (the
files of a streamed Hub dataset, or contiguous row ranges of a saved one). Each shard is packed on its own, so a block
never straddles two shards and the blocks of the whole stream are the union of the blocks of its shards. Under
``accelerate`` with ``dispatch_batches=False`` the prepared dataloader calls ``IterableDataset.shard(processes,
rank)`` (shards are never pre-split here, so nothing is sharded twice): each rank reads and tokenises only its own
documents, and the ranks' blocks are disjoint and together equal the single-process stream.

Memory holds one batch of documents and one partial block per shard, whatever the number of tokens. The held-out
blocks are the first documents of shard 0, which its training stream skips: disjoint from training by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

from datasets import Dataset, DatasetDict, Features, IterableDataset, IterableDatasetDict, Sequence, Value

BLOCK_FEATURES = Features({"input_ids": Sequence(Value("int32"))})


def iter_blocks(token_lists: Iterable[list[int]], block_size: int, separator: int | None = None,
                carry: list[int] | None = None) -> Iterator[list[int]]:
    """Concatenate token lists (``separator`` after each) and yield every full block of ``block_size`` tokens.

    ``carry`` (a list, emptied and refilled in place) holds the tokens of the unfinished block between calls.
    """
    if block_size <= 1:
        raise ValueError(f"block_size must be at least 2 tokens, got {block_size}.")
    buffer = carry if carry is not None else []
    for tokens in token_lists:
        if not tokens:
            continue
        buffer.extend(tokens)
        if separator is not None:
            buffer.append(separator)
        if len(buffer) >= block_size:
            full = len(buffer) - len(buffer) % block_size
            for start in range(0, full, block_size):
                yield buffer[start : start + block_size]
            del buffer[:full]


def open_documents(dataset_name: str | None = None, dataset_config: str | None = None,
                   dataset_path: str | None = None, split: str = "train") -> Dataset | IterableDataset:
    """Documents from a folder written by ``save_to_disk`` (memory-mapped, not loaded) or a Hub dataset streamed."""
    from datasets import load_dataset, load_from_disk

    if dataset_path:
        documents = load_from_disk(dataset_path)
        if isinstance(documents, DatasetDict):
            if split not in documents:
                raise ValueError(f"{dataset_path} has splits {list(documents)}, not {split!r}: pass --split.")
            documents = documents[split]
        return documents
    if dataset_name:
        documents = load_dataset(dataset_name, dataset_config, split=split, streaming=True)
        if isinstance(documents, IterableDatasetDict):
            documents = documents[split]
        return documents
    raise ValueError("pass dataset_name (a Hub dataset, streamed) or dataset_path (a folder from save_to_disk).")


def document_shards(documents: Dataset | IterableDataset, num_shards: int) -> int:
    """How many shards the stream has: ``num_shards`` row ranges of a saved dataset (at most one per row), or the
    source files of a streamed one (``num_shards`` does not apply: a file is never split)."""
    if isinstance(documents, IterableDataset):
        return documents.num_shards
    if len(documents) == 0:
        raise ValueError("the dataset holds no rows: pass a non-empty dataset.")
    return max(1, min(num_shards, len(documents)))


def _token_column(documents: Dataset | IterableDataset, text_column: str) -> str:
    columns = documents.column_names or []
    if text_column in columns:
        return text_column
    if "input_ids" in columns:
        return "input_ids"
    raise ValueError(f"the dataset has columns {columns}: no {text_column!r} text column and no 'input_ids'. "
                     "Pass --text_column with the name of its text column.")


def _document_batches(documents: Dataset | IterableDataset, shard: int, n_shards: int, column: str,
                      skip: int, batch: int) -> Iterator[list]:
    """Batches of one shard's documents (texts or token lists), after its first ``skip`` documents."""
    if isinstance(documents, IterableDataset):
        part = documents.shard(num_shards=n_shards, index=shard, contiguous=True).skip(skip)
        for rows in part.iter(batch_size=batch):
            yield rows[column]
        return
    size = len(documents)
    start, stop = shard * size // n_shards + skip, (shard + 1) * size // n_shards
    for index in range(start, stop, batch):
        yield documents[index : min(index + batch, stop)][column]


def _tokenised(batches: Iterator[list], tokenizer, column: str) -> Iterator[list[int]]:
    """Token lists, one per document (empty for a blank one); texts are tokenised a batch at a time."""
    for rows in batches:
        if column == "input_ids":
            yield from rows
            continue
        texts = [text if text and text.strip() else "" for text in rows]
        yield from tokenizer(texts, add_special_tokens=False)["input_ids"]


def _shard_blocks(shards: list[int], documents, tokenizer, block_size: int, column: str, n_shards: int,
                  held_out_documents: int, batch: int) -> Iterator[dict[str, list[int]]]:
    """The generator behind the stream: each shard's documents packed on their own, shard after shard."""
    separator = None if column == "input_ids" else tokenizer.eos_token_id
    for shard in shards:
        skip = held_out_documents if shard == 0 else 0
        tokens = _tokenised(_document_batches(documents, shard, n_shards, column, skip, batch), tokenizer, column)
        for block in iter_blocks(tokens, block_size, separator, carry=[]):
            yield {"input_ids": block}


def held_out_blocks(documents, tokenizer, block_size: int, n_blocks: int, text_column: str = "text",
                    num_shards: int = 64, batch: int = 256) -> tuple[Dataset, int]:
    """The first ``n_blocks`` blocks of shard 0 and how many documents they used (the training stream skips them)."""
    column = _token_column(documents, text_column)
    n_shards = document_shards(documents, num_shards)
    separator = None if column == "input_ids" else tokenizer.eos_token_id
    blocks: list[list[int]] = []
    used = 0

    def counted(token_lists: Iterator[list[int]]) -> Iterator[list[int]]:
        nonlocal used
        for tokens in token_lists:
            used += 1
            yield tokens

    if n_blocks > 0:
        tokens = _tokenised(_document_batches(documents, 0, n_shards, column, 0, batch), tokenizer, column)
        for block in iter_blocks(counted(tokens), block_size, separator):
            blocks.append(block)
            if len(blocks) == n_blocks:
                break
        if len(blocks) < n_blocks:
            raise ValueError(f"shard 0 of the dataset yields {len(blocks)} blocks of {block_size} tokens, fewer than "
                             f"the {n_blocks} held-out blocks asked for: pass fewer held-out blocks, fewer shards or "
                             "more data.")
    return Dataset.from_dict({"input_ids": blocks}, features=BLOCK_FEATURES), used


def stream_token_blocks(documents: Dataset | IterableDataset, tokenizer, block_size: int, *,
                        text_column: str = "text", num_shards: int = 64, held_out: int = 0,
                        batch: int = 256) -> tuple[IterableDataset, Dataset]:
    """Training blocks as a lazy, sharded ``IterableDataset`` and ``held_out`` blocks (a small in-memory ``Dataset``)
    from documents that never reach training.

    Args:
        documents: from ``open_documents``: a saved ``Dataset`` (memory-mapped) or a streamed Hub dataset, with a
            text column (tokenised here, documents separated by the EOS token) or an ``input_ids`` column (token
            lists, packed as they are).
        num_shards: row ranges of a saved dataset; a streamed one keeps its files as shards. Make it a multiple of
            the number of processes (the default 64 suits 1, 2, 4, 8, ... processes) so that ranks read equal parts.
        batch: documents per tokenizer call.

    Pass the training stream unsplit to ``Trainer`` with ``accelerator_config={"dispatch_batches": False}``: accelerate
    then gives each process its own shards. The result is deterministic: the same documents, shards and block size
    give the same blocks in the same order.
    """
    column = _token_column(documents, text_column)
    n_shards = document_shards(documents, num_shards)
    evaluation, skipped = held_out_blocks(documents, tokenizer, block_size, held_out, text_column, num_shards, batch)
    generator = partial(_shard_blocks, documents=documents, tokenizer=tokenizer, block_size=block_size, column=column,
                        n_shards=n_shards, held_out_documents=skipped, batch=batch)
    train = IterableDataset.from_generator(generator, features=BLOCK_FEATURES,
                                           gen_kwargs={"shards": list(range(n_shards))})
    return train, evaluation
