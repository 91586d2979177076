"""Validation: the survival read-out recovers the features toy students keep (known from their weights).

Reads a toy sweep checkpoint (``geokd toy --out DIR`` or ``--preset smoke``), and for every student scores each
feature by the held-out R^2 of a ridge read-out from its hidden layer (``hf_geokd.survival.known``). Prints the AUC
of the scores for the kept set (||W_i|| > kept_threshold) pooled over all features of all students and per
sparsity, the median per-student AUC, and the kept-count error at thresholds 0.3 / 0.5 / 0.7. Goal: AUC >= 0.95.

    python benchmarks/validate_survival_toy.py toy/               # a finished sweep's folder
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from hf_geokd.survival.known import kept_set_recovery, toy_feature_scores
from hf_geokd.survival.result import ordering_auc
from hf_geokd.toy.sweep import CHECKPOINT_NAME


def student_scores(folder: Path, n_samples: int, probe: str, every: int) -> pd.DataFrame:
    """One row per (student, feature): configuration, norm ||W_i||, read-out score from the student's hidden layer,
    and the same read-out from its teacher's (the ceiling, as the LM measurement normalises)."""
    tensors = load_file(str(folder / f"{CHECKPOINT_NAME}.safetensors"))
    index = json.loads((folder / f"{CHECKPOINT_NAME}.json").read_text())
    rows = []
    for key, models in index["units"].items():
        if not key.endswith("_student"):
            continue
        W, norms = tensors[f"{key}.W"], tensors[f"{key}.norms"]
        teachers = index["units"][key.replace("_student", "_teacher")]
        teacher_W = tensors[f"{key.replace('_student', '_teacher')}.W"]
        for m, model in enumerate(models):
            if m % every:
                continue
            scores = toy_feature_scores(W[m, : model["d_S"]], model["alpha"], n_samples, seed=m, probe=probe)
            teacher = model["teacher"]
            ceiling = toy_feature_scores(teacher_W[teacher, : teachers[teacher]["d_T"]], model["alpha"], n_samples,
                                         seed=m, probe=probe)  # the same samples and split as the student's
            rows += [dict(n=model["n"], d_T=model["d_T"], d_S=model["d_S"], alpha=model["alpha"], seed=model["seed"],
                          model=f"{key}/{m}", feature=i, norm=float(norms[m, i]), score=float(scores[i]),
                          ceiling=float(ceiling[i]))
                     for i in range(scores.size)]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--samples", type=int, default=16_384)
    parser.add_argument("--kept-threshold", type=float, default=0.5)
    parser.add_argument("--probe", choices=("linear", "relu"), default="linear")
    parser.add_argument("--every", type=int, default=1, help="score every k-th student only (the ReLU probe is slow)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    table = student_scores(args.folder, args.samples, args.probe, args.every)
    print(f"probe: {args.probe}")
    table["kept"] = table["norm"] > args.kept_threshold
    table["score"] = table["score"].fillna(0.0)
    kept, scores = table["kept"].to_numpy(), table["score"].to_numpy()
    print(f"{table['model'].nunique()} students, {len(table)} features, {kept.mean():.1%} kept "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"pooled AUC of the read-out score for the kept set: {ordering_auc(scores, kept):.4f} (goal >= 0.95)")
    for alpha, group in table.groupby("alpha"):
        print(f"  alpha {alpha}: AUC {ordering_auc(group['score'].to_numpy(), group['kept'].to_numpy()):.4f}")
    per_model = []
    for threshold in (0.3, 0.5, 0.7):
        for model, group in table.groupby("model"):
            result = kept_set_recovery(group["score"].to_numpy(), group["norm"].to_numpy(), args.kept_threshold,
                                       threshold)
            per_model.append(dict(model=model, threshold=threshold, alpha=group["alpha"].iloc[0], **result))
    frame = pd.DataFrame(per_model)
    normalised = table[table["ceiling"] >= 0.05]
    print(f"normalised by the teacher's read-out (features with ceiling >= 0.05: {len(normalised)}): pooled AUC "
          f"{ordering_auc((normalised.score / normalised.ceiling).to_numpy(), normalised.kept.to_numpy()):.4f}")
    for threshold in (0.3, 0.5, 0.7):
        predicted = (normalised.score / normalised.ceiling > threshold).to_numpy()
        counts = normalised.assign(predicted=predicted).groupby("model")[["kept", "predicted"]].sum()
        print(f"  threshold {threshold}: agreement {(predicted == normalised.kept.to_numpy()).mean():.3f}, mean kept "
              f"{counts.kept.mean():.2f} vs read-out {counts.predicted.mean():.2f}, mean |error| "
              f"{(counts.predicted - counts.kept).abs().mean():.2f}")
    print(f"median per-student AUC: {frame[frame.threshold == 0.5]['auc'].median():.4f} "
          f"(students with both classes: {frame[frame.threshold == 0.5]['auc'].notna().sum()})")
    summary = frame.groupby(["threshold", "alpha"])[["kept", "kept_probe", "kept_error", "agreement"]].mean()
    frame["abs_error"] = frame["kept_error"].abs()
    summary["abs_error"] = frame.groupby(["threshold", "alpha"])["abs_error"].mean()
    print("mean kept count (true vs read-out) and error per threshold and sparsity:")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
