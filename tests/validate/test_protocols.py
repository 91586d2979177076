"""Protocols never score a floor a predictor was fitted or calibrated on."""

import re

import pandas as pd
import pytest

from hf_geokd.validate.protocols import PROTOCOLS, check_disjoint, protocol_problem, splits


@pytest.fixture
def table():
    rows = [{"config": config, "width": width} for config in ("a", "b", "c") for width in (2, 4, 8, 16)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fits", ["nothing", "same_config", "other_configs"])
def test_no_split_scores_a_training_point(table, protocol, fits):
    for train, test in splits(table, protocol, fits):
        assert len(test) > 0
        assert not set(train) & set(test)
        if fits == "same_config":  # calibration stays inside the teacher it predicts
            assert table.loc[train, "config"].nunique() == 1 and set(table.loc[test, "config"]) <= set(
                table.loc[train, "config"])
        if fits == "other_configs":  # parameters shared across teachers never see the held-out teacher
            assert not set(table.loc[train, "config"]) & set(table.loc[test, "config"])


def test_cheapest_k_calibrates_on_the_narrowest_students(table):
    for train, test in splits(table, "cheapest-2", "same_config"):
        assert sorted(table.loc[train, "width"]) == [2, 4]
        assert sorted(table.loc[test, "width"]) == [8, 16]


def test_leave_one_width_out_scores_each_point_once(table):
    scored = [index for _, test in splits(table, "leave-one-width-out", "same_config") for index in test]
    assert sorted(scored) == sorted(table.index)


def test_an_overlapping_split_is_refused():
    with pytest.raises(ValueError, match="both calibration and test"):
        check_disjoint(pd.Index([1, 2]), pd.Index([2, 3]))
    with pytest.raises(ValueError, match="unknown protocol"):
        list(splits(pd.DataFrame({"config": [], "width": []}), "leave-two-out", "same_config"))


@pytest.fixture
def seeds():
    """Three seeds per width (rows of a width are several runs): widths 2, 4, 8, 16 of one configuration."""
    rows = [{"config": "a", "width": width, "seed": seed} for seed in range(3) for width in (2, 4, 8, 16)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)


@pytest.mark.parametrize("protocol", ["cheapest-2", "cheapest-3", "leave-one-width-out"])
def test_a_width_is_never_on_both_sides_of_a_split(seeds, protocol):
    splits_made = list(splits(seeds, protocol, "same_config"))
    assert splits_made
    for train, test in splits_made:
        assert not set(seeds.loc[train, "width"]) & set(seeds.loc[test, "width"])
        for width in set(seeds.loc[test, "width"]):  # every seed of a scored width is scored
            assert set(seeds.index[seeds["width"] == width]) <= set(test)
        check_disjoint(train, test, seeds, "same_config")


def test_leave_one_width_out_holds_every_seed_of_a_width_out_together(seeds):
    held = [sorted(set(seeds.loc[test, "width"])) for _, test in splits(seeds, "leave-one-width-out", "same_config")]
    assert held == [[2], [4], [8], [16]]
    calibration = [sorted(set(seeds.loc[train, "width"])) for train, _ in splits(seeds, "cheapest-2", "same_config")]
    assert calibration == [[2, 4]]


def test_a_split_sharing_a_width_or_a_configuration_is_refused(seeds):
    rows = seeds.sort_values(["width", "seed"]).index
    with pytest.raises(ValueError, match=r"\('a', 2\) both calibrate and are scored.*width"):
        check_disjoint(pd.Index(rows[:2]), pd.Index(rows[2:4]), seeds, "same_config")
    with pytest.raises(ValueError, match="configuration it was fitted on"):
        check_disjoint(pd.Index(rows[:2]), pd.Index(rows[5:7]), seeds, "other_configs")


@pytest.mark.parametrize("widths, protocol, units, shared, message", [
    ((8, 16), "cheapest-2", "loss", False, "cheapest-2 needs at least 3 distinct widths .* at most 2"),
    ((8, 16, 32), "cheapest-3", "loss", False, "cheapest-3 needs at least 4"),
    ((8, 16), "leave-one-width-out", "loss", False, "leave-one-width-out needs at least 3"),
    ((8, 16, 32), "zero-shot", "loss", False, "zero-shot .* Eq. 2's units"),
    ((8, 16, 32), "leave-configuration-out", "energy", True, "two or more configurations .* 1 configuration"),
])
def test_a_protocol_with_nothing_to_score_says_why(widths, protocol, units, shared, message):
    table = pd.DataFrame({"config": "a", "width": list(widths) * 2})  # two seeds each: rows are not widths
    assert re.search(message, protocol_problem(table, protocol, units, shared))
    assert protocol_problem(pd.DataFrame({"config": "a", "width": [2, 4, 8, 16]}), protocol, "energy", True) is None \
        or protocol == "leave-configuration-out"
