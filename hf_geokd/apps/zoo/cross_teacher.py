"""Floors in nats with no student of the teacher: the ablation floor rescaled by what the *other* teachers' students
showed, scored leave-one-teacher-out across the zoo (exploratory, not registered).

For a held-out teacher T and each of its SAE seeds s, the prediction at width d is

    L(d) = r_{-T} * A_{T,s}(d),     log r_{-T} = median over the other teachers U, their SAE seeds s' and their
                                                  converged students w < d_U with A_{U,s'}(w) > 0 and L_U(w) > 0
                                                  of log(L_U(w) / A_{U,s'}(w)),

where A is the ablation floor (:mod:`hf_geokd.ablation_floors`) and L_U the observed floors: one number learned from
other teachers, none of T's students. A student that did not converge by the stated rule gives an upper bound, not
a floor, and is left out of the ratio. Scored like the registered predictions: MARE over T's held-out students per
SAE seed, its median and range over the seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .registration import mare_over_seeds

COLUMNS = {"ablation": "the ablation floor alone (the registered student-free predictor)",
           "rescaled": "the ablation floor x the other teachers' ratio r"}  # each with _mare, _low, _high


def log_ratios(registration: dict, scores: dict) -> np.ndarray:
    """log(observed / ablation) at every converged student narrower than the teacher, every SAE seed, where both
    are > 0."""
    control = registration["control_width"]
    unconverged = {str(width) for width in scores.get("unconverged", [])}
    values = []
    for floors in registration["ablation_floors"].values():
        for width, ablation in floors.items():
            floor = scores["observed"].get(width)
            if (int(width) < control and width not in unconverged and floor is not None and floor > 0
                    and ablation > 0):
                values.append(np.log(floor / ablation))
    return np.array(values)


def leave_one_teacher_out(found: list[tuple[str, dict, dict]]) -> pd.DataFrame:
    """One row per scored teacher (``found``: (name, registration, scores), as :func:`.summary.collect` gives):
    the MARE of the ablation floor alone and of the rescaled ablation floor on the teacher's held-out students
    (:data:`COLUMNS`: ``<name>_mare``, the median over its SAE seeds, and ``<name>_low``, ``<name>_high``, their
    range), with the ratio r learned from the other teachers (``ratio_from_others``). Empty with fewer than
    two scored teachers."""
    if len(found) < 2:
        return pd.DataFrame()
    logs = {name: log_ratios(registration, scores) for name, registration, scores in found}
    rows = []
    for name, registration, scores in found:
        others = np.concatenate([values for other, values in logs.items() if other != name])
        ratio = float(np.exp(np.median(others))) if others.size else float("nan")
        targets = [str(width) for width in registration["predicted_widths"]]
        truth = np.array([scores["observed"][width] for width in targets])
        row = {"teacher": name, "ratio_from_others": ratio}
        for label, scale in (("ablation", 1.0), ("rescaled", ratio)):
            mare = mare_over_seeds([scale * np.array([floors[w] for w in targets])
                                    for floors in registration["ablation_floors"].values()], truth)
            row.update({f"{label}_mare": mare["mare_pct"], f"{label}_low": mare["mare_low"],
                        f"{label}_high": mare["mare_high"]})
        rows.append(row)
    return pd.DataFrame(rows)
