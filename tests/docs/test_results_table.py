"""The README's results at a glance and the results page's table are the same table (the links aside)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def table_rows(text: str, heading: str) -> list[str]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_the_readme_and_the_results_page_show_the_same_table():
    readme = table_rows((ROOT / "README.md").read_text(), "## Results at a glance")
    page = table_rows((ROOT / "docs" / "findings" / "index.md").read_text(), "## At a glance")
    assert len(readme) >= 7  # header, rule, toy x 2, demos x 3, zoo
    normalise = [re.sub(r"\]\(docs/findings/", "](", row) for row in readme]
    normalise = [row.replace("[`docs/results/zoo/`](docs/results/zoo/)", "`docs/results/zoo/`") for row in normalise]
    assert normalise == page
    assert any("Fragile" in row and "30.1%" in row for row in readme)  # the long run's caveat stays with its score
