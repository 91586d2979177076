"""Model cards rendered from the Jinja templates in ``model_cards/`` (huggingface_hub.ModelCard.from_template)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .capacity import CAPACITY_KINDS, critical_width, quiet_capacity_warnings
from .tables import markdown_table

DEFAULT_WIDTHS = (32, 64, 128, 256, 512, 768, 1024)


def template_path(name: str) -> Path:
    """The template ``name``.md: packaged inside the wheel, or in the source tree's ``model_cards/``."""
    packaged = resources.files("hf_geokd").joinpath("model_cards", f"{name}.md")
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[1] / "model_cards" / f"{name}.md"
    if source.is_file():
        return source
    raise FileNotFoundError(f"No model card template {name!r}: expected model_cards/{name}.md.")


def default_widths(d_in: int | None) -> list[int]:
    """The widths tables and plots show by default: the usual ones up to the teacher's hidden size."""
    return [w for w in DEFAULT_WIDTHS if d_in is None or w <= d_in] or [d_in]


def critical_widths(n_features: int, alpha: float) -> dict[str, float]:
    """d* under every capacity kind (the paper kind's regime warning is reported in the card itself)."""
    with quiet_capacity_warnings():
        return {kind: critical_width(n_features, alpha, kind) for kind in CAPACITY_KINDS if not (kind == "paper" and alpha == 0)}


def render_card(name: str, tags: list[str] | None = None, **context: Any) -> ModelCard:
    """Fill template ``name`` with ``context``; the predictor template gets its floor table computed here."""
    predictor = context.get("predictor")
    if predictor is not None:
        stats = predictor.stats
        context.setdefault("floor_table", markdown_table(predictor.predict(default_widths(stats.d_in))))
        context.setdefault("critical_widths", critical_widths(stats.n_features, stats.alpha))
    card_data = ModelCardData(library_name="hf-geokd", tags=["hf-geokd", name, *(tags or [])])
    return ModelCard.from_template(card_data, template_path=str(template_path(name)), **context)
