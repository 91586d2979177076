import numpy as np
import pandas as pd

from hf_geokd.probing.plots import plot_probe_study


def study_table(carried: bool) -> pd.DataFrame:
    rows = []
    for concept in ("french", "code"):
        for model in ("bag_of_tokens", "random_init", "d_S=8", "d_S=32", "teacher"):
            accuracy = 0.7 if model in ("bag_of_tokens", "random_init") else 0.9
            rows.append({"model": model, "concept": concept, "accuracy": accuracy, "accuracy_low": accuracy - 0.05,
                         "accuracy_high": accuracy + 0.05,
                         "carried": np.nan if model in ("bag_of_tokens", "random_init") else carried})
    return pd.DataFrame(rows)


def test_the_study_plot_is_written_whether_or_not_anything_is_carried(tmp_path):
    for carried in (True, False):
        path = plot_probe_study(study_table(carried), tmp_path / f"probes-{carried}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
