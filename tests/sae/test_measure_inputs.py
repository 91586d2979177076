"""measure_feature_stats uses exactly the tokens it says, or refuses by name."""

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from hf_geokd.sae import measure_feature_stats
from hf_geokd.sae.load import RAW_CONFIG_NAME, load_sae

VOCAB, D = 6, 8


class Lookup(torch.nn.Module):
    """Token t writes codebook[t] into the 'features' module; pad id 0 writes a vector no real token writes."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(hidden_size=D, vocab_size=VOCAB)
        codebook = torch.zeros(VOCAB, D)
        codebook[0] = 5.0  # the pad token fires every latent strongly: counting it shows in every statistic
        for token in range(1, VOCAB):
            codebook[token, token - 1] = float(token)
        self.features = torch.nn.Embedding.from_pretrained(codebook)

    def forward(self, input_ids, attention_mask=None):
        return self.features(input_ids)


@pytest.fixture
def sae(tmp_path):
    folder = tmp_path / "sae"
    folder.mkdir()
    save_file({"W_enc": torch.eye(D), "b_enc": torch.zeros(D), "W_dec": torch.eye(D), "b_dec": torch.zeros(D)},
              str(folder / "sae.safetensors"))
    (folder / RAW_CONFIG_NAME).write_text(json.dumps({"activation": "relu", "hook_name": "features"}))
    return load_sae(folder)


def real_rows():
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(1, VOCAB, (8,), generator=generator).tolist() for _ in range(10)]


def measure(sae, rows, **kwargs):
    return measure_feature_stats(sae, Lookup(), rows, progress=False, **{"n_tokens": 80, **kwargs})


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_rows_with_their_mask_give_the_unpadded_statistics(sae, side):
    rows = real_rows()
    plain = measure(sae, [{"input_ids": row} for row in rows])
    pad, ones = [0] * 8, [1] * 8
    padded = [
        {"input_ids": row + pad if side == "right" else pad + row,
         "attention_mask": ones + [0] * 8 if side == "right" else [0] * 8 + ones}
        for row in rows
    ]
    masked = measure(sae, padded, batch_size=3)
    assert masked.n_tokens == plain.n_tokens == 80
    assert masked.n_features == plain.n_features
    assert masked.l0 == pytest.approx(plain.l0, abs=1e-12)
    torch.testing.assert_close(masked.contributions, plain.contributions)
    with pytest.raises(ValueError, match="only 80 tokens of the n_tokens=160"):
        measure(sae, padded, n_tokens=160)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_tokens": -5}, "n_tokens must be a positive integer"),
        ({"n_tokens": 0}, "n_tokens must be a positive integer"),
        ({"n_tokens": 100.5}, "n_tokens must be a positive integer"),
        ({"n_tokens": True}, "n_tokens must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"alive_threshold": -1}, r"alive_threshold must be a firing frequency in \[0, 1\)"),
        ({"alive_threshold": float("nan")}, "alive_threshold must be"),
    ],
)
def test_bad_arguments_are_refused_before_measuring(sae, kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure(sae, [{"input_ids": row} for row in real_rows()], **kwargs)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1, 2], []], "row 1 has no tokens"),
        ([{"input_ids": [1, 2], "attention_mask": [0, 0]}], "row 0 has no tokens under its attention_mask"),
        ([{"input_ids": [1, 2, 3], "attention_mask": [1, 0, 1]}], "row 0's attention_mask has holes"),
        ([{"input_ids": [1, 2, 3], "attention_mask": [1, 1]}], "row 0 has 3 input_ids but 2 attention_mask"),
        ([{"text": "hello"}], "row 0 has no input_ids"),
        ({"input_ids": [[1, 2]]}, "row 0 is text .*'input_ids'.*, not token ids"),
        ([[1, 2, VOCAB]], rf"token id {VOCAB} is outside the model's vocabulary \[0, {VOCAB}\)"),
        ([[1, -1]], "token id -1 is outside"),
    ],
)
def test_bad_rows_are_named(sae, rows, message):
    with pytest.raises(ValueError, match=message):
        measure(sae, rows, n_tokens=2)


def test_the_sae_and_the_model_in_each_others_place_are_named(sae):
    rows = [{"input_ids": row} for row in real_rows()]
    with pytest.raises(ValueError, match=r"the SAE was passed as model .*swap them.*measure_feature_stats\(sae, model"):
        measure_feature_stats(Lookup(), sae, rows, progress=False)
    with pytest.raises(ValueError, match="sae must be an SAE .* got None: load one with hf_geokd.load_sae"):
        measure_feature_stats(None, Lookup(), rows, progress=False)
    with pytest.raises(ValueError, match="model must be a model .* got str"):
        measure_feature_stats(sae, "EleutherAI/pythia-70m", rows, progress=False)
