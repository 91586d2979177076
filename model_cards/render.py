"""Render model_cards/ from the demo's committed artifacts with the package's card templates.

    python model_cards/render.py            # write every card (and the SAE card's plot)
    python model_cards/render.py --check    # write nothing; exit 1 naming each card that differs from a fresh render

The artifacts are the long demo run's (docs/results/demo-long): its SAE statistics (sae/*/feature_stats.*) and its
students' floors (students/w*/floor.json). The cards are rendered by the same calls that write them when we push:
``hf_geokd.cards.render_card`` with ``hf_geokd.sae.hub.sae_card_context`` (SAE card), the ``sae_index`` template
(the SAE repo's README), ``FloorPredictor.generate_model_card`` (predictor) and ``hf_geokd.distill.trainer
.student_card`` (students). What is not committed (the SAE's and the students' weights) is rebuilt or stood in for:
model_cards/README.md lists what.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "docs" / "results" / "demo-long"
OUT = Path(__file__).resolve().parent
SAE_REPO = "me/geokd-demo-saes"  # example repo ids: nothing here is on the Hub
PREDICTOR_REPO = "me/geokd-demo-floor-predictor"
DATASET = "embedded Wikipedia sample (gensim wheel)"  # what the demo passes to create_model_card
CALIBRATION_WIDTHS = (8, 12)  # the registered protocol of the long run: cheapest-2
PLOT = "predicted_floors.png"


def _stats():
    from hf_geokd import FeatureStats

    folders = sorted(path.parent for path in (RUN / "sae").glob("*/feature_stats.json"))
    if len(folders) != 1:
        raise FileNotFoundError(f"expected one SAE's statistics under {RUN / 'sae'}, found {folders}")
    return folders[0].name, FeatureStats.load(folders[0])


def _floors() -> dict[int, dict]:
    rows = [json.loads(path.read_text()) for path in (RUN / "students").glob("w*/floor.json")]
    return {row["width"]: row for row in sorted(rows, key=lambda row: row["width"])}


def sae_cards() -> dict[str, str]:
    """The SAE's card (its folder in the repo) and the repo's index card."""
    from hf_geokd.cards import render_card
    from hf_geokd.sae.hub import sae_card_context, sae_index_entry

    sae_id, stats = _stats()
    card = render_card("sae", **sae_card_context(stats), repo_id=SAE_REPO, sae_id=sae_id, plot_path=PLOT)
    # one row per SAE folder of the repo, as push_sae_to_hub builds it from the repo's files
    index = render_card("sae_index", repo_id=SAE_REPO, saes=[sae_index_entry(sae_id, stats)])
    return {f"sae-repo/{sae_id}/README.md": str(card), "sae-repo/README.md": str(index)}


def predictor_card() -> dict[str, str]:
    """The registered predictor of the long run: Eq. 2 (dt_signed), calibrated (Eq. 3) on d_S = 8 and 12."""
    from hf_geokd import FloorPredictor

    _, stats = _stats()
    floors = _floors()
    predictor = FloorPredictor(stats, capacity_kind="dt_signed")
    predictor.calibrate(list(CALIBRATION_WIDTHS), [floors[width]["observed_floor"] for width in CALIBRATION_WIDTHS])
    return {"predictor/README.md": str(predictor.generate_model_card(repo_id=PREDICTOR_REPO))}


def student_cards() -> dict[str, str]:
    """One card per student, from its floor.json; the architecture is rebuilt from the long preset's settings (the
    parameter count must equal the one recorded), the weights are not needed."""
    from transformers import TrainerState

    from hf_geokd.apps.demo import demo_config
    from hf_geokd.distill import DistillationConfig, FloorEstimate, build_student, pythia_like_config, steps_to_converge
    from hf_geokd.distill.trainer import student_card
    from hf_geokd.naming import student_name

    config = demo_config("long")
    teacher_config = pythia_like_config(config.vocab_size, config.teacher_hidden, config.teacher_layers,
                                        config.teacher_heads, max_position_embeddings=config.block_size)
    teacher = SimpleNamespace(config=teacher_config)
    args = DistillationConfig(output_dir=str(config.out / "students"), temperature=config.temperature, use_cpu=True,
                              report_to=[], teacher_model_name_or_path=str(config.out / "teacher"))
    cards = {}
    for width, row in _floors().items():
        heads = config.teacher_heads if width % config.teacher_heads == 0 else 1  # as the demo builds them
        student = build_student(teacher_config, width, seed=config.seed, num_attention_heads=heads)
        if student.num_parameters() != row["parameters"]:
            raise ValueError(f"d_S = {width}: the rebuilt student has {student.num_parameters():,} parameters, "
                             f"floor.json records {row['parameters']:,}: the demo's student shape has changed.")
        steps = row["steps_trained"]
        estimate = FloorEstimate(
            floor=row["observed_floor"], asymptote=row["asymptote"], asymptote_low=row["asymptote_low"],
            asymptote_high=row["asymptote_high"], amplitude=row["amplitude"], exponent=row["exponent"],
            improvement_per_doubling=row["amplitude"] * steps ** -row["exponent"] * (1 - 2 ** -row["exponent"]),
            converged=row["converged"], reason=row["reason"], evaluations=row["evaluations"], last_step=steps,
            steps_to_converge=steps_to_converge(row["amplitude"], row["exponent"], row["asymptote"],
                                                config.floor_tolerance, config.floor_absolute_tolerance),
        )
        # the student's own steps, and the tokens they fed it (every block is full: batch x block size)
        state = TrainerState(global_step=steps,
                             num_input_tokens_seen=steps * config.batch_size * config.block_size)
        name = student_name(width)
        card = student_card(student, teacher, args, state, estimate, f"students-{name}", DATASET)
        cards[f"students/{name}/README.md"] = str(card)
    return cards


def render_all() -> dict[str, str]:
    """Every card, keyed by its path under model_cards/."""
    return {**sae_cards(), **predictor_card(), **student_cards()}


def write_plot(path: Path) -> None:
    """The SAE card's figure, as push_sae_to_hub draws it (not compared by --check: PNG bytes vary by version)."""
    from hf_geokd.floors import default_widths, floor_tables_every_kind
    from hf_geokd.reporting.plots import plot_predicted_floors

    sae_id, stats = _stats()
    tables = floor_tables_every_kind(stats, default_widths(stats.d_in))
    plot_predicted_floors(tables, path, f"Predicted floors, {sae_id}")


def drifted(cards: dict[str, str]) -> list[str]:
    """The cards whose committed text differs from ``cards`` (or is missing)."""
    return [name for name, text in cards.items()
            if not (OUT / name).is_file() or (OUT / name).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    args = parser.parse_args(argv)
    cards = render_all()
    if args.check:
        stale = drifted(cards)
        for name in stale:
            print(f"model_cards/{name} differs from the templates' rendering: run `make cards`", file=sys.stderr)
        return 1 if stale else 0
    for name, text in cards.items():
        (OUT / name).parent.mkdir(parents=True, exist_ok=True)
        (OUT / name).write_text(text)
    sae_id, _ = _stats()
    write_plot(OUT / "sae-repo" / sae_id / PLOT)
    print(f"{len(cards)} cards written under model_cards/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
