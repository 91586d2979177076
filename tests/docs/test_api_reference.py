"""The API reference covers every public name of hf_geokd, and the built site holds what the pages promise.

The fast tests read the API pages (docs/api/*.md): each name of ``hf_geokd.__all__`` is listed in the index with a
cross-reference to the very object it names, and that object is rendered by a ``:::`` directive. ``mkdocs build
--strict`` (in ``make test``) fails when a cross-reference or a directive does not resolve. The slow test builds the
site and reads the HTML: every name's anchor, every CLI subcommand's help, every model card.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hf_geokd

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
XREF = re.compile(r"\[`(?P<name>[\w.]+)`\]\[(?P<target>[\w.]+)\]")
DIRECTIVE = re.compile(r"^::: (?P<path>[\w.]+)\n(?P<options>(?:    .*\n)*)", re.MULTILINE)


def resolve(path: str):
    """The object a dotted path names: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(path)


def index_targets() -> dict[str, str]:
    return {match["name"]: match["target"] for match in XREF.finditer((API / "index.md").read_text())}


def rendered_paths() -> set[str]:
    """Dotted paths of the objects the API pages render: each directive's object and the members it shows."""
    paths = set()
    for page in API.glob("*.md"):
        for match in DIRECTIVE.finditer(page.read_text()):
            path = match["path"]
            paths.add(path)
            listed = re.findall(r"^        - (\w+)$", match["options"], re.MULTILINE)
            obj = resolve(path)
            if listed:
                members = listed
            elif hasattr(obj, "__all__"):
                members = list(obj.__all__)
            elif hasattr(obj, "__dict__") and type(obj).__name__ == "module":
                members = [name for name, value in vars(obj).items() if not name.startswith("_")
                           and getattr(value, "__module__", obj.__name__) == obj.__name__]
            else:
                members = []
            paths.update(f"{path}.{member}" for member in members)
    return paths


def test_every_public_name_is_in_the_api_index_with_a_reference_to_that_very_object():
    targets = index_targets()
    missing = sorted(set(hf_geokd.__all__) - set(targets))
    assert not missing, f"add these names of hf_geokd.__all__ to docs/api/index.md: {missing}"
    for name in hf_geokd.__all__:
        assert resolve(targets[name]) is getattr(hf_geokd, name), f"{name}: {targets[name]} is another object"


def test_every_indexed_name_is_rendered_by_an_api_page():
    rendered = rendered_paths()
    unrendered = sorted(target for target in index_targets().values() if target not in rendered)
    assert not unrendered, f"no `:::` directive in docs/api/ renders {unrendered}"


def test_the_checks_themselves_can_fail():
    assert "hf_geokd.capacity.not_a_name" not in rendered_paths()
    with pytest.raises(AttributeError):
        resolve("hf_geokd.capacity.not_a_name")
    assert resolve("hf_geokd.capacity.capacity") is hf_geokd.capacity  # the function, not the module it lives in


@pytest.mark.slow
def test_the_built_site_holds_every_name_command_and_card(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    api_html = "".join(path.read_text() for path in (site / "api").rglob("*.html"))
    for name, target in index_targets().items():
        assert f'id="{target}"' in api_html, f"{name}: no anchor {target} in the built API reference"

    from hf_geokd.apps.cli import build_parser

    cli_html = (site / "cli" / "index.html").read_text()
    commands = next(action.choices for action in build_parser()._actions if hasattr(action, "choices")
                    and isinstance(action.choices, dict))
    for command in commands:
        assert f"usage: geokd {command}" in cli_html, f"the CLI reference lacks `geokd {command}`"

    cards_html = (site / "model-cards" / "index.html").read_text()
    for card in ("Sparse autoencoders with their feature statistics", "Loss-floor predictor", "students-w32"):
        assert card in cards_html
