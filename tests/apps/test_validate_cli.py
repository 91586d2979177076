"""`geokd validate` on a CSV of floors, and on the committed toy results (the README's tables come from there)."""

import json
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
    """The README's full- and long-preset numbers come from these scores.csv: recomputing them from the committed
    floors and SAE statistics gives the same tables."""
    assert main(["validate", str(RESULTS / run), "--out", str(tmp_path)]) == 0
    committed = pd.read_csv(RESULTS / run / "validation" / "scores.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "scores.csv"), committed, rtol=1e-9)
    best = committed[committed["protocol"] == "cheapest-2"].sort_values("mare_pct").iloc[0]
    readme = (RESULTS.parents[1] / "README.md").read_text()
    assert f"| **{best['predictor']}** | **{best['mare_pct']:.1f}%** |" in readme
    floors = [json.loads(path.read_text()) for path in (RESULTS / run / "students").glob("w*/floor.json")]
    assert f"**Converged: {sum(row['converged'] for row in floors)} of {len(floors)} by the stated rule.**" in readme
