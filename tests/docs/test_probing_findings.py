"""The probing findings page shows what the committed runs' probe tables hold, and every committed run that probed."""

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


DEMO_RUNS = {"demo (quick)": "demo", "demo (quick rerun)": "demo-rerun"}


def run_folder(label: str) -> Path:
    """``demo (quick)`` -> docs/results/demo (:data:`DEMO_RUNS`); ``zoo <teacher>`` -> docs/results/zoo/<teacher>."""
    return RESULTS / DEMO_RUNS[label] if label in DEMO_RUNS else RESULTS / "zoo" / label.removeprefix("zoo ")


def expected_rows(label: str) -> list[str]:
    folder = run_folder(label) / "probes"
    study = pd.read_csv(folder / "probes.csv")
    latents = pd.read_csv(folder / "concept_latents.csv").set_index("concept")
    rows = []
    for concept, group in study.groupby("concept", sort=False):
        accuracy = group.set_index("model")["accuracy"]
        carried = group.loc[group["carried"].astype(str) == "True", "model"].tolist()
        rows.append(f"| {label} | {concept} | {accuracy['teacher']:.2f} | {accuracy['bag_of_tokens']:.2f} | "
                    f"{accuracy['random_init']:.2f} | {', '.join(carried) or 'none'} | "
                    f"{int(latents.at[concept, 'carrying_latents'])} |")
    return rows


def test_every_row_is_recomputed_from_the_committed_probe_tables_and_no_probed_run_is_missing():
    page = (ROOT / "docs" / "findings" / "probing.md").read_text()
    table = page.split("<!-- probing-table -->", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.strip().splitlines()[2:]]
    labels = list(dict.fromkeys(row.split(" | ")[0].removeprefix("| ") for row in rows))
    assert "demo (quick)" in labels
    assert rows == [row for label in labels for row in expected_rows(label)]
    probed = {f"zoo {path.parent.parent.name}" for path in (RESULTS / "zoo").glob("*/probes/probes.csv")}
    folders = {path.parent.parent.name for path in RESULTS.glob("*/probes/probes.csv")}
    assert folders <= set(DEMO_RUNS.values()), f"name the probed runs {sorted(folders)} in DEMO_RUNS"
    probed |= {label for label, folder in DEMO_RUNS.items() if folder in folders}
    assert probed == set(labels), "a committed run's probes are missing from docs/findings/probing.md (or extra)"
