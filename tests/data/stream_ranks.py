"""Launched by test_stream.py under ``accelerate launch``: each rank writes the blocks its Trainer dataloader yields."""

import json
import sys

import torch
from datasets import load_from_disk
from transformers import PreTrainedTokenizerFast, Trainer, TrainingArguments

from hf_geokd.data import causal_lm_collator, stream_token_blocks

documents_path, tokenizer_path, output = sys.argv[1:4]
tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_path)
train, _ = stream_token_blocks(load_from_disk(documents_path), tokenizer, 16, num_shards=4, held_out=3, batch=7)
args = TrainingArguments(output_dir=output, use_cpu=True, per_device_train_batch_size=3, report_to=[], max_steps=1,
                         remove_unused_columns=False,
                         accelerator_config={"dispatch_batches": False})
trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=train, data_collator=causal_lm_collator)
blocks = [row for batch in trainer.get_train_dataloader() for row in batch["input_ids"].tolist()]
rank = trainer.accelerator.process_index
with open(f"{output}/rank{rank}.json", "w") as handle:
    json.dump({"world_size": trainer.accelerator.num_processes, "blocks": blocks}, handle)
trainer.accelerator.wait_for_everyone()
torch.distributed.destroy_process_group()
