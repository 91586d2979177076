"""Protocols: which measured floors a predictor may use, and which it is scored on. Never the same ones.

- ``zero-shot``: nothing is used; every floor is scored (only predictors that fit nothing: Eq. 2 in its own units,
  or the ablation floor in nats).
- ``cheapest-k``: for each teacher, the students of its k narrowest widths (the cheapest runs) calibrate, the others
  are scored; the protocol a user can afford before training the wide students.
- ``leave-one-width-out``: for each teacher and width, the other widths calibrate and that width is scored.
- ``leave-configuration-out``: parameters shared across teachers are fitted on every other configuration and the
  held-out configuration is scored (the toy grid).

Splits are by width, never by row: when a width has several floors (several seeds), all of them calibrate or all of
them are scored, so no predictor is scored at a width it was calibrated on.

Each split is a (train, test) pair of row indices of the observations' table; :func:`check_disjoint` refuses a
split that would score a point, or a width, the predictor was fitted or calibrated on; :func:`protocol_problem` says
why a protocol has nothing to score on a table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

PROTOCOLS = ("zero-shot", "cheapest-2", "cheapest-3", "leave-one-width-out", "leave-configuration-out")
Split = tuple[pd.Index, pd.Index]


def check_disjoint(train: pd.Index, test: pd.Index, table: pd.DataFrame | None = None,
                   fits: str = "same_config") -> None:
    """Refuse to score a point that was used for fitting or calibration; with ``table``, also a width of a
    configuration that was (``fits="same_config"``) or a configuration that was (``fits="other_configs"``)."""
    shared = train.intersection(test)
    if len(shared):
        raise ValueError(f"rows {list(shared)[:5]} are both calibration and test points: a predictor is never scored "
                         "on a floor it was fitted on.")
    if table is None or not len(train):
        return
    columns = ["config"] if fits == "other_configs" else ["config", "width"]
    seen = set(map(tuple, table.loc[train, columns].to_numpy().tolist()))
    both = [key for key in map(tuple, table.loc[test, columns].to_numpy().tolist()) if key in seen]
    if both:
        raise ValueError(f"{', '.join(map(str, sorted(set(both))[:5]))} both calibrate and are scored: a predictor is "
                         f"never scored on a {'configuration' if fits == 'other_configs' else 'width'} it was fitted "
                         "on.")


def minimum_widths(protocol: str) -> int:
    """The fewest distinct widths per configuration for ``protocol`` to score anything (0: any)."""
    if protocol.startswith("cheapest-"):
        return int(protocol.split("-")[1]) + 1
    return 3 if protocol == "leave-one-width-out" else 0


def protocol_problem(table: pd.DataFrame, protocol: str, units: str, shared_fits: bool) -> str | None:
    """Why ``protocol`` scores nothing on ``table`` (None when it can score something). ``units``: the observations'
    (zero-shot needs Eq. 2's units, or floors in nats with the ablation floor measured at every width, the one
    prediction in nats that fits nothing); ``shared_fits``: whether a predictor with parameters shared across
    configurations applies (leave-configuration-out needs one)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose from {PROTOCOLS}.")
    if protocol == "zero-shot":
        if units != "energy" and not ("ablation" in table and table["ablation"].notna().all()):
            return ("zero-shot scores predictions that fit nothing: in Eq. 2's units (a toy sweep), or in nats "
                    "where the ablation floor was measured at every width; these floors are distillation losses "
                    "without ablation floors, where every prediction needs calibration runs")
        return None
    if protocol == "leave-configuration-out":
        configurations = table["config"].nunique()
        if configurations < 2 or not shared_fits:
            return (f"leave-configuration-out fits parameters shared across teachers on the other configurations: it "
                    f"needs two or more configurations of a toy sweep, and these floors have {configurations} "
                    f"configuration(s){'' if shared_fits else ' with no shared-parameter predictor'}")
        return None
    least = minimum_widths(protocol)
    widths = table.groupby("config")["width"].nunique()
    if (widths >= least).any():
        return None
    purpose = ("the k narrowest calibrate, at least one wider width is scored" if protocol.startswith("cheapest-")
               else "two calibrate while one is held out")
    return (f"{protocol} needs at least {least} distinct widths in a configuration ({purpose}); these floors have at "
            f"most {int(widths.max())}")


def splits(table: pd.DataFrame, protocol: str, fits: str) -> Iterator[Split]:
    """The (train, test) splits of ``protocol`` for a predictor that fits ``fits`` (see predictors.py)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose from {PROTOCOLS}.")
    empty = pd.Index([], dtype=int)
    if fits == "nothing":  # scored once, on every point: it uses none
        if protocol == "zero-shot":
            yield empty, table.index
        return
    if fits == "other_configs":
        if protocol == "zero-shot":
            return
        held_out: dict[str, pd.Index] = {}  # one fit per held-out configuration serves all its test rows
        for config, (_, test) in _per_config_splits(table, protocol):
            held_out[config] = held_out[config].union(test) if config in held_out else test
        for config, test_rows in held_out.items():
            yield table.index[table["config"] != config], test_rows
        return
    if protocol in ("zero-shot", "leave-configuration-out"):
        return
    yield from _per_config(table, protocol)


def _per_config_splits(table: pd.DataFrame, protocol: str) -> Iterator[tuple[str, Split]]:
    if protocol == "leave-configuration-out":
        for config, rows in table.groupby("config", sort=False):
            yield config, (pd.Index([], dtype=int), rows.index)
        return
    for config, rows in table.groupby("config", sort=False):
        for split in _config_splits(rows, protocol):
            yield config, split


def _per_config(table: pd.DataFrame, protocol: str) -> Iterator[Split]:
    for _, split in _per_config_splits(table, protocol):
        yield split


def _config_splits(rows: pd.DataFrame, protocol: str) -> Iterator[Split]:
    """Splits of one configuration's rows by width: all rows of a width are on one side."""
    ordered = rows.sort_values("width", kind="stable")
    widths = sorted(ordered["width"].unique())
    if protocol.startswith("cheapest-"):
        k = int(protocol.split("-")[1])
        if len(widths) > k:
            calibration = ordered["width"].isin(widths[:k]).to_numpy()
            yield ordered.index[calibration], ordered.index[~calibration]
    elif protocol == "leave-one-width-out":
        if len(widths) >= 3:
            for width in widths:
                held = (ordered["width"] == width).to_numpy()
                yield ordered.index[~held], ordered.index[held]
