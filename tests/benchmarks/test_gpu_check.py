"""`make gpu-check` cannot rot before a GPU arrives: its dry run runs every part on the CPU, and without CUDA the real
run says so in one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
RESULTS = ROOT / "benchmarks" / "results"
RATIO = re.compile(r"\| baseline, [^|]+: [-+.\deE]+ s \| ratio \d+\.\d+")


def run_script(*args: str, cache_dir: Path | None = None) -> subprocess.CompletedProcess:
    """The script in a fresh process with no CUDA device visible."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    if cache_dir is not None:
        env["GEOKD_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)


def part_names(monkeypatch) -> list[str]:
    return list(script_module(monkeypatch).PARTS)


def results_files() -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in RESULTS.glob("*_gpu.txt")}


@pytest.mark.slow
def test_dry_run_writes_every_part_with_ratios_beside_baselines(tmp_path, wheel_cache, monkeypatch):
    before = results_files()
    result = run_script("--dry-run", "--out", str(tmp_path), cache_dir=wheel_cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in part_names(monkeypatch):
        text = (tmp_path / f"{name}_gpu.txt").read_text()
        assert f"part {name}" in text and "CPU dry run" in text and "FAILED" not in text
        assert RATIO.search(text), f"{name}: no ratio beside its baseline in\n{text}"
    assert results_files() == before  # a dry run never writes the committed results


def script_module(monkeypatch):
    """The script as a module, in this process (its checks run before it measures anything), with no CUDA device."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    return gpu_check


def test_without_cuda_exits_2_in_one_line(tmp_path, monkeypatch, capsys):
    assert script_module(monkeypatch).main(["--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "no CUDA device" in captured.err and "--dry-run" in captured.err
    assert not list(tmp_path.iterdir())


def test_dry_run_refuses_the_results_folder_and_unknown_parts(monkeypatch, capsys):
    script = script_module(monkeypatch)
    for args, message in ((["--dry-run", "--out", str(RESULTS)], "never writes into benchmarks/results"),
                          (["--dry-run", "--parts", "sweep,bogus"], "unknown part(s) bogus")):
        with pytest.raises(SystemExit) as stopped:
            script.main(args)
        assert stopped.value.code == 2 and message in capsys.readouterr().err
