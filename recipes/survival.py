"""Which teacher features survive in each student: the staircase, measured (feature survival).

    python recipes/survival.py recipes/pythia-410m/survival.yaml
    python recipes/survival.py recipes/tiny/survival.yaml        # the demo's teacher, SAE and students

For every student, one streaming pass over held-out blocks fits a ridge read-out from the student's residual stream
(its block at the SAE hook's relative depth) to each alive SAE latent of the teacher and scores it on held-out
sequences, normalised by the same read-out on the teacher's own residual, with randomly initialised students, a
shuffled pairing and the token identity as controls. Writes one ``FeatureSurvival`` folder per student,
``staircase.csv`` / ``.md`` / ``.png`` and ``summary.json`` (k* and g_eff = k*/d_S per width, and the fit across
widths, which ``FloorPredictor(stats, capacity_kind=hf_geokd.survival.measured_capacity(results))`` takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.data import load_token_blocks
from hf_geokd.sae import load_sae
from hf_geokd.survival import measure_feature_survival, write_survival_study


@dataclass
class SurvivalArguments:
    teacher_name_or_path: str = field(metadata={"help": "The teacher (repo id or folder)."})
    sae_path: str = field(metadata={"help": "The teacher's SAE (folder, Hub repo or sae-lens release)."})
    students: list[str] = field(metadata={"help": "Student models (repo ids or folders), any widths."})
    output_dir: str = field(metadata={"help": "Results, staircase table and figure go here."})
    sae_id: str | None = field(default=None, metadata={"help": "The SAE's folder in the repo (e.g. its hook)."})
    hook_name: str | None = field(default=None, metadata={"help": "Default: the SAE's own hook."})
    student_hook: str | None = field(default=None, metadata={"help": "Default: the same relative depth."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, streamed."})
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by Dataset.save_to_disk."})
    split: str = field(default="train")
    text_column: str = field(default="text")
    skip_documents: int = field(default=0, metadata={"help": "Hub documents to skip (past the training data)."})
    skip_blocks: int = field(default=0, metadata={"help": "Saved blocks to skip (past the training data)."})
    block_size: int = field(default=1024)
    n_tokens: int = field(default=1_000_000)
    batch_size: int = field(default=8)
    held_out: float = field(default=0.25, metadata={"help": "Share of sequences scored, not fitted on."})
    ridge: float = field(default=1e-3)
    null_students: int = field(default=3, metadata={"help": "Randomly initialised students (the null)."})
    token_baseline: bool | None = field(default=None, metadata={"help": "Default: when vocab x latents is small."})
    probe: str = field(default="linear", metadata={"help": "linear (ridge, one pass) or relu (2 + probe_epochs)."})
    probe_epochs: int = field(default=3)
    probe_lr: float = field(default=0.1)
    threshold: float = field(default=0.5)
    min_firings: int = field(default=20)
    seed: int = field(default=0)
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")


def main() -> None:
    (args,) = parse_recipe_args((SurvivalArguments,))
    teacher = AutoModelForCausalLM.from_pretrained(args.teacher_name_or_path).to(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher_name_or_path)
    sae = load_sae(args.sae_path, args.sae_id)
    n_blocks = math.ceil(args.n_tokens / args.block_size)
    blocks = load_token_blocks(tokenizer, args.block_size, args.skip_blocks + n_blocks, dataset_name=args.dataset_name,
                               dataset_path=args.dataset_path, split=args.split, text_column=args.text_column,
                               skip_documents=args.skip_documents)
    blocks = blocks.select(range(min(args.skip_blocks, len(blocks)), len(blocks)))
    n_tokens = min(args.n_tokens, sum(len(ids) for ids in blocks["input_ids"]))
    results = []
    for name in args.students:
        student = AutoModelForCausalLM.from_pretrained(name)
        result = measure_feature_survival(
            teacher, sae, student, blocks, hook_name=args.hook_name, student_hook=args.student_hook, n_tokens=n_tokens,
            batch_size=args.batch_size, held_out=args.held_out, ridge=args.ridge, null_students=args.null_students,
            token_baseline=args.token_baseline, probe=args.probe, probe_epochs=args.probe_epochs,
            probe_lr=args.probe_lr, threshold=args.threshold, min_firings=args.min_firings,
            seed=args.seed, device=args.device,
        )
        result.metadata.update(student=name, teacher=args.teacher_name_or_path, sae=args.sae_path)
        print(f"{name}: d_S={result.student_width} k*={result.k_star()} g_eff={result.g_eff():.3g} "
              f"survived={int(result.survived().sum())}/{int(result.scorable.sum())} scorable")
        results.append(result)
    summary = write_survival_study(results, args.output_dir)
    print((Path(args.output_dir) / "staircase.md").read_text())
    print(f"g_eff fitted across widths: {summary['g_eff_fit']:.4g} (alpha = {summary['alpha']:.4g})")


if __name__ == "__main__":
    main()
