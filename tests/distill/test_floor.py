import numpy as np
import pytest
from transformers import TrainerControl, TrainerState

from hf_geokd.distill.floor import LossFloorCallback, estimate_floor

STEPS = np.arange(50, 3001, 50)


@pytest.mark.parametrize("asymptote,amplitude,exponent", [(1.0, 2.0, 0.5), (0.3, 5.0, 1.0), (0.586, 3.0, 0.7),
                                                          (2.0, 3.0, 0.4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_asymptote_recovered_within_two_percent(asymptote, amplitude, exponent, seed):
    losses = asymptote + amplitude * STEPS ** -exponent + np.random.default_rng(seed).normal(0, 0.002, STEPS.size)
    estimate = estimate_floor(STEPS, losses, bootstrap=100)
    assert estimate.asymptote == pytest.approx(asymptote, rel=0.02)
    assert estimate.asymptote_low <= estimate.asymptote <= estimate.asymptote_high


def test_convergence_is_false_on_a_curve_still_falling_and_true_once_flat():
    falling = 1.0 + 2.0 * np.arange(10, 301, 10) ** -0.5
    estimate = estimate_floor(np.arange(10, 301, 10), falling)
    assert not estimate.converged and "still falling" in estimate.reason
    assert estimate.improvement_per_doubling == pytest.approx(2.0 * 300**-0.5 * (1 - 2**-0.5), rel=0.02)
    flat = 0.5 + 0.5 * STEPS ** -1.0
    assert estimate_floor(STEPS, flat).converged
    # a straight line in log t never converges, whatever the fit makes of its asymptote (it crosses 0 at t = e^30:
    # not a loss, so the asymptote is left free)
    line = 3.0 - 0.1 * np.log(STEPS)
    estimate = estimate_floor(STEPS, line, lower_bound=None)
    assert not estimate.converged and estimate.improvement_per_doubling == pytest.approx(0.1 * np.log(2), rel=0.05)


def test_too_few_evaluations_are_not_converged_and_bad_histories_refused():
    assert not estimate_floor([1, 2, 3], [1.0, 0.9, 0.9]).converged
    with pytest.raises(ValueError, match="increasing"):
        estimate_floor([2, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="diverged"):
        estimate_floor([1, 2], [1.0, float("nan")])


def test_callback_logs_floor_and_stops_once_converged():
    callback = LossFloorCallback(stop_when_converged=True)
    state, control = TrainerState(), TrainerControl()
    stopped_at = None
    for step in STEPS:
        state.global_step = int(step)
        metrics = {"eval_loss": 0.5 + 0.5 * step**-1.0}
        callback.on_evaluate(None, state, control, metrics=metrics)
        assert metrics["eval_loss_floor"] == pytest.approx(callback.floor)
        if control.should_training_stop:
            stopped_at = step
            break
    assert stopped_at is not None and stopped_at < STEPS[-1] and metrics["eval_floor_converged"] == 1.0
    # the final evaluate() at the same step replaces the last evaluation instead of adding one
    count = len(callback.evaluations)
    callback.on_evaluate(None, state, control, metrics={"eval_loss": 0.7})
    assert len(callback.evaluations) == count and callback.evaluations[-1] == 0.7
    restored = LossFloorCallback(**callback.state()["args"])
    assert restored.steps == callback.steps and restored.floor == callback.floor


def test_the_asymptote_of_a_loss_never_falls_below_zero():
    steps = np.arange(10, 250, 10, dtype=float)
    losses = 2.0 - 0.35 * np.log(steps)  # a short run still falling as a line in log t: L_inf is not identifiable
    free = estimate_floor(steps, losses, lower_bound=None, bootstrap=20)
    bounded = estimate_floor(steps, losses, bootstrap=20)
    assert free.asymptote < 0  # the unconstrained fit extrapolates below zero
    assert bounded.asymptote == 0.0 and bounded.asymptote_low >= 0.0
    assert not bounded.converged


def test_a_run_whose_floor_tends_to_zero_converges_only_under_an_absolute_tolerance():
    losses = 0.5 * STEPS**-1.0  # L_inf = 0: every doubling gains half of what is left
    relative = estimate_floor(STEPS, losses, bootstrap=0)
    assert not relative.converged and relative.steps_to_converge > 1e9  # never, in practice (inf at L_inf = 0)
    gain = 0.5 * STEPS[-1] ** -1.0 * 0.5
    assert not estimate_floor(STEPS, losses, bootstrap=0, absolute_tolerance=0.5 * gain).converged
    absolute = estimate_floor(STEPS, losses, bootstrap=0, absolute_tolerance=2 * gain)
    assert absolute.converged and "or 0.000167" in absolute.reason
    with pytest.raises(ValueError, match="absolute_tolerance must be >= 0"):
        LossFloorCallback(absolute_tolerance=-1.0)


@pytest.mark.parametrize("absolute_tolerance", [0.0, 1e-3])
def test_steps_to_converge_is_where_the_curve_meets_the_rule(absolute_tolerance):
    """Forecast from 1,000 steps of 1 + 20 t^-0.8, checked by estimating the floor of the same curve run to t*."""
    early = np.arange(25, 1001, 25)
    curve = lambda t: 1.0 + 20.0 * t**-0.8  # noqa: E731
    forecast = estimate_floor(early, curve(early), bootstrap=0, absolute_tolerance=absolute_tolerance)
    assert not forecast.converged and 1000 < forecast.steps_to_converge < np.inf
    for factor, converged in ((0.9, False), (1.1, True)):
        last = factor * forecast.steps_to_converge
        steps = np.linspace(last / 40, last, 40)
        assert estimate_floor(steps, curve(steps), bootstrap=0,
                              absolute_tolerance=absolute_tolerance).converged == converged


RISING_STEPS = np.arange(10, 301, 10)


@pytest.mark.parametrize("name, losses", [
    ("rising", np.linspace(0.5, 1.5, RISING_STEPS.size)),  # fits L_inf = 466 with A < 0: gains "nothing"
    ("U-shaped", 1.0 + 0.1 * (np.log(RISING_STEPS) - np.log(100)) ** 2),
    ("falling then rising", 1.0 + 2.0 * RISING_STEPS**-0.5 + 0.002 * RISING_STEPS),
    ("rising to a plateau", 1.0 - 0.5 * RISING_STEPS**-0.5),
])
def test_a_rising_curve_is_never_converged_and_the_reason_says_so(name, losses):
    estimate = estimate_floor(RISING_STEPS, losses, bootstrap=0)
    assert not estimate.converged, name
    assert estimate.reason.startswith("rising") and "not a floor it has reached" in estimate.reason
    assert np.isnan(estimate.steps_to_converge)  # no decay to forecast


def test_an_upturn_in_the_last_doubling_is_caught_where_the_tail_fit_still_falls():
    steps = np.arange(10, 1001, 10.0)
    flat = 1.0 + 20.0 * steps**-1.0
    assert estimate_floor(steps, flat).converged  # the same curve without the upturn converges
    upturn = flat + np.where(steps > 600, 2e-4 * (steps - 600), 0.0)
    estimate = estimate_floor(steps, upturn)
    assert estimate.amplitude > 0  # the power law still falls: only the last-doubling check sees the rise
    assert not estimate.converged and "over the last doubling of steps (500 to 1000)" in estimate.reason


def test_a_noisy_flat_curve_still_converges():
    noise = np.random.default_rng(0).normal(0, 0.002, (20, RISING_STEPS.size))
    assert all(estimate_floor(RISING_STEPS, 1.0 + row, bootstrap=0).converged for row in noise)


def test_the_callback_does_not_stop_a_rising_run():
    callback = LossFloorCallback(stop_when_converged=True)
    state, control = TrainerState(), TrainerControl()
    for step, loss in zip(RISING_STEPS, np.linspace(0.5, 1.5, RISING_STEPS.size)):
        state.global_step = int(step)
        metrics = {"eval_loss": float(loss)}
        callback.on_evaluate(None, state, control, metrics=metrics)
        assert not control.should_training_stop and metrics["eval_floor_converged"] == 0.0


def test_losses_below_the_lower_bound_are_refused_not_fitted():
    with pytest.raises(ValueError, match="losses fall below lower_bound=0 .*lower_bound=None"):
        estimate_floor(RISING_STEPS, -1.0 - RISING_STEPS**-0.5)
    free = estimate_floor(RISING_STEPS, -1.0 + 2.0 * RISING_STEPS**-0.5, lower_bound=None, bootstrap=0)
    assert not free.converged and "still falling" in free.reason


@pytest.mark.parametrize("settings, message", [
    ({"confidence": 2}, "confidence must be a number in \\(0, 1\\)"),
    ({"confidence": 0}, "confidence must be a number in \\(0, 1\\)"),
    ({"steps": ["a", "b", "c"]}, "steps must be a sequence of numbers"),
    ({"losses": "abc"}, "losses must be a sequence of numbers, got the string"),
    ({"losses": ["1.0", "x", "0.5"]}, "losses must be a sequence of numbers"),
    ({"tolerance": "0.01"}, "tolerance must be a finite number > 0"),
    ({"fraction": "0.1"}, "fraction must be a number in \\(0, 1\\]"),
    ({"bootstrap": -1}, "bootstrap must be an integer >= 0"),
    ({"min_evaluations": 2.5}, "min_evaluations must be an integer >= 1"),
    ({"absolute_tolerance": "0"}, "absolute_tolerance must be >= 0"),
    ({"lower_bound": "0"}, "lower_bound must be a finite number or None"),
])
def test_bad_settings_and_inputs_name_the_argument(settings, message):
    arguments = {"steps": [1, 2, 3], "losses": [1.0, 0.9, 0.85], **settings}
    with pytest.raises(ValueError, match=message):
        estimate_floor(**arguments)


@pytest.mark.parametrize("settings, message", [
    ({"fraction": "0.1"}, "fraction must be a number"),
    ({"tolerance": None}, "tolerance must be a finite number > 0"),
    ({"min_evaluations": 0}, "min_evaluations must be an integer >= 1"),
])
def test_the_callback_names_a_bad_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        LossFloorCallback(**settings)


def test_steps_to_converge_has_no_forecast_for_a_rising_fit():
    from hf_geokd.distill.floor import steps_to_converge

    assert np.isnan(steps_to_converge(-0.5, 0.5, 1.0, 0.01))  # L_inf + A t^-b with A < 0 rises: never "met"
    assert np.isnan(steps_to_converge(float("nan"), 0.5, 1.0, 0.01))
    assert steps_to_converge(0.0, 0.5, 1.0, 0.01) == 0.0  # flat: met at every step
    assert 0 < steps_to_converge(20.0, 0.8, 1.0, 0.01) < np.inf
