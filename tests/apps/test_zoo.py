"""The teacher zoo: its YAML, its registration (written once, scored only when committed), and a tiny zoo end to end,
stopped by its time limit and continued."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from hf_geokd.apps.cli import main
from hf_geokd.apps.zoo import DeadlineReached, ZooTeacher, load_zoo, run_zoo, student_widths, zoo_status
from hf_geokd.apps.zoo.registration import registration_commit, write_registration

TINY = {"vocab_size": 256, "block_size": 32, "hidden": 16, "layers": 2, "heads": 4, "teacher_steps": 6,
        "batch_size": 4, "sae_layer": 1, "sae_expansion": 4, "sae_architecture": "topk", "sae_k": 4,
        "sae_tokens": 2048, "sae_seeds": [0, 1], "stats_tokens": 1024, "ablation_tokens": 512,
        "widths": [4, 8, 12], "student_max_steps": 6, "eval_every": 2, "checkpoint_every": 2, "eval_blocks": 2,
        "survival_tokens": 512, "probe_families": ["code", "is_question"], "probe_per_class": 40, "probe_seeds": 2}


def write_zoo(path, teachers, defaults=None):
    path.write_text(yaml.safe_dump({"defaults": defaults or {}, "teachers": teachers}))
    return path


def test_the_shipped_zoo_varies_every_axis_a_sceptic_would_name():
    teachers = load_zoo()
    assert len(teachers) >= 5
    for axis in ("hidden", "layers", "vocab_size", "teacher_steps", "sae_architecture", "sae_expansion", "sae_k",
                 "sae_layer", "corpus"):
        assert len({getattr(teacher, axis) for teacher in teachers}) > 1, axis
    assert {"topk", "standard"} <= {teacher.sae_architecture for teacher in teachers}
    assert {"wiki", "code"} <= {teacher.corpus for teacher in teachers}
    assert all(len(teacher.sae_seeds) == 3 for teacher in teachers)
    smoke = load_zoo(preset="smoke")  # what `geokd zoo --preset smoke` runs: the test below runs a smaller one
    assert {teacher.sae_architecture for teacher in smoke} == {"topk", "standard"} and len(smoke) == 2
    with pytest.raises(ValueError, match="unknown zoo preset"):
        load_zoo(preset="huge")


def test_defaults_apply_and_each_teacher_overrides_them(tmp_path):
    path = write_zoo(tmp_path / "zoo.yaml", [{"name": "a"}, {"name": "b", "hidden": 32, "sae_layer": 0}],
                     defaults={"hidden": 64, "heads": 4, "layers": 2, "sae_layer": 1})
    a, b = load_zoo(path)
    assert (a.hidden, a.sae_layer, b.hidden, b.sae_layer, b.layers) == (64, 1, 32, 0, 2)
    assert a.hook_name == "gpt_neox.layers.1"


@pytest.mark.parametrize("teachers, message", [
    ([{"name": "a", "hiden": 64}], r"teacher 'a' has unknown keys \['hiden'\]"),
    ([{"name": "a"}, {"name": "a"}], r"teacher names must be unique, \['a'\] repeat"),
    ([{"name": "a", "sae_architecture": "bogus"}], "sae_architecture 'bogus' is not one of"),
    ([{"name": "a", "sae_architecture": "standard", "sae_l1": 0.5}], "takes sae_l1 > 0 and no sae_k"),
    ([{"name": "a", "sae_k": 2000}], r"takes sae_k in \[1, d_sae = 1024\]"),
    ([{"name": "a", "widths": [8, 128]}], "width 128 is not narrower than the teacher"),
    ([{"name": "a", "widths": [8, 16]}], "leave nothing to predict after 2 calibration students"),
    ([{"name": "a", "sae_layer": 4}], r"sae_layer must be a block index in \[0, layers = 4\)"),
    ([{"name": "a", "corpus": "poems"}], "corpus 'poems' is not an embedded corpus"),
    ([{"name": "a/b"}], "must be a folder name"),
    ([{"name": "a", "sae_seeds": [0, 0]}], "sae_seeds must be distinct integers"),
    ([{"name": "a", "teacher_steps": 0}], "teacher_steps must be a positive integer"),
    ([{"name": "a", "sae_architecture": "jumprelu"}], "sae_architecture 'jumprelu' is not one of"),
    ([{"name": "a", "widths": [16, 8, 4]}], "distinct and in increasing order"),
    ([{"name": "a", "widths": [4, 4, 8]}], "distinct and in increasing order"),
    ([{"name": "a", "widths": 8}], "widths must be a list"),
    ([{"name": "a", "sae_seeds": [True, False]}], "sae_seeds must be distinct integers"),
    ([{"name": "a", "sae_layer": True}], "sae_layer must be an integer"),
    ([{"name": "a", "seed": "abc"}], "seed must be an integer"),
    ([{"name": "a", "corpus": ["wiki"]}], "is not an embedded corpus"),
    ([{"hidden": 64}], "must be a mapping with a `name`"),
    ([{"name": "a", "probe_families": ["sports"]}], r"probe_families \['sports'\]: no such offline concept family"),
    ([{"name": "a", "probe_families": "code"}], r"probe_families must be a list, e\.g\. \[code, is_question\]"),
    ([{"name": "a", "probe_seeds": 1}], "probe_seeds must be an integer >= 2"),
    ([{"name": "a", "probe_margin": -0.1}], r"probe_margin must be an accuracy margin in \[0, 1\)"),
    ([{"name": "a", "probe_margin": 1.0}], r"probe_margin must be an accuracy margin in \[0, 1\)"),
    ([{"name": "a", "probe_per_class": 3}], "probe_per_class must be an integer >= 5"),
    ([{"name": "a", "probe_families": [["code"]]}], r"probe_families must be a list of family names, e\.g\."),
    ([{"name": "a", "probe_families": ["code", "code"]}], "names a family twice"),
])
def test_a_bad_zoo_file_names_the_teacher_the_key_and_the_fix(tmp_path, teachers, message):
    with pytest.raises(ValueError, match=message):
        load_zoo(write_zoo(tmp_path / "zoo.yaml", teachers))


def test_bad_zoo_files_and_flags_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("teachers: [")
    assert main(["zoo", "--teachers", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "z")]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    assert main(["zoo", "--teachers", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "z")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["zoo", "--preset", "smoke", "--only", "nobody", "--out", str(tmp_path / "z")]) == 2
    assert "no such teacher in this zoo" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["zoo", "--preset", "smoke", "--out", str(tmp_path / "mine")]) == 2
    assert "not empty and was not written by `geokd zoo`" in capsys.readouterr().err
    assert main(["zoo", "--preset", "smoke", "--max-minutes", "0", "--out", str(tmp_path / "z")]) == 2
    both = ["zoo", "--preset", "smoke", "--teachers", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "z")]
    assert main(both) == 2
    assert "pass one of them" in capsys.readouterr().err
    (tmp_path / "defaults.yaml").write_text("defaults: [a]\nteachers: [{name: a}]\n")
    assert main(["zoo", "--teachers", str(tmp_path / "defaults.yaml"), "--out", str(tmp_path / "z")]) == 2
    assert "`defaults` must be a mapping" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only must be a list of teacher names"):
        run_zoo(tmp_path / "z", load_zoo(preset="smoke"), only="topk")
    with pytest.raises(ValueError, match="teachers must be a non-empty list of ZooTeacher"):
        run_zoo(tmp_path / "z", [{"name": "a"}])
    assert not (tmp_path / "z").exists()  # nothing refused left a folder behind


def test_student_widths_span_the_critical_width_below_the_teacher():
    widths = student_widths(70.0, 128)
    assert min(widths) < 70 < max(widths) < 128 and len(widths) >= 6
    assert all(width % 4 == 0 for width in widths)
    narrow_teacher = student_widths(200.0, 64)  # d* above d_T: a grid below the teacher, all narrower than it
    assert len(narrow_teacher) >= 5 and max(narrow_teacher) < 64


def test_a_registration_is_written_once(tmp_path):
    teacher = ZooTeacher(name="a")
    content = {"saes": [{"seed": 0, "n_features": 10, "l0": 1.0, "alpha": 0.9, "critical_width": 3.0,
                         "splice_kl": 0.1}],
               "widths": [4, 8, 12], "control_width": 128, "calibration_widths": [4, 8],
               "calibration_floors": [0.5, 0.3], "calibration_converged": [True, True], "predicted_widths": [12],
               "ablation_floors": {"0": {"4": 0.6, "8": 0.4, "12": 0.2, "128": 0.0}},
               "predictions": {"power law a d^-gamma (+ c)": {"12": {"median": 0.2, "low": 0.2, "high": 0.2,
                                                                    "per_seed": [0.2], "fitted_seeds": [0]}}}}
    write_registration(tmp_path, teacher, content)
    written = (tmp_path / "registration.json").read_bytes()
    with pytest.raises(FileExistsError, match="written once and never replaced"):
        write_registration(tmp_path, teacher, content)
    assert (tmp_path / "registration.json").read_bytes() == written
    assert json.loads(written)["primary"]["predictor"] == "Eq. 2 (dt_signed, continuous) + Eq. 3"
    markdown = (tmp_path / "registration.md").read_text()
    assert "d_S = 4: 0.6000 vs observed 0.5000" in markdown and "cheapest-2: the 2 narrowest" in markdown


def test_the_probing_keys_are_not_registered_and_may_change_after_registration(tmp_path):
    from types import SimpleNamespace

    from hf_geokd.apps.zoo.stages import check_registered_settings

    teacher = ZooTeacher(name="a")
    settings = teacher.registered_settings()
    assert "probe_families" not in settings and settings["sae_k"] == 16
    registration = {"settings": settings}
    check_registered_settings(SimpleNamespace(teacher=ZooTeacher(name="a", probe_per_class=50, probe_families=[])),
                              registration)  # exploratory: allowed
    with pytest.raises(ValueError, match=r"\['sae_k'\] differ from its registration"):
        check_registered_settings(SimpleNamespace(teacher=ZooTeacher(name="a", sae_k=8), folder=tmp_path),
                                  registration)


def test_scoring_needs_the_registration_committed_as_it_is(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert registration_commit(tmp_path) is None  # outside a git work tree: nothing to check
    git("init", "-q")
    git("config", "user.email", "zoo@example.com")
    git("config", "user.name", "zoo")
    (tmp_path / "registration.json").write_text("{}\n")
    with pytest.raises(PermissionError, match="is not committed as it is"):
        registration_commit(tmp_path)
    git("add", "registration.json")
    git("commit", "-qm", "register")
    assert len(registration_commit(tmp_path)) == 40
    (tmp_path / "registration.json").write_text('{"changed": true}\n')
    with pytest.raises(PermissionError, match="is not committed as it is"):
        registration_commit(tmp_path)


@pytest.mark.slow
def test_a_tiny_zoo_stops_at_its_time_limit_continues_and_scores(tmp_path, wheel_cache, capsys):
    teachers = load_zoo(write_zoo(tmp_path / "zoo.yaml", [{"name": "tiny"}], defaults=TINY))
    out = tmp_path / "zoo"
    with pytest.raises(DeadlineReached, match="time limit reached"):  # stops in the first student run
        run_zoo(out, teachers, stage="predict", cache_dir=wheel_cache, max_minutes=1e-6)
    assert not (out / "tiny" / "registration.json").exists()
    assert list((out / "tiny" / "students").glob("checkpoint-*"))
    assert zoo_status(out, teachers).loc[0, "stage"] == "predict"
    assert run_zoo(out, teachers, stage="predict", cache_dir=wheel_cache) is None  # registered, nothing scored
    assert "_kl'" in capsys.readouterr().out  # the calibration students' losses are printed: they are registered
    status = zoo_status(out, teachers).loc[0]
    assert (status["stage"], status["students final"], status["registration"]) == (
        "registered", "0 of 2", "no version control")
    registration = json.loads((out / "tiny" / "registration.json").read_text())
    written = (out / "tiny" / "registration.json").read_bytes()
    assert registration["calibration_widths"] == [4, 8] and registration["predicted_widths"] == [12]
    assert [sae["seed"] for sae in registration["saes"]] == [0, 1]
    student_free = registration["predictions"]["ablation floor (no student)"]["12"]  # fits nothing: always there
    assert student_free["low"] <= student_free["median"] <= student_free["high"]
    assert len(student_free["per_seed"]) == 2
    # a teacher trained 6 steps may give calibration floors that do not fall with width: Eq. 3 then fits C <= 0,
    # and the registration lists it as not fitted rather than registering a floor that rises with width
    primary = "Eq. 2 (dt_signed, continuous) + Eq. 3"
    assert (primary in registration["predictions"]) != (primary in registration["not_fitted"])
    assert not (out / "tiny" / "students" / "w12").exists()  # nothing it predicts was trained before it
    report = run_zoo(out, teachers, stage="score", cache_dir=wheel_cache, allow_uncommitted=True)
    printed = capsys.readouterr().out
    assert "'epoch'" in printed and "_kl'" not in printed and "loss'" not in printed  # the score stage is blind
    assert (out / "tiny" / "registration.json").read_bytes() == written
    status = zoo_status(out, teachers).loc[0]
    assert (status["stage"], status["students final"]) == ("scored", "2 of 2")
    scores = json.loads((out / "tiny" / "scores.json").read_text())
    assert {row["predictor"] for row in scores["scores"]} >= {"ablation floor (no student)",
                                                               "exponential a e^(-b d) (+ c)"}
    text = report.read_text()
    assert "## The registered success rule" in text and "provisional" not in text
    assert "Wall time recorded so far" in text and "not included" not in text  # every stage of it was timed
    timings = json.loads((out / "tiny" / "timings.json").read_text())
    assert [(row["stage"], row["finished"]) for row in timings] == [
        ("predict", False), ("predict", True), ("predict", True), ("score", True)]
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "score_minutes"] == round(timings[-1]["seconds"] / 60, 1)
    assert "**not committed**" in (out / "tiny" / "report.md").read_text()
    for figure in ("predicted_vs_observed.png", "mare_by_teacher.png", "tiny/floor_curves.png",
                   "tiny/survival/staircase.png", "tiny/validation/seed0/report.md", "tiny/probes.png"):
        assert (out / figure).is_file(), figure
    # the probing study: every student (the control included) and the teacher, for each family, beside the controls
    probes = pd.read_csv(out / "tiny" / "probes" / "probes.csv")
    assert set(probes["model"]) == {"bag_of_tokens", "random_init", "teacher", "d_S=4", "d_S=8", "d_S=12",
                                    "d_S=16"}
    assert set(probes["concept"]) == {"code", "is_question"}
    assert set(scores["probes"]["carried"]) == {"teacher", "d_S=4", "d_S=8", "d_S=12", "d_S=16"}
    latents = pd.DataFrame(scores["probes"]["concept_latents"])
    assert list(latents["concept"]) == ["code", "is_question"] and "survive_d_S=12" in latents
    assert "## Probes (exploratory, not registered)" in (out / "tiny" / "report.md").read_text()


def test_stage_minutes_are_unknown_when_an_invocation_was_not_timed(tmp_path):
    from hf_geokd.apps.zoo.summary import stage_minutes

    assert all(value != value for value in stage_minutes(tmp_path).values())  # no timings.json: NaN, not 0
    rows = [{"stage": "predict", "seconds": None, "finished": True, "note": "ran before timings were recorded"},
            {"stage": "predict", "seconds": 3.0, "finished": True},
            {"stage": "score", "seconds": 90.0, "finished": False}, {"stage": "score", "seconds": 30.0,
                                                                     "finished": True}]
    (tmp_path / "timings.json").write_text(json.dumps(rows))
    minutes = stage_minutes(tmp_path)
    assert minutes["predict_minutes"] != minutes["predict_minutes"] and minutes["score_minutes"] == 2.0


def test_leave_one_teacher_out_rescales_by_the_other_teachers_ratio_only():
    from hf_geokd.apps.zoo.cross_teacher import leave_one_teacher_out

    def teacher(name, ablation, observed, unconverged=()):
        registration = {"control_width": 32, "predicted_widths": [12, 16],
                        "ablation_floors": {"0": ablation, "1": {w: 2 * v for w, v in ablation.items()}}}
        return name, registration, {"observed": observed, "unconverged": list(unconverged)}

    # a: observed = ablation / 2 for seed 0 (seed 1 doubles the ablation floor: ratio 1/4); a zero ablation floor
    # at width 4 and the control are left out of the ratio
    a = teacher("a", {"4": 0.0, "8": 2.0, "12": 1.2, "16": 1.0, "32": 0.0},
                {"4": 1.5, "8": 1.0, "12": 0.6, "16": 0.5, "32": 0.01})
    # b: observed = ablation at 8, 12 and 16; width 4 did not converge (an upper bound, ratio 10: left out)
    b = teacher("b", {"4": 1.0, "8": 1.0, "12": 0.8, "16": 0.5, "32": 0.1},
                {"4": 10.0, "8": 1.0, "12": 0.8, "16": 0.5, "32": 0.0}, unconverged=[4])
    assert leave_one_teacher_out([a]).empty
    table = leave_one_teacher_out([a, b]).set_index("teacher")
    # b's log-ratios: 0 (seed 0, three students) and log 1/2 (seed 1, three students): median log(1/sqrt 2)
    assert table.at["a", "ratio_from_others"] == pytest.approx(2 ** -0.5)
    # a's seed 0 predicts 2 x observed / sqrt 2 = sqrt 2 x observed at 12 and 16: 41.4%; seed 1 twice that: 182.8%
    assert table.at["a", "rescaled_low"] == pytest.approx(100 * (2 ** 0.5 - 1))
    assert table.at["a", "rescaled_high"] == pytest.approx(100 * (2 * 2 ** 0.5 - 1))
    assert table.at["a", "rescaled_mare"] == pytest.approx(100 * (1.5 * 2 ** 0.5 - 1))  # the median of the two seeds
    assert table.at["a", "ablation_low"] == pytest.approx(100.0)  # seed 0 alone: twice the observed floor
    # a's ratios: 1/2 (seed 0) and 1/4 (seed 1) at 8, 12 and 16: median 1/(2 sqrt 2)
    assert table.at["b", "ratio_from_others"] == pytest.approx(1 / (2 * 2 ** 0.5))
    assert table.at["b", "ablation_low"] == pytest.approx(0.0)  # b's seed 0 ablation floor is exact
    # b's seed 0 predicts observed / (2 sqrt 2): 64.6% low; seed 1 (twice the ablation floor) observed / sqrt 2: 29.3%
    assert table.at["b", "rescaled_low"] == pytest.approx(100 * (1 - 2 ** -0.5))
    assert table.at["b", "rescaled_high"] == pytest.approx(100 * (1 - 1 / (2 * 2 ** 0.5)))


def test_the_teacher_report_names_what_each_model_carries_or_why_probing_failed():
    from hf_geokd.apps.zoo.summary import probe_lines

    assert probe_lines(None) == []
    latents = [{"concept": "code", "carrying_latents": 3, "survive_d_S=8": 1}]
    text = "\n".join(probe_lines({"carried": {"d_S=8": [], "teacher": ["code", "french"]}, "sae_seed": 1,
                                  "concept_latents": latents}))
    assert "Carried: teacher: code, french." in text and "d_S=8:" not in text and "(SAE seed 1)" in text
    none = "\n".join(probe_lines({"carried": {"teacher": []}, "sae_seed": 0, "concept_latents": latents}))
    assert "**No model carries any concept**" in none
    failed = "\n".join(probe_lines({"error": "no network", "sae_seed": 0}))
    assert "Probing failed (the registered scores above stand): no network" in failed


def test_eq3_with_b_from_the_control_against_a_hand_computation():
    from hf_geokd.apps.zoo.control_anchored import CURVES, THEORY, control_anchored_scores, fixed_b
    from hf_geokd.stats import FeatureStats

    # C by least squares with B = 0.1 fixed: (0.5 * 1.0 + 0.25 * 0.5) / (0.25 + 0.0625) = 2
    assert fixed_b(np.array([0.5, 0.25]), np.array([1.1, 0.6]), 0.1, np.array([0.1])) == pytest.approx([0.3])
    assert fixed_b(np.array([0.5, 0.25]), np.array([0.6, 1.1]), 1.0, np.array([0.1])) is None  # C <= 0
    registration = {"control_width": 32, "calibration_widths": [4, 8], "predicted_widths": [16],
                    "ablation_floors": {"0": {"4": 0.5, "8": 0.25, "16": 0.1, "32": 0.0}}}
    scores = {"observed": {"4": 1.1, "8": 0.6, "16": 0.3, "32": 0.1}}
    stats = {0: FeatureStats(n_features=64, l0=4.0, alpha=1 - 4 / 64, contributions=[0.9 ** i for i in range(64)],
                             d_in=32)}
    table = control_anchored_scores(registration, scores, stats).set_index("predictor")
    assert table.at[THEORY[1], "mare_pct"] == pytest.approx(0.0)  # 2 x 0.1 + 0.1 = 0.3, the observed floor
    # through (4, 1.0) and (8, 0.5) above B: exponential halves every 4 widths (0.125 + 0.1 at 16), the power law
    # and the inverse width are both 4 / d (0.25 + 0.1 at 16)
    assert table.at[CURVES[0], "mare_pct"] == pytest.approx(100 * 0.075 / 0.3)
    assert table.at[CURVES[1], "mare_pct"] == pytest.approx(100 * 0.05 / 0.3)
    assert table.at[CURVES[2], "mare_pct"] == pytest.approx(100 * 0.05 / 0.3)
    assert table.at[THEORY[0], "seeds"] == 1
    below = control_anchored_scores(registration, {"observed": {**scores["observed"], "32": 0.8}}, stats)
    assert below.set_index("predictor").loc[list(CURVES), "seeds"].tolist() == [0, 0, 0]  # a floor below B


def test_a_probing_failure_is_recorded_and_leaves_the_registered_scores_alone(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    from hf_geokd.apps.zoo import stages

    def offline(*args, **kwargs):
        raise OSError("could not download the Django wheel")

    monkeypatch.setattr(stages, "probe_students", offline)
    run = SimpleNamespace(teacher=ZooTeacher(name="a", sae_seeds=[2, 3]), folder=tmp_path, cache_dir=tmp_path,
                          tokenizer=None, model=None, sae_dir=lambda seed: tmp_path / f"seed{seed}")
    assert stages._probes(run, [8, 128], []) == {"error": "could not download the Django wheel", "sae_seed": 2}
    assert "probing failed, the registered scores stand" in capsys.readouterr().out
    assert stages._probes(SimpleNamespace(teacher=ZooTeacher(name="a", probe_families=[])), [8], []) is None
    path = stages.write_scores(tmp_path, {"mare": float("nan"), "rows": [{"rank": np.float64("nan")}],
                                          "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"mare": None, "rows": [{"rank": None}], "n": 3}  # strict JSON


def test_the_second_registration_is_judged_only_on_its_teachers_and_only_when_all_are_scored():
    from hf_geokd.apps.zoo.summary import anchored_rule_lines

    rule = {"document": "r.md", "predictor": "P", "teachers": ["a", "b"], "median_mare_pct_at_most": 25.0,
            "teacher_mare_pct_at_most": 50.0, "beats_best_anchored_curve_on_at_least": 2,
            "seed_spread_points_at_most": 10.0}

    def rows(teacher, mare, low, high, curve):
        return [{"teacher": teacher, "predictor": "P", "mare_pct": mare, "mare_low": low, "mare_high": high,
                 "baseline": False},
                {"teacher": teacher, "predictor": "curve", "mare_pct": curve, "mare_low": curve, "mare_high": curve,
                 "baseline": True}]

    partial = pd.DataFrame(rows("a", 10.0, 8.0, 12.0, 30.0) + rows("other", 90.0, 90.0, 90.0, 1.0))
    assert anchored_rule_lines(partial, rule)[-1] == "The rule is evaluated once all of them are scored."
    table = pd.DataFrame(rows("a", 10.0, 8.0, 12.0, 30.0) + rows("b", 60.0, 55.0, 70.0, 20.0)
                         + rows("other", 90.0, 90.0, 90.0, 1.0))
    text = "\n".join(anchored_rule_lines(table, rule))
    assert "| median MARE <= 25% | 35.0 | **no** |" in text
    assert "| no teacher above 50% | 60.0 | **no** |" in text
    assert "| beats the best anchored curve on >= 2 | 1 of 2 | **no** |" in text
    assert "| seed spread <= 10 points | 15.0 | **no** |" in text
    good = pd.DataFrame(rows("a", 10.0, 8.0, 12.0, 30.0) + rows("b", 20.0, 18.0, 22.0, 40.0))
    assert "**no**" not in "\n".join(anchored_rule_lines(good, rule))
