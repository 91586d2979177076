"""Protocols never score a floor a predictor was fitted or calibrated on."""

import pandas as pd
import pytest

from hf_geokd.validate.protocols import PROTOCOLS, check_disjoint, splits


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
