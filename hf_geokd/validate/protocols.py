"""Protocols: which measured floors a predictor may use, and which it is scored on. Never the same ones.

- ``zero-shot``: nothing is used; every floor is scored (only predictors that fit nothing, in Eq. 2's units).
- ``cheapest-k``: for each teacher, the k narrowest students (the cheapest runs) calibrate, the others are scored;
  the protocol a user can afford before training the wide students.
- ``leave-one-width-out``: for each teacher and width, the other widths calibrate and that width is scored.
- ``leave-configuration-out``: parameters shared across teachers are fitted on every other configuration and the
  held-out configuration is scored (the toy grid).

Each split is a (train, test) pair of row indices of the observations' table; :func:`check_disjoint` refuses a
split that would score a point the predictor was fitted or calibrated on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

PROTOCOLS = ("zero-shot", "cheapest-2", "cheapest-3", "leave-one-width-out", "leave-configuration-out")
Split = tuple[pd.Index, pd.Index]


def check_disjoint(train: pd.Index, test: pd.Index) -> None:
    """Refuse to score a point that was used for fitting or calibration."""
    shared = train.intersection(test)
    if len(shared):
        raise ValueError(f"rows {list(shared)[:5]} are both calibration and test points: a predictor is never scored "
                         "on a floor it was fitted on.")


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
    ordered = rows.sort_values("width")
    if protocol.startswith("cheapest-"):
        k = int(protocol.split("-")[1])
        if len(ordered) > k:
            yield ordered.index[:k], ordered.index[k:]
    elif protocol == "leave-one-width-out":
        if len(ordered) >= 3:
            for index in ordered.index:
                yield ordered.index.drop(index), pd.Index([index])
