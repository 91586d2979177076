import numpy as np
import pytest
import torch

from hf_geokd.probing.probes import auroc, probe_accuracy, stratified_split


def planted(n: int = 400, d: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    direction = torch.randn(d, generator=generator)
    features = torch.randn(n, d, generator=generator, dtype=torch.float64)
    # class means 5 standard deviations apart along the direction: the Bayes accuracy is Phi(2.5) = 0.994
    features += 2.5 * (2 * labels[:, None] - 1) * direction[None, :].double() / direction.norm()
    return features, labels.tolist()


def test_planted_direction_is_found_and_shuffled_labels_are_chance():
    features, labels = planted()
    found = probe_accuracy(features, labels, seeds=5)
    assert found["accuracy"] > 0.95 and found["auroc"] > 0.97
    control = probe_accuracy(features, labels, seeds=5, shuffle_labels=True)
    assert abs(control["accuracy"] - 0.5) < 0.07


def test_split_is_stratified_and_auroc_matches_hand_count():
    labels = np.array([0] * 30 + [1] * 10)
    train, test = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, test])) == list(range(40))
    assert (labels[test] == 1).sum() == 2 and (labels[test] == 0).sum() == 6
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_bad_labels_are_refused():
    features, _ = planted(20)
    with pytest.raises(ValueError, match="both classes"):
        probe_accuracy(features, [1] * 20)
