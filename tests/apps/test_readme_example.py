"""The README: its two make commands come first, it stays short, and its offline 30-second example runs as written
without a warning. (The other code blocks of the README and the docs: tests/docs/test_code_blocks.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
OPENING = """# hf-geokd

```bash
make demo   # """


def offline_example() -> str:
    section = README.read_text().split("## 30-second example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_opens_with_the_two_make_commands_and_stays_short():
    text = README.read_text()
    assert text.startswith(OPENING)
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    assert all("#" in line for line in first_block)  # each with its one-line comment
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert len(text.splitlines()) <= 200




def test_the_readme_links_only_to_files_that_exist():
    text = README.read_text()
    links = [link.split("#", 1)[0] for link in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in link]
    assert links
    missing = [link for link in links if link and not (ROOT / link).exists()]
    assert not missing, missing


def test_the_offline_example_needs_nothing_undefined_from_the_hub():
    code = offline_example()
    assert "from_pretrained(\"EleutherAI" not in code and "push_to_hub" not in code and "load_dataset" not in code


@pytest.mark.slow
def test_the_offline_example_runs_as_written_without_a_capacity_warning(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-c", offline_example()], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CapacityWarning" not in result.stderr  # the flagship example uses a capacity that holds at its alpha
    lines = result.stdout.splitlines()
    assert float(lines[0]) == pytest.approx(1064.8, abs=0.05)
    assert [float(value) for value in lines[1].split()] == pytest.approx([3.04, 4.34], abs=0.005)
    assert "FloorPredictor(F = " in result.stdout and "(dt_signed)" in result.stdout
    assert (tmp_path / "tiny-floor-predictor" / "README.md").is_file()
