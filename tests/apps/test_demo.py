"""The embedded pipeline end to end at a very small size (the real demo is `make demo`): one run, interrupted and
resumed, shared by focused tests of what it leaves behind; caching is checked on file contents and modification
times, never on wall-clock durations."""

import json
import shutil

import pandas as pd
import pytest
import torch
from transformers import TrainerCallback

from hf_geokd.apps import pipeline
from hf_geokd.apps.demo import DemoConfig, demo_config, run_demo
from hf_geokd.distill import MultiStudentDistillationTrainer

SECTIONS = ("## Teacher feature statistics", "## Predicted floors", "## Distilled students", "## Held-out validation",
            "## Calibration (Eq. 3) and power law (Eq. 4)", "## Which features survive", "## Probes")
FIGURES = ("importance_spectrum.png", "predicted_floors.png", "power_law.png", "probes.png", "floor_curves.png",
           "validation/held_out_cheapest-2.png", "survival/staircase.png", "survival/orderings.png")


class CrashAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise RuntimeError(f"simulated crash after the step-{state.global_step} checkpoint")


def crashing_trainer(*args, callbacks, **kwargs):
    return MultiStudentDistillationTrainer(*args, callbacks=[*callbacks, CrashAfterCheckpoint()], **kwargs)


def small_config(cache_dir) -> DemoConfig:
    return DemoConfig(cache_dir=cache_dir, vocab_size=512, teacher_hidden=32, teacher_layers=2, teacher_heads=4,
                      teacher_steps=30, batch_size=8, sae_layer=1, sae_tokens=20_000, stats_tokens=4_000, sae_k=8,
                      widths=(4, 8, 12, 16), student_max_steps=30, eval_every=5, checkpoint_every=10, eval_blocks=8,
                      survival_tokens=4_000, probe_per_class=40, probe_seeds=2)


@pytest.fixture(scope="module")
def crashed_then_resumed(tmp_path_factory, wheel_cache):
    """The demo's student run dies right after its first checkpoint; the next invocation resumes it. Returns (the
    folder, the report, whether the checkpoint existed after the crash)."""
    out = tmp_path_factory.mktemp("demo") / "run"
    config = small_config(wheel_cache)
    patch = pytest.MonkeyPatch()
    patch.setattr(pipeline, "MultiStudentDistillationTrainer", crashing_trainer)
    try:
        with pytest.raises(RuntimeError, match="simulated crash after the step-10 checkpoint"):
            run_demo(out, config)
    finally:
        patch.undo()
    checkpoint_kept = (out / "students" / "checkpoint-10" / "w8" / "model.safetensors").is_file()
    return out, run_demo(out, config), checkpoint_kept


@pytest.mark.slow
def test_an_interrupted_student_run_resumes_from_its_checkpoint(crashed_then_resumed):
    out, _, checkpoint_kept = crashed_then_resumed
    assert checkpoint_kept
    assert not list((out / "students").glob("checkpoint-*"))  # removed once every student is saved
    floor = json.loads((out / "students" / "w8" / "floor.json").read_text())
    assert floor["steps_trained"] <= 30 and isinstance(floor["converged"], bool) and floor["reason"]
    assert len(floor["losses"]) == len(floor["steps"]) == floor["evaluations"]
    assert floor["steps"] == list(range(5, floor["steps_trained"] + 1, 5))  # the evaluations before the crash kept
    assert floor["steps_trained"] == floor["steps"][-1]  # a student stopped early records its own last step


@pytest.mark.slow
def test_the_report_has_every_section_figure_and_artifact(crashed_then_resumed):
    out, report, _ = crashed_then_resumed
    text = report.read_text()
    for section in SECTIONS:
        assert section in text
    for figure in FIGURES:
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    scores = (out / "validation" / "scores.csv").read_text()
    for predictor in ("cheapest-2", "power law", "parameter law", "exponential", "g_eff measured by survival",
                      "ablation floor + Eq. 3"):
        assert predictor in scores  # survival runs before validation and feeds it
    # Eq. 3 is fitted, or the report says why not (Eq. 2 predicts 0 at every width of this tiny teacher)
    assert (out / "calibration.png").is_file() != ("Eq. 3 could not be fitted: predicted floors are all zero" in text)
    assert (out / "predictor" / "config.json").is_file()
    assert (out / "students" / "w8" / "README.md").is_file()


