import pytest

from hf_geokd.distill import DistillationConfig


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        DistillationConfig(output_dir="unused", use_cpu=True, temperature=temperature)
