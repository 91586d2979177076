"""A predictor carries the ablation floors (floors in nats, no student) through save, load, its card and the CLI."""

import math

import pytest

from hf_geokd import FeatureStats, FloorPredictor
from hf_geokd.ablation_floors import AblationFloors
from hf_geokd.apps.cli import main

FLOORS = AblationFloors(widths=[4, 8], kl=[0.52, 0.11], ce=[3.1, 2.7], kept=[10.0, 20.0], splice_kl=0.05,
                        splice_ce=2.65, teacher_ce=2.6, temperature=2.0, n_tokens=1000, capacity_kind="dt_signed",
                        kept_rule="continuous", hooks=["gpt_neox.layers.1"])


def stats() -> FeatureStats:
    return FeatureStats.from_counts(40, 4.0, [1.0 / (i + 1) for i in range(40)], d_in=16, hook_name="gpt_neox.layers.1")


def test_predict_shows_the_measured_ablation_floor_and_nan_elsewhere():
    table = FloorPredictor(stats(), "dt_signed", ablation=FLOORS).predict([4, 8, 16])
    assert table["ablation_floor"].iloc[:2].tolist() == [0.52, 0.11] and math.isnan(table["ablation_floor"].iloc[2])
    assert "ablation_floor" not in FloorPredictor(stats(), "dt_signed").predict([4]).columns
    with pytest.raises(ValueError, match="ablation must be AblationFloors"):
        FloorPredictor(stats(), ablation=[0.5])


def test_ablation_floors_are_saved_loaded_and_on_the_card(tmp_path):
    predictor = FloorPredictor(stats(), "dt_signed", ablation=FLOORS)
    predictor.save_pretrained(tmp_path / "p")
    loaded = FloorPredictor.from_pretrained(tmp_path / "p")
    assert loaded.ablation == FLOORS
    card = (tmp_path / "p" / "README.md").read_text()
    assert "Floors in nats without a student" in card and "0.52" in card and "0.05" in card
    assert "path/to/this/folder" in card and "this-repo" not in card


def test_from_sae_reads_the_floors_saved_beside_the_sae(tmp_path):
    folder = tmp_path / "sae" / "gpt_neox.layers.1"
    stats().save(folder)
    FLOORS.save(folder)
    predictor = FloorPredictor.from_sae(tmp_path / "sae", sae_id="gpt_neox.layers.1")
    assert predictor.ablation == FLOORS


def test_geokd_predict_nats_prints_them_or_says_how_to_measure_them(tmp_path, capsys):
    FloorPredictor(stats(), ablation=FLOORS).save_pretrained(tmp_path / "with")
    FloorPredictor(stats()).save_pretrained(tmp_path / "without")
    assert main(["predict", str(tmp_path / "with"), "--widths", "4", "8", "--nats"]) == 0
    out = capsys.readouterr().out
    assert "Floors in nats with no student trained" in out and "0.52" in out
    assert main(["predict", str(tmp_path / "without"), "--widths", "4", "--nats"]) == 2
    assert "measure_ablation_floors" in capsys.readouterr().err


def test_a_card_says_soft_floor_and_shows_a_fitted_capacitys_critical_width(tmp_path):
    from hf_geokd import FittedCapacity

    FloorPredictor(stats(), floor_model="soft").save_pretrained(tmp_path / "soft")
    card = (tmp_path / "soft" / "README.md").read_text()
    assert "soft floor" in card and "dt_signed**" not in card
    FloorPredictor(stats(), FittedCapacity(a=2.0, b=0.0)).save_pretrained(tmp_path / "fitted")
    assert "(this predictor's)" in (tmp_path / "fitted" / "README.md").read_text()


def test_a_calibrated_card_shows_the_fit_without_a_plus_minus_and_no_r2_from_two_points(tmp_path):
    predictor = FloorPredictor(stats(), "dt_signed")
    predictor.calibrate([4, 8], [0.9, 0.5])
    predictor.save_pretrained(tmp_path / "c")
    card = (tmp_path / "c" / "README.md").read_text()
    assert "+ -" not in card and "R^2 = 1.0000" not in card and "an exact fit through its points" in card


def test_bad_soft_floors_kept_counts_and_missing_sae_folders_are_named(tmp_path):
    from hf_geokd import FittedCapacity

    for bad in ({}, {"shape": {}}, {"shape": {"softness": 1}, "capacity_kind": {"a": 1, "b": 0}, "rms_log_error": 0,
                                    "n_points": 1, "unused": 0} | {"shape": {"bogus": 1}}):
        with pytest.raises(ValueError, match="soft floor"):
            FloorPredictor(stats(), floor_model=bad)
    with pytest.raises(ValueError, match="widths and kept must be numbers"):
        FittedCapacity.from_kept_counts(["a"], ["b"])
    (tmp_path / "saes" / "real").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="has no folder 'nope'"):
        FloorPredictor.from_sae(tmp_path / "saes", sae_id="nope")


def test_the_demo_reports_ordering_agreement_pair_by_pair_with_ties_apart():
    import numpy as np

    from hf_geokd.apps.demo import ordering_agreement

    assert ordering_agreement(np.array([0.5, 0.2, 0.0, 0.0]), np.array([0.6, 0.3, 0.1, 0.05])) == \
        "yes (5 of 5 ordered pairs agree; 1 predicted ties)"
    assert ordering_agreement(np.array([0.0, 0.0]), np.array([0.6, 0.3])).startswith("no (0 of 0")
    assert ordering_agreement(np.array([0.1, 0.2]), np.array([0.6, 0.3])) == "no (0 of 1 ordered pairs agree)"


