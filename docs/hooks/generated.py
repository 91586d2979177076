"""Build hooks of the documentation site: the parts of pages that are generated, not written.

- ``<!-- geokd-help COMMAND -->`` becomes the ``--help`` text of ``geokd COMMAND`` (``geokd`` alone: the top-level
  help), read from the parser the CLI runs (``hf_geokd.apps.cli.build_parser``), so the reference cannot drift from
  the code. ``<!-- geokd-help-rest -->`` becomes a section per subcommand that no marker on the page names (a new
  command appears in the reference by itself).
- ``<!-- model-card PATH -->`` becomes the card ``model_cards/PATH`` (its metadata as YAML, its text with headings
  moved under the page's, figures named by their file), so the page shows what a Hub visitor reads.

A marker naming a command or a card that does not exist fails the build.

- The package's docstrings use Sphinx roles (``:class:`FeatureStats```); in the rendered API reference the role is
  dropped and the name kept as code (``~pkg.mod.name`` shown as ``name``, as Sphinx shows it).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELP_MARK = re.compile(r"^<!-- geokd-help(?: (?P<command>[\w-]+))? -->$", re.MULTILINE)
REST_MARK = "<!-- geokd-help-rest -->"
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|py:\w+):(<code>)(~(?:[\w]+\.)*)?")
CARD_MARK = re.compile(r"^<!-- model-card (?P<path>\S+) -->$", re.MULTILINE)
WIDTH = 100  # columns of the help text, whatever the terminal that builds the site


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _help_block(text: str) -> str:
    return f"```text\n{text}\n```"


def cli_reference(markdown: str) -> str:
    from hf_geokd.apps.cli import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    named = set()

    def expand(match: re.Match) -> str:
        command = match.group("command")
        if command is None:
            return _help_block(_help(parser))
        if command not in commands:
            raise ValueError(f"cli.md names `geokd {command}`, which the CLI does not have (it has {sorted(commands)})")
        named.add(command)
        return _help_block(_help(commands[command]))

    markdown = HELP_MARK.sub(expand, markdown)
    if REST_MARK in markdown:
        rest = [f"## `geokd {name}`\n\n{_help_block(_help(sub))}"
                for name, sub in commands.items() if name not in named]
        markdown = markdown.replace(REST_MARK, "\n\n".join(rest))
    return markdown


def _demote_headings(text: str, levels: int) -> str:
    """Headings moved ``levels`` down, outside fenced code."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#+) ", line)):
            line = "#" * min(len(match.group(1)) + levels, 6) + line[len(match.group(1)):]
        lines.append(line)
    return "\n".join(lines)


def _card_section(path: str) -> str:
    card = ROOT / "model_cards" / path
    if not card.is_file():
        raise FileNotFoundError(f"model-card marker names model_cards/{path}, which does not exist")
    text = card.read_text()
    metadata = ""
    if text.startswith("---\n"):
        metadata, text = text[4:].split("\n---\n", 1)
    text = _demote_headings(text, 2)
    # a card's figures sit beside it on the Hub; here they are named, not shown
    text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", lambda m: f"*(figure `{m.group(2)}`: {m.group(1)})*", text)
    # links between the cards of one repo point into the repo; here they are plain text
    text = re.sub(r"(?<!!)\[([^\]]+)\]\((?!https?:)([^)]+)\)", r"\1", text)
    header = f"Metadata (the card's YAML header):\n\n```yaml\n{metadata.strip()}\n```\n\n" if metadata else ""
    return f"{header}{text.strip()}\n"


def model_cards(markdown: str) -> str:
    return CARD_MARK.sub(lambda match: _card_section(match.group("path")), markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if HELP_MARK.search(markdown) or REST_MARK in markdown:
        markdown = cli_reference(markdown)
    if CARD_MARK.search(markdown):
        markdown = model_cards(markdown)
    return markdown


def on_page_content(html: str, page, config, files) -> str:
    return SPHINX_ROLE.sub(r"\1", html)
