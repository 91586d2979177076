"""The embedded pipeline end to end at a very small size (the real demo is `make demo`)."""

import json

import pytest
import torch
from transformers import TrainerCallback

from hf_geokd.apps import demo
from hf_geokd.apps.demo import DemoConfig, demo_config, run_demo
from hf_geokd.distill import MultiStudentDistillationTrainer


class CrashAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise RuntimeError(f"simulated crash after the step-{state.global_step} checkpoint")


def crashing_trainer(*args, callbacks, **kwargs):
    return MultiStudentDistillationTrainer(*args, callbacks=[*callbacks, CrashAfterCheckpoint()], **kwargs)


@pytest.mark.slow
def test_demo_pipeline_at_small_size(tmp_path, wheel_cache, monkeypatch):
    config = DemoConfig(cache_dir=wheel_cache, vocab_size=512, teacher_hidden=32, teacher_layers=2, teacher_heads=4,
                        teacher_steps=30, batch_size=8, sae_layer=1, sae_tokens=20_000, stats_tokens=4_000,
                        sae_k=8, widths=(4, 8, 12, 16), student_max_steps=30, eval_every=5, checkpoint_every=10,
                        eval_blocks=8, survival_tokens=4_000, probe_per_class=40, probe_seeds=2)
    out = tmp_path / "demo"
    with monkeypatch.context() as patch:  # the student run dies after its first checkpoint; the next run resumes it
        patch.setattr(demo, "MultiStudentDistillationTrainer", crashing_trainer)
        with pytest.raises(RuntimeError, match="simulated crash after the step-10 checkpoint"):
            run_demo(out, config)
    assert (out / "students" / "checkpoint-10" / "w8" / "model.safetensors").is_file()
    report = run_demo(out, config)
    assert not list((out / "students").glob("checkpoint-*"))  # removed once every student is saved
    text = report.read_text()
    for section in ("## Teacher feature statistics", "## Predicted floors", "## Distilled students",
                    "## Held-out validation", "## Calibration (Eq. 3) and power law (Eq. 4)",
                    "## Which features survive", "## Probes"):
        assert section in text
    floor = json.loads((out / "students" / "w8" / "floor.json").read_text())
    assert floor["steps_trained"] <= 30 and isinstance(floor["converged"], bool) and floor["reason"]
    assert len(floor["losses"]) == len(floor["steps"]) == floor["evaluations"]
    assert floor["steps"] == list(range(5, floor["steps_trained"] + 1, 5))  # the evaluations before the crash kept
    scores = (out / "validation" / "scores.csv").read_text()
    assert "cheapest-2" in scores and "power law" in scores and "parameter law" in scores
    assert "g_eff measured by survival" in scores  # survival runs before validation and feeds it
    for figure in ("importance_spectrum.png", "predicted_floors.png", "power_law.png", "probes.png",
                   "floor_curves.png", "validation/held_out_cheapest-2.png", "survival/staircase.png",
                   "survival/orderings.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    # Eq. 3 is fitted, or the report says why not (Eq. 2 predicts 0 at every width of this tiny teacher)
    assert (out / "calibration.png").is_file() != ("Eq. 3 could not be fitted: predicted floors are all zero" in text)
    assert (out / "predictor" / "config.json").is_file()
    assert (out / "students" / "w8" / "README.md").is_file()
    assert floor["steps_trained"] == floor["steps"][-1]  # a student stopped early records its own last step
    # a second run reuses every finished stage: the teacher, SAE statistics and student floors are not rewritten
    artifacts = [out / "teacher" / "model.safetensors", *sorted(out.glob("sae/*/feature_stats.json")),
                 *sorted(out.glob("students/w*/floor.json"))]
    assert len(artifacts) == 1 + 1 + 5  # teacher, SAE statistics, four students and the control
    written = [path.stat().st_mtime_ns for path in artifacts]
    run_demo(out, config)
    assert [path.stat().st_mtime_ns for path in artifacts] == written
    timings = json.loads((out / "timings.json").read_text())
    assert len(timings) == 2 and timings[1]["students"] < timings[0]["students"]  # one row per invocation
    # a higher step limit trains again, from the start, exactly the students that did not converge
    before = {path.parent.name: json.loads(path.read_text()) for path in out.glob("students/w*/floor.json")}
    config.student_max_steps = 40
    run_demo(out, config)
    for name, old in before.items():
        new = json.loads((out / "students" / name / "floor.json").read_text())
        if old["converged"]:
            assert new == old
        else:
            assert new["steps"][:len(old["steps"])] == old["steps"] and new["steps_trained"] > old["steps_trained"]
            torch.testing.assert_close(new["losses"][:len(old["losses"])], old["losses"], rtol=1e-5, atol=1e-6)
    assert not all(row["converged"] for row in before.values())  # the check above is not empty


def test_demo_presets_are_named_and_checked():
    assert demo_config("long").student_max_steps > demo_config("full").student_max_steps > \
        demo_config("quick").student_max_steps
    assert demo_config("quick").all_widths[-1] == demo_config("quick").teacher_hidden
    assert len(demo_config("quick").all_widths) >= 7
    with pytest.raises(ValueError, match="unknown demo preset"):
        demo_config("huge")
