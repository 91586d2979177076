"""model_cards/ is what the templates give for the demo's committed artifacts: re-rendered, nothing has drifted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "docs" / "results" / "demo-long"


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("model_cards_render", ROOT / "model_cards" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cards(render):
    return render.render_all()


def test_committed_cards_equal_a_fresh_rendering(render, cards):
    widths = sorted(int(path.parent.name[1:]) for path in (RUN / "students").glob("w*/floor.json"))
    expected = {"sae-repo/README.md", "sae-repo/gpt_neox.layers.2/README.md", "predictor/README.md",
                *(f"students/w{width}/README.md" for width in widths)}
    assert set(cards) == expected
    stale = render.drifted(cards)
    assert not stale, f"these committed cards differ from the templates' rendering (run `make cards`): {stale}"
    assert (ROOT / "model_cards" / "sae-repo" / "gpt_neox.layers.2" / "predicted_floors.png").read_bytes()[:4] == (
        b"\x89PNG")


def test_the_drift_check_names_a_changed_or_missing_card(render, cards):
    changed = {name: text + "\nedited" if name == "predictor/README.md" else text for name, text in cards.items()}
    assert render.drifted(changed) == ["predictor/README.md"]
    assert render.drifted({"students/w7/README.md": "nothing"}) == ["students/w7/README.md"]


def test_the_cards_carry_the_run_s_numbers(cards):
    stats = json.loads((RUN / "sae" / "gpt_neox.layers.2" / "feature_stats.json").read_text())
    sae = cards["sae-repo/gpt_neox.layers.2/README.md"]
    assert f"| alive features F (frequency > {stats['alive_threshold']}) | {stats['n_features']:,} |" in sae
    assert f"| [`gpt_neox.layers.2`](gpt_neox.layers.2/README.md) | `{stats['hook_name']}` | {stats['d_in']} |" in (
        cards["sae-repo/README.md"])
    for path in (RUN / "students").glob("w*/floor.json"):
        floor = json.loads(path.read_text())
        card = cards[f"students/{path.parent.name}/README.md"]
        assert f"width **{floor['width']}**" in card
        assert f"| parameters | {floor['parameters']:,} |" in card
        assert f"| steps | {floor['steps_trained']} |" in card
        assert f"evaluations) | {floor['observed_floor']:.4f} |" in card
        assert ("**yes**" if floor["converged"] else "**no**") in card
    predictor = cards["predictor/README.md"]
    assert "**dt_signed**" in predictor and "calibrated_floor" in predictor
    assert "| 32 | 180 | 208 | 0.1132 |" in predictor  # Eq. 2 (dt_signed) at d_S = 32: 180 kept, 208 dropped


def test_the_render_script_checks_without_writing(render, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(render, "OUT", tmp_path)  # an empty folder: every card is missing there
    assert render.main(["--check"]) == 1
    assert "make cards" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
