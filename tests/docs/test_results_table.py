"""The README's results at a glance are the headlines of the results page's table: the same runs in the same order,
and no figure in a README row that the page's row for that run does not show."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?%")


def table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def test_the_readme_shows_the_headlines_of_the_results_page():
    readme = table_rows((ROOT / "README.md").read_text(), "## Results at a glance")[1:]
    page = table_rows((ROOT / "docs" / "findings" / "index.md").read_text(), "## At a glance")[1:]
    assert len(readme) >= 6  # toy x 2, demos x 3, zoo
    assert [row[0] for row in readme] == [row[0] for row in page]
    for short, full in zip(readme, page):
        missing = set(FIGURE.findall(" ".join(short))) - set(FIGURE.findall(" ".join(full)))
        assert not missing, f"{short[0]}: the README shows {sorted(missing)}, which the results page does not"
    assert any("fragile" in " ".join(row) and "30.1%" in " ".join(row) for row in readme)  # the caveat stays
