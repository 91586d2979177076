"""Reading measured floors: every damaged, ambiguous or out-of-range input is refused by name, never scored."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_geokd.stats import FeatureStats
from hf_geokd.validate import load_observations

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
WIDTHS = np.array([4, 8, 12, 16, 24, 32])


@pytest.fixture
def stats_folder(tmp_path):
    FeatureStats.from_counts(300, 12.0, np.arange(1, 301.0) ** -1.1, d_in=64).save(tmp_path / "stats")
    return tmp_path / "stats"


def write_csv(tmp_path, frame: pd.DataFrame, name: str = "floors.csv") -> Path:
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def falling(widths=WIDTHS) -> pd.DataFrame:
    return pd.DataFrame({"width": widths, "floor": 2.0 * np.asarray(widths, float) ** -0.6 + 0.1})


@pytest.fixture
def demo(tmp_path) -> Path:
    """A copy of the committed quick demo's floors, SAE statistics and survival summary."""
    folder = tmp_path / "demo"
    shutil.copytree(RESULTS / "demo", folder, ignore=shutil.ignore_patterns("validation", "paper", "*.png", "*.md"))
    return folder


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


@pytest.fixture
def toy(tmp_path) -> Path:
    """Two configurations of the committed paper-grid toy sweep."""
    folder = tmp_path / "toy"
    folder.mkdir()
    shutil.copy(RESULTS / "toy" / "config.json", folder / "config.json")
    points = pd.read_csv(RESULTS / "toy" / "points.csv")
    points[(points["n"] == 20) & (points["d_T"] == 8) & points["alpha"].isin([0.9, 0.99])].to_csv(
        folder / "points.csv", index=False)
    return folder


def test_floors_rising_with_width_are_refused_naming_the_widths_unless_allowed(tmp_path, stats_folder):
    path = write_csv(tmp_path, pd.DataFrame({"width": WIDTHS, "floor": 0.1 + 0.01 * WIDTHS}))
    with pytest.raises(ValueError, match=r"floors rise with width \(d_S=4 -> 8: 0.14 -> 0.18.*allow_rising=True"):
        load_observations(path, stats_folder)
    allowed = load_observations(path, stats_folder, allow_rising=True)
    assert len(allowed.table) == 6 and any("rise with width" in note for note in allowed.notes)
    one_step = falling()
    one_step.loc[3, "floor"] = one_step.loc[2, "floor"] + 0.01  # one step up, 12 -> 16
    with pytest.raises(ValueError, match=r"d_S=12 -> 16"):
        load_observations(write_csv(tmp_path, one_step, "step.csv"), stats_folder)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(width=f["width"].astype(object).where(f.index != 0, 8.7)), "line 2: 8.7"),
    (lambda f: f.assign(width=f["width"].where(f.index != 0, 0)), "positive integer .* line 2: 0"),
    (lambda f: f.assign(width=f["width"].where(f.index != 0, -8)), "positive integer .* line 2: -8"),
    (lambda f: f.assign(floor=f["floor"].astype(object).where(f.index != 2, "abc")), "'floor' must hold numbers"),
    (lambda f: f.assign(floor=f["floor"].where(f.index != 2, np.nan)), "line 4: empty or NaN"),
    (lambda f: f.assign(floor=f["floor"].where(f.index != 2, np.inf)), "finite number >= 0, not at line 4: inf"),
    (lambda f: f.assign(floor=f["floor"].where(f.index != 2, -0.5)), "finite number >= 0, not at line 4"),
    (lambda f: f.assign(k_star=["1", "x", 3, 4, 5, 6]), "'k_star' must hold numbers, not at line 3: 'x'"),
    (lambda f: f.assign(width=f["width"].where(f.index != 5, 100)), r"width \[100\] are wider than the teacher"),
    (lambda f: f.head(0), "has a header but no rows"),
    (lambda f: f.drop(columns="floor"), "lacks the column"),
])
def test_a_bad_csv_row_is_named(tmp_path, stats_folder, change, message):
    path = write_csv(tmp_path, change(falling()))
    with pytest.raises(ValueError, match=message) as error:
        load_observations(path, stats_folder)
    assert str(path) in str(error.value)


def test_an_empty_file_is_named(tmp_path, stats_folder):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is not a readable CSV"):
        load_observations(tmp_path / "empty.csv", stats_folder)


def test_the_control_row_of_a_csv_is_left_out_with_a_note(tmp_path, stats_folder):
    observations = load_observations(write_csv(tmp_path, falling([4, 8, 16, 64])), stats_folder)
    assert sorted(observations.table["width"]) == [4, 8, 16]
    assert any("d_S = d_T = 64" in note for note in observations.notes)
    with pytest.raises(ValueError, match="holds only the control run"):
        load_observations(write_csv(tmp_path, falling([64]), "control.csv"), stats_folder)


def test_flags_that_do_not_apply_are_refused_not_ignored(tmp_path, stats_folder, demo, toy):
    with pytest.raises(ValueError, match="the floor= argument .* applies to a demo folder .* toy sweep folder"):
        load_observations(toy, floor="asymptote")
    with pytest.raises(ValueError, match="the floor= argument .* CSV"):
        load_observations(write_csv(tmp_path, falling()), stats_folder, floor="asymptote")
    with pytest.raises(ValueError, match="the stats= argument .* applies to a CSV .* demo folder"):
        load_observations(demo, stats_folder)
    with pytest.raises(ValueError, match="the stats= argument .* toy sweep folder"):
        load_observations(toy, stats_folder)


def test_a_demo_student_whose_file_names_another_width_is_refused(demo):
    edit_json(demo / "students" / "w8" / "floor.json", lambda row: {**row, "width": 16})
    with pytest.raises(ValueError, match=r"w8/floor.json says width 16 but sits in w8/"):
        load_observations(demo)


