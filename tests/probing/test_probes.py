import numpy as np
import pytest
import torch

from hf_geokd.probing.probes import auroc, fit_logistic, probe_accuracy, stratified_split


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


@pytest.mark.parametrize("columns", [5, 300])  # fewer columns than rows, and more (solved in the row space)
def test_the_logistic_fit_reaches_the_penalised_optimum(columns):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60, columns, generator=generator, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(60, generator=generator, dtype=torch.float64) > 0).double()
    weights = fit_logistic(x, y, l2=1e-2).requires_grad_(True)
    logits = torch.cat([x, torch.ones(60, 1, dtype=x.dtype)], 1) @ weights
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 1e-2 * weights[:-1].pow(2).sum()
    (gradient,) = torch.autograd.grad(loss, weights)
    assert gradient.abs().max() < 1e-8  # the full problem's gradient, not only the reduced one's
    assert weights[0] > 0
