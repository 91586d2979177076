"""No committed text names a path of the machine it was made on (a report rendered from a scratch folder would)."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINE_PATH = re.compile(r"(?<![\w.])/(tmp|home|root|work|Users)/")


def test_the_pattern_finds_machine_paths_and_leaves_urls_and_relative_paths():
    tmp, home = "/" + "tmp/", "/" + "home/"  # spelled apart, so that this file does not name them itself
    found = [m.group(0) for m in MACHINE_PATH.finditer(f'"out": "{tmp}demo-new" at {home}me/x, not outputs{tmp} '
                                                       "or https://host/work/ or docs/results/demo")]
    assert found == [tmp, home]


def test_no_tracked_text_file_names_a_machine_path():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
                             ).stdout.decode().split("\0")
    offending = []
    for name in filter(None, tracked):
        path = ROOT / name
        if path.suffix in {".png", ".safetensors", ".whl", ".bin"} or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offending += [f"{name}: {match.group(0)}" for match in MACHINE_PATH.finditer(text)]
    assert not offending, offending
