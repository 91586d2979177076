import numpy as np
import pandas as pd
import pytest
import torch

from hf_geokd.toy import ToySweepConfig, run_toy_sweep
from hf_geokd.toy import sweep as sweep_module
from hf_geokd.toy.analysis import accuracy, add_predictions, fit_effective_capacity, floor_points
from hf_geokd.toy.models import ToyModelStack, teacher_target, weighted_loss
from hf_geokd.toy.report import write_toy_report


@pytest.fixture
def smoke(toy_smoke):
    return toy_smoke[0]


@pytest.mark.parametrize("shared_target", [True, False])
def test_hand_written_gradients_match_autograd(shared_target):
    A, K, n, B = 2, 3, 6, 32
    stack = ToyModelStack(torch.tensor([1, 2, 3, 3, 1, 2]), n, A, torch.Generator().manual_seed(0)).double()
    torch.nn.init.normal_(stack.b)
    levels = torch.rand(A, n, B, dtype=torch.float64) * (torch.rand(A, n, B) < 0.5)
    target = levels[:, None] if shared_target else torch.rand(A * K, n, B, dtype=torch.float64)
    importance = torch.rand(n, dtype=torch.float64)
    loss = weighted_loss(stack(levels).view(A, K, n, B), target.view(A, -1, n, B), importance).sum()
    grad_W, grad_b = torch.autograd.grad(loss, [stack.W, stack.b])
    stack.accumulate_gradients(levels, lambda z: z.view(A, -1, n, B).sub_(target.view(A, -1, n, B)), importance)
    torch.testing.assert_close(stack.W.grad, grad_W)
    torch.testing.assert_close(stack.b.grad, grad_b)
    assert torch.all(stack.W.grad[0, 1:] == 0)  # rows beyond a model's width never move


def test_teacher_blocks_broadcast_like_a_gather():
    frame = pd.DataFrame({"teacher": [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]})
    blocks = sweep_module._teacher_blocks(frame)
    assert blocks == [(0, 0, 2, 2), (4, 2, 2, 3)]
    outputs = torch.rand(4, 3, 5)
    z = torch.rand(10, 3, 5)
    expected = z - outputs[torch.tensor(frame["teacher"])]
    teacher_target(outputs, blocks)(z)
    torch.testing.assert_close(z, expected)


def test_padded_model_equals_its_narrow_self():
    generator = torch.Generator().manual_seed(0)
    padded = ToyModelStack(torch.tensor([2, 5]), 8, 1, generator)
    narrow = ToyModelStack(torch.tensor([2]), 8, 1, generator)
    narrow.W.data.copy_(padded.W.data[:1, :2])
    levels = torch.rand(1, 8, 16)
    torch.testing.assert_close(padded(levels)[0], narrow(levels)[0])


def test_two_features_kept_at_width_one(smoke):
    first = smoke.students().query("d_S == 1")
    assert first["kept"].median() == 2


def test_floors_fall_with_width_and_sparsity(smoke):
    points = floor_points(smoke)
    for (n, d_t, alpha), group in points.groupby(["n", "d_T", "alpha"]):
        floors = group.sort_values("d_S")["floor"].to_numpy()
        assert floors[0] > floors[-1], (n, d_t, alpha)
    mean_by_width = points[points["d_T"] == 5].groupby("d_S")["floor"].mean().to_numpy()
    assert np.all(np.diff(mean_by_width) < 0)
    # Sparser features compress better wherever the student is narrower than its teacher (at d_S = d_T both
    # floors are close to 0 and only noise is left to compare).
    compressed = points[points["d_S"] < points["d_T"]]
    by_alpha = compressed.pivot_table(index=["n", "d_T", "d_S"], columns="alpha", values="floor")
    assert (by_alpha[0.99] < by_alpha[0.8]).all()


def test_full_width_student_far_below_width_one(smoke):
    points = floor_points(smoke)
    for _, group in points.groupby(["n", "d_T", "alpha"]):
        group = group.set_index("d_S")["floor"]
        assert group.iloc[-1] < 0.25 * group.loc[1]


def test_resume_after_interruption_gives_identical_results(tmp_path, monkeypatch):
    config = ToySweepConfig(n_features=(6,), teacher_widths=(2,), alphas=(0.9, 0.99), seeds=2, teacher_steps=120,
                            student_steps=120, batch_size=64, eval_samples=256)
    reference = run_toy_sweep(config, progress=False).models
    original = sweep_module._train_unit
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "_train_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_toy_sweep(config, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(sweep_module, "_train_unit", original)
    resumed = run_toy_sweep(config, checkpoint_dir=tmp_path, progress=False).models
    scalar = ["role", "n", "d_T", "alpha", "seed", "d_S", "floor", "truth_loss", "kept"]
    pd.testing.assert_frame_equal(resumed[scalar], reference[scalar])
    with pytest.raises(ValueError, match="different configuration"):
        run_toy_sweep(ToySweepConfig(**{**config.__dict__, "seeds": 3}), checkpoint_dir=tmp_path, progress=False)


def test_report_and_predictions(smoke, tmp_path):
    path = write_toy_report(smoke, tmp_path)
    text = path.read_text()
    assert "| Pearson r, refined formula (g = paper) | 0.93 |" in text
    for name in ("fig2_floor_grid.png", "fig3_predicted_vs_actual.png", "fig13_universal_scaling.png",
                 "kept_features.png", "models.parquet", "points.csv", "accuracy.csv"):
        assert (tmp_path / name).stat().st_size > 0
    points, kinds = add_predictions(floor_points(smoke), smoke.config)
    assert kinds["fitted"].b < 1.0  # trained models keep fewer features than the paper's g promises
    assert (points["pred_naive"] >= points["pred_paper"]).all()


def test_effective_capacity_recovers_a_planted_law():
    alphas = np.repeat([0.8, 0.9, 0.95], 3)
    widths = np.tile([1, 2, 3], 3)
    from hf_geokd import capacity

    kept = widths * np.array([1.5 * capacity(a) ** 0.5 for a in alphas])
    points = pd.DataFrame({"alpha": alphas, "d_S": widths, "kept": kept, "n": 1000})
    fitted = fit_effective_capacity(points)
    assert (fitted.a, fitted.b) == pytest.approx((1.5, 0.5))


def test_accuracy_metrics_by_hand():
    metrics = accuracy(np.array([1.0, 2.0, 0.0]), np.array([1.0, 4.0, 2.0]))
    assert metrics["median_ape_pct"] == pytest.approx(50.0)
    assert metrics["median_accuracy_pct"] == pytest.approx(50.0)
    assert metrics["points"] == 3


@pytest.mark.parametrize("overrides,match", [({"alphas": ()}, "alphas is empty"), ({"alphas": (1.0,)}, "alphas"),
                                             ({"seeds": 0}, "seeds"), ({"target": "x"}, "target")])
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        ToySweepConfig.smoke(**overrides)
