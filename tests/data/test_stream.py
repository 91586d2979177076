import json
import os
import random
import socket
import string
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from datasets import Dataset

from hf_geokd.data import blocks_dataset, iter_blocks, stream_token_blocks, train_bpe_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def token_documents(n: int) -> Dataset:
    """Pre-tokenised documents of 1..12 tokens whose ids are unique across documents (doc i uses i*100 + j)."""
    return Dataset.from_dict({"input_ids": [[i * 100 + j for j in range(1 + i % 12)] for i in range(n)]})


def text_documents(n: int) -> list[str]:
    """Documents of 5 to 44 random words from a vocabulary of 400 (seeded): blocks of 16 tokens do not repeat."""
    rng = random.Random(0)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 7))) for _ in range(400)]
    return [" ".join(rng.choices(vocabulary, k=5 + i % 40)) for i in range(n)]


def test_iter_blocks_carries_the_unfinished_block_and_skips_empty_documents():
    carry: list[int] = []
    assert list(iter_blocks([[1, 2, 3], [], [4, 5]], 4, separator=0, carry=carry)) == [[1, 2, 3, 0]]
    assert carry == [4, 5, 0]
    assert list(iter_blocks([[6]], 4, separator=0, carry=carry)) == [[4, 5, 0, 6]] and carry == [0]
    with pytest.raises(ValueError, match="block_size"):
        list(iter_blocks([[1]], 1))


def test_stream_is_sharded_deterministic_and_its_held_out_documents_never_reach_training():
    documents = token_documents(300)
    train, held_out = stream_token_blocks(documents, None, 8, num_shards=6, held_out=4, batch=5)
    blocks = [row["input_ids"] for row in train]
    assert blocks == [row["input_ids"] for row in train]  # deterministic
    assert train.num_shards == 6 and len(held_out) == 4
    held_tokens = {t for row in held_out["input_ids"] for t in row}
    train_tokens = [t for block in blocks for t in block]
    assert not held_tokens & set(train_tokens) and len(train_tokens) == len(set(train_tokens))
    # shards are packed on their own: a block never mixes documents of two row ranges (50 rows each)
    assert all(len({t // 100 // 50 for t in block}) == 1 for block in blocks)
    # every token of the training documents is in a block, except each shard's unfinished last block
    all_tokens = {t for row in documents["input_ids"] for t in row}
    assert len(all_tokens - held_tokens - set(train_tokens)) < 6 * 8
    # the two halves of the shards, as accelerate hands them to two processes, split the stream exactly
    halves = [[row["input_ids"] for row in train.shard(num_shards=2, index=rank)] for rank in (0, 1)]
    assert halves[0] + halves[1] == blocks and halves[0] and halves[1]


def test_stream_refuses_a_dataset_without_text_and_too_few_held_out_blocks():
    with pytest.raises(ValueError, match="text_column"):
        stream_token_blocks(Dataset.from_dict({"body": ["x"]}), None, 8)
    with pytest.raises(ValueError, match="fewer than the 1000 held-out blocks"):
        stream_token_blocks(token_documents(30), None, 8, num_shards=2, held_out=1000)


def peak_python_memory(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_number_of_blocks():
    texts = text_documents(3000)
    tokenizer = train_bpe_tokenizer(texts[:300], vocab_size=400)
    documents = Dataset.from_dict({"text": texts})
    train, _ = stream_token_blocks(documents, tokenizer, 32, num_shards=4, batch=64)

    def stream(n_blocks: int) -> None:
        for index, _ in enumerate(train):
            if index + 1 == n_blocks:
                return
        raise AssertionError("the documents hold fewer blocks than the test asks for")

    def materialise(n_blocks: int) -> None:
        blocks_dataset(texts, tokenizer, 32, max_blocks=n_blocks)

    stream(10)  # first-use allocations (tokenizer caches) are not the stream's
    small, large = peak_python_memory(lambda: stream(200)), peak_python_memory(lambda: stream(4000))
    in_memory_small = peak_python_memory(lambda: materialise(200))
    in_memory_large = peak_python_memory(lambda: materialise(4000))
    # 20x the blocks: the peak is one batch of documents whatever the count (it varies +-25% with the batch's texts),
    # where the materialised blocks grow with the count
    assert large < 1.5 * small, (small, large)
    assert in_memory_large > 10 * in_memory_small, (in_memory_small, in_memory_large)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_accelerate_processes_see_disjoint_blocks_that_together_are_the_single_process_stream(tmp_path):
    texts = text_documents(400)
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "documents"))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), "--main_process_port", str(free_port()),
               str(Path(__file__).parent / "stream_ranks.py"), str(tmp_path / "documents"),
               str(tmp_path / "tokenizer"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [run["world_size"] for run in ranks] == [2, 2]
    from datasets import load_from_disk

    single, _ = stream_token_blocks(load_from_disk(str(tmp_path / "documents")), tokenizer, 16, num_shards=4,
                                    held_out=3, batch=7)
    stream = [row["input_ids"] for row in single]
    first, second = ranks[0]["blocks"], ranks[1]["blocks"]
    assert len(first) > 50 and len(second) > 50
    assert len({tuple(b) for b in stream}) == len(stream)  # no block repeats, so disjoint means disjoint positions
    assert not {tuple(b) for b in first} & {tuple(b) for b in second}
    assert first + second == stream  # rank 0 holds shards 0-1, rank 1 shards 2-3: the stream in order


@pytest.mark.slow
def test_recipe_dry_runs_print_the_plan_without_loading_a_model(tiny_artifacts, tmp_path):
    Dataset.from_dict({"text": text_documents(600)}).save_to_disk(str(tmp_path / "documents"))
    common = ["--dataset_path", str(tmp_path / "documents"), "--streaming", "true", "--dry_run", "true",
              "--dry_run_blocks", "50"]
    distill = subprocess.run(
        [sys.executable, str(ROOT / "recipes/distill.py"), str(ROOT / "recipes/tiny/distill.yaml"),
         "--teacher_model_name_or_path", str(tmp_path / "no-model-here"), "--tokenizer_name",
         str(tiny_artifacts / "teacher"), "--output_dir", str(tmp_path / "out"), "--num_shards", "8", *common],
        capture_output=True, text=True, timeout=300)
    assert distill.returncode == 0, distill.stderr[-2000:]
    # tiny/distill.yaml: 40 steps of 8 blocks of 64 tokens, 32 held-out blocks
    assert "steps: 40 of 8 blocks x 64 tokens = 512 tokens per step" in distill.stdout
    assert "training: 320 blocks = 20,480 tokens; held out: 32 blocks" in distill.stdout
    assert "processes: 1, each 320 blocks (20,480 tokens) from 8 of 8 shards" in distill.stdout
    assert "data path: 50 blocks (3,200 tokens)" in distill.stdout
    sae = subprocess.run(
        [sys.executable, str(ROOT / "recipes/train_sae.py"), str(ROOT / "recipes/tiny/sae.yaml"),
         "--model_name_or_path", str(tiny_artifacts / "teacher"), "--train_blocks", "160", "--measure_blocks", "10",
         "--context_size", "32", "--train_batch_size_tokens", "256", "--hook_names", "a", "b", *common],
        capture_output=True, text=True, timeout=300)
    assert sae.returncode == 0, sae.stderr[-2000:]
    assert "steps: 20 of 8 blocks x 32 tokens = 256 tokens per step" in sae.stdout
    assert "held out: 10 blocks" in sae.stdout and "2 hooks from one teacher pass" in sae.stdout
