"""fit_power_law says when the data are not a power-law decay instead of returning numbers silently."""

import warnings

import numpy as np
import pytest

from hf_geokd.calibration import PowerLawWarning, fit_power_law

WIDTHS = np.array([8.0, 16.0, 32.0, 64.0])


@pytest.fixture(autouse=True)
def few_bootstrap_samples(monkeypatch):
    """The warnings depend on the point fit only: a short bootstrap keeps these tests fast."""
    monkeypatch.setattr("hf_geokd.calibration.BOOTSTRAP_SAMPLES", 20)


def test_rising_floors_warn():
    with pytest.warns(PowerLawWarning, match="do not fall with width"):
        fit = fit_power_law(WIDTHS, [0.1, 0.2, 0.3, 0.5])
    assert fit.a < 0  # returned for inspection, but flagged


def test_gamma_beyond_the_search_range_warns():
    with pytest.warns(PowerLawWarning, match="edge of its search range"):
        fit = fit_power_law(WIDTHS, 1e5 * WIDTHS**-6.0 + 0.1)
    assert fit.gamma == pytest.approx(4.0)


def test_a_clean_decay_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_power_law(WIDTHS, 3.0 * WIDTHS**-0.8 + 0.2)
    assert fit.gamma == pytest.approx(0.8, rel=1e-3)


def test_a_negative_floor_warns():
    with pytest.warns(PowerLawWarning, match="negative"):
        fit = fit_power_law(WIDTHS, 3.0 * WIDTHS**-0.3 - 0.5)
    assert fit.c < 0
