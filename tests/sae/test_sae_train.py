"""Several SAEs from one teacher pass: each equals the SAE trained on its hook alone."""

import json

import pytest
import torch
from datasets import Dataset
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.sae import load_sae, train_sae

pytestmark = pytest.mark.slow  # sae-lens training

HOOKS = ["gpt_neox.layers.0", "gpt_neox.layers.1", "gpt_neox.layers.2"]
CONTEXT = 16


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_three_hooks_train_from_one_pass_and_each_equals_its_one_hook_sae(tmp_path):
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(pythia_like_config(128, hidden_size=16, num_hidden_layers=3)).eval()
    generator = torch.Generator().manual_seed(1)
    blocks = Dataset.from_dict({"input_ids": torch.randint(1, 128, (160, CONTEXT), generator=generator).tolist()})
    settings = dict(expansion_factor=2, l1_coefficient=0.5, training_tokens=2_048, train_batch_size_tokens=128,
                    measure_tokens=8 * CONTEXT, measure_dataset=blocks.select(range(128, 160)))
    calls = count_calls(teacher.gpt_neox.layers[0])
    together = train_sae(teacher, blocks.select(range(128)), HOOKS, tmp_path / "together", **settings)
    passes_together, calls[0] = calls[0], 0
    alone = train_sae(teacher, blocks.select(range(128)), HOOKS[1], tmp_path / "alone", **settings)
    # one teacher pass per batch of prompts for all three SAEs: the only extra calls are two more measurement
    # batches of 8 blocks (measure_tokens = one batch per hook); three passes would triple the training forwards
    assert calls[0] > 10 and passes_together == calls[0] + 2
    assert sorted(together) == HOOKS and together[HOOKS[1]] == tmp_path / "together" / HOOKS[1]
    for hook, folder in together.items():
        names = {path.name for path in folder.iterdir()}
        assert {"cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "feature_stats.json"} <= names
        assert json.loads((folder / "feature_stats.json").read_text())["hook_name"] == hook
    jointly, separately = load_sae(together[HOOKS[1]]).state_dict(), load_sae(alone[HOOKS[1]]).state_dict()
    for name, value in separately.items():
        torch.testing.assert_close(jointly[name], value)  # float32 round-off (measured: bitwise equal)
    first = load_sae(together[HOOKS[0]]).state_dict()
    assert not torch.allclose(first["W_enc"], jointly["W_enc"])  # other hooks trained on their own activations
    assert (json.loads((together[HOOKS[1]] / "feature_stats.json").read_text())
            == json.loads((alone[HOOKS[1]] / "feature_stats.json").read_text()))
