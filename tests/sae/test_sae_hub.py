"""Round trips through a local Hub server with the real huggingface_hub client, in fresh processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk
from hub_server import run_against_hub
from transformers import AutoModelForCausalLM

from hf_geokd import FloorPredictor
from hf_geokd.sae import train_sae

pytestmark = pytest.mark.slow  # sae-lens training, a local Hub server, fresh processes

HOOK = "gpt_neox.layers.1"
WIDTHS = [2, 4, 8, 16]


@pytest.fixture(scope="module")
def trained_sae(tiny_artifacts, tmp_path_factory):
    torch.manual_seed(0)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    out = tmp_path_factory.mktemp("sae")
    folders = train_sae(teacher, blocks.select(range(64)), [HOOK], out, expansion_factor=4, l1_coefficient=0.5,
                        training_tokens=8_192, train_batch_size_tokens=256, measure_tokens=1_024,
                        measure_dataset=blocks.select(range(64, 96)))
    return folders[HOOK]


def test_train_sae_writes_sae_lens_layout_with_stats(trained_sae):
    names = {path.name for path in trained_sae.iterdir()}
    assert {"cfg.json", "sae_weights.safetensors", "feature_stats.json", "feature_stats.safetensors"} <= names
    stats = json.loads((trained_sae / "feature_stats.json").read_text())
    assert stats["hook_name"] == HOOK and stats["n_tokens"] == 1_024 and stats["d_in"] == 32


def test_sae_and_predictor_round_trip_through_the_hub(hub, trained_sae, tmp_path):
    state, url = hub
    local = FloorPredictor.from_sae(trained_sae.parent, sae_id=HOOK)
    expected = local.predict(WIDTHS)["predicted_floor"].tolist()
    run_against_hub(url, tmp_path / "push-cache", f"""
        from hf_geokd import FloorPredictor
        from hf_geokd.sae import push_sae_to_hub
        push_sae_to_hub({str(trained_sae)!r}, "me/tiny-sae")
        push_sae_to_hub({str(trained_sae)!r}, "me/tiny-sae", sae_id="again")  # a second SAE in the same repo
        FloorPredictor.from_sae({str(trained_sae.parent)!r}, sae_id={HOOK!r}).push_to_hub("me/tiny-predictor")
    """)
    repo = state.repos["me/tiny-sae"]
    for sae_id in (HOOK, "again"):
        assert {f"{sae_id}/cfg.json", f"{sae_id}/sae_weights.safetensors", f"{sae_id}/feature_stats.json",
                f"{sae_id}/predicted_floors.png", f"{sae_id}/README.md"} <= set(repo)
        card = repo[f"{sae_id}/README.md"].decode()
        assert "## Predicted floors" in card and "![predicted floors](predicted_floors.png)" in card
        assert f'SAE.from_pretrained("me/tiny-sae", "{sae_id}")' in card
    index = repo["README.md"].decode()  # the second push kept the first SAE in the repo's card
    n_features = json.loads((trained_sae / "feature_stats.json").read_text())["n_features"]
    for sae_id in ("again", HOOK):
        assert f"| [`{sae_id}`]({sae_id}/README.md) | `{HOOK}` | 32 | 128 | {n_features} |" in index
        assert f"![predicted floors of {sae_id}]({sae_id}/predicted_floors.png)" in index
    output = run_against_hub(url, tmp_path / "fresh-cache", f"""
        import json
        from hf_geokd import FloorPredictor
        from hf_geokd.sae import load_sae
        from_sae = FloorPredictor.from_sae("me/tiny-sae", sae_id={HOOK!r}).predict({WIDTHS})
        pushed = FloorPredictor.from_pretrained("me/tiny-predictor").predict({WIDTHS})
        sae = load_sae("me/tiny-sae", sae_id={HOOK!r})
        print(json.dumps([from_sae["predicted_floor"].tolist(), pushed["predicted_floor"].tolist(), sae.cfg.d_sae]))
    """)
    from_sae, pushed, d_sae = json.loads(output.strip().splitlines()[-1])
    assert from_sae == pytest.approx(expected, rel=1e-12) and pushed == pytest.approx(expected, rel=1e-12)
    assert d_sae == 128
    cli = run_against_hub(url, tmp_path / "cli-cache", f"""
        from hf_geokd.apps.cli import main
        raise SystemExit(main(["predict", "me/tiny-sae", "--sae-id", {HOOK!r}, "--widths", "2", "4"]))
    """)
    assert "| 2 |" in cli and "d* per capacity kind" in cli
    assert not [route for route in state.unknown_routes if "/api/models" in route or "/resolve/" in route]


def test_missing_repo_and_files_are_clear(hub, tmp_path):
    _, url = hub
    output = run_against_hub(url, tmp_path / "cache", """
        from hf_geokd import FloorPredictor
        for call in (lambda: FloorPredictor.from_sae("me/does-not-exist", sae_id="x"),
                     lambda: FloorPredictor.from_pretrained("me/tiny-sae")):
            try:
                call()
            except (FileNotFoundError, ValueError) as error:
                print(type(error).__name__, error)
    """)
    assert "me/does-not-exist is not a local folder, and the Hub has no repo of that name" in output
    assert "me/tiny-sae has no feature_stats.safetensors: it is not a FloorPredictor repo" in output


def test_transformers_client_and_measuring_from_a_hub_teacher(hub, tiny_artifacts, trained_sae, tmp_path):
    state, url = hub
    blocks = str(tiny_artifacts / "blocks")
    run_against_hub(url, tmp_path / "push-cache", f"""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        AutoModelForCausalLM.from_pretrained({str(tiny_artifacts / "teacher")!r}).push_to_hub("me/tiny-teacher")
        AutoTokenizer.from_pretrained({str(tiny_artifacts / "teacher")!r}).push_to_hub("me/tiny-teacher")
        from sae_lens import upload_saes_to_huggingface
        upload_saes_to_huggingface({{{HOOK!r}: {str(trained_sae)!r}}}, "me/bare-sae", show_progress=False)
    """)
    assert f"{HOOK}/feature_stats.json" not in state.repos["me/bare-sae"]  # sae-lens's uploader leaves our stats out
    output = run_against_hub(url, tmp_path / "fresh", f"""
        from datasets import load_from_disk
        from hf_geokd import FloorPredictor
        from hf_geokd.distill import build_student
        student = build_student("me/tiny-teacher", 16, num_attention_heads=4)
        predictor = FloorPredictor.from_sae("me/bare-sae", sae_id={HOOK!r}, model="me/tiny-teacher",
                                            dataset=load_from_disk({blocks!r}).select(range(64, 96)), n_tokens=1024,
                                            progress=False)
        print(student.config.vocab_size, predictor.stats.n_features, predictor.stats.n_tokens)
    """)
    vocab, n_features, n_tokens = map(int, output.strip().splitlines()[-1].split())
    local = json.loads((trained_sae / "feature_stats.json").read_text())
    assert vocab == 300 and n_tokens == 1024 and n_features == local["n_features"]


def test_train_sae_recipe_on_the_tiny_teacher(tiny_artifacts, tmp_path):
    root = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        str(root / "recipes/train_sae.py"),
        str(root / "recipes/tiny/sae.yaml"),
        "--model_name_or_path",
        str(tiny_artifacts / "teacher"),
        "--dataset_path",
        str(tiny_artifacts / "blocks"),
        "--output_dir",
        str(tmp_path),
        "--hook_names",
        HOOK,
        "--context_size",
        "32",
        "--train_blocks",
        "64",
        "--measure_blocks",
        "16",
        "--expansion_factor",
        "4",
        "--train_batch_size_tokens",
        "256",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "WANDB_MODE": "disabled"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / HOOK / "feature_stats.json").read_text())
    assert stats["n_tokens"] == 16 * 32 and stats["hook_name"] == HOOK
