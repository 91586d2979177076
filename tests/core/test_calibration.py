import numpy as np
import pytest

from hf_geokd import fit_power_law, fit_two_component

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