@pytest.mark.parametrize("student, change, message", [
    ("w8", lambda row: {k: v for k, v in row.items() if k != "observed_floor"}, "w8/floor.json lacks observed_floor"),
    ("w8", lambda row: {**row, "observed_floor": "abc"}, "w8/floor.json: observed_floor must be a finite number"),
    ("w8", lambda row: {**row, "observed_floor": float("inf")}, "observed_floor must be a finite number .* inf"),
    ("w8", lambda row: {**row, "width": 8.5}, "w8/floor.json: width must be a positive integer"),
    ("w8", lambda row: [row], "w8/floor.json holds a JSON list"),
    ("w8", lambda row: {**row, "converged": "yes"}, "converged must be true or false"),
])
def test_a_damaged_student_floor_is_named(demo, student, change, message):
    edit_json(demo / "students" / student / "floor.json", change)
    with pytest.raises(ValueError, match=message):
        load_observations(demo)


def test_a_demo_student_wider_than_the_teacher_is_refused(demo):
    shutil.copytree(demo / "students" / "w64", demo / "students" / "w256")
    edit_json(demo / "students" / "w256" / "floor.json", lambda row: {**row, "width": 256})
    with pytest.raises(ValueError, match=r"width \[256\] are wider than the teacher \(d_T = 128\)"):
        load_observations(demo)


def test_a_demo_with_only_the_control_is_refused(demo):
    for folder in (demo / "students").glob("w*"):
        if folder.name != "w128":
            shutil.rmtree(folder)
    with pytest.raises(ValueError, match="holds only the control run"):
        load_observations(demo)


@pytest.mark.parametrize("change, message", [
    (lambda s: {**s, "k_star": s["k_star"][:-2]}, "widths and k_star must be lists of equal length .* 8 widths and 6"),
    (lambda s: {**s, "k_star": ["a"] * len(s["widths"])}, "k_star 'a'"),
    (lambda s: {"widths": s["widths"]}, "is not a survival summary"),
])
def test_a_damaged_survival_summary_is_named(demo, change, message):
    edit_json(demo / "survival" / "summary.json", change)
    with pytest.raises(ValueError, match=message) as error:
        load_observations(demo)
    assert "survival/summary.json" in str(error.value)


def test_a_survival_summary_without_some_widths_says_the_predictor_is_left_out(demo):
    edit_json(demo / "survival" / "summary.json", lambda s: {**s, "widths": s["widths"][1:], "k_star": s["k_star"][1:]})
    observations = load_observations(demo)
    assert any("no k* for widths [8]" in note for note in observations.notes)


@pytest.mark.parametrize("name, text", [
    ("students/w8/floor.json", '{"wid'), ("survival/summary.json", "{"),
])
def test_truncated_json_is_named(demo, name, text):
    (demo / name).write_text(text)
    with pytest.raises(ValueError, match=f"{name} is not valid JSON"):
        load_observations(demo)


def test_toy_files_are_checked_by_name(toy):
    assert load_observations(toy).table["config"].nunique() == 2
    config = json.loads((toy / "config.json").read_text())
    (toy / "config.json").write_text(json.dumps({**config, "bogus": 1}))
    with pytest.raises(ValueError, match=r"config.json has keys a toy sweep config does not have \(bogus\)"):
        load_observations(toy)
    (toy / "config.json").write_text(json.dumps({**config, "alphas": [1.5]}))
    with pytest.raises(ValueError, match=r"config.json: alphas must lie in"):
        load_observations(toy)
    (toy / "config.json").write_text("[")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_observations(toy)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.drop(columns="kept"), "points.csv lacks the column.s. kept"),
    (lambda p: p.assign(floor=p["floor"].where(p.index != 1, np.nan)), "points.csv: column 'floor' .* line 3"),
    (lambda p: p.assign(floor=p["floor"].where(p.index != 1, np.inf)), "points.csv: every floor must be a finite"),
    (lambda p: p.assign(d_S=p["d_S"].where(p.index != 1, 12)), "students wider than their teacher"),
    (lambda p: pd.concat([p, p.head(1)]), "several rows for one"),
])
def test_a_damaged_toy_points_file_is_named(toy, change, message):
    points = pd.read_csv(toy / "points.csv")
    change(points).to_csv(toy / "points.csv", index=False)
    with pytest.raises(ValueError, match=message):
        load_observations(toy)


def test_zero_toy_floors_are_left_out_with_a_note(toy):
    points = pd.read_csv(toy / "points.csv")
    points.loc[(points["d_S"] == 7) & (points["alpha"] == 0.9), "floor"] = 0.0
    points.to_csv(toy / "points.csv", index=False)
    observations = load_observations(toy)
    assert len(observations.table) == 13  # 2 x 7 narrower students, one of them at 0
    assert any("1 floor(s) of exactly 0" in note for note in observations.notes)


def test_a_csv_of_floors_reads_the_ablation_floors_saved_beside_its_statistics(tmp_path):
    sae = RESULTS / "zoo" / "code" / "sae" / "seed0" / "gpt_neox.layers.2"
    floors = json.loads((sae / "ablation_floors.json").read_text())
    measured = dict(zip(floors["widths"], floors["kl"]))
    covered = write_csv(tmp_path, falling([8, 12, 20, 28]), "covered.csv")
    observations = load_observations(covered, sae)
    assert observations.table["ablation"].tolist() == [measured[w] for w in (8, 12, 20, 28)]
    partial = load_observations(write_csv(tmp_path, falling([8, 12, 16, 20]), "partial.csv"), sae)
    assert partial.table["ablation"].isna().tolist() == [False, False, True, False]
    assert any("no ablation floor at widths [16]" in note for note in partial.notes)
