"""TransformerLens hook names on transformers models, checked against TransformerLens's own run_with_cache on the same
tiny random models loaded with the SAE's model_from_pretrained_kwargs."""

import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from tl_reference import VOCAB, D, stats_from_latents, tiny_model, transformer_lens_model

from hf_geokd.sae import measure_feature_stats
from hf_geokd.sae.hooks import hook_point
from hf_geokd.sae.measure import activations_at
from hf_geokd.sae.processing import sae_processing

HOOKS = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post", "blocks.0.hook_mlp_out",
         "blocks.1.hook_attn_out", "blocks.1.ln2.hook_normalized", "ln_final.hook_normalized"]
PROCESSED = {"fold_ln": True, "center_writing_weights": True, "center_unembed": True, "fold_value_biases": True}
SETTINGS = {"raw": {}, "centered": {"center_writing_weights": True}, "processed": PROCESSED}
# the centered case in the fast loop, the others with the slow tests
CASES = [pytest.param(kind, SETTINGS[name], id=f"{name}-{kind}", marks=() if name == "centered" else pytest.mark.slow)
         for name in SETTINGS for kind in ("neox", "gpt2", "llama")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{kind: (transformers model, folder)}; folder names avoid "llama", which TransformerLens treats by name."""
    root = tmp_path_factory.mktemp("tl")
    out = {}
    for kind in ("gpt2", "neox", "llama"):
        model = tiny_model(kind)
        model.save_pretrained(root / f"m-{kind[::-1]}")
        out[kind] = (model, root / f"m-{kind[::-1]}")
    return out


def sae_at(hook_name: str, kwargs: dict, seed: int = 0) -> StandardSAE:
    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=D, d_sae=4 * D, metadata=SAEMetadata(
        hook_name=hook_name, model_from_pretrained_kwargs=kwargs)))
    with torch.no_grad():
        sae.b_enc.add_(0.3 * torch.randn_like(sae.b_enc))
        sae.b_dec.add_(0.2 * torch.randn_like(sae.b_dec))
    return sae


TOKENS = torch.randint(0, VOCAB, (4, 12), generator=torch.Generator().manual_seed(1))
ROWS = [{"input_ids": row.tolist()} for row in TOKENS]


def ours(model, hook_name: str, kwargs: dict) -> torch.Tensor:
    point = hook_point(model, hook_name)
    processing = sae_processing(sae_at(hook_name, kwargs), point, "model")
    return torch.cat([processing(x) for x in activations_at(model, point, ROWS, 8, torch.device("cpu"))])


@pytest.mark.parametrize("kind, kwargs", CASES)
def test_activations_match_transformer_lens(models, kind, kwargs):
    model, folder = models[kind]
    tl = transformer_lens_model(folder, model, kwargs)
    with torch.no_grad():
        _, cache = tl.run_with_cache(TOKENS)
    for hook_name in HOOKS:
        expected = cache[hook_name].reshape(-1, D)
        assert torch.allclose(ours(model, hook_name, kwargs), expected, atol=1e-4, rtol=0), (kind, hook_name)
    if kind != "llama" and kwargs.get("center_writing_weights"):  # the processing matters here: raw would be wrong
        raw = ours(model, "blocks.1.hook_resid_post", {})
        assert (raw - cache["blocks.1.hook_resid_post"].reshape(-1, D)).abs().max() > 1e-2


def test_resid_mid_on_sequential_blocks(models):
    model, folder = models["gpt2"]
    tl = transformer_lens_model(folder, model, {})
    with torch.no_grad():
        _, cache = tl.run_with_cache(TOKENS)
    assert torch.allclose(ours(model, "blocks.1.hook_resid_mid", {}), cache["blocks.1.hook_resid_mid"].reshape(-1, D),
                          atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="use_parallel_residual=True"):
        hook_point(models["neox"][0], "blocks.0.hook_resid_mid")


@pytest.mark.parametrize("kind", ["neox", "gpt2"])
def test_feature_stats_match_stats_from_the_transformer_lens_cache(models, kind):
    model, folder = models[kind]
    hook_name, kwargs = "blocks.1.hook_resid_pre", {"center_writing_weights": True}
    sae = sae_at(hook_name, kwargs)
    stats = measure_feature_stats(sae, model, ROWS, n_tokens=48, progress=False, alive_threshold=0.0)
    with torch.no_grad():
        _, cache = transformer_lens_model(folder, model, kwargs).run_with_cache(TOKENS)
        n_features, l0, contributions = stats_from_latents(sae.encode(cache[hook_name].reshape(-1, D)), sae.W_dec)
    assert stats.n_features == n_features and stats.l0 == pytest.approx(l0, rel=1e-9)
    assert stats.contributions.tolist() == pytest.approx(contributions, rel=1e-4)
    module_name = hook_point(model, hook_name).module_name
    assert stats.metadata["centered"] is True and stats.metadata["read"] == f"input of {module_name}"


def test_wrong_hooks_and_unknown_processing_are_clear_errors(models):
    model = models["neox"][0]
    with pytest.raises(ValueError, match=r"blocks\.7\.hook_resid_post.*2 layers.*blocks\.\{0\.\.1\}\.hook_resid_pre"):
        hook_point(model, "blocks.7.hook_resid_post")
    with pytest.raises(ValueError, match=r"hook_z.*not supported"):
        hook_point(model, "blocks.0.attn.hook_z")
    with pytest.raises(ValueError, match=r"GPTNeoX, GPT-2, Llama.*not Linear \(model_type None\)"):
        hook_point(torch.nn.Linear(2, 2), "blocks.0.hook_resid_post")
    sae = sae_at("blocks.0.hook_resid_post", {})
    sae.cfg.metadata.hook_head_index = 1
    with pytest.raises(ValueError, match="one attention head"):
        measure_feature_stats(sae, model, ROWS, n_tokens=8, progress=False)
    sae = sae_at("blocks.0.hook_resid_post", {"checkpoint_index": 3})
    with pytest.raises(ValueError, match=r"\['checkpoint_index'\] may change the activations"):
        measure_feature_stats(sae, model, ROWS, n_tokens=8, progress=False)
    sae = sae_at("blocks.0.hook_resid_post", {})
    sae.cfg.normalize_activations = "covariance_whitening"
    with pytest.raises(ValueError, match="covariance_whitening.*not folded"):
        measure_feature_stats(sae, model, ROWS, n_tokens=8, progress=False)


def test_expected_average_only_in_scales_like_sae_lens(models):
    """An unfolded expected_average_only_in SAE sees x * sqrt(d)/E||x||; folding that factor (what sae-lens does on
    save) must give the same statistics from the raw activations."""
    model = models["neox"][0]
    hook_name = "blocks.1.hook_resid_post"
    unfolded = sae_at(hook_name, {})
    unfolded.cfg.normalize_activations = "expected_average_only_in"
    x = ours(model, hook_name, {})
    factor = D**0.5 / float(x.norm(dim=-1).mean())
    folded = sae_at(hook_name, {})
    folded.fold_activation_norm_scaling_factor(factor)
    estimated = measure_feature_stats(unfolded, model, ROWS, n_tokens=48, progress=False, alive_threshold=0.0)
    reference = measure_feature_stats(folded, model, ROWS, n_tokens=48, progress=False, alive_threshold=0.0)
    given = measure_feature_stats(unfolded, model, ROWS, n_tokens=48, progress=False, alive_threshold=0.0,
                                  norm_scaling_factor=factor)
    unscaled = measure_feature_stats(sae_at(hook_name, {}), model, ROWS, n_tokens=48, progress=False,
                                     alive_threshold=0.0)
    assert estimated.metadata["norm_scaling_factor"] == pytest.approx(factor, rel=1e-6)
    assert estimated.l0 == reference.l0 == given.l0 != unscaled.l0
    # contributions are in the residual stream's units, as the folded decoder writes them
    assert estimated.contributions.tolist() == pytest.approx(reference.contributions.tolist(), rel=1e-4)


@pytest.mark.parametrize("name", ["MistralConfig", "Qwen2Config", "GemmaConfig", "Gemma2Config"])
def test_unchecked_families_map_onto_existing_modules(name):
    """Families mapped from their code but not checked against TransformerLens: every hook reads a module that exists,
    with the residual stream continuing from one block to the next."""
    import transformers

    config = getattr(transformers, name)(vocab_size=VOCAB, hidden_size=D, num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, intermediate_size=2 * D, head_dim=8,
                                         max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    read = {hook: torch.cat(list(activations_at(model, hook_point(model, hook), ROWS, 8, torch.device("cpu"))))
            for hook in HOOKS + ["blocks.0.hook_resid_post", "blocks.1.hook_resid_mid", "blocks.1.hook_mlp_out"]}
    assert all(x.shape == (48, D) for x in read.values())
    assert torch.equal(read["blocks.0.hook_resid_post"], read["blocks.1.hook_resid_pre"])
    mid = read["blocks.1.hook_resid_mid"]
    assert torch.allclose(mid, read["blocks.1.hook_resid_pre"] + read["blocks.1.hook_attn_out"], atol=1e-5)
    assert torch.allclose(read["blocks.1.hook_resid_post"], mid + read["blocks.1.hook_mlp_out"], atol=1e-5)