def test_resaving_without_ablation_floors_leaves_no_stale_ones_and_nats_refuses_before_any_output(tmp_path, capsys):
    FloorPredictor(stats(), ablation=FLOORS).save_pretrained(tmp_path / "p")
    FloorPredictor(stats()).save_pretrained(tmp_path / "p")
    assert FloorPredictor.from_pretrained(tmp_path / "p").ablation is None
    assert main(["predict", str(tmp_path / "p"), "--widths", "4", "--nats", "--save", str(tmp_path / "q")]) == 2
    captured = capsys.readouterr()
    assert "predicted_floor" not in captured.out and "measure_ablation_floors" in captured.err
    assert not (tmp_path / "q").exists()
    assert main(["predict", str(tmp_path / "p"), "--widths", "4", "32"]) == 2  # d_T = 16
    captured = capsys.readouterr()
    assert captured.out == "" and "--widths [32] exceed the teacher's hidden size 16" in captured.err


def test_ablation_floors_of_another_hook_or_a_malformed_dict_are_refused():
    with pytest.raises(ValueError, match="measured at \\['gpt_neox.layers.3'\\]"):
        FloorPredictor(stats(), ablation=AblationFloors(**{**FLOORS.__dict__, "hooks": ["gpt_neox.layers.3"]}))
    with pytest.raises(ValueError, match="not AblationFloors' fields"):
        FloorPredictor(stats(), ablation={"widths": [4]})


def test_geokd_predict_kept_rule_continuous(capsys):
    args = ["predict", "--n-features", "40", "--l0", "4", "--d-in", "16", "--zipf-exponent", "1", "--kind",
            "dt_signed", "--widths", "3"]
    assert main(args) == 0
    floor_rule = capsys.readouterr().out
    assert main([*args, "--kept-rule", "continuous"]) == 0
    continuous = capsys.readouterr().out
    assert "continuous cut" in continuous and floor_rule != continuous


def test_from_sae_on_stored_statistics_loads_no_sae_library(tmp_path):
    import subprocess
    import sys

    stats().save(tmp_path / "sae" / "gpt_neox.layers.1")
    code = ("import sys; from hf_geokd import FloorPredictor; "
            f"p = FloorPredictor.from_sae({str(tmp_path / 'sae')!r}, sae_id='gpt_neox.layers.1'); "
            "print(p.stats.n_features, 'sae_lens' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["40", "False", "False"]


def test_floors_statistics_and_a_model_of_another_sae_or_teacher_are_refused(tmp_path):
    from types import SimpleNamespace

    measured = stats()
    measured.metadata["d_sae"] = 64
    other = AblationFloors(**{**FLOORS.__dict__, "metadata": {"d_sae": [128]}})
    with pytest.raises(ValueError, match="measured with an SAE of d_sae = 128, these statistics with one of "
                                         "d_sae = 64"):
        FloorPredictor(measured, ablation=other)
    assert FloorPredictor(measured, ablation=AblationFloors(**{**FLOORS.__dict__, "metadata": {"d_sae": [64]}}))
    measured.save(tmp_path / "sae" / "gpt_neox.layers.1")
    wider = SimpleNamespace(config=SimpleNamespace(hidden_size=32))
    with pytest.raises(ValueError, match="model has hidden size 32, and the statistics stored beside the SAE were "
                                         "measured at d_in = 16: this model is not the SAE's teacher"):
        FloorPredictor.from_sae(tmp_path / "sae", sae_id="gpt_neox.layers.1", model=wider)


def test_a_folder_of_sae_folders_without_an_sae_id_names_them(tmp_path, capsys):
    (tmp_path / "saes" / "gpt_neox.layers.1").mkdir(parents=True)
    (tmp_path / "saes" / "gpt_neox.layers.1" / "cfg.json").write_text("{}")
    with pytest.raises(ValueError, match="holds its SAEs in sub-folders: pass sae_id= \\(its SAE folders: "
                                         "'gpt_neox.layers.1'\\)"):
        FloorPredictor.from_sae(tmp_path / "saes")
    assert main(["predict", str(tmp_path / "saes"), "--nats"]) == 2
    assert "pass --sae-id (its SAE folders: 'gpt_neox.layers.1')" in capsys.readouterr().err


def test_the_cards_usage_example_predicts_at_widths_this_teacher_has(tmp_path):
    FloorPredictor(stats()).save_pretrained(tmp_path / "p")  # d_T = 16
    assert "predictor.predict([2, 4, 8])" in (tmp_path / "p" / "README.md").read_text()


def test_geokd_predict_warns_about_the_capacity_kind_asked_for_only(tmp_path):
    import warnings

    from hf_geokd import CapacityWarning

    dense = FeatureStats.from_counts(40, 20.0, [1.0 / (i + 1) for i in range(40)], d_in=16)  # alpha 0.5
    dense.save(tmp_path / "stats")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", str(tmp_path / "stats"), "--kind", "dt_signed", "--widths", "4"]) == 0
        assert not [w for w in caught if issubclass(w.category, CapacityWarning)]
        assert main(["predict", str(tmp_path / "stats"), "--widths", "4"]) == 0
    assert any("kind='paper'" in str(w.message) for w in caught if issubclass(w.category, CapacityWarning))
