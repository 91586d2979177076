import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """A tiny random GPTNeoX teacher with its tokenizer, and a saved dataset of token blocks (with ragged rows)."""
    from datasets import Dataset
    from transformers import GPTNeoXForCausalLM

    from hf_geokd.data import train_bpe_tokenizer
    from hf_geokd.distill import pythia_like_config

    root = tmp_path_factory.mktemp("tiny")
    texts = [f"sentence number {i} says something about topic {i % 7}." for i in range(200)]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(pythia_like_config(len(tokenizer), hidden_size=32))
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(1, len(tokenizer), (32,), generator=generator).tolist() for _ in range(96)]
    Dataset.from_dict({"input_ids": rows}).save_to_disk(str(root / "blocks"))
    return root


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory):
    """Where the gensim wheel (the embedded corpus) is downloaded once per session, or GEOKD_CACHE_DIR."""
    return os.environ.get("GEOKD_CACHE_DIR") or tmp_path_factory.mktemp("wheel-cache")


@pytest.fixture(scope="session")
def toy_smoke(tmp_path_factory):
    """One trained smoke sweep, shared by the toy and CLI tests: (results, the folder holding its checkpoint)."""
    from hf_geokd.toy import ToySweepConfig, run_toy_sweep

    folder = tmp_path_factory.mktemp("toy-smoke")
    return run_toy_sweep(ToySweepConfig.smoke(), checkpoint_dir=folder, progress=False), folder
