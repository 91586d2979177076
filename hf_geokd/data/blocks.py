"""Token blocks for causal LMs: from a Hub dataset (streamed), a saved dataset, or raw texts; and their collator."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import torch
from datasets import Dataset

from .stream import iter_blocks


def pack_blocks(token_streams: Iterable[list[int]], block_size: int, max_blocks: int | None = None,
                separator: int | None = None) -> list[list[int]]:
    """Concatenate token lists (with ``separator`` between documents) and cut them into blocks of ``block_size``."""
    return list(islice(iter_blocks(token_streams, block_size, separator), max_blocks))


def blocks_dataset(texts: Iterable[str], tokenizer, block_size: int, max_blocks: int | None = None) -> Dataset:
    """A ``Dataset`` with one ``input_ids`` block per row, from raw texts; refuses empty or too-short text."""
    separator = tokenizer.eos_token_id
    streams: Iterator[list[int]] = (tokenizer(text)["input_ids"] for text in texts if text and text.strip())
    blocks = pack_blocks(streams, block_size, max_blocks, separator)
    if not blocks:
        raise ValueError(
            f"the text yields no block of {block_size} tokens: the dataset is empty or too short. Pass more text or a "
            "smaller block_size."
        )
    return Dataset.from_dict({"input_ids": blocks})


def load_token_blocks(tokenizer, block_size: int, max_blocks: int, dataset_name: str | None = None,
                      dataset_config: str | None = None, dataset_path: str | None = None, split: str = "train",
                      text_column: str = "text", streaming: bool = True, skip_documents: int = 0) -> Dataset:
    """Token blocks from ``load_dataset(dataset_name, streaming=True)`` (e.g. ``monology/pile-uncopyrighted``) or a
    folder written by ``Dataset.save_to_disk`` (with ``input_ids`` blocks, or a text column)."""
    from datasets import load_dataset, load_from_disk

    if dataset_path:
        dataset = load_from_disk(dataset_path)
        if "input_ids" in dataset.column_names:
            if len(dataset) == 0:
                raise ValueError(f"{dataset_path} holds no rows: the dataset is empty.")
            return dataset.select(range(min(max_blocks, len(dataset))))
        texts: Iterable[str] = dataset[text_column]
    elif dataset_name:
        stream = load_dataset(dataset_name, dataset_config, split=split, streaming=streaming)
        texts = (row[text_column] for index, row in enumerate(stream) if index >= skip_documents)
    else:
        raise ValueError("pass dataset_name (a Hub dataset) or dataset_path (a saved dataset).")
    return blocks_dataset(texts, tokenizer, block_size, max_blocks)


def causal_lm_collator(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids`` to the longest row; labels are the inputs with -100 at padding."""
    if not rows:
        raise ValueError("the batch is empty.")
    length = max(len(row["input_ids"]) for row in rows)
    input_ids = torch.zeros(len(rows), length, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        tokens = torch.as_tensor(row["input_ids"], dtype=torch.long)
        input_ids[index, : tokens.numel()] = tokens
        attention_mask[index, : tokens.numel()] = 1
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
