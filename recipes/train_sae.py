"""Train SAEs with sae-lens on a teacher's residual stream and store their FeatureStats beside them (paper section 5).

    python recipes/train_sae.py recipes/pythia-410m/sae.yaml [--push_to_hub me/pythia-410m-saes] [--seed 1]

Training and held-out token blocks come from the same stream: the first ``train_blocks`` train the SAEs, the next
``measure_blocks`` (never seen in training) measure F, L0, alpha and the contribution spectrum. With
``--streaming true`` the held-out blocks are the first documents and training streams the rest in constant memory;
``--dry_run true`` prints the plan and drives the data path without the model. Every hook trains from the same
teacher forward passes. The SAE settings are the fields of ``hf_geokd.sae.SAETrainingConfig`` (architecture,
expansion_factor, l1_coefficient, k, lr, train_batch_size_tokens, context_size, device, seed, sae_kwargs,
runner_kwargs, overwrite); its token counts come from ``train_blocks`` and ``measure_blocks``. User errors end in one
line with exit status 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args, recipe_errors, recipe_token_blocks
from hf_geokd.data import DataPlan, measure_stream, open_documents, stream_token_blocks
from hf_geokd.sae import SAETrainingConfig, push_sae_to_hub, train_sae
from hf_geokd.sources import load_pretrained

# The recipe's own defaults for SAETrainingConfig fields, and the fields it sets from the blocks.
DEFAULTS = {"context_size": 1024, "device": "cuda" if torch.cuda.is_available() else "cpu"}
FROM_BLOCKS = {"training_tokens": "train_blocks x context_size", "measure_tokens": "measure_blocks x context_size"}


@dataclass
class SAEArguments:
    model_name_or_path: str = field(metadata={"help": "The teacher (repo id or folder)."})
    hook_names: list[str] = field(metadata={"help": "Module paths, e.g. gpt_neox.layers.12."})
    output_dir: str = field(metadata={"help": "One sae-lens folder per hook is written here."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset, streamed."})
    dataset_path: str | None = field(default=None, metadata={"help": "A folder written by Dataset.save_to_disk."})
    text_column: str = field(default="text")
    train_blocks: int = field(default=293_000, metadata={"help": "Blocks of context_size tokens the SAEs train on."})
    measure_blocks: int = field(default=1_000, metadata={"help": "Held-out blocks that measure the statistics."})
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


def token_blocks(args: SAEArguments, context_size: int, tokenizer):
    """Training blocks (streamed, or in memory) and the held-out blocks that measure the statistics, each of
    ``context_size`` tokens (saved blocks of another length are cut again)."""
    if args.streaming:
        documents = open_documents(args.dataset_name, dataset_path=args.dataset_path)
        return stream_token_blocks(documents, tokenizer, context_size, text_column=args.text_column,
                                   num_shards=args.num_shards, held_out=args.measure_blocks)
    blocks = recipe_token_blocks(tokenizer, context_size, args.train_blocks + args.measure_blocks,
                                 dataset_name=args.dataset_name, dataset_path=args.dataset_path,
                                 text_column=args.text_column)
    held_out = min(args.measure_blocks, len(blocks) // 5)
    if held_out <= 0:
        raise ValueError(f"measure_blocks={args.measure_blocks} of {len(blocks)} blocks leaves no held-out block to "
                         "measure the statistics (at most a fifth is held out): raise --measure_blocks, or give "
                         "more blocks.")
    return blocks.select(range(len(blocks) - held_out)), blocks.select(range(len(blocks) - held_out, len(blocks)))


def with_token_counts(config: SAETrainingConfig, train_blocks: int, measure_blocks: int) -> SAETrainingConfig:
    """The config with the token counts of the blocks; too few blocks are named by their flags."""
    for flag, blocks in (("train_blocks", train_blocks), ("measure_blocks", measure_blocks)):
        if blocks <= 0:
            raise ValueError(f"{flag} gives no block of {config.context_size} tokens: raise --{flag}.")
    if train_blocks * config.context_size < config.train_batch_size_tokens:
        raise ValueError(f"train_blocks={train_blocks} x context_size={config.context_size} tokens is less than one "
                         f"batch (train_batch_size_tokens={config.train_batch_size_tokens}): raise --train_blocks.")
    return dataclasses.replace(config, training_tokens=train_blocks * config.context_size,
                               measure_tokens=measure_blocks * config.context_size)


def dry_run(args: SAEArguments, config: SAETrainingConfig, train, measure, train_blocks: int) -> None:
    """The plan of the run and the data path driven without the model."""
    plan = DataPlan(config.context_size, max(1, config.train_batch_size_tokens // config.context_size),
                    train_blocks * config.context_size // config.train_batch_size_tokens,
                    n_shards=getattr(train, "num_shards", 1), held_out_blocks=len(measure))
    print(f"{plan.describe()}\nSAEs: {len(args.hook_names)} hooks from one teacher pass per batch\n"
          f"data path: {measure_stream(train, args.dry_run_blocks).describe()}")


def main(argv: list[str] | None = None) -> None:
    with recipe_errors():
        args, config = parse_recipe_args((SAEArguments, SAETrainingConfig), argv, defaults=DEFAULTS,
                                         reserved=FROM_BLOCKS)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, args.model_name_or_path)
        train, measure = token_blocks(args, config.context_size, tokenizer)
        train_blocks = args.train_blocks if args.streaming else len(train)
        config = with_token_counts(config, train_blocks, len(measure))
        if args.dry_run:
            dry_run(args, config, train, measure, train_blocks)
            return
        model = load_pretrained(AutoModelForCausalLM.from_pretrained, args.model_name_or_path)
        folders = train_sae(model.to(config.device).eval(), train, args.hook_names, args.output_dir, config,
                            measure_dataset=measure)
    for hook, folder in folders.items():
        print(f"{hook}: {folder}")
        if args.push_to_hub:
            push_sae_to_hub(folder, args.push_to_hub, sae_id=hook)


if __name__ == "__main__":
    main()
