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


def test_held_out_predictions_at_or_below_zero_are_marked_at_the_axis_bottom(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: drawn.setdefault("figure", figure))
    predictions = pd.DataFrame({
        "predictor": ["soft", "soft", "soft", "soft", "power"],
        "observed": [0.5, 0.2, 0.05, 0.03, 0.2],
        "predicted": [0.45, 0.25, 0.0, -0.01, 0.1],  # the soft floor's widest points: 0, and a calibration below 0
    })
    plots.plot_held_out(predictions, tmp_path / "held_out.png")
    axis = drawn["figure"].axes[0]
    markers = [line for line in axis.lines if line.get_marker() == "v" and len(line.get_xdata())]
    assert len(markers) == 1
    np.testing.assert_array_equal(markers[0].get_xdata(), [0.05, 0.03])  # both kept, at their measured floors
    bottom = axis.get_ylim()[0]
    assert bottom > 0 and np.allclose(markers[0].get_ydata(), bottom)
    labels = axis.get_legend_handles_labels()[1]
    assert "predicted <= 0 (2), drawn at the axis bottom" in labels


def test_held_out_plot_without_zero_predictions_adds_no_marker(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: drawn.setdefault("figure", figure))
    predictions = pd.DataFrame({"predictor": ["a", "a"], "observed": [0.5, 0.2], "predicted": [0.4, 0.3]})
    plots.plot_held_out(predictions, tmp_path / "held_out.png")
    labels = drawn["figure"].axes[0].get_legend_handles_labels()[1]
    assert labels == ["a", "identity"]
