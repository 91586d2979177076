"""Every code block of the README and the documentation says whether it runs offline, and the ones that do are run.

A block is marked by the HTML comment on the line before its fence (invisible on GitHub and on the site):

    <!-- docs-test: run -->              runs offline in seconds: run here
    <!-- docs-test: run slow -->         runs offline but trains something: run here, marked slow
    <!-- docs-test: readme-example -->   the README's 30-second example, word for word (run by test_readme_example)
    <!-- docs-test: needs-hub -->        needs the Hub: not run
    <!-- docs-test: needs-gpu -->        needs a GPU: not run
    <!-- docs-test: not-run (REASON) --> not run, for the reason given (a fragment, an install, hours of training)

Bash blocks made only of ``geokd`` commands run in this process through the CLI's ``main`` (no interpreter start-up
per command); python blocks run in this process too, each in a fresh namespace. Both run in a temporary folder that
sees the repository's ``docs/`` (the committed results some blocks read), so they write nothing into the checkout.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)?[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"<!-- docs-test: (run slow|run|readme-example|needs-hub|needs-gpu|not-run \([^)]+\)) -->\s*$")
CHECKED_LANGUAGES = {"python", "bash"}


@dataclass
class Block:
    path: Path
    line: int
    language: str
    code: str
    mark: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_pages() -> list[Path]:
    """The README and every documentation page we write (not the committed run outputs under docs/results/)."""
    pages = [path for path in sorted((ROOT / "docs").rglob("*.md"))
             if path.relative_to(ROOT / "docs").parts[0] != "results"]
    return [README, *pages]


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        start = text.count("\n", 0, match.start())
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        blocks.append(Block(path, start + 1, match.group(1) or "", match.group(2), mark.group(1) if mark else None))
    return blocks


ALL_BLOCKS = [block for page in doc_pages() for block in code_blocks(page)]
RUN_BLOCKS = [block for block in ALL_BLOCKS if block.mark in ("run", "run slow")]


def readme_example() -> str:
    section = README.read_text().split("## 30-second example", 1)[1]
    return FENCE.search(section).group(2)


def test_the_pages_hold_code_blocks_and_some_run():
    assert len(doc_pages()) > 20
    assert len(RUN_BLOCKS) >= 6
    assert any(block.mark == "readme-example" for block in ALL_BLOCKS if block.path != README)


def test_every_python_and_bash_block_is_marked():
    opening = code_blocks(README)[0].line  # the two make commands open the README, with nothing before them
    unmarked = [block.name for block in ALL_BLOCKS if block.language in CHECKED_LANGUAGES and block.mark is None
                and not (block.path == README and block.line == opening)]
    assert not unmarked, f"mark these blocks (see this test's docstring): {unmarked}"


def test_a_block_marked_as_the_readme_example_is_it_word_for_word():
    copies = [block for block in ALL_BLOCKS if block.mark == "readme-example"]
    assert copies
    for block in copies:
        assert block.code == readme_example(), f"{block.name} differs from the README's 30-second example"


def test_blocks_that_claim_to_run_offline_do_not_reach_the_hub():
    for block in RUN_BLOCKS:
        for needs_the_hub in ("me/", "EleutherAI/", "push_to_hub"):
            assert needs_the_hub not in block.code, block.name


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A temporary folder that sees the repository's docs/ (read by some blocks), with the Hub switched off."""
    (tmp_path / "docs").symlink_to(ROOT / "docs", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return tmp_path


def run_bash(code: str) -> str:
    from hf_geokd.apps.cli import main

    output = io.StringIO()
    commands = [line.split("  #", 1)[0].strip() for line in code.splitlines()]
    commands = [command for command in commands if command and not command.startswith("#")]
    assert commands
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "geokd", f"only geokd commands run in this test, not {command!r}"
        with contextlib.redirect_stdout(output):
            try:
                status = main(words[1:])
            except SystemExit as exit_:  # --version and --help exit through argparse
                status = exit_.code
        assert status in (0, None), f"`{command}` exited with {status}"
    return output.getvalue()


def run_python(code: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "<docs block>", "exec"), {"__name__": "__main__"})
    return output.getvalue()


def extra_checks(block: Block, printed: str) -> None:
    """What some blocks claim in their text, checked on what they printed."""
    if "capacity(0.9, kind)" in block.code:  # the theory page
        assert "dt_signed: g(0.9) = 3.04, g(0.99) = 16.3" in printed
        assert "paper: g(0.9) = 4.34, g(0.99) = 21.7" in printed
        assert "1064.77" in printed and "\n3445\n" in printed
        assert "C=8.9644" in printed and "B=0.6226" in printed and "a=11.593" in printed
    if "predictor.calibrate(list(floors)" in block.code:  # the calibration example: the registered predictions
        committed = pd.read_csv(ROOT / "docs/results/demo-long/validation/predictions.csv")
        registered = committed[(committed["protocol"] == "cheapest-2")
                               & (committed["predictor"] == "Eq. 2 (dt_signed) + Eq. 3")]
        for value in registered["predicted"]:
            assert f"{value:.6f}" in printed
    if "--zipf-exponent 1.5" in block.code:
        assert "d* = 1,064.8" in printed


@pytest.mark.parametrize("block", [pytest.param(block, id=block.name,
                                                marks=[pytest.mark.slow] if block.mark == "run slow" else [])
                                   for block in RUN_BLOCKS])
def test_offline_block_runs(block, workdir):
    assert block.language in CHECKED_LANGUAGES, f"{block.name}: a `{block.language}` block cannot be run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        printed = run_bash(block.code) if block.language == "bash" else run_python(block.code)
    # hf-geokd's own warnings (CapacityWarning, ...), or any warning raised at the block's own call (a deprecation)
    own = [f"{w.category.__name__}: {w.message}" for w in caught
           if w.category.__module__.startswith("hf_geokd") or w.filename == "<docs block>"]
    assert not own, f"{block.name} raises hf-geokd warnings: {own}"
    extra_checks(block, printed)
