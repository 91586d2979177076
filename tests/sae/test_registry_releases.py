"""FloorPredictor.from_sae on real sae-lens registry release names, end to end in a fresh process against the local
Hub server: the registry YAML that ships with sae-lens resolves the repo and the SAE's folder, the model is served
under a TransformerLens-known name, and the statistics equal those computed from TransformerLens's cache of the same
model loaded with the release's model_from_pretrained_kwargs."""

import json

import pytest
import torch
from hub_server import run_against_hub
from safetensors.torch import save_file
from tl_reference import VOCAB, D, stats_from_latents, tiny_model, transformer_lens_model

pytestmark = pytest.mark.slow  # a local Hub server and fresh processes

D_SAE = 64
TOKENS = torch.randint(0, VOCAB, (4, 12), generator=torch.Generator().manual_seed(3))
# (release, sae_id, its repo and folder in the registry, model name, model kind, cfg.json as the release stores it,
#  what sae-lens's model_from_pretrained_kwargs end up as)
RELEASES = [
    ("gpt2-small-res-jb", "blocks.1.hook_resid_pre", "jbloom/GPT2-Small-SAEs-Reformatted", "blocks.1.hook_resid_pre",
     "gpt2", "gpt2",
     {"model_name": "gpt2-small", "hook_point": "blocks.1.hook_resid_pre", "hook_point_layer": 1, "d_in": D,
      "d_sae": D_SAE, "dtype": "torch.float32", "device": "cpu", "context_size": 128, "l1_coefficient": 8e-5},
     {"center_writing_weights": True}),
    ("pythia-70m-deduped-res-sm", "blocks.1.hook_resid_post", "ctigges/pythia-70m-deduped__res-sm_processed",
     "1-res-sm", "EleutherAI/pythia-70m-deduped", "neox",
     {"architecture": "standard", "d_in": D, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
      "model_name": "pythia-70m-deduped", "hook_name": "blocks.1.hook_resid_post", "hook_layer": 1,
      "apply_b_dec_to_input": True, "normalize_activations": "none", "context_size": 128},
     {}),
]


@pytest.mark.parametrize("release, sae_id, repo, path, model_name, kind, config, kwargs", RELEASES,
                         ids=[release[0] for release in RELEASES])
def test_a_registry_release_end_to_end(hub, tmp_path, release, sae_id, repo, path, model_name, kind, config, kwargs):
    state, url = hub
    model = tiny_model(kind)
    model.save_pretrained(tmp_path / "model")
    state.add_folder(model_name, tmp_path / "model")
    generator = torch.Generator().manual_seed(4)
    weights = {"W_enc": torch.randn(D, D_SAE, generator=generator) / D**0.5,
               "b_enc": 0.3 * torch.randn(D_SAE, generator=generator),
               "W_dec": torch.randn(D_SAE, D, generator=generator) / D**0.5,
               "b_dec": 0.2 * torch.randn(D, generator=generator)}
    folder = tmp_path / "release" / path
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps(config))
    save_file(weights, str(folder / "sae_weights.safetensors"))
    frequencies = torch.linspace(0.0, 0.5, D_SAE)  # latent 0 never fired in training
    save_file({"sparsity": torch.log10(frequencies + 1e-10)}, str(folder / "sparsity.safetensors"))
    state.add_folder(repo, tmp_path / "release")
    rows = [{"input_ids": row} for row in TOKENS.tolist()]
    output = run_against_hub(url, tmp_path / "cache", f"""
        import json
        from hf_geokd import FloorPredictor
        predictor = FloorPredictor.from_sae({release!r}, sae_id={sae_id!r}, model={model_name!r}, dataset={rows!r},
                                            n_tokens={TOKENS.numel()}, progress=False, alive_threshold=0.0)
        s = predictor.stats
        approximate = FloorPredictor.from_sae({release!r}, sae_id={sae_id!r}, approximate=True)
        print(json.dumps([s.n_features, s.l0, s.contributions.tolist(), s.metadata["centered"], s.hook_name,
                          approximate.stats.n_features, approximate.stats.l0, approximate.approximation is not None]))
    """)
    n_features, l0, contributions, centered, hook_name, *approximate = json.loads(output.strip().splitlines()[-1])
    assert approximate == [D_SAE - 1, pytest.approx(float(frequencies.sum()), rel=1e-5), True]
    assert hook_name == sae_id and centered == bool(kwargs.get("center_writing_weights"))
    with torch.no_grad():
        _, cache = transformer_lens_model(tmp_path / "model", model, kwargs).run_with_cache(TOKENS)
        x = cache[sae_id].reshape(-1, D)
        pre = (x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]
    expected = stats_from_latents(torch.relu(pre), weights["W_dec"])
    assert n_features == expected[0] and l0 == pytest.approx(expected[1], rel=1e-6)
    assert contributions == pytest.approx(expected[2], rel=1e-4)
    raw = stats_from_latents(torch.relu((torch.cat([model(TOKENS, output_hidden_states=True).hidden_states[1]
                                                   .detach().reshape(-1, D)]) - weights["b_dec"]) @ weights["W_enc"]
                                        + weights["b_enc"]), weights["W_dec"])
    if centered:  # without the registry's center_writing_weights the statistics would differ
        assert raw[1] != pytest.approx(expected[1], rel=1e-3)
    assert not [route for route in state.unknown_routes if "/api/models" in route or "/resolve/" in route]
