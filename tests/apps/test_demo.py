"""The embedded pipeline end to end at a very small size (the real demo is `make demo`)."""

import pytest

from hf_geokd.apps.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_demo_pipeline_at_small_size(tmp_path, wheel_cache):
    config = DemoConfig(cache_dir=wheel_cache, vocab_size=512, teacher_hidden=32, teacher_layers=2, teacher_heads=4,
                        teacher_steps=30, batch_size=8, sae_layer=1, sae_tokens=20_000, stats_tokens=4_000,
                        widths=(8, 16, 32), student_steps=20, eval_every=10, probe_per_class=40, probe_seeds=2)
    out = tmp_path / "demo"
    report = run_demo(out, config)
    text = report.read_text()
    for section in ("## Teacher feature statistics", "## Predicted floors", "## Distilled students",
                    "## Calibration (Eq. 3) and power law (Eq. 4)", "## Probes"):
        assert section in text
    for figure in ("importance_spectrum.png", "predicted_floors.png", "calibration.png", "power_law.png", "probes.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    assert (out / "predictor" / "config.json").is_file()
    assert (out / "students" / "w8" / "README.md").is_file()
    # a second run reuses every finished stage: the teacher, SAE statistics and student floors are not rewritten
    artifacts = [out / "teacher" / "model.safetensors", *sorted(out.glob("sae/*/feature_stats.json")),
                 *sorted(out.glob("students/w*/floor.json"))]
    assert len(artifacts) == 5
    written = [path.stat().st_mtime_ns for path in artifacts]
    run_demo(out, config)
    assert [path.stat().st_mtime_ns for path in artifacts] == written
