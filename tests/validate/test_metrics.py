"""Floor-accuracy metrics against hand computations, and the evaluate module that ships them."""

import evaluate
import numpy as np
import pytest

from hf_geokd.validate import floor_accuracy, floor_accuracy_module


def test_metrics_match_a_hand_computation():
    observed = np.array([1.0, 2.0, 4.0, 8.0])
    predicted = np.array([1.5, 2.0, 2.0, 8.8])  # relative errors 0.5, 0, 0.5, 0.1
    result = floor_accuracy(predicted, observed)
    assert result["points"] == 4
    assert result["mare_pct"] == pytest.approx(100 * np.median([0.5, 0.0, 0.5, 0.1]))
    assert result["median_accuracy_pct"] == pytest.approx(100 * np.median([0.5, 1.0, 0.5, 0.9]))
    residual = np.sum((observed - predicted) ** 2)
    assert result["r2"] == pytest.approx(1 - residual / np.sum((observed - observed.mean()) ** 2))
    assert result["pearson_r"] == pytest.approx(np.corrcoef(predicted, observed)[0, 1])
    assert result["spearman_rho"] == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert result["median_accuracy_pct_low"] <= result["median_accuracy_pct"] <= result["median_accuracy_pct_high"]


def test_accuracy_is_zero_beyond_a_100_percent_error_and_perfect_predictions_score_100():
    assert floor_accuracy([3.0, 0.0], [1.0, 1.0])["median_accuracy_pct"] == 0.0
    perfect = floor_accuracy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert perfect["median_accuracy_pct"] == 100.0 and perfect["r2"] == 1.0 and perfect["r2_low"] == 1.0


@pytest.mark.parametrize("predicted, observed, message", [
    ([1.0], [0.0], "must be > 0"),
    ([1.0, 2.0], [1.0], "non-empty and paired"),
    ([np.nan], [1.0], "finite"),
])
def test_bad_inputs_are_named(predicted, observed, message):
    with pytest.raises(ValueError, match=message):
        floor_accuracy(predicted, observed)


def test_the_evaluate_module_loads_offline_from_the_package_and_agrees(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(floor_accuracy_module()))
    predicted, observed = [1.2, 1.9, 3.5, 4.0], [1.0, 2.0, 3.0, 5.0]
    assert metric.compute(predictions=predicted, references=observed) == floor_accuracy(predicted, observed)


@pytest.mark.parametrize("arguments, message", [
    ({"confidence": 2}, "confidence must be a number in \\(0, 1\\)"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
    ({"predicted": ["a", "b"]}, "predicted must be a sequence of numbers"),
    ({"observed": [1.0, float("inf")]}, "observed floors must be finite, not at positions \\[1\\]"),
    ({"predicted": [float("nan"), 1.0]}, "predicted floors must be finite, not at positions \\[0\\]"),
])
def test_bad_settings_and_values_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        floor_accuracy(**{"predicted": [1.0, 2.0], "observed": [1.0, 2.0], **arguments})
