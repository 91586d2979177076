"""`geokd validate` on a CSV of floors, and on the committed toy results (the README's tables come from there)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_geokd.apps.cli import main
from hf_geokd.stats import FeatureStats

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_validate_a_csv_of_floors_with_the_teachers_statistics(tmp_path, capsys):
    FeatureStats.from_counts(300, 12.0, np.arange(1, 301.0) ** -1.1, d_in=64).save(tmp_path / "stats")
    widths = np.array([4, 8, 12, 16, 24, 32])
    pd.DataFrame({"width": widths, "floor": 2.0 * widths**-0.6 + 0.1}).to_csv(tmp_path / "floors.csv", index=False)
    command = ["validate", str(tmp_path / "floors.csv"), "--stats", str(tmp_path / "stats"), "--out",
               str(tmp_path / "val")]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "cheapest-2" in printed and "zero-shot" not in printed  # nats need calibration: no zero-shot protocol
    scores = pd.read_csv(tmp_path / "val" / "scores.csv")
    power = scores[(scores["protocol"] == "leave-one-width-out") & scores["predictor"].str.startswith("power law")]
    assert power["median_accuracy_pct"].iloc[0] > 99  # the floors follow its form exactly
    assert (tmp_path / "val" / "held_out_cheapest-2.png").read_bytes()[:4] == b"\x89PNG"
    assert "## cheapest-2" in (tmp_path / "val" / "report.md").read_text()
    assert main(command) == 2  # a second run does not replace the first silently
    assert "--overwrite" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0


def test_validate_names_what_it_cannot_read(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "floors.csv").write_text("width,floor\n8,0.5\n")
    assert main(["validate", str(tmp_path / "floors.csv")]) == 2
    assert "--stats" in capsys.readouterr().err


@pytest.mark.slow
def test_committed_confirmation_scores_reproduce(tmp_path):
    """The README's confirmation-grid table is read from this scores.csv: recomputing it gives the same numbers."""
    assert main(["validate", str(RESULTS / "toy-confirm"), "--out", str(tmp_path)]) == 0
    committed = pd.read_csv(RESULTS / "toy-confirm" / "validation" / "scores.csv")
    fresh = pd.read_csv(tmp_path / "scores.csv")
    pd.testing.assert_frame_equal(fresh, committed, rtol=1e-9)
    zero_shot = committed[(committed["protocol"] == "zero-shot")
                          & (committed["predictor"] == "soft floor (shipped shape)")]
    readme = (RESULTS.parents[1] / "README.md").read_text()
    assert f"**{zero_shot['median_accuracy_pct'].iloc[0]:.1f}%**" in readme


def test_a_demo_folder_scores_observed_floors_or_asymptotes_and_names_a_zero_asymptote(tmp_path, capsys):
    quick = RESULTS / "demo"  # 240-step students: every fitted asymptote is 0
    assert main(["validate", str(quick), "--floor", "asymptote", "--out", str(tmp_path / "a")]) == 2
    assert "asymptote" in capsys.readouterr().err
    assert main(["validate", str(quick), "--protocols", "cheapest-2", "--out", str(tmp_path / "o")]) == 0
    scores = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert "Eq. 2 (g_eff measured by survival) + Eq. 3" in set(scores["predictor"])  # survival/summary.json is there
    assert main(["validate", str(tmp_path / "o" / "scores.csv"), "--floor", "asymptote"]) == 2  # not a demo folder


