"""FeatureSurvivalConfig: every setting checked by name, the previous keywords still accepted, the recipes' YAML."""

import importlib.util
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from survival_planted import PlantedStudent, random_projection_students

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.survival import FeatureSurvivalConfig, measure_feature_survival

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alive_threshold": -1}, r"alive_threshold must be a firing frequency in \[0, 1\)"),
        ({"alive_threshold": 1.0}, "alive_threshold must be"),
        ({"ridge": math.nan}, "ridge must be a finite number >= 0"),
        ({"ridge": -0.1}, "ridge must be a finite number >= 0"),
        ({"null_students": -1}, "null_students must be an integer >= 0"),
        ({"null_students": 1.5}, "null_students must be an integer >= 0"),
        ({"held_out": 0.0}, r"held_out must lie in \(0, 1\)"),
        ({"held_out": math.nan}, r"held_out must lie in \(0, 1\)"),
        ({"threshold": 1.5}, r"threshold must lie in \(0, 1\)"),
        ({"min_ceiling": 0}, r"min_ceiling must lie in \(0, 1\)"),
        ({"min_firings": -1}, "min_firings must be an integer >= 0"),
        ({"n_tokens": 0}, "n_tokens must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"probe": "mlp"}, "probe must be 'linear' or 'relu'"),
        ({"probe_epochs": 0}, "probe_epochs must be a positive integer"),
        ({"probe_lr": math.inf}, "probe_lr must be a positive learning rate"),
        ({"norm_scaling_factor": -2.0}, "norm_scaling_factor must be a positive number"),
        ({"hook_name": ""}, "hook_name must be a module path"),
        ({"seed": 0.5}, "seed must be an integer"),
        ({"shuffled": "yes"}, "shuffled must be true or false"),
        ({"token_baseline": 1}, "token_baseline must be true or false"),
        ({"token_baseline": False}, "pass beyond_token=False"),
    ],
)
def test_each_setting_is_checked_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        FeatureSurvivalConfig(**settings)


@pytest.fixture(scope="module")
def four_latents(planted):
    teacher, sae, directions, rows = planted
    return teacher, sae, PlantedStudent(teacher, directions[:, :4]), rows


@pytest.mark.parametrize("settings", [{"alive_threshold": -1}, {"ridge": math.nan}, {"null_students": -1}])
def test_the_previous_keywords_are_checked_as_the_config_is(four_latents, settings):
    with pytest.raises(ValueError, match=next(iter(settings))), pytest.warns(FutureWarning):
        measure_feature_survival(*four_latents, progress=False, **settings)


def test_the_previous_keywords_give_the_config_result_with_a_future_warning(four_latents):
    teacher, sae, student, rows = four_latents
    nulls = random_projection_students(teacher, 4, [11])
    with pytest.warns(FutureWarning, match=r"pass config=FeatureSurvivalConfig\(n_tokens=\.\.\., batch_size") as seen:
        old = measure_feature_survival(teacher, sae, student, rows, n_tokens=4_000, batch_size=16, null_students=nulls,
                                       progress=False)  # the demo's call, and null_students=[models] as it was
    assert seen[0].filename == __file__  # the warning points at the caller's line
    new = measure_feature_survival(teacher, sae, student, rows, FeatureSurvivalConfig(n_tokens=4_000, batch_size=16),
                                   null_models=nulls, progress=False)
    assert old.same_as(new) and old.config.null_students == 1
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['n_token'\\]"):
        measure_feature_survival(teacher, sae, student, rows, n_token=4_000)
    with pytest.raises(TypeError, match="in config= or as keywords"):
        measure_feature_survival(teacher, sae, student, rows, FeatureSurvivalConfig(), n_tokens=4_000)


def test_the_result_stores_the_resolved_config_and_repeats_none_of_it(four_latents):
    teacher, sae, student, rows = four_latents
    config = FeatureSurvivalConfig(n_tokens=4_000, null_students=0, threshold=0.6, beyond_token=False)
    result = measure_feature_survival(teacher, sae, student, rows, config, progress=False)
    assert config.hook_name is None and config.token_baseline is None  # the caller's config is not modified
    assert asdict(result.config) == {**asdict(config), "hook_name": "layers.0", "student_hook": "layers.0",
                                     "token_baseline": True}
    assert (result.hook_name, result.threshold, result.ridge) == ("layers.0", 0.6, 1e-3)
    assert set(result.scalars()) == {"student_width", "teacher_width", "l0", "alpha", "n_train", "n_test", "config",
                                     "metadata", "readers"}
    assert result.metadata == {"n_tokens": 4_000, "d_sae": 32, "dead_latents": 0}
    assert sorted(result.latent[result.survived()].tolist()) == [0, 1, 2, 3]
    rescored = replace(result, config=replace(result.config, min_firings=10**9))  # the scoring is read from it
    assert not rescored.scorable.any() and rescored.summary()["survived@0.6"] == 0


def load_recipe():
    spec = importlib.util.spec_from_file_location("survival_recipe", ROOT / "recipes/survival.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe", ["tiny", "pythia-410m"])
def test_the_recipes_yaml_fills_the_config(recipe):
    module = load_recipe()
    path = ROOT / "recipes" / recipe / "survival.yaml"
    args, config = parse_recipe_args((module.SurvivalArguments, FeatureSurvivalConfig), [str(path), "--seed", "3"])
    assert isinstance(config, FeatureSurvivalConfig) and config.seed == 3 and args.students
    assert config.beyond_token == (recipe == "tiny")  # the paper's vocabulary is too large for the token control
    with pytest.raises(ValueError, match="ridge must be a finite number"):
        parse_recipe_args((module.SurvivalArguments, FeatureSurvivalConfig), [str(path), "--ridge", "nan"])


def test_the_recipe_names_a_missing_student_path(tmp_path):
    module = load_recipe()
    with pytest.raises(FileNotFoundError, match=r"--students: .*students/w8 does not exist"):
        module.result_folder(str(tmp_path), str(tmp_path / "students/w8"))
    with pytest.raises(FileNotFoundError, match="--students: outputs/missing/w8 does not exist"):
        module.result_folder(str(tmp_path), "outputs/missing/w8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"--students .*empty: cannot read its model config"):
        module.result_folder(str(tmp_path), str(tmp_path / "empty"))
