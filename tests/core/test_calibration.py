import numpy as np
import pytest

from hf_geokd import fit_power_law, fit_two_component
from hf_geokd.calibration import CalibrationWarning

WIDTHS = [128, 256, 512, 768, 1024]
PREDICTED = [0.0795, 0.0400, 0.0111, 0.0016, 0.0001]  # paper Table 2
OBSERVED = [1.320, 1.008, 0.733, 0.652, 0.586]  # paper Table 3, per-token KL


def test_affine_fit_reproduces_table4():
    fit = fit_two_component(PREDICTED, OBSERVED)
    assert fit.C == pytest.approx(8.96, abs=0.02)
    assert fit.B == pytest.approx(0.623, abs=0.002)
    assert fit.r2 == pytest.approx(0.993, abs=0.001)
    assert fit.linear_r2 == pytest.approx(-1.98, abs=0.01)
    assert not fit.baseline_fixed
    low, high = fit.C_interval
    assert low <= fit.C <= high


def test_fixed_baseline_fits_only_c():
    fit = fit_two_component(PREDICTED[:4], OBSERVED[:4], baseline=0.586)
    x, y = np.array(PREDICTED[:4]), np.array(OBSERVED[:4]) - 0.586
    assert fit.B == 0.586 and fit.baseline_fixed
    assert fit.C == pytest.approx(x @ y / (x @ x))


def test_affine_fit_recovers_planted_parameters():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.1, 30)
    y = 4.0 * x + 0.3 + rng.normal(0, 1e-3, 30)
    fit = fit_two_component(x, y)
    assert fit.C == pytest.approx(4.0, rel=0.02) and fit.B == pytest.approx(0.3, abs=0.005)
    assert fit.C_interval[0] < 4.0 < fit.C_interval[1]


def test_power_law_reproduces_eq4():
    fit = fit_power_law(WIDTHS, OBSERVED)
    assert fit.a == pytest.approx(11.6, abs=0.1)
    assert fit.gamma == pytest.approx(0.469, abs=0.005)
    assert fit.c == pytest.approx(0.132, abs=0.005)
    assert fit.r2 >= 0.997


def test_power_law_recovers_exact_curve():
    widths = np.array([16, 32, 64, 128, 256, 512])
    fit = fit_power_law(widths, 3.0 * widths**-0.8 + 0.2)
    assert (fit.a, fit.gamma, fit.c) == pytest.approx((3.0, 0.8, 0.2), rel=1e-3)
    assert fit.r2 == pytest.approx(1.0)


def test_mismatched_lengths_name_both_arguments():
    with pytest.raises(ValueError, match="predicted has 3 values but observed has 2"):
        fit_two_component([0.1, 0.2, 0.3], [1.0, 2.0])
    with pytest.raises(ValueError, match="widths has 3 values but observed has 4"):
        fit_power_law([1, 2, 3], [1.0, 2.0, 3.0, 4.0])


def test_degenerate_inputs_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        fit_two_component([0.1, 0.1], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least three distinct"):
        fit_power_law([128, 128, 256], [1.0, 1.1, 0.9])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([0, 128, 256], [1.0, 1.1, 0.9])


def test_negative_or_nan_observed_floors_and_baselines_are_refused_by_name():
    with pytest.raises(ValueError, match=r"observed floors must be >= 0 .* at positions \[0\]"):
        fit_two_component([0.3, 0.2, 0.1], [-0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="observed contains NaN"):
        fit_two_component([0.3, 0.2, 0.1], [0.4, float("nan"), 0.6])
    with pytest.raises(ValueError, match="baseline must be a finite number >= 0"):
        fit_two_component([0.3, 0.2], [0.9, 0.8], baseline=-0.1)
    with pytest.raises(ValueError, match="baseline must be a finite number >= 0"):
        fit_two_component([0.3, 0.2], [0.9, 0.8], baseline="0.5")


@pytest.mark.parametrize("baseline", [None, 0.7])
def test_floors_rising_with_width_are_not_eq3(baseline):
    """The predicted floor falls with width; observed floors that rise with it give C < 0: refused, with the pairs."""
    with pytest.raises(ValueError, match=r"C = -[0-9.]+ <= 0: the observed floors.* do not fall .*0\.3 -> 0\.4"):
        fit_two_component([0.3, 0.2, 0.1], [0.4, 0.5, 0.6], baseline=baseline)


def test_a_negative_intercept_is_flagged_and_its_predictions_clipped_at_zero():
    predicted = np.array([0.4, 0.25])
    with pytest.warns(CalibrationWarning, match="B = -0.1 is negative"):
        fit = fit_two_component(predicted, 2.0 * predicted - 0.1)
    assert fit.B == pytest.approx(-0.1) and fit.clipped_below == pytest.approx(0.05)
    assert "L_obs = 2 * L*_pred - 0.1" in fit.summary() and "clipped at 0" in fit.summary()
    assert "R^2 tests nothing" in fit.summary()  # two points, two parameters
    with pytest.warns(CalibrationWarning, match="2 calibrated floor"):
        values = fit.predict([0.4, 0.04, 0.0])
    np.testing.assert_allclose(values, [0.7, 0.0, 0.0])
    assert (values >= 0).all()


def test_the_predictor_never_reports_a_negative_calibrated_floor():
    """FloorPredictor.calibrate on two narrow widths whose line extrapolates below 0 at the wide ones."""
    from hf_geokd import FeatureStats, FloorPredictor

    stats = FeatureStats.from_counts(343, 16.0, np.arange(1, 344.0) ** -1.0, d_in=128)
    predictor = FloorPredictor(stats, "dt_signed")
    predicted = predictor.predict([8, 12])["predicted_floor"].to_numpy()
    with pytest.warns(CalibrationWarning):
        predictor.calibrate([8, 12], 3.0 * predicted - 0.5 * predicted.min())
        table = predictor.predict([8, 12, 16, 32, 64, 128])
    assert (table["calibrated_floor"] >= 0).all() and (table["calibrated_floor"] == 0).any()


def test_a_saved_calibration_with_a_non_positive_c_is_refused():
    from hf_geokd import TwoComponentFit

    saved = fit_two_component(PREDICTED, OBSERVED).to_dict()
    assert TwoComponentFit.from_dict(saved).C == pytest.approx(8.96, abs=0.02)
    with pytest.raises(ValueError, match="C = -1.08 is <= 0"):
        TwoComponentFit.from_dict({**saved, "C": -1.08})
    with pytest.raises(ValueError, match="B must be a finite number"):
        TwoComponentFit.from_dict({**saved, "B": float("nan")})


@pytest.mark.parametrize("fit, message", [
    (lambda: fit_two_component(PREDICTED, OBSERVED, confidence=2), "confidence must be a number in \\(0, 1\\)"),
    (lambda: fit_power_law(WIDTHS, OBSERVED, confidence=0), "confidence must be a number in \\(0, 1\\)"),
    (lambda: fit_two_component(PREDICTED, OBSERVED, seed=-1), "seed must be an integer >= 0"),
    (lambda: fit_two_component(["a", "b"], [1.0, 2.0]), "predicted must be a sequence of numbers"),
    (lambda: fit_two_component(PREDICTED, "1.3 1.0"), "observed must be a sequence of numbers, got the string"),
    (lambda: fit_power_law("abc", [1.0, 2.0, 3.0]), "widths must be a sequence of numbers, got the string"),
    (lambda: fit_power_law([8, 16, None], [1.0, 2.0, 3.0]), "widths contains NaN"),
])
def test_bad_settings_and_non_numbers_name_the_argument(fit, message):
    with pytest.raises(ValueError, match=message):
        fit()
