"""Feature survival: which teacher SAE latents a narrow student still carries (the staircase, measured)."""

from .config import FeatureSurvivalConfig
from .measure import measure_feature_survival, random_students
from .plots import plot_orderings, plot_staircase
from .readout import RidgeReadout, TokenBaseline
from .report import staircase_markdown, write_survival_study
from .result import FeatureSurvival
from .staircase import fit_g_eff, measured_capacity, survival_staircase, survivor_jaccard

__all__ = ["FeatureSurvival", "FeatureSurvivalConfig", "RidgeReadout", "TokenBaseline", "fit_g_eff",
           "measure_feature_survival", "measured_capacity", "plot_orderings", "plot_staircase", "random_students",
           "staircase_markdown", "survival_staircase", "survivor_jaccard", "write_survival_study"]
