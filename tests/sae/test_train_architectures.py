"""train_sae trains the standard, top-k, JumpReLU and batch-top-k architectures; each is saved as sae-lens saves it
and measured with its statistics beside it."""

import json

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM

from hf_geokd.sae import load_sae, measure_feature_stats, train_sae

pytestmark = pytest.mark.slow  # sae-lens training runs

HOOK = "gpt_neox.layers.1"


@pytest.mark.parametrize("architecture, k, saved_as, sae_kwargs", [
    ("topk", 4, "topk", {"aux_loss_coefficient": 0.5}), ("jumprelu", None, "jumprelu", None),
    ("batchtopk", 4, "jumprelu", None)])
def test_train_sae_architectures(tiny_artifacts, tmp_path, architecture, k, saved_as, sae_kwargs):
    torch.manual_seed(0)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    folder = train_sae(teacher, blocks.select(range(32)), HOOK, tmp_path, expansion_factor=2,
                       architecture=architecture, k=k, training_tokens=2_048, train_batch_size_tokens=256,
                       measure_tokens=512, measure_dataset=blocks.select(range(64, 96)), sae_kwargs=sae_kwargs)[HOOK]
    config = json.loads((folder / "cfg.json").read_text())
    assert config["architecture"] == saved_as and config["normalize_activations"] == "none"  # the factor is folded
    for name, value in (sae_kwargs or {}).items():
        assert config["metadata"]["training_architecture_details"][name] == value
    stored = json.loads((folder / "feature_stats.json").read_text())
    again = measure_feature_stats(load_sae(folder), teacher, blocks.select(range(64, 96)), n_tokens=512,
                                  progress=False)
    assert stored["l0"] == pytest.approx(again.l0) and stored["n_features"] == again.n_features
    if k is not None and architecture == "topk":
        assert again.l0 <= k
