"""measure_feature_survival refuses bad inputs by name, as measure_feature_stats does, before measuring."""

import pytest
import torch
from survival_planted import SEQ, VOCAB, PlantedStudent

from hf_geokd.survival import FeatureSurvivalConfig, measure_feature_survival

CONFIG = FeatureSurvivalConfig(n_tokens=64, null_students=0)


@pytest.fixture(scope="module")
def models(planted):
    teacher, sae, directions, rows = planted
    return teacher, sae, PlantedStudent(teacher, directions[:, :4]), rows


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([list(range(SEQ)), []], "row 1 has no tokens: drop empty rows"),
        ([{"input_ids": [1, 2], "attention_mask": [0, 0]}], "row 0 has no tokens under its attention_mask"),
        ([{"text": "hello"}], "row 0 has no input_ids"),
        ([[1, 2, VOCAB]], rf"token id {VOCAB} is outside the model's vocabulary \[0, {VOCAB}\)"),
        ([[1, -1]], "token id -1 is outside"),
        (torch.arange(2 * SEQ), r"dataset is a 1-D array of shape \(128,\): pass rows of token ids"),
        (list(range(2 * SEQ)), "dataset is a flat list of token ids"),
    ],
)
def test_bad_rows_are_named(models, rows, message):
    teacher, sae, student, _ = models
    with pytest.raises(ValueError, match=message):
        measure_feature_survival(teacher, sae, student, rows, CONFIG, progress=False)


def test_padded_rows_with_their_mask_give_the_unpadded_result(models):
    teacher, sae, student, rows = models
    padded = [{"input_ids": row["input_ids"] + [0] * 8, "attention_mask": [1] * SEQ + [0] * 8} for row in rows]
    config = FeatureSurvivalConfig(n_tokens=4_000, null_students=0, min_firings=1)
    plain = measure_feature_survival(teacher, sae, student, rows, config, progress=False)
    assert measure_feature_survival(teacher, sae, student, padded, config, progress=False).same_as(plain)


def test_a_missing_or_misplaced_sae_is_named(models):
    teacher, sae, student, rows = models
    with pytest.raises(ValueError, match="sae must be an SAE .* got None"):
        measure_feature_survival(teacher, None, student, rows, CONFIG, progress=False)
    order = r"the order is measure_feature_survival\(teacher, sae, student, dataset"
    with pytest.raises(ValueError, match=f"the SAE was passed as teacher .*swap them, {order}"):
        measure_feature_survival(sae, teacher, student, rows, CONFIG, progress=False)
    with pytest.raises(ValueError, match="the SAE was passed as student"):
        measure_feature_survival(teacher, student, sae, rows, CONFIG, progress=False)
    with pytest.raises(ValueError, match="teacher must be a model .* got None"):
        measure_feature_survival(None, sae, student, rows, CONFIG, progress=False)
    with pytest.raises(TypeError, match="config must be a FeatureSurvivalConfig, got dict"):
        measure_feature_survival(teacher, sae, student, rows, {"n_tokens": 64}, progress=False)
