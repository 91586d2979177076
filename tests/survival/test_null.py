"""The token identity is a control a latent must beat (the README's definition), and both counts are reported.

In the context teacher, latents 0-15 are a function of the current token and 16-31 of the previous one; the student
keeps exact copies of latents 0-3 and 16-19. The token-identity read-out (a per-token mean) predicts the first half
better than the teacher's own linear read-out (normalised score > 1), the second half not at all.
"""

import json
import warnings

import numpy as np
import pytest
from survival_planted import survival_of

from hf_geokd.survival import FeatureSurvivalConfig, write_survival_study

KEPT = [0, 1, 2, 3, 16, 17, 18, 19]


@pytest.fixture(scope="module")
def survival(context_planted):
    return survival_of(context_planted, KEPT)


def survivors(result, **kwargs):
    return sorted(result.latent[result.survived(**kwargs)].tolist())


def test_by_default_a_latent_survives_only_beyond_the_token_identity(survival):
    token = survival.score("token")[np.argsort(survival.latent.numpy())]
    assert token[:16].min() > 1 and token[16:].max() < 0.05  # the current token explains the first half only
    assert survival.config.beyond_token and survival.null_label() == "random,shuffled,token"
    assert survivors(survival) == [16, 17, 18, 19]
    assert survivors(survival, beyond_token=False) == KEPT  # the random-init and shuffled null alone


def test_the_summary_reports_both_counts_and_names_the_null(survival):
    summary = survival.summary()
    assert summary["null"] == "random,shuffled,token"
    assert summary["survived@0.5"] == summary["survived@0.5[random,shuffled,token]"] == 4
    assert summary["survived@0.5[random,shuffled]"] == 8
    # latents are in index order here (decoder norms 0.8^i): survivors at ranks 1-4 and 17-20 step at k* = 4;
    # beyond the token identity only ranks 17-20 survive, and no step "up to rank k" beats k* = 0
    assert summary["k_star[random,shuffled]"] == 4
    assert summary["k_star"] == summary["k_star[random,shuffled,token]"] == 0


def test_beyond_token_false_gives_the_count_above_the_random_init_and_shuffled_controls(context_planted):
    result = survival_of(context_planted, KEPT, beyond_token=False)
    assert result.null_label() == "random,shuffled" and survivors(result) == KEPT
    assert result.summary()["survived@0.5"] == 8


def test_the_staircase_table_and_summary_json_say_what_the_counts_measure(survival, tmp_path):
    summary = write_survival_study([survival], tmp_path)
    assert summary["null"] == ["random,shuffled,token"]
    assert summary["k_star[random,shuffled]"] == [4] and summary["k_star[random,shuffled,token]"] == [0]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    markdown = (tmp_path / "staircase.md").read_text()
    header = markdown.splitlines()[0]
    for column in ("surv@0.5 vs random,shuffled", "surv@0.5 vs random,shuffled,token", "k* vs random,shuffled"):
        assert f"| {column} |" in header
    assert "the best score of the null: randomly initialised students, the shuffled pairing, the token identity" in (
        markdown)
    assert "token score" in markdown and "above 1 where the current token predicts a latent better" in markdown


def test_a_token_control_left_out_is_said_and_never_claimed(context_planted, monkeypatch):
    monkeypatch.setattr("hf_geokd.survival.measure.TOKEN_BASELINE_MAX_CELLS", 1)  # as for a 50k vocabulary
    with pytest.warns(UserWarning, match="token-identity control is not measured"):
        result = survival_of(context_planted, KEPT)
    assert "token" not in result.r2 and not result.config.token_baseline and not result.config.beyond_token
    assert result.null_label() == "random,shuffled" and survivors(result) == KEPT
    assert "survived@0.5[random,shuffled,token]" not in result.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, when measuring; asked for explicitly, not at all
        survival_of(context_planted, KEPT, beyond_token=False)
    with pytest.raises(ValueError, match="token_baseline=False leaves out the token-identity control"):
        FeatureSurvivalConfig(token_baseline=False)
