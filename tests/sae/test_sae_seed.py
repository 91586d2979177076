"""SAETrainingConfig.seed sets an SAE's initialisation and the order of its activations: one seed gives one SAE
(bit for bit on CPU, measured here), another seed another SAE."""

import pytest
import torch
from datasets import Dataset
from sae_lens.saes.standard_sae import StandardTrainingSAE
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import SAETrainingConfig, load_sae, train_sae

HOOK = "gpt_neox.layers.1"


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(pythia_like_config(128, hidden_size=16, num_hidden_layers=2)).eval()
    generator = torch.Generator().manual_seed(1)
    blocks = Dataset.from_dict({"input_ids": torch.randint(1, 128, (96, 16), generator=generator).tolist()})
    return teacher, blocks


def train(setup, folder, seed, monkeypatch):
    """Train with ``seed``; return the SAE's initial W_enc, the first batch it trained on, and its final weights."""
    seen = {}
    forward = StandardTrainingSAE.training_forward_pass

    def recording(self, step_input):
        seen.setdefault("initial", self.W_enc.detach().clone())
        seen.setdefault("batch", step_input.sae_in.detach().clone())
        return forward(self, step_input)

    monkeypatch.setattr(StandardTrainingSAE, "training_forward_pass", recording)
    teacher, blocks = setup
    config = SAETrainingConfig(expansion_factor=2, l1_coefficient=0.5, training_tokens=1024,
                               train_batch_size_tokens=128, measure_tokens=128, seed=seed)
    trained = load_sae(train_sae(teacher, blocks, HOOK, folder, config)[HOOK]).state_dict()
    return seen["initial"], seen["batch"], trained


def test_the_seed_sets_initialisation_data_order_and_the_trained_sae(setup, tmp_path, monkeypatch):
    first_init, first_batch, first = train(setup, tmp_path / "a", 0, monkeypatch)
    again_init, again_batch, again = train(setup, tmp_path / "b", 0, monkeypatch)
    other_init, other_batch, other = train(setup, tmp_path / "c", 1, monkeypatch)
    assert torch.equal(first_init, again_init) and torch.equal(first_batch, again_batch)
    for name, value in first.items():
        assert torch.equal(value, again[name]), name  # bit-reproducible on CPU with the same seed
    assert not torch.allclose(first_init, other_init)
    # the activations come in another order: the first batch holds other tokens
    assert first_batch.shape == other_batch.shape and not torch.allclose(first_batch, other_batch)
    assert not torch.allclose(first["W_enc"], other["W_enc"])
