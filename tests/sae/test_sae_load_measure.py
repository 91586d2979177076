import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from hf_geokd import FloorPredictor, capacity
from hf_geokd.sae import measure_feature_stats
from hf_geokd.sae.load import RAW_CONFIG_NAME, load_sae


class PlantedModel(torch.nn.Module):
    """Token t writes a known sparse vector into the 'features' module: the residual stream is exactly the planted
    feature activations, so an identity SAE reads them back."""

    def __init__(self, codebook: torch.Tensor) -> None:
        super().__init__()
        self.config = SimpleNamespace(hidden_size=codebook.shape[1])
        self.features = torch.nn.Embedding.from_pretrained(codebook)
        self.after = torch.nn.Linear(codebook.shape[1], 2)

    def forward(self, input_ids, attention_mask=None):
        return self.after(self.features(input_ids))


def write_raw_sae(folder, W_enc, b_enc, W_dec, b_dec, **config):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}, str(folder / "sae.safetensors"))
    (folder / RAW_CONFIG_NAME).write_text(json.dumps({"activation": "relu", "hook_name": "features", **config}))
    return folder


@pytest.fixture
def planted(tmp_path):
    """8 latents; feature i fires on tokens 0..i (so feature 0 fires on 1/4 of tokens... see counts below)."""
    d = 8
    codebook = torch.zeros(4, d)
    codebook[0, [0, 1]] = torch.tensor([1.0, 2.0])
    codebook[1, [0, 2]] = torch.tensor([3.0, 1.0])
    codebook[2, [3]] = torch.tensor([0.5])
    # token 3 activates nothing; latents 4..7 never fire (dead)
    model = PlantedModel(codebook)
    decoder_scale = torch.arange(1, d + 1, dtype=torch.float32)
    sae_dir = write_raw_sae(tmp_path / "sae", torch.eye(d), torch.zeros(d), torch.diag(decoder_scale), torch.zeros(d))
    tokens = torch.tensor([0, 1, 2, 3] * 50).view(25, 8)  # each token a quarter of the 200 tokens
    return model, sae_dir, [{"input_ids": row.tolist()} for row in tokens], codebook, decoder_scale


def test_measured_stats_match_the_planted_truth(planted):
    model, sae_dir, rows, codebook, scale = planted
    stats = measure_feature_stats(load_sae(sae_dir), model, rows, n_tokens=200, progress=False)
    # firing: latent 0 on tokens 0, 1; latents 1, 2, 3 on one token each; 4 alive latents
    assert stats.n_features == 4
    assert stats.l0 == pytest.approx((2 + 1 + 1 + 1) / 4)
    assert stats.alpha == pytest.approx(1 - 1.25 / 4)
    energy = {0: (1 + 9) / 4 * 1**2, 1: 4 / 4 * 2**2, 2: 1 / 4 * 3**2, 3: 0.25 / 4 * 4**2}
    assert stats.contributions.tolist() == pytest.approx(sorted(energy.values(), reverse=True))
    predictor = FloorPredictor(stats, capacity_kind="info", allow_wider=True)
    g = capacity(stats.alpha, "info")
    kept = int(1 * g)
    values = sorted(energy.values(), reverse=True)
    assert predictor.predict([1])["predicted_floor_raw"].item() == pytest.approx(sum(values[kept:]))


def test_memory_does_not_depend_on_token_count(planted):
    model, sae_dir, rows, *_ = planted
    small = measure_feature_stats(load_sae(sae_dir), model, rows, n_tokens=40, batch_size=5, progress=False)
    large = measure_feature_stats(load_sae(sae_dir), model, rows, n_tokens=200, batch_size=5, progress=False)
    assert small.n_tokens == 40 and large.n_tokens == 200
    assert small.contributions.tolist() == pytest.approx(
        large.contributions.tolist()
    )  # the data repeats every 4 tokens


def test_sparsify_layout_loads_with_the_original_maps(tmp_path):
    d_in, latents, k = 6, 16, 3
    generator = torch.Generator().manual_seed(0)
    encoder = torch.nn.Linear(d_in, latents)
    W_dec = torch.randn(latents, d_in, generator=generator)
    b_dec = torch.randn(d_in, generator=generator)
    folder = tmp_path / "layers.3"
    folder.mkdir()
    save_file(
        {
            "encoder.weight": encoder.weight.detach(),
            "encoder.bias": encoder.bias.detach(),
            "W_dec": W_dec,
            "b_dec": b_dec,
        },
        str(folder / "sae.safetensors"),
    )
    (folder / "cfg.json").write_text(
        json.dumps(
            {
                "expansion_factor": 16 / 6,
                "normalize_decoder": True,
                "num_latents": latents,
                "k": k,
                "multi_topk": False,
                "d_in": d_in,
            }
        )
    )
    sae = load_sae(tmp_path, sae_id="layers.3")
    x = torch.randn(10, d_in, generator=generator)
    # sparsify's own encode: ReLU(encoder(x - b_dec)), keep the top k; decode: z W_dec + b_dec
    pre = torch.relu(encoder(x - b_dec)).detach()
    values, indices = pre.topk(k, dim=-1)
    expected = torch.zeros_like(pre).scatter_(-1, indices, values)
    torch.testing.assert_close(sae.encode(x), expected)
    torch.testing.assert_close(sae.decode(expected), expected @ W_dec + b_dec)


def test_bad_inputs_get_clear_errors(planted, tmp_path):
    model, sae_dir, rows, *_ = planted
    sae = load_sae(sae_dir)
    with pytest.raises(ValueError, match="'gpt_neox.layers.3' is not a module"):
        measure_feature_stats(sae, model, rows, hook_name="gpt_neox.layers.3", n_tokens=10, progress=False)
    wide = write_raw_sae(tmp_path / "wide", torch.eye(9), torch.zeros(9), torch.eye(9), torch.zeros(9))
    with pytest.raises(ValueError, match="d_in = 9 but the model's hidden size is 8"):
        measure_feature_stats(load_sae(wide), model, rows, n_tokens=10, progress=False)
    dead = write_raw_sae(tmp_path / "dead", torch.eye(8), torch.full((8,), -100.0), torch.eye(8), torch.zeros(8))
    with pytest.raises(ValueError, match="no latent of this SAE fires"):
        measure_feature_stats(load_sae(dead), model, rows, n_tokens=10, progress=False)
    with pytest.raises(ValueError, match="only 200 tokens"):
        measure_feature_stats(sae, model, rows, n_tokens=1000, progress=False)
    with pytest.raises(ValueError, match="empty"):
        measure_feature_stats(sae, model, [], n_tokens=10, progress=False)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"W_enc": torch.eye(8)}, pickled / "ae.pt")
    (pickled / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_sae(pickled)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no SAE we can read"):
        load_sae(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sae(sae_dir, sae_id="layers.9")


def test_dictionary_learning_loads_with_opt_in(tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    torch.save(
        {
            "encoder.weight": torch.eye(4) * 2,
            "encoder.bias": torch.zeros(4),
            "decoder.weight": torch.eye(4),
            "bias": torch.zeros(4),
        },
        folder / "ae.pt",
    )
    (folder / "config.json").write_text(json.dumps({"trainer": {"submodule_name": "features"}}))
    sae = load_sae(folder, allow_pickle=True)
    torch.testing.assert_close(sae.encode(torch.tensor([[1.0, -1.0, 0.5, 0.0]])), torch.tensor([[2.0, 0.0, 1.0, 0.0]]))
