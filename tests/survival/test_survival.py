"""Feature survival: the streaming read-out against a direct fit, and planted students whose survivors are known."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from survival_planted import D_T, VOCAB, PlantedStudent, ToySAE, survival_of

from hf_geokd import FeatureStats, FloorPredictor
from hf_geokd.survival import (
    FeatureSurvival,
    FeatureSurvivalConfig,
    RidgeReadout,
    TokenBaseline,
    fit_g_eff,
    measure_feature_survival,
    measured_capacity,
    survival_staircase,
    survivor_jaccard,
    write_survival_study,
)
from hf_geokd.survival.hooks import matching_hook
from hf_geokd.survival.result import step_cutoff


def direct_ridge_r2(x_train, y_train, x_test, y_test, ridge):
    """Ridge on centred train data (penalty relative to tr(C)/d), R^2 on the test rows, in numpy."""
    mx, my = x_train.mean(0), y_train.mean(0)
    cov = (x_train - mx).T @ (x_train - mx) / len(x_train)
    w = np.linalg.solve(cov + ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0]),
                        (x_train - mx).T @ (y_train - my) / len(x_train))
    prediction = x_test @ w + (my - mx @ w)
    return 1 - ((y_test - prediction) ** 2).sum(0) / ((y_test - y_test.mean(0)) ** 2).sum(0)


def test_streamed_ridge_equals_the_direct_fit():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 6, generator=generator) + 2.0
    y = torch.relu(x @ torch.randn(6, 5, generator=generator) + torch.randn(3000, 5, generator=generator))
    held_out = torch.rand(3000, generator=generator) < 0.3
    readout = RidgeReadout(6, 5, ridge=0.1)
    for chunk in torch.arange(3000).split(700):  # streamed in uneven chunks
        readout.update(x[chunk], y[chunk], held_out[chunk])
    xd, yd, h = x.double().numpy(), y.double().numpy(), held_out.numpy()
    expected = direct_ridge_r2(xd[~h], yd[~h], xd[h], yd[h], 0.1)
    np.testing.assert_allclose(readout.held_out_r2().numpy(), expected, rtol=1e-9, atol=1e-12)
    assert expected.min() > 0.2  # the targets are predictable: the comparison is not between two zeros


def test_token_baseline_equals_per_token_means():
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 20, (4000,), generator=generator)
    y = torch.randn(20, 3, generator=generator)[tokens] + 0.5 * torch.randn(4000, 3, generator=generator)
    held_out = torch.rand(4000, generator=generator) < 0.25
    baseline = TokenBaseline(20, 3)
    baseline.update(tokens, y, held_out)
    train_t, train_y = tokens[~held_out].numpy(), y[~held_out].double().numpy()
    global_mean = train_y.mean(0)
    means = np.stack([(train_y[train_t == v].sum(0) + global_mean) / ((train_t == v).sum() + 1) for v in range(20)])
    test_y = y[held_out].double().numpy()
    prediction = means[tokens[held_out].numpy()]
    expected = 1 - ((test_y - prediction) ** 2).sum(0) / ((test_y - test_y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(baseline.held_out_r2().numpy(), expected, rtol=1e-9)


# Every latent of the planted teacher is a function of the current token, so the token-identity read-out explains
# them all (its normalised score is ~2: a per-token mean beats the teacher's own linear read-out). These tests check
# the read-out against the random-init and shuffled controls (beyond_token=False); test_null.py the token control.
def read_out_survival(planted, kept, **settings):
    return survival_of(planted, kept, beyond_token=False, **settings)


@pytest.mark.parametrize("kept", [[0, 1, 2, 3, 4, 5, 6, 7], [3, 9, 14, 20, 27, 30]])
def test_a_student_holding_exact_copies_keeps_exactly_those_latents(planted, kept):
    survival = read_out_survival(planted, kept)
    assert survival.latent.tolist() == list(range(D_T))  # importance order is the planted one
    assert survival.scorable.all()
    assert np.flatnonzero(survival.survived()).tolist() == kept
    for threshold in (0.3, 0.7):
        assert np.flatnonzero(survival.survived(threshold)).tolist() == kept
    score = survival.score()
    assert score[kept].min() > 0.95 and np.delete(score, kept).max() < 0.05
    if kept == list(range(8)):  # the top-8 staircase: k* = F_S = 8 at d_S = 8, g_eff = 1
        assert survival.k_star() == 8 and survival.g_eff() == 1.0


def test_relu_probe_reads_through_the_threshold_that_a_linear_read_out_cannot(planted):
    kept = [0, 1, 2, 3, 4, 5, 6, 7]
    linear = read_out_survival(planted, kept, seeds=[11])
    relu = read_out_survival(planted, kept, seeds=[11], probe="relu")
    # z = ReLU(u - 1) with u an exact coordinate of the student's residual: a ReLU probe recovers it (up to its
    # 3 x 30 streamed Adam steps), a line cannot
    assert relu.r2["student"][kept].min() > 0.9 and linear.r2["student"][kept].max() < 0.5
    assert np.flatnonzero(relu.survived()).tolist() == kept
    assert relu.r2["shuffled"].max() < 0.01 and relu.config.probe == "relu"
    with pytest.raises(ValueError, match="probe must be"):
        read_out_survival(planted, kept, probe="mlp")


def test_ceiling_normalisation_is_one_for_the_teacher_against_itself(planted):
    teacher, sae, _, rows = planted
    config = FeatureSurvivalConfig(n_tokens=8_000, null_students=0)
    survival = measure_feature_survival(teacher, sae, teacher, rows, config, progress=False)
    np.testing.assert_allclose(survival.score()[survival.scorable], 1.0, rtol=1e-6)
    assert survival.scorable.sum() == D_T


def test_controls_shuffled_at_chance_tokens_explain_token_features(planted):
    survival = read_out_survival(planted, list(range(8)))
    shuffled = survival.r2["shuffled"].numpy()
    assert np.abs(shuffled).max() < 0.02  # held-out R^2 of pairings with other positions is zero up to noise
    randoms = np.stack([survival.score(name) for name in survival.random_readers])
    assert randoms.shape[0] == 3 and 0.05 < randoms.mean() < 0.6  # a random 8-dim projection reads ~8/32 of each
    above = [int(survival.survived(reader=name).sum()) for name in survival.random_readers]
    assert survival.summary()["survived_random_mean"] == pytest.approx(np.mean(above))
    assert [int((score > 0.5).sum()) for score in randoms] == above  # controls: the threshold alone
    # every latent here is a function of the token id: the token-identity read-out recovers them all
    assert survival.r2["token"].numpy().min() > 0.8


def test_save_load_plot_and_the_staircase_across_widths(planted, tmp_path):
    narrow, wide = read_out_survival(planted, [0, 1, 2, 3]), read_out_survival(planted, list(range(8)))
    summary = write_survival_study([wide, narrow], tmp_path)
    assert summary["widths"] == [4, 8] and summary["k_star"] == [4, 8] and summary["g_eff_fit"] == pytest.approx(1)
    loaded = FeatureSurvival.load(tmp_path / "d_S=4")
    assert loaded.summary() == pytest.approx(narrow.summary(), nan_ok=True)
    np.testing.assert_array_equal(loaded.survived(), narrow.survived())
    table = survival_staircase([wide, loaded])
    assert table["student_width"].tolist() == [4, 8] and table["k_star"].tolist() == [4, 8]
    assert table["F_S[info]"].tolist() == [int(4 * D_T / narrow.l0), D_T]  # g = 1/p = F / L0, capped at F
    assert not table["saturated"].any()
    shifted = read_out_survival(planted, list(range(4, 12)))
    assert survivor_jaccard([wide, shifted]) == pytest.approx(4 / 12)  # {0..7} and {4..11} share 4 of 12
    with pytest.raises(ValueError, match="same width"):
        survivor_jaccard([wide, narrow])
    assert fit_g_eff([narrow, wide]) == pytest.approx(1.0)
    # the predictor takes the measured capacity: it keeps d_S * g_eff = d_S features
    stats = FeatureStats.from_counts(D_T, narrow.l0, narrow.importance, d_in=D_T)
    predictor = FloorPredictor(stats, measured_capacity([narrow, wide]))
    assert predictor.predict([4, 8, 16])["kept"].tolist() == [4, 8, 16]
    assert (tmp_path / "staircase.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "orderings.png").read_bytes()[:4] == b"\x89PNG"
    # survivors are the first latents of the importance order here: that ordering separates them perfectly
    assert narrow.ordering_aucs()["importance"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown ordering"):
        narrow.ordering_values("energy density")
    assert "| 8 | 32 | 0 |" in (tmp_path / "staircase.md").read_text()  # d_S, scorable, excluded
    with pytest.raises(FileNotFoundError, match="not a FeatureSurvival folder"):
        FeatureSurvival.load(tmp_path)


def test_step_cutoff_and_bad_inputs(planted):
    assert step_cutoff(np.array([True, True, False, True, True, False, False]), np.arange(1, 8)) == 5
    assert step_cutoff(np.array([True, True, False, True, False, False]), np.arange(1, 7)) == 2  # ties: the smaller
    assert step_cutoff(np.array([False, True, True, False, False]), np.array([7, 1, 2, 4, 8])) == 2  # unordered ranks
    assert step_cutoff(np.array([False, False]), np.array([2, 5])) == 0
    teacher, sae, directions, rows = planted
    student = PlantedStudent(teacher, directions[:, :4])

    def measure(rows=rows, **settings):
        config = FeatureSurvivalConfig(**{"null_students": 0, **settings})
        return measure_feature_survival(teacher, sae, student, rows, config, progress=False)

    with pytest.raises(ValueError, match="held_out"):
        measure(held_out=1.0)
    with pytest.raises(ValueError, match="yields only"):
        measure(rows[:2], n_tokens=1000)
    with pytest.raises(ValueError, match="no .config"):
        measure(null_students=3)
    with pytest.raises(ValueError, match="n_tokens must be a positive integer"):
        measure(n_tokens=0)
    student.config = SimpleNamespace(vocab_size=VOCAB // 2)
    with pytest.raises(ValueError, match="vocab_size"):
        measure()
    del student.config
    with pytest.raises(ValueError, match="not a module"):
        measure(student_hook="layers.7")


def test_relative_depth_and_random_students_of_a_transformers_model():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from hf_geokd.survival import random_students

    def model(layers, width):
        return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=64, hidden_size=width, num_hidden_layers=layers,
                                                num_attention_heads=2, intermediate_size=2 * width))

    teacher, student = model(4, 16), model(2, 8)
    assert matching_hook(teacher, "gpt_neox.layers.1", student) == "gpt_neox.layers.0"
    assert matching_hook(teacher, "gpt_neox.layers.3", student) == "gpt_neox.layers.1"
    assert matching_hook(teacher, "gpt_neox.layers.2", model(4, 8)) == "gpt_neox.layers.2"
    assert matching_hook(teacher, "blocks.3.hook_resid_post", student) == "blocks.1.hook_resid_post"  # TL names
    assert matching_hook(teacher, "blocks.1.ln2.hook_normalized", student) == "blocks.0.ln2.hook_normalized"
    deep = model(8, 8)  # before block 1 of 4 (depth 1/4) is before block 2 of 8; after block 1 is after block 3
    assert matching_hook(teacher, "blocks.1.hook_resid_pre", deep) == "blocks.2.hook_resid_pre"
    assert matching_hook(teacher, "blocks.1.hook_resid_post", deep) == "blocks.3.hook_resid_post"
    # ties round up whatever the depths: after block 2 of 4 (depth 3/4) is after block 2 of 2 ... 5 of 6
    assert [matching_hook(teacher, "gpt_neox.layers.2", model(n, 8)) for n in (2, 6)] == [
        "gpt_neox.layers.1", "gpt_neox.layers.4"]
    first, second, again = random_students(student, [1, 2, 1])
    weight = "gpt_neox.embed_in.weight"
    assert not torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert torch.equal(first.state_dict()[weight], again.state_dict()[weight])
    assert first.config.hidden_size == 8


def test_toy_read_out_ranks_kept_features_above_dropped_ones():
    from hf_geokd.survival.known import kept_set_recovery, toy_feature_scores

    # a width-3 toy student keeping features 0-2 on their own axes and 3-4 in superposition on a fourth direction
    # pair; features 5-7 are dropped (zero columns) and one (8) is barely embedded (norm 0.1 < 0.5)
    W = torch.zeros(3, 9)
    W[:, :3] = torch.eye(3)
    W[0, 3], W[1, 4] = 0.9, -0.9
    W[2, 8] = 0.1
    scores = toy_feature_scores(W, alpha=0.9, n_samples=20_000)
    norms = W.norm(dim=0).numpy()
    assert scores[5:8].max() < 0.01  # dropped features: nothing to read
    result = kept_set_recovery(scores, norms)
    assert result["auc"] == 1.0 and result["kept"] == 5
    assert scores[8] < 0.5 < scores[:3].min()  # the feature below the kept threshold reads out below survival


def test_a_transformer_lens_hooked_sae_reads_the_same_residual_and_its_processing_is_applied():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    def model(width, seed):
        torch.manual_seed(seed)
        return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=64, hidden_size=width, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=2 * width)).eval()

    teacher, student = model(16, 0), model(8, 1)
    directions = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(2)))[0]
    rows = [{"input_ids": torch.randint(0, 64, (32,), generator=torch.Generator().manual_seed(i)).tolist()}
            for i in range(40)]

    def survival(hook_name, **model_kwargs):
        sae = ToySAE(directions)
        sae.b_enc.data.zero_()
        sae.cfg.metadata = SimpleNamespace(hook_name=hook_name, model_from_pretrained_kwargs=model_kwargs)
        config = FeatureSurvivalConfig(n_tokens=1200, null_students=0, min_firings=1)
        return measure_feature_survival(teacher, sae, student, rows, config, progress=False)

    by_module, by_name = survival("gpt_neox.layers.1"), survival("blocks.1.hook_resid_post")
    assert by_name.student_hook == "blocks.1.hook_resid_post"
    for reader in by_module.r2:
        torch.testing.assert_close(by_name.r2[reader], by_module.r2[reader], equal_nan=True)
    centred = survival("blocks.1.hook_resid_post", center_writing_weights=True)  # the SAE encodes x - mean_d(x)
    assert not torch.equal(centred.frequency.sort().values, by_name.frequency.sort().values)
