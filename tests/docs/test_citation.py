"""CITATION.cff cites the software at its current version, and the paper it implements."""

import re
from pathlib import Path

import yaml

import hf_geokd

ROOT = Path(__file__).resolve().parents[2]


def test_citation_names_this_version_and_the_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    for key in ("message", "title", "authors", "license"):
        assert citation[key]
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert str(citation["version"]) == version == hf_geokd.__version__
    paper = next(ref for ref in citation["references"] if "2604.04037" in ref["url"])
    assert paper["title"].startswith("Geometric Limits of Knowledge Distillation") and paper["authors"]
    assert "2604.04037" in (ROOT / "README.md").read_text().split("## Citation", 1)[1]
