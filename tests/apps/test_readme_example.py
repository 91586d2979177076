"""The README's offline 30-second example runs as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def offline_example() -> str:
    section = README.read_text().split("## 30-second example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_offline_example_needs_nothing_undefined_from_the_hub():
    code = offline_example()
    assert "from_pretrained(\"EleutherAI" not in code and "push_to_hub" not in code and "load_dataset" not in code


@pytest.mark.slow
def test_the_offline_example_runs_as_written(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-c", offline_example()], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert float(lines[0]) == pytest.approx(1064.8, abs=0.05)
    assert [float(value) for value in lines[1].split()] == pytest.approx([3.04, 4.34], abs=0.005)
    assert "FloorPredictor(F = " in result.stdout
    assert (tmp_path / "tiny-floor-predictor" / "README.md").is_file()