@pytest.mark.slow
def test_the_probe_study_covers_every_concept_width_and_baseline(crashed_then_resumed):
    out, report, _ = crashed_then_resumed
    probes = pd.read_csv(out / "probes" / "probes.csv")
    config = small_config(None)
    models = ["bag_of_tokens", "random_init", *(f"d_S={width}" for width in config.all_widths), "teacher"]
    assert sorted(probes["concept"].unique()) == sorted(config.probe_families)
    for _, rows in probes.groupby("concept"):
        assert list(rows["model"]) == models  # a row per baseline, every student width and the teacher
    assert probes["accuracy"].between(0, 1).all() and (probes["accuracy_low"] <= probes["accuracy"]).all()
    assert probes.loc[probes["model"].isin(models[2:]), "carried"].notna().all()
    latents = pd.read_csv(out / "probes" / "concept_latents.csv")
    assert sorted(latents["concept"]) == sorted(config.probe_families)
    assert [f"survive_d_S={width}" for width in config.all_widths] == [c for c in latents if c.startswith("survive_")]
    assert (latents.filter(like="survive_").le(latents["carrying_latents"], axis=0)).all().all()
    text = report.read_text()
    assert "**Rule.** A model *carries* a concept" in text
    carried = probes.loc[probes["model"].isin(models[2:]), "carried"].astype(bool)
    assert ("**No concept passes the controls**" in text) == (not carried.any())


@pytest.mark.slow
def test_a_second_invocation_reuses_every_finished_stage(crashed_then_resumed, tmp_path, wheel_cache):
    out = tmp_path / "again"
    shutil.copytree(crashed_then_resumed[0], out)
    artifacts = [out / "teacher" / "model.safetensors", *sorted(out.glob("sae/*/feature_stats.json")),
                 *sorted(out.glob("students/w*/floor.json")), *sorted(out.glob("survival/d_S=*/*.json"))]
    assert len(artifacts) >= 1 + 1 + 5 + 5  # teacher, SAE statistics, four students and the control, survival
    written = [(path.stat().st_mtime_ns, path.read_bytes()) for path in artifacts]
    run_demo(out, small_config(wheel_cache))
    assert [(path.stat().st_mtime_ns, path.read_bytes()) for path in artifacts] == written
    assert len(json.loads((out / "timings.json").read_text())) == 2  # one row per finished invocation


@pytest.mark.slow
def test_a_higher_step_limit_retrains_exactly_the_unconverged_students(crashed_then_resumed, tmp_path, wheel_cache):
    out = tmp_path / "longer"
    shutil.copytree(crashed_then_resumed[0], out)
    before = {path.parent.name: json.loads(path.read_text()) for path in out.glob("students/w*/floor.json")}
    survival = {name: (out / "survival" / f"d_S={row['width']}" / "feature_survival.json").stat().st_mtime_ns
                for name, row in before.items()}
    assert not all(row["converged"] for row in before.values())  # the checks below are not empty
    config = small_config(wheel_cache)
    config.student_max_steps = 40
    run_demo(out, config)
    for name, old in before.items():
        new = json.loads((out / "students" / name / "floor.json").read_text())
        survival_file = out / "survival" / f"d_S={old['width']}" / "feature_survival.json"
        remeasured = survival_file.stat().st_mtime_ns != survival[name]
        if old["converged"]:
            assert new == old and not remeasured
        else:  # trained again from its start: its earlier steps repeat; its survival is measured on the new weights
            assert new["steps"][:len(old["steps"])] == old["steps"] and new["steps_trained"] > old["steps_trained"]
            torch.testing.assert_close(new["losses"][:len(old["losses"])], old["losses"], rtol=1e-5, atol=1e-6)
            assert remeasured


def test_the_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "report.md").write_text("someone else's report")
    with pytest.raises(FileExistsError, match="not empty and was not written by `geokd demo`"):
        run_demo(tmp_path, DemoConfig())
    assert (tmp_path / "report.md").read_text() == "someone else's report"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blocks", "report.md"]


def test_demo_presets_are_named_and_checked():
    assert demo_config("long").student_max_steps > demo_config("full").student_max_steps > \
        demo_config("quick").student_max_steps
    assert demo_config("quick").all_widths[-1] == demo_config("quick").teacher_hidden
    assert len(demo_config("quick").all_widths) >= 7
    with pytest.raises(ValueError, match="unknown demo preset"):
        demo_config("huge")
    with pytest.raises(ValueError, match="probe_seeds must be an integer >= 2"):
        demo_config("quick", probe_seeds=1)
    with pytest.raises(ValueError, match=r"probe_families \['sports'\]: no such offline concept family \(sports: "
                                         "no wheel"):
        demo_config("quick", probe_families=("french", "sports"))
    with pytest.raises(ValueError, match=r"probe_margin must be an accuracy margin in \[0, 1\)"):
        demo_config("quick", probe_margin=1.5)
