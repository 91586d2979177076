"""Which teacher features survive in each student: the staircase, measured (feature survival).

    python recipes/survival.py recipes/pythia-410m/survival.yaml
    python recipes/survival.py recipes/tiny/survival.yaml        # the demo's teacher, SAE and students
    accelerate launch --config_file recipes/accelerate_configs/multi_gpu.yaml recipes/survival.py \
        recipes/pythia-410m/survival.yaml                        # the students shared out between processes

For every student, one streaming pass over held-out blocks fits a ridge read-out from the student's residual stream
(its block at the SAE hook's relative depth) to each alive SAE latent of the teacher and scores it on held-out
sequences, normalised by the same read-out on the teacher's own residual, with randomly initialised students, a
shuffled pairing and the token identity as controls. Writes one ``FeatureSurvival`` folder per student,
``staircase.csv`` / ``.md`` / ``.png`` and ``summary.json`` (k* and g_eff = k*/d_S per width, and the fit across
widths, which ``FloorPredictor(stats, capacity_kind=hf_geokd.survival.measured_capacity(results))`` takes).

Under ``accelerate launch`` each process measures its share of the students on its own device (the passes are
independent), and the main process writes the study once all are done. A student whose result is already in
``output_dir`` (``d_S=<width>/``, measured from the same student with the same models, SAE, data and scoring settings)
is not measured again, so an interrupted run resumes where it stopped; one measured otherwise is measured again and
replaced.

The flags are the fields of ``SurvivalArguments`` below (models, data, output) and of
``hf_geokd.survival.FeatureSurvivalConfig`` (the measurement's settings: n_tokens, null_students, threshold, ...).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.data import load_token_blocks
from hf_geokd.files import read_json
from hf_geokd.naming import student_label
from hf_geokd.sae import load_sae
from hf_geokd.sources import local_folder
from hf_geokd.survival import FeatureSurvival, FeatureSurvivalConfig, measure_feature_survival, write_survival_study
from hf_geokd.survival.result import SURVIVAL_CONFIG_NAME, SURVIVAL_WEIGHTS_NAME


@dataclass
class SurvivalArguments:
    teacher_name_or_path: str = field(metadata={"help": "The teacher (repo id or folder)."})
    sae_path: str = field(metadata={"help": "The teacher's SAE (folder, Hub repo or sae-lens release)."})
    students: list[str] = field(metadata={"help": "Student models (repo ids or folders), any widths."})
    output_dir: str = field(metadata={"help": "Results, staircase table and figure go here."})
    sae_id: str | None = field(default=None, metadata={"help": "The SAE's folder in the repo (e.g. its hook)."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, streamed."})
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by Dataset.save_to_disk."})
    split: str = field(default="train")
    text_column: str = field(default="text")
    skip_documents: int = field(default=0, metadata={"help": "Hub documents to skip (past the training data)."})
    skip_blocks: int = field(default=0, metadata={"help": "Saved blocks to skip (past the training data)."})
    block_size: int = field(default=1024)
    device: str | None = field(default=None, metadata={"help": "Default: this process's device (accelerate)."})


def hidden_size(source: str, flag: str) -> int:
    """A model's width from its config alone (no weights); a missing folder or repo is named with its flag."""
    try:
        local_folder(source)  # a path that does not exist is named as a path, not as a malformed repo id
    except OSError as error:
        raise FileNotFoundError(f"--{flag}: {error}") from error
    try:
        return AutoConfig.from_pretrained(source).hidden_size
    except (OSError, ValueError) as error:  # a folder without a model config, a repo the Hub lacks or cannot serve
        raise FileNotFoundError(f"--{flag} {source}: cannot read its model config: {error}") from error


def result_folder(output_dir: str, student: str) -> Path:
    """Where a student's result is saved: ``d_S=<width>`` (its width read from its config, without the weights)."""
    return Path(output_dir) / student_label(hidden_size(student, "students"))


DATA_SETTINGS = ("teacher_name_or_path", "sae_path", "sae_id", "dataset_name", "dataset_path", "split",
                 "skip_documents", "skip_blocks", "block_size")


def run_settings(args: SurvivalArguments, config: FeatureSurvivalConfig, student: str) -> dict:
    """What a saved result must have been measured with to be reused: the models, the SAE, the data and the config."""
    return {"student": student, **{key: getattr(args, key) for key in DATA_SETTINGS},
            "config": dataclasses.asdict(config)}


