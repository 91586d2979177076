"""Model cards rendered from the Jinja templates in ``hf_geokd/templates/cards/`` (``ModelCard.from_template``).

Templates: ``predictor.md`` (a FloorPredictor), ``sae.md`` (an SAE with its feature statistics), ``sae_index.md``
(a repo of several SAEs: one row each), ``student.md`` (a distilled student). Each is documented by the variables it
reads; callers pass them as keyword arguments.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TEMPLATES = resources.files("hf_geokd") / "templates"


def template_path(folder: str, name: str) -> Path:
    """The packaged template ``templates/<folder>/<name>``."""
    path = TEMPLATES / folder / name
    if not path.is_file():
        raise FileNotFoundError(f"hf-geokd ships no template {folder}/{name}: is the package installed completely?")
    return Path(str(path))


def render_card(name: str, tags: list[str] | None = None, card_data: dict[str, Any] | None = None,
                **context: Any) -> ModelCard:
    """Fill the card template ``name`` (``predictor``, ``sae``, ``sae_index`` or ``student``) with ``context``;
    ``card_data`` adds metadata fields (``license``, ``language``, ``base_model``, ...) to the card's YAML header."""
    card_data = ModelCardData(library_name="hf-geokd", tags=["hf-geokd", name, *(tags or [])], **(card_data or {}))
    return ModelCard.from_template(card_data, template_path=str(template_path("cards", f"{name}.md")), **context)
