"""Every user error of the CLI: exit code 2, one line naming the input (by its flag) and the fix, no traceback."""

import json
import os
import signal
import subprocess
import sys

import pytest
from hub_server import start_hub_server

from hf_geokd.apps import cli
from hf_geokd.apps.pipeline import StopRequested

PLAIN = ["predict", "--n-features", "100", "--l0", "3", "--zipf-exponent", "1", "--d-in", "64"]


def bad_commands(folder):
    """(argv, what the one line must say) for each bad command, with the files they need made in ``folder``."""
    (folder / "a-file").write_text("x")
    (folder / "foreign").mkdir()
    (folder / "foreign" / "config.json").write_text(json.dumps({"model_type": "gpt_neox"}))
    (folder / "empty").mkdir()
    (folder / "damaged").mkdir()
    (folder / "damaged" / "feature_stats.json").write_text("{")
    (folder / "damaged" / "feature_stats.safetensors").write_bytes(b"")
    return [
        (["predict", str(folder / "missing" / "dir")], "missing/dir does not exist"),
        (["predict", "a/b/c"], "a/b/c does not exist, and it is not a Hub repo id"),
        (["predict", str(folder / "a-file")], "a-file is a file: pass the folder"),
        (["predict", str(folder / "empty")], "has no feature_stats.json beside the SAE: measure them first"),
        (["toy", "--preset", "smoke", "--seeds", "0", "--out", str(folder / "toy")], "--seeds must be a positive"),
        (["predict", str(folder / "damaged")], "feature_stats.safetensors is not a readable safetensors file"),
        ([*PLAIN, "--save", str(folder / "a-file")], "--save"),
        ([*PLAIN, "--save", str(folder / "foreign")], "pass --overwrite to replace them"),
        ([*PLAIN, "--widths", "128"], "Pass --allow-wider"),
        ([*PLAIN, "--widths", "0"], "--widths must be a positive integer"),
        ([*PLAIN, "--widths", "8", "--plot", str(folder / "floors.v2")], "--plot"),
        (["predict", "--n-features", "100", "--l0", "3", "--zipf-exponent", "-1"], "--zipf-exponent must be"),
        (["toy", "--out", str(folder / "a-file")], "--out"),
        (["paper", "--out", str(folder / "a-file")], "--out"),
        (["report", str(folder / "missing")], "point at a folder written by `geokd toy`"),
    ]


def test_bad_commands_print_one_line_and_exit_2(tmp_path, capsys):
    for argv, expected in bad_commands(tmp_path):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, (argv, err)
        assert "=True" not in err and "sae_id=" not in err and "checkpoint_dir" not in err, err


def test_save_runs_before_a_failing_plot(tmp_path, capsys):
    assert cli.main([*PLAIN, "--widths", "8", "--save", str(tmp_path / "saved"), "--plot", str(tmp_path / "x.v2")]) == 2
    assert (tmp_path / "saved" / "config.json").is_file()
    assert cli.main([*PLAIN, "--widths", "8", "--plot", str(tmp_path / "floors")]) == 0
    assert f"plot: {tmp_path / 'floors.png'}" in capsys.readouterr().out


def test_ctrl_c_and_debug(monkeypatch, capsys):
    stops = iter([KeyboardInterrupt, StopRequested("SIGTERM at step 3 of the student run; a checkpoint is saved")])

    def interrupted():
        raise next(stops)

    monkeypatch.setattr(cli, "paper_checks", interrupted)
    assert cli.main(["paper"]) == 130
    assert capsys.readouterr().err.strip() == "geokd paper: interrupted"
    assert cli.main(["paper"]) == 130  # a stopped student run says what it saved
    assert capsys.readouterr().err.strip() == ("geokd paper: interrupted: SIGTERM at step 3 of the student run; a "
                                               "checkpoint is saved")
    with pytest.raises(ValueError, match="--zipf-exponent"):
        cli.main(["--debug", "predict", "--n-features", "100", "--l0", "3", "--zipf-exponent", "-1"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["--version"])
    assert exit_code.value.code == 0
    assert capsys.readouterr().out.startswith("geokd 0.")


def run_cli(argv, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "hf_geokd.apps.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, **kwargs)


@pytest.mark.slow
def test_each_bad_command_in_a_fresh_process(tmp_path):
    server, _, url = start_hub_server()
    try:
        missing_repo = (["predict", "me/no-such-repo"], "the Hub has no repo of that name")
        cases = bad_commands(tmp_path)  # one of each kind (each process costs seconds; all run in-process above)
        for argv, expected in [cases[0], cases[3], cases[5], cases[6], cases[7], cases[12], missing_repo]:
            result = run_cli(argv, env={"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(tmp_path)})
            err = result.stderr.strip()
            assert result.returncode == 2, (argv, err)
            assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, (argv, err)
    finally:
        server.shutdown()


@pytest.mark.slow
def test_ctrl_c_during_training_exits_130_without_a_traceback(tmp_path):
    # as in a terminal: a test run started in the background inherits SIGINT ignored, and Python keeps it ignored
    process = subprocess.Popen([sys.executable, "-m", "hf_geokd.apps.cli", "toy", "--preset", "smoke", "--out",
                                str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout.readline().startswith("toy sweep:")  # training starts after this line
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err and err.strip().endswith("geokd toy: interrupted")
