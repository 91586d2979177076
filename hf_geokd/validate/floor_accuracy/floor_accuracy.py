"""``floor_accuracy``: an ``evaluate`` metric for predicted loss floors (hf-geokd).

    import evaluate
    from hf_geokd.validate import floor_accuracy_module
    metric = evaluate.load(floor_accuracy_module())          # offline: the module ships inside hf-geokd
    metric.compute(predictions=[0.5, 0.3], references=[0.55, 0.28])

Returns points, median_accuracy_pct (median of max(0, 1 - |P - Y| / Y)), mare_pct (median |P - Y| / Y), r2,
pearson_r, spearman_rho and bootstrap intervals of median accuracy and R^2 (see hf_geokd.validate.metrics).
"""

import datasets
import evaluate

from hf_geokd.validate.metrics import floor_accuracy

_DESCRIPTION = "Accuracy of predicted distillation loss floors against measured ones (hf-geokd)."
_CITATION = "Geometric Limits of Knowledge Distillation, arXiv 2604.04037."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted floors (float).
    references: measured floors (float, > 0).
    seed: bootstrap seed (default 0).
Returns:
    dict with points, median_accuracy_pct, mare_pct, r2, pearson_r, spearman_rho and bootstrap intervals.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FloorAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, seed: int = 0):
        return floor_accuracy(predictions, references, seed=seed)
