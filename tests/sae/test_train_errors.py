"""train_sae refuses bad input before any sae-lens training starts, naming the problem and the fix."""

import pytest
from datasets import Dataset
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import train_sae


@pytest.fixture(scope="module")
def teacher():
    return GPTNeoXForCausalLM(pythia_like_config(64, hidden_size=16, num_hidden_layers=2)).eval()


BLOCKS = Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 4})


@pytest.mark.parametrize("dataset, hooks, kwargs, message", [
    (BLOCKS, [], {}, "pass at least one hook name"),
    (BLOCKS.select([]), "gpt_neox.layers.0", {}, "dataset must be non-empty"),
    (Dataset.from_dict({"text": ["a b"]}), "gpt_neox.layers.0", {}, "'input_ids' column"),
    (BLOCKS, "gpt_neox.layers.7", {}, "gpt_neox.layers.1"),  # the valid names are listed
    (BLOCKS, "gpt_neox.layers.0", {"architecture": "topk", "k": 2, "sae_kwargs": {"use_sparse": True}},
     r"sae_kwargs \['use_sparse'\] are not fields of sae-lens's TopKTrainingSAEConfig"),
])
def test_bad_input_is_refused_with_the_fix(teacher, tmp_path, dataset, hooks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_sae(teacher, dataset, hooks, tmp_path, **kwargs)