def measured_before(folder: Path, settings: dict) -> bool:
    """True when ``folder`` holds a finished result measured with exactly these settings (a resumed run skips it);
    a result measured otherwise is named and measured again."""
    config = folder / SURVIVAL_CONFIG_NAME  # the settings are in the json: the tensors need not be read
    if not (config.is_file() and (folder / SURVIVAL_WEIGHTS_NAME).is_file()):
        return False
    try:
        saved = read_json(config).get("metadata", {}).get("run_settings")
    except (ValueError, AttributeError):
        return False
    if saved != settings:
        print(f"{folder} was measured with other settings: measuring {settings['student']} again.", flush=True)
        return False
    return True


def measure(args: SurvivalArguments, config: FeatureSurvivalConfig, todo: list[tuple[str, Path]],
            state: PartialState, device: str) -> None:
    """Measure and save this process's students (the teacher, SAE and data loaded once)."""
    teacher = AutoModelForCausalLM.from_pretrained(args.teacher_name_or_path).to(device)
    sae = load_sae(args.sae_path, args.sae_id)
    blocks = held_out_blocks(args, config, AutoTokenizer.from_pretrained(args.teacher_name_or_path))
    available = sum(len(ids) for ids in blocks["input_ids"])
    if available < config.n_tokens:
        print(f"the data hold {available:,} tokens past skip_blocks: measuring on those, not n_tokens="
              f"{config.n_tokens:,}.", flush=True)
    measured_with = dataclasses.replace(config, n_tokens=min(config.n_tokens, available))
    for name, folder in todo:
        result = measure_feature_survival(teacher, sae, AutoModelForCausalLM.from_pretrained(name), blocks,
                                          measured_with, device=device, progress=state.is_local_main_process)
        result.metadata.update(student=name, teacher=args.teacher_name_or_path, sae=args.sae_path,
                               process=state.process_index, run_settings=run_settings(args, config, name))
        result.save(folder, overwrite=True)  # a result measured otherwise was named by measured_before
        print(f"[process {state.process_index}] {name}: {student_label(result.student_width)} k*={result.k_star()} "
              f"g_eff={result.g_eff():.3g} survived={int(result.survived().sum())}/{int(result.scorable.sum())}"
              f" scorable (null: {result.null_label()})", flush=True)


def main() -> None:
    args, config = parse_recipe_args((SurvivalArguments, FeatureSurvivalConfig))
    hidden_size(args.teacher_name_or_path, "teacher_name_or_path")
    # processes on CPUs (no CUDA, or device: cpu) talk over gloo; without cpu=True they would not see each other
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    device = args.device or str(state.device)
    folders = [result_folder(args.output_dir, name) for name in args.students]
    if len(set(folders)) != len(folders):
        raise ValueError(f"two students have the same width ({[f.name for f in folders]}): measure one per run.")
    with state.split_between_processes(list(zip(args.students, folders))) as mine:
        todo = [(name, folder) for name, folder in mine
                if not measured_before(folder, run_settings(args, config, name))]
        if todo:
            measure(args, config, todo, state, device)
    state.wait_for_everyone()  # every process has saved its results
    if state.is_main_process:
        summary = write_survival_study([FeatureSurvival.load(folder) for folder in folders], args.output_dir)
        print((Path(args.output_dir) / "staircase.md").read_text())
        print(f"g_eff fitted across widths: {summary['g_eff_fit']:.4g} (alpha = {summary['alpha']:.4g})")


def held_out_blocks(args: SurvivalArguments, config: FeatureSurvivalConfig, tokenizer):
    """The blocks the read-outs are fitted and scored on: ``n_tokens`` of them after the first ``skip_blocks``."""
    n_blocks = math.ceil(config.n_tokens / args.block_size)
    blocks = load_token_blocks(tokenizer, args.block_size, args.skip_blocks + n_blocks, dataset_name=args.dataset_name,
                               dataset_path=args.dataset_path, split=args.split, text_column=args.text_column,
                               skip_documents=args.skip_documents)
    if len(blocks) <= args.skip_blocks:
        raise ValueError(f"the dataset holds {len(blocks):,} blocks, all within skip_blocks={args.skip_blocks:,}: "
                         "lower skip_blocks or pass more data.")
    return blocks.select(range(args.skip_blocks, len(blocks)))


if __name__ == "__main__":
    main()
