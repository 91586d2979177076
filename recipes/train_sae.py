"""Train SAEs with sae-lens on a teacher's residual stream and store their FeatureStats beside them (paper section 5).

    python recipes/train_sae.py recipes/pythia-410m/sae.yaml [--push_to_hub me/pythia-410m-saes]

Training and held-out token blocks come from the same stream: the first ``train_blocks`` train the SAEs, the next
``measure_blocks`` (never seen in training) measure F, L0, alpha and the contribution spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.apps.recipe import parse_recipe_args
from hf_geokd.data import load_token_blocks
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


def main() -> None:
    (args,) = parse_recipe_args((SAEArguments,))
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    blocks = load_token_blocks(tokenizer, args.context_size, args.train_blocks + args.measure_blocks,
                               dataset_name=args.dataset_name, dataset_path=args.dataset_path,
                               text_column=args.text_column)
    held_out = min(args.measure_blocks, len(blocks) // 5)
    train, measure = (
        blocks.select(range(len(blocks) - held_out)),
        blocks.select(range(len(blocks) - held_out, len(blocks))),
    )
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
        training_tokens=len(train) * args.context_size,
        train_batch_size_tokens=args.train_batch_size_tokens,
        measure_tokens=held_out * args.context_size,
        measure_dataset=measure,
        device=args.device,
    )
    for hook, folder in folders.items():
        print(f"{hook}: {folder}")
        if args.push_to_hub:
            push_sae_to_hub(folder, args.push_to_hub, sae_id=hook)


if __name__ == "__main__":
    main()
