"""Train SAEs with sae-lens on a teacher's residual stream and store their FeatureStats beside them (paper section 5).

    python recipes/train_sae.py recipes/pythia-410m/sae.yaml [--push_to_hub me/pythia-410m-saes]

Training and held-out token blocks come from the same stream: the first ``train_blocks`` train the SAEs, the next
``measure_blocks`` (never seen in training) measure F, L0, alpha and the contribution spectrum. With
``--streaming true`` the held-out blocks are the first documents and training streams the rest in constant memory;
``--dry_run true`` prints the plan and drives the data path without the model. Every hook trains from the same
teacher forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.data import DataPlan, load_token_blocks, measure_stream, open_documents, stream_token_blocks
from hf_geokd.sae import push_sae_to_hub, train_sae


@dataclass
class SAEArguments:
    model_name_or_path: str = field(metadata={"help": "The teacher (repo id or folder)."})
    hook_names: list[str] = field(metadata={"help": "Module paths, e.g. gpt_neox.layers.12."})
    output_dir: str = field(metadata={"help": "One sae-lens folder per hook is written here."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, streamed."})
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by Dataset.save_to_disk."})
    text_column: str = field(default="text")
    context_size: int = field(default=1024)
    train_blocks: int = field(default=293_000)
    measure_blocks: int = field(default=1_000)
    architecture: str = field(default="standard")
    expansion_factor: int = field(default=32)
    l1_coefficient: float = field(default=8e-4)
    k: int | None = field(default=None)
    lr: float = field(default=3e-4)
    train_batch_size_tokens: int = field(default=32 * 1024)
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")
    push_to_hub: str | None = field(default=None, metadata={"help": "Repo id to upload the SAEs and stats to."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream, tokenise and pack the documents lazily in constant memory (the paper's 300M "
                          "tokens). Off: every block is made in memory first."},
    )
    num_shards: int = field(default=64, metadata={"help": "Shards of a saved dataset when streaming."})
    dry_run: bool = field(
        default=False,
        metadata={"help": "Print the data plan, drive the data path for dry_run_blocks blocks without the model "
                          "(throughput, memory) and stop."},
    )
    dry_run_blocks: int = field(default=2_000)


def token_blocks(args: SAEArguments, tokenizer):
    """Training blocks (streamed, or in memory) and the held-out blocks that measure the statistics."""
    if args.streaming:
        documents = open_documents(args.dataset_name, dataset_path=args.dataset_path)
        return stream_token_blocks(documents, tokenizer, args.context_size, text_column=args.text_column,
                                   num_shards=args.num_shards, held_out=args.measure_blocks)
    blocks = load_token_blocks(tokenizer, args.context_size, args.train_blocks + args.measure_blocks,
                               dataset_name=args.dataset_name, dataset_path=args.dataset_path,
                               text_column=args.text_column)
    held_out = min(args.measure_blocks, len(blocks) // 5)
    return blocks.select(range(len(blocks) - held_out)), blocks.select(range(len(blocks) - held_out, len(blocks)))


def main() -> None:
    (args,) = parse_recipe_args((SAEArguments,))
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    train, measure = token_blocks(args, tokenizer)
    train_blocks = args.train_blocks if args.streaming else len(train)
    if args.dry_run:
        plan = DataPlan(args.context_size, max(1, args.train_batch_size_tokens // args.context_size),
                        train_blocks * args.context_size // args.train_batch_size_tokens,
                        n_shards=getattr(train, "num_shards", 1), held_out_blocks=len(measure))
        print(f"{plan.describe()}\nSAEs: {len(args.hook_names)} hooks from one teacher pass per batch\n"
              f"data path: {measure_stream(train, args.dry_run_blocks).describe()}")
        return
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path).to(args.device).eval()
    folders = train_sae(
        model,
        train,
        args.hook_names,
        args.output_dir,
        expansion_factor=args.expansion_factor,
        architecture=args.architecture,
        l1_coefficient=args.l1_coefficient,
        k=args.k,
        lr=args.lr,
        training_tokens=train_blocks * args.context_size,
        train_batch_size_tokens=args.train_batch_size_tokens,
        measure_tokens=len(measure) * args.context_size,
        measure_dataset=measure,
        device=args.device,
    )
    for hook, folder in folders.items():
        print(f"{hook}: {folder}")
        if args.push_to_hub:
            push_sae_to_hub(folder, args.push_to_hub, sae_id=hook)


if __name__ == "__main__":
    main()
