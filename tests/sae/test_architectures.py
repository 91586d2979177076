"""Every sae-lens inference architecture loads through load_sae and is measured with "fires" = z != 0: the stats equal
those computed from the SAE's own encode on the same activations."""

import json

import pytest
import torch
from sae_lens.registry import get_sae_training_class
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from hf_geokd.sae import load_sae, measure_feature_stats
from hf_geokd.sae.hooks import hook_point
from hf_geokd.sae.measure import activations_at

D, D_SAE = 16, 64
HOOK = "blocks.1.hook_resid_post"
ARCHITECTURES = {  # training architecture: (extra config, what sae-lens saves it as)
    "standard": ({}, "standard"),
    "gated": ({}, "gated"),
    "jumprelu": ({"jumprelu_init_threshold": 0.3}, "jumprelu"),
    "topk": ({"k": 4}, "topk"),
    "abstopk": ({"k": 4}, "abstopk"),
    "batchtopk": ({"k": 4}, "jumprelu"),
    "matryoshka_batchtopk": ({"k": 4, "matryoshka_widths": [16, 64]}, "jumprelu"),
}
TOKENS = torch.randint(0, 50, (6, 16), generator=torch.Generator().manual_seed(2))
ROWS = [{"input_ids": row} for row in TOKENS.tolist()]


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=50, hidden_size=D, num_hidden_layers=2, num_attention_heads=2,
                                            intermediate_size=32, max_position_embeddings=32)).eval()


def saved_sae(folder, architecture: str):
    extra, _ = ARCHITECTURES[architecture]
    sae_class, config_class = get_sae_training_class(architecture)
    torch.manual_seed(1)
    sae = sae_class(config_class(d_in=D, d_sae=D_SAE, **extra))
    with torch.no_grad():
        for name, parameter in sae.named_parameters():
            if name.startswith("b_"):
                parameter.add_(0.3 * torch.randn_like(parameter))
        if architecture.endswith("batchtopk"):
            sae.topk_threshold.fill_(0.05)
    sae.cfg.metadata.hook_name = HOOK
    sae.save_inference_model(str(folder))
    return folder


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_every_architecture_measures_like_its_own_encode(teacher, tmp_path, architecture):
    folder = saved_sae(tmp_path, architecture)
    assert json.loads((folder / "cfg.json").read_text())["architecture"] == ARCHITECTURES[architecture][1]
    sae = load_sae(folder)
    stats = measure_feature_stats(sae, teacher, ROWS, n_tokens=96, progress=False, alive_threshold=0.0)
    point = hook_point(teacher, HOOK)
    with torch.no_grad():
        z = sae.encode(torch.cat(list(activations_at(teacher, point, ROWS, 8, torch.device("cpu")))))
    fires = (z != 0).double().mean(0)
    alive = fires > 0
    energy = (z.double() ** 2).mean(0) * sae.W_dec.double().pow(2).sum(-1)
    assert stats.n_features == int(alive.sum()) and stats.l0 == pytest.approx(float(fires[alive].sum()), rel=1e-12)
    assert stats.contributions.tolist() == pytest.approx(sorted(energy[alive].tolist(), reverse=True), rel=1e-9)
    if architecture == "abstopk":  # signed latents: z > 0 would undercount
        assert stats.l0 == pytest.approx(4.0) and float((z > 0).double().sum(-1).mean()) < 3.9
    if architecture == "topk":  # k selected per token, fewer firing when a selected pre-activation is <= 0
        assert stats.l0 <= 4.0
