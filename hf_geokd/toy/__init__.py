"""The toy model of superposition (Elhage et al. 2022) as a testbed for the floor formula (paper section 4)."""

from .sweep import ToySweepConfig, ToySweepResults, run_toy_sweep

__all__ = ["ToySweepConfig", "ToySweepResults", "run_toy_sweep"]
