"""Floor plots keep zero floors, and a path without a suffix is written and reported as .png."""

import numpy as np
import pandas as pd

from hf_geokd.reporting import plots

PNG = b"\x89PNG\r\n\x1a\n"


def table(floors):
    frame = pd.DataFrame({"width": [8, 16, 32], "predicted_floor": floors})
    frame.attrs["critical_width"] = 20.0
    return frame


def test_all_zero_floors_plot(tmp_path):
    path = plots.plot_predicted_floors({"paper": table([0.0, 0.0, 0.0])}, tmp_path / "zeros.png")
    assert path.read_bytes()[:8] == PNG


def test_zero_floors_stay_on_the_plot(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: drawn.setdefault("figure", figure))
    plots.plot_predicted_floors({"paper": table([0.5, 0.01, 0.0])}, tmp_path / "mixed.png")
    axis = drawn["figure"].axes[0]
    np.testing.assert_array_equal(axis.lines[0].get_ydata(), [0.5, 0.01, 0.0])
    assert axis.get_ylim()[0] == 0.0


def test_a_path_without_suffix_is_written_and_returned_as_png(tmp_path):
    path = plots.plot_predicted_floors({"paper": table([0.5, 0.1, 0.0])}, tmp_path / "floors")
    assert path == tmp_path / "floors.png"
    assert path.read_bytes()[:8] == PNG
