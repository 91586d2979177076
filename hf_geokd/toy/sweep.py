"""The toy-model sweep of the paper's section 4: teachers, then students at every width, many seeds, one tensor each.

For each feature count n, all teachers (every d_T x alpha x seed) train as one :class:`ToyModelStack`, then all
students (every d_S = 1..d_T of every teacher) train as another, on shared input batches: one draw of random
numbers per step serves every sparsity level. Each (n, phase) unit is seeded on its own and checkpointed when done,
so an interrupted sweep resumes where it stopped and ends with the same numbers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..checks import check_alpha, check_positive_int
from ..files import read_json, read_safetensors
from .models import (
    ToyModelStack,
    feature_geometry,
    shared_target,
    sparse_features,
    teacher_target,
    train_stack,
    weighted_loss,
)

CHECKPOINT_NAME = "toy_sweep_checkpoint"


@dataclass
class ToySweepConfig:
    """A grid of toy models (paper section 4). The defaults are the paper's grid: 48 configurations, 20 seeds.

    Attributes:
        n_features: feature counts n.
        teacher_widths: teacher hidden widths d_T; students take every d_S = 1..d_T.
        alphas: sparsity levels (a feature is active with probability 1 - alpha).
        seeds: models per (configuration, width).
        importance_exponent: I_i = i^-exponent (1.0: the paper's Zipf importances).
        teacher_steps, student_steps: Adam steps with cosine decay.
        batch_size: samples per step (shared by every model of a stack).
        lr: peak learning rate.
        target: ``teacher`` distils each student from its own teacher's outputs; ``truth`` trains it on x.
        eval_samples: fresh samples on which floors are measured after training.
        kept_threshold: a feature counts as kept when its embedding norm ||W_i|| exceeds this.
        seed: base seed; each (n, phase) unit derives its own from it.
    """

    n_features: tuple[int, ...] = (10, 20, 40)
    teacher_widths: tuple[int, ...] = (3, 5, 8, 10)
    alphas: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
    seeds: int = 20
    importance_exponent: float = 1.0
    teacher_steps: int = 1500
    student_steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    target: Literal["teacher", "truth"] = "teacher"
    eval_samples: int = 16384
    kept_threshold: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_features", "teacher_widths", "alphas"):
            values = tuple(getattr(self, name))
            if not values:
                raise ValueError(f"ToySweepConfig.{name} is empty: give at least one value.")
            setattr(self, name, values)
        for value in (*self.n_features, *self.teacher_widths):
            check_positive_int(value, "n_features / teacher_widths")
        for alpha in self.alphas:
            check_alpha(alpha, "alphas", allow_zero=False)
        for name in ("seeds", "teacher_steps", "student_steps", "batch_size", "eval_samples"):
            check_positive_int(getattr(self, name), name)
        if self.target not in ("teacher", "truth"):
            raise ValueError(f"target must be 'teacher' or 'truth', got {self.target!r}.")

    @classmethod
    def paper(cls, **overrides) -> ToySweepConfig:
        """The paper's grid: n {10, 20, 40} x d_T {3, 5, 8, 10} x alpha {0.8, 0.9, 0.95, 0.99}, 20 seeds."""
        return cls(**overrides)

    @classmethod
    def smoke(cls, **overrides) -> ToySweepConfig:
        """A small grid for checking the pipeline: n {10, 20}, d_T {3, 5}, alpha {0.8, 0.99}, 3 seeds, 1,000 steps.
        It takes minutes on a CPU, not seconds (about 3 minutes measured on 2 busy cores)."""
        settings = dict(n_features=(10, 20), teacher_widths=(3, 5), alphas=(0.8, 0.99), seeds=3, teacher_steps=1000,
                        student_steps=1000, batch_size=256, eval_samples=8192)
        return cls(**{**settings, **overrides})

    @classmethod
    def confirm(cls, **overrides) -> ToySweepConfig:
        """A confirmation grid disjoint from the paper's, for scoring predictors whose form was chosen on the paper
        grid: n {15, 30}, d_T {4, 6, 12}, alpha {0.85, 0.93, 0.97}, 10 seeds, another base seed."""
        settings = dict(n_features=(15, 30), teacher_widths=(4, 6, 12), alphas=(0.85, 0.93, 0.97), seeds=10, seed=1)
        return cls(**{**settings, **overrides})

    @property
    def n_configurations(self) -> int:
        return len(self.n_features) * len(self.teacher_widths) * len(self.alphas)

    def importance(self, n: int) -> torch.Tensor:
        return torch.arange(1, n + 1, dtype=torch.float32) ** (-self.importance_exponent)


@dataclass
class ToySweepResults:
    """One row per trained model (role ``teacher`` or ``student``) with its floor and geometry."""

    config: ToySweepConfig
    models: pd.DataFrame

    def students(self) -> pd.DataFrame:
        return self.models[self.models["role"] == "student"]


def _grid(config: ToySweepConfig) -> list[tuple[int, float, int]]:
    """(d_T, alpha, seed) of every teacher of one n, ordered by alpha (so shared batches are contiguous)."""
    return [
        (d_t, alpha, seed)
        for alpha, d_t, seed in itertools.product(config.alphas, config.teacher_widths, range(config.seeds))
    ]


class _Batches:
    """Shared input batches: one [n, B] draw of random numbers gives the batch of every sparsity level."""

    def __init__(self, config: ToySweepConfig, n: int, batch_size: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.active = torch.tensor([1.0 - a for a in config.alphas], dtype=torch.float32)

    def levels(self, generator: torch.Generator) -> torch.Tensor:
        uniform = torch.rand(self.n, self.batch_size, generator=generator)
        gate = torch.rand(self.n, self.batch_size, generator=generator)
        return sparse_features(uniform, gate, self.active)


def _unit_seed(config: ToySweepConfig, n: int, phase: str) -> int:
    return config.seed * 1_000_003 + n * 101 + (0 if phase == "teacher" else 7)


def _per_model(losses: torch.Tensor) -> torch.Tensor:
    return losses.reshape(-1).double()


@torch.no_grad()
def _measure(
    stack: ToyModelStack,
    batches: _Batches,
    teacher: ToyModelStack | None,
    teacher_index: torch.Tensor,
    importance: torch.Tensor,
    samples: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Floors on fresh samples: the loss against the training target, and against the true x."""
    generator = torch.Generator().manual_seed(seed)
    floor = torch.zeros(stack.widths.numel(), dtype=torch.float64)
    truth = torch.zeros_like(floor)
    chunks = max(1, samples // batches.batch_size)
    A = len(batches.active)
    for _ in range(chunks):
        levels = batches.levels(generator)
        output = stack(levels)
        truth += _per_model(weighted_loss(output.view(A, -1, *levels.shape[1:]), levels[:, None], importance))
        if teacher is not None:
            floor += _per_model(weighted_loss(output, teacher(levels)[teacher_index], importance))
    truth /= chunks
    return (floor / chunks if teacher is not None else truth), truth


def _train_unit(
    config: ToySweepConfig, n: int, phase: str, teachers: ToyModelStack | None, bar: tqdm
) -> tuple[ToyModelStack, pd.DataFrame]:
    grid = _grid(config)
    if phase == "teacher":
        rows = [
            dict(role="teacher", n=n, d_T=d_t, alpha=alpha, seed=seed, d_S=d_t, teacher=i)
            for i, (d_t, alpha, seed) in enumerate(grid)
        ]
    else:
        rows = [
            dict(role="student", n=n, d_T=d_t, alpha=alpha, seed=seed, d_S=d_s, teacher=i)
            for i, (d_t, alpha, seed) in enumerate(grid)
            for d_s in range(1, d_t + 1)
        ]
    frame = pd.DataFrame(rows)
    teacher_index = torch.tensor(frame["teacher"].to_numpy())
    generator = torch.Generator().manual_seed(_unit_seed(config, n, phase))
    stack = ToyModelStack(torch.tensor(frame["d_S"].to_numpy()), n, len(config.alphas), generator)
    importance = config.importance(n)
    batches = _Batches(config, n, config.batch_size)
    distil = phase == "student" and config.target == "teacher"

    blocks = _teacher_blocks(frame)

    def batch(gen: torch.Generator) -> tuple[torch.Tensor, Callable[[torch.Tensor], None]]:
        levels = batches.levels(gen)
        if not distil:
            return levels, shared_target(levels)
        with torch.no_grad():
            return levels, teacher_target(teachers(levels), blocks)

    steps = config.teacher_steps if phase == "teacher" else config.student_steps
    bar.set_postfix_str(f"n={n} {phase}s ({len(frame)} models)")
    train_stack(stack, batch, importance, steps, config.lr, generator, progress=bar.update)
    floor, truth = _measure(
        stack,
        batches,
        teachers if distil else None,
        teacher_index,
        importance,
        config.eval_samples,
        _unit_seed(config, n, phase) + 1,
    )
    norms, dims = feature_geometry(stack.masked_W.detach())
    frame["floor"] = floor.numpy()
    frame["truth_loss"] = truth.numpy()
    frame["kept"] = (norms > config.kept_threshold).sum(-1).numpy()
    frame["dimensionality_sum"] = dims.sum(-1).numpy()
    frame["norms"] = list(norms.numpy())
    frame["dimensionality"] = list(dims.numpy())
    return stack, frame


def _teacher_blocks(frame: pd.DataFrame) -> list[tuple[int, int, int, int]]:
    """(first student, first teacher, teachers, students per teacher) for each run of same-width teachers."""
    blocks: list[tuple[int, int, int, int]] = []
    start = 0
    for teacher, count in frame.groupby("teacher", sort=True).size().items():
        if blocks and blocks[-1][3] == count and blocks[-1][1] + blocks[-1][2] == teacher:
            first_student, first_teacher, teachers, _ = blocks[-1]
            blocks[-1] = (first_student, first_teacher, teachers + 1, count)
        else:
            blocks.append((start, int(teacher), 1, int(count)))
        start += int(count)
    return blocks


def _unit_key(n: int, phase: str) -> str:
    return f"n{n}_{phase}"


def run_toy_sweep(
    config: ToySweepConfig | None = None, checkpoint_dir: str | Path | None = None, progress: bool = True
) -> ToySweepResults:
    """Train every teacher and student of ``config`` and measure their floors, kept features and geometry.

    Args:
        config: the grid (default: the paper's).
        checkpoint_dir: where finished units are saved (``toy_sweep_checkpoint.safetensors`` + ``.json``); a run
            pointed at a folder holding a checkpoint of the same config resumes from it.
        progress: show a tqdm bar over all training steps.
    """
    config = config or ToySweepConfig.paper()
    done_tensors: dict[str, torch.Tensor] = {}
    done_rows: dict[str, list[dict]] = {}
    if checkpoint_dir is not None:
        done_tensors, done_rows = _load_checkpoint(Path(checkpoint_dir), config)
    total = sum(config.teacher_steps + config.student_steps for _ in config.n_features)
    frames = []
    with tqdm(total=total, desc="toy sweep", unit="step", disable=not progress) as bar:
        for n in config.n_features:
            teachers = None
            for phase in ("teacher", "student"):
                key = _unit_key(n, phase)
                steps = config.teacher_steps if phase == "teacher" else config.student_steps
                if key in done_rows:
                    frame = pd.DataFrame(done_rows[key])
                    frame["norms"] = list(done_tensors[f"{key}.norms"].numpy())
                    frame["dimensionality"] = list(done_tensors[f"{key}.dimensionality"].numpy())
                    stack = _restore_stack(done_tensors, key, frame, n, config)
                    bar.update(steps)
                else:
                    stack, frame = _train_unit(config, n, phase, teachers, bar)
                    if checkpoint_dir is not None:
                        _save_unit(Path(checkpoint_dir), config, key, stack, frame, done_tensors, done_rows)
                frames.append(frame)
                teachers = stack if phase == "teacher" else teachers
                if teachers is not None:
                    teachers.requires_grad_(False)
    models = pd.concat(frames, ignore_index=True)
    return ToySweepResults(config=config, models=models)


def _restore_stack(
    tensors: dict[str, torch.Tensor], key: str, frame: pd.DataFrame, n: int, config: ToySweepConfig
) -> ToyModelStack:
    stack = ToyModelStack(
        torch.tensor(frame["d_S"].to_numpy()), n, len(config.alphas), torch.Generator().manual_seed(0)
    )
    stack.load_state_dict({"W": tensors[f"{key}.W"], "b": tensors[f"{key}.b"], "row_mask": stack.row_mask})
    return stack


def _checkpoint_paths(directory: Path) -> tuple[Path, Path]:
    return directory / f"{CHECKPOINT_NAME}.safetensors", directory / f"{CHECKPOINT_NAME}.json"


def _save_unit(
    directory: Path,
    config: ToySweepConfig,
    key: str,
    stack: ToyModelStack,
    frame: pd.DataFrame,
    tensors: dict[str, torch.Tensor],
    rows: dict[str, list[dict]],
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors[f"{key}.W"] = stack.W.detach().clone()
    tensors[f"{key}.b"] = stack.b.detach().clone()
    tensors[f"{key}.norms"] = torch.from_numpy(np.stack(frame["norms"].to_list()))
    tensors[f"{key}.dimensionality"] = torch.from_numpy(np.stack(frame["dimensionality"].to_list()))
    rows[key] = frame.drop(columns=["norms", "dimensionality"]).to_dict(orient="records")
    weights, index = _checkpoint_paths(directory)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights.with_suffix(".tmp")))
    weights.with_suffix(".tmp").replace(weights)
    index.with_suffix(".tmp").write_text(json.dumps({"config": asdict(config), "units": rows}))
    index.with_suffix(".tmp").replace(index)  # an interrupted write never leaves a truncated index


def _load_checkpoint(directory: Path, config: ToySweepConfig) -> tuple[dict[str, torch.Tensor], dict[str, list[dict]]]:
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"checkpoint_dir {directory} is a file: pass a folder (new or holding a checkpoint).")
    weights, index = _checkpoint_paths(directory)
    if not (weights.is_file() and index.is_file()):
        return {}, {}
    saved = read_json(index)
    if not isinstance(saved, dict) or not {"config", "units"} <= set(saved):
        raise ValueError(f"{index} is not a toy sweep checkpoint index (it lacks config or units): delete it and "
                         f"{weights.name} to restart.")
    if saved["config"] != json.loads(json.dumps(asdict(config))):
        raise ValueError(
            f"{index} holds a sweep with a different configuration: pass another checkpoint_dir or delete it "
            "to restart."
        )
    tensors = read_safetensors(weights)
    parts = ("W", "b", "norms", "dimensionality")
    lost = [key for key in saved["units"] if any(f"{key}.{part}" not in tensors for part in parts)]
    if lost:
        raise ValueError(f"{weights} lacks the tensors of units {lost} that {index.name} lists: the checkpoint is "
                         "incomplete; delete both files to restart.")
    return tensors, saved["units"]