@pytest.mark.parametrize("run", ["demo-full", "demo-long"])
def test_committed_cpu_demo_scores_reproduce(tmp_path, run):
    """The results table's full- and long-preset numbers (the README shows their headlines) come from these
    scores.csv: recomputing them from the committed floors and SAE statistics gives the same tables."""
    assert main(["validate", str(RESULTS / run), "--out", str(tmp_path)]) == 0
    committed = pd.read_csv(RESULTS / run / "validation" / "scores.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "scores.csv"), committed, rtol=1e-9)
    best = committed[committed["protocol"] == "cheapest-2"].sort_values("mare_pct").iloc[0]
    table = (RESULTS.parent / "findings" / "index.md").read_text()
    assert f"| **{best['predictor']}** | **{best['mare_pct']:.1f}%** |" in table
    floors = [json.loads(path.read_text()) for path in (RESULTS / run / "students").glob("w*/floor.json")]
    assert f"**Converged: {sum(row['converged'] for row in floors)} of {len(floors)} by the stated rule.**" in table


@pytest.fixture
def stats_folder(tmp_path):
    FeatureStats.from_counts(300, 12.0, np.arange(1, 301.0) ** -1.1, d_in=64).save(tmp_path / "stats")
    return tmp_path / "stats"


def good_floors(widths=(4, 8, 12, 16, 24, 32)) -> pd.DataFrame:
    widths = np.asarray(widths)
    return pd.DataFrame({"width": widths, "floor": 2.0 * np.abs(widths).clip(1) ** -0.6 + 0.1})


@pytest.mark.parametrize("frame, flags, message", [
    (good_floors((8, 16)), [], "nothing to score: cheapest-2 needs at least 3 distinct widths"),
    (good_floors((8,)), [], "nothing to score"),
    (good_floors().head(0), [], "has a header but no rows"),
    (good_floors(), ["--protocols", "zero-shot"], "--protocols zero-shot: zero-shot scores predictions that fit"),
    (good_floors(), ["--protocols", "leave-configuration-out"], "--protocols leave-configuration-out: .* two or more"),
    (good_floors((0, 8, 16, 32)), [], "positive integer .* line 2: 0"),
    (good_floors((-8, 8, 16, 32)), [], "positive integer .* line 2: -8"),
    (good_floors((4, 8, 16, 128)), [], r"width \[128\] are wider than the teacher"),
    (good_floors().assign(floor=lambda f: f["floor"].astype(object).where(f.index != 1, "abc")), [],
     "column 'floor' must hold numbers, not at line 3: 'abc'"),
    (good_floors().assign(floor=lambda f: f["floor"].where(f.index != 1, np.inf)), [], "line 3: inf"),
    (good_floors().assign(k_star=["1", "x", 3, 4, 5, 6]), [], "column 'k_star' must hold numbers"),
    (good_floors().assign(floor=lambda f: f["floor"][::-1].to_numpy()), [], "floors rise with width .*--allow-rising"),
    (good_floors(), ["--floor", "asymptote"], "the --floor argument .* applies to a demo folder"),
])
def test_each_bad_input_is_one_line_rc_2_and_leaves_nothing_that_blocks_the_rerun(tmp_path, capsys, stats_folder,
                                                                                 frame, flags, message):
    frame.to_csv(tmp_path / "floors.csv", index=False)
    out = tmp_path / "val"
    command = ["validate", str(tmp_path / "floors.csv"), "--stats", str(stats_folder), "--out", str(out)]
    assert main([*command, *flags]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and error.startswith("geokd validate: error: ")
    assert re.search(message, error), error
    assert not (out / "scores.csv").exists()
    good_floors().to_csv(tmp_path / "floors.csv", index=False)
    assert main([*command, "--protocols", "cheapest-2"]) == 0  # the fixed input runs without --overwrite


def test_rising_floors_are_scored_only_when_asked_and_noted(tmp_path, capsys, stats_folder):
    frame = good_floors().assign(floor=lambda f: f["floor"][::-1].to_numpy())
    frame.to_csv(tmp_path / "floors.csv", index=False)
    command = ["validate", str(tmp_path / "floors.csv"), "--stats", str(stats_folder), "--out", str(tmp_path / "v")]
    assert main(command) == 2
    assert "d_S=4 -> 8" in capsys.readouterr().err
    assert main([*command, "--allow-rising"]) == 0
    assert "floors rise with width" in (tmp_path / "v" / "report.md").read_text()


def test_duplicated_rows_score_as_the_single_ones(tmp_path, stats_folder):
    """Two seeds per width with equal floors: every width is held out with its twin, so the scores do not move."""
    noisy = good_floors().assign(floor=lambda f: f["floor"] * (1 + 0.03 * np.sin(f["width"])))
    scores = {}
    for name, frame in (("once", noisy), ("twice", pd.concat([noisy, noisy]))):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        assert main(["validate", str(tmp_path / f"{name}.csv"), "--stats", str(stats_folder), "--protocols",
                     "leave-one-width-out", "--out", str(tmp_path / name)]) == 0
        scores[name] = pd.read_csv(tmp_path / name / "scores.csv").set_index("predictor")
    assert (scores["twice"]["points"] == 2 * scores["once"]["points"]).all()
    # least-squares fits in closed form or on a grid find the same optimum on doubled points (an iterative
    # optimiser's stopping point may move in its last digits, so those are left out of the exact comparison)
    exact = [name for name in scores["once"].index if name.startswith(("Eq. 2", "power law"))]
    assert len(exact) >= 3
    np.testing.assert_allclose(scores["twice"].loc[exact, "mare_pct"], scores["once"].loc[exact, "mare_pct"],
                               rtol=1e-9)
    assert "several floors (seeds)" in (tmp_path / "twice" / "report.md").read_text()


def test_flags_a_folder_does_not_use_are_refused(tmp_path, capsys, stats_folder):
    assert main(["validate", str(RESULTS / "demo"), "--stats", str(stats_folder), "--out", str(tmp_path / "d")]) == 2
    assert "the --stats argument" in capsys.readouterr().err
    assert main(["validate", str(RESULTS / "toy"), "--floor", "asymptote", "--out", str(tmp_path / "t")]) == 2
    assert "the --floor argument ('asymptote') applies to a demo folder" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "t").exists()


def toy_subset(tmp_path) -> Path:
    """Two configurations of the committed paper-grid toy sweep (which the shipped soft floor was fitted on)."""
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "config.json").write_text((RESULTS / "toy" / "config.json").read_text())
    points = pd.read_csv(RESULTS / "toy" / "points.csv")
    points[(points["n"] == 20) & (points["d_T"] == 8) & points["alpha"].isin([0.9, 0.99])].to_csv(
        folder / "points.csv", index=False)
    return folder


def test_the_shipped_soft_floor_is_not_scored_on_its_own_grid_unless_asked_and_then_labelled(tmp_path, capsys):
    folder = toy_subset(tmp_path)
    assert main(["validate", str(folder), "--protocols", "zero-shot", "--out", str(tmp_path / "default")]) == 0
    printed = capsys.readouterr().out
    assert "soft floor shipped with hf-geokd is not scored: it was fitted on 2 of these configurations" in printed
    default = pd.read_csv(tmp_path / "default" / "scores.csv")
    assert not default["predictor"].str.contains("shipped").any()
    assert "is not scored: it was fitted on" in (tmp_path / "default" / "report.md").read_text()
    assert main(["validate", str(folder), "--protocols", "zero-shot", "--in-sample-soft-floor", "--out",
                 str(tmp_path / "asked")]) == 0
    report = (tmp_path / "asked" / "report.md").read_text()
    rows = [line.split(" | ")[0].lstrip("| ") for line in report.splitlines() if line.startswith("| Eq. 2")
            or line.startswith("| soft floor")]
    assert rows[-1] == "soft floor (shipped shape, in-sample)"  # listed after every held-out predictor
    assert "scored in-sample, not held out" in report
