import re
import shutil
import subprocess
import sys

import pytest

from hf_geokd.apps.cli import main
from hf_geokd.paper import paper_checks


def test_predict_from_plain_numbers_writes_table_plot_and_predictor(tmp_path, capsys):
    plot, saved = tmp_path / "floors.png", tmp_path / "predictor"
    code = main(["predict", "--n-features", "28665", "--l0", "218.3", "--d-in", "1024", "--zipf-exponent", "1.5",
                 "--widths", "128", "256", "--plot", str(plot), "--save", str(saved)])
    out = capsys.readouterr().out
    assert code == 0
    assert "d* = 1,064.8" in out and "| 128 | 3,445 | 25,220 |" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["predict", str(saved), "--kind", "dt_signed", "--widths", "128"]) == 0
    assert "(dt_signed)" in capsys.readouterr().out


def test_predict_with_the_soft_floor_keeps_it_when_saved(tmp_path, capsys):
    saved = tmp_path / "soft"
    args = ["--n-features", "2000", "--l0", "40", "--d-in", "256", "--zipf-exponent", "1.2", "--widths", "64", "256"]
    assert main(["predict", *args, "--floor-model", "soft", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "soft floor (s = " in out and "eq2_floor" in out
    assert main(["predict", str(saved), "--widths", "256"]) == 0
    assert "eq2_floor" in capsys.readouterr().out  # the saved predictor keeps its floor model
    assert main(["predict", str(saved), "--widths", "256", "--floor-model", "eq2"]) == 0
    assert "eq2_floor" not in capsys.readouterr().out


def test_predict_errors_are_one_line(capsys):
    assert main(["predict", "--n-features", "100", "--l0", "3"]) == 2
    assert "--zipf-exponent" in capsys.readouterr().err
    assert main(["predict", "--n-features", "100", "--l0", "3", "--zipf-exponent", "1", "--widths", "0"]) == 2
    assert "widths must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_command_flags_the_papers_own_inconsistencies(tmp_path):
    checks = paper_checks().set_index("quantity")
    assert checks.loc["layer 12 d* = F/g", "status"] == "ok"
    assert checks.loc["affine R^2", "status"] == "ok"
    assert checks.loc["g(0.992)", "status"] == "DIFFERS"  # Table 7 uses alpha = 0.9924
    assert checks.loc["linear C", "status"] == "DIFFERS"  # the paper reuses the affine C
    result = subprocess.run([sys.executable, "-m", "hf_geokd.apps.cli", "paper", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=True)
    assert "## Table 5" in result.stdout and "DIFFERS" in result.stdout
    report = (tmp_path / "report.md").read_text()
    assert "paper_calibration.png" in report and (tmp_path / "paper_power_law.png").stat().st_size > 0


@pytest.mark.slow
def test_toy_command_resumes_a_sweep_and_rewrites_its_report(toy_smoke, tmp_path, capsys):
    shutil.copytree(toy_smoke[1], tmp_path, dirs_exist_ok=True)  # a finished smoke sweep's checkpoint
    checkpoint = tmp_path / "toy_sweep_checkpoint.safetensors"
    written = checkpoint.stat().st_mtime_ns
    args = ["toy", "--preset", "smoke", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "report:" in capsys.readouterr().out
    assert checkpoint.stat().st_mtime_ns == written  # every unit came from the checkpoint: nothing retrained
    assert (tmp_path / "fig2_floor_grid.png").is_file()
    first = (tmp_path / "points.csv").read_text()
    assert main(args) == 0
    assert (tmp_path / "points.csv").read_text() == first
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "points.csv").read_text() == first
    assert main(["report", str(tmp_path / "again" / "missing")]) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--zipf-exponent", "-1"], "--zipf-exponent must be a finite number >= 0"),
        (["--zipf-exponent", "nan"], "--zipf-exponent must be a finite number >= 0"),
        (["--zipf-exponent", "1", "--n-features", "0"], "--n-features must be a positive count"),
        (["--zipf-exponent", "1", "--l0", "500"], r"--l0 must lie in \[0, --n-features = 100\]"),
        (["--zipf-exponent", "1", "--d-in", "-3"], "--d-in must be a positive hidden size"),
    ],
)
def test_plain_numbers_out_of_range_name_their_flag(capsys, flags, message):
    assert main(["predict", "--n-features", "100", "--l0", "3", *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
