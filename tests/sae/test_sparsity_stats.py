"""The no-forward path: statistics from an SAE's sparsity file, marked approximate everywhere a predictor shows."""

import json

import pytest
import torch
from safetensors.torch import save_file

from hf_geokd import FloorPredictor
from hf_geokd.apps import cli

D_IN, D_SAE = 4, 6
FREQUENCIES = [0.5, 0.25, 0.1, 0.01, 0.0, 1e-7]  # the last two are dead at the default threshold 1e-5
DECODER_NORMS = [1.0, 2.0, 1.0, 3.0, 1.0, 1.0]


def sae_folder(tmp_path, sparsity: bool = True):
    folder = tmp_path / "sae"
    folder.mkdir()
    config = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
              "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
              "metadata": {"hook_name": "blocks.0.hook_resid_post", "sae_lens_version": "6.54.12"}}
    (folder / "cfg.json").write_text(json.dumps(config))
    W_dec = torch.zeros(D_SAE, D_IN)
    W_dec[:, 0] = torch.tensor(DECODER_NORMS)
    save_file({"W_enc": torch.randn(D_IN, D_SAE), "b_enc": torch.zeros(D_SAE), "W_dec": W_dec,
               "b_dec": torch.zeros(D_IN)}, str(folder / "sae_weights.safetensors"))
    if sparsity:
        save_file({"sparsity": torch.log10(torch.tensor(FREQUENCIES) + 1e-10)}, str(folder / "sparsity.safetensors"))
    return folder


def test_stats_from_the_sparsity_file_are_marked_approximate(tmp_path):
    predictor = FloorPredictor.from_sae(sae_folder(tmp_path), approximate=True, allow_wider=True)
    stats = predictor.stats
    assert stats.n_features == 4 and stats.l0 == pytest.approx(0.86, rel=1e-5)
    expected = sorted((f * n**2 for f, n in zip(FREQUENCIES[:4], DECODER_NORMS[:4])), reverse=True)
    assert stats.contributions.tolist() == pytest.approx(expected, rel=1e-5)
    table = predictor.predict([1, 2])
    assert table["approximate"].all() and "sparsity file" in table.attrs["approximation"]
    assert repr(predictor).startswith("FloorPredictor(APPROXIMATE")
    assert "Approximate predictor." in str(predictor.generate_model_card())
    predictor.save_pretrained(tmp_path / "saved")
    assert FloorPredictor.from_pretrained(tmp_path / "saved").approximation == predictor.approximation
    measured = FloorPredictor(stats.__class__.from_counts(2, 1.0, [1.0, 0.5]))
    assert measured.approximation is None and "approximate" not in measured.predict([1]).columns


def test_the_approximation_is_opt_in_and_needs_a_sparsity_file(tmp_path):
    with pytest.raises(ValueError, match="approximate=True to use the SAE's sparsity file"):
        FloorPredictor.from_sae(sae_folder(tmp_path))
    bare = tmp_path / "bare"
    bare.mkdir()
    folder = sae_folder(bare, sparsity=False)
    with pytest.raises(ValueError, match="ships no sparsity.safetensors"):
        FloorPredictor.from_sae(folder, approximate=True)


def test_the_command_line_takes_the_approximation_as_a_flag(tmp_path, capsys):
    folder = str(sae_folder(tmp_path))
    assert cli.main(["predict", folder, "--widths", "2"]) == 2
    assert "or --approximate to use the SAE's sparsity file" in capsys.readouterr().err
    assert cli.main(["predict", folder, "--widths", "2", "--approximate"]) == 0
    assert capsys.readouterr().out.startswith("APPROXIMATE statistics")
