import pytest
import torch

from hf_geokd.data import blocks_dataset, causal_lm_collator, pack_blocks, train_bpe_tokenizer


def test_pack_blocks_concatenates_documents_with_separators_and_drops_the_tail():
    blocks = pack_blocks([[1, 2, 3], [4, 5], [6, 7, 8, 9]], block_size=4, separator=0)
    assert blocks == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    assert pack_blocks([[1, 2, 3], [4, 5]], block_size=2) == [[1, 2], [3, 4]]
    assert pack_blocks([list(range(100))], block_size=10, max_blocks=3) == [list(range(10 * i, 10 * i + 10))
                                                                           for i in range(3)]
    with pytest.raises(ValueError, match="block_size"):
        pack_blocks([[1]], block_size=1)


def test_blocks_dataset_refuses_text_too_short_for_one_block():
    tokenizer = train_bpe_tokenizer(["a few words of text to learn from"] * 20, vocab_size=280)
    dataset = blocks_dataset(["a few words of text to learn from"] * 10, tokenizer, block_size=8)
    assert len(dataset) > 0 and all(len(row) == 8 for row in dataset["input_ids"])
    with pytest.raises(ValueError, match="no block of 512 tokens"):
        blocks_dataset(["short", "   ", ""], tokenizer, block_size=512)


def test_collator_pads_right_and_masks_labels():
    batch = causal_lm_collator([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert torch.equal(batch["labels"], torch.tensor([[5, 6, 7], [8, -100, -100]]))
