"""The embedded pipeline end to end at a very small size (the real demo is `make demo`)."""

from hf_geokd.demo import DemoConfig, run_demo


def test_demo_pipeline_at_small_size(tmp_path, wheel_cache):
    config = DemoConfig(cache_dir=wheel_cache, vocab_size=512, teacher_hidden=32, teacher_layers=2, teacher_heads=4,
                        teacher_steps=30, batch_size=8, sae_layer=1, sae_tokens=20_000, stats_tokens=4_000,
                        widths=(8, 16, 32), student_steps=20, eval_every=10, probe_per_class=40, probe_seeds=2)
    report = run_demo(tmp_path / "demo", config)
    text = report.read_text()
    for section in ("## Teacher feature statistics", "## Predicted floors", "## Distilled students",
                    "## Calibration (Eq. 3) and power law (Eq. 4)", "## Probes"):
        assert section in text
    for figure in ("importance_spectrum.png", "predicted_floors.png", "calibration.png", "power_law.png", "probes.png"):
        assert (tmp_path / "demo" / figure).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "demo" / "predictor" / "config.json").is_file()
    assert (tmp_path / "demo" / "students" / "w8" / "README.md").is_file()
    # a second run reuses every finished stage
    config.timings.clear()
    run_demo(tmp_path / "demo", config)
    assert config.timings["teacher"] < 10 and config.timings["students"] < 10
