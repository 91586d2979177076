import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_geokd.data import causal_lm_collator
from hf_geokd.distill import DistillationConfig, DistillationTrainer, build_student
from hf_geokd.probing import ProbeCallback, balanced
from hf_geokd.probing.concepts import ag_news_sports, pile_concepts

ROOT = Path(__file__).resolve().parents[2]


def pile_rows():
    for i in range(400):
        yield {"text": f"def f{i}(x):\n    return x + {i}\n", "meta": {"pile_set_name": "Github"}}
        yield {
            "text": f"The court held in case {i} that the appeal fails. Why did the appeal in this case fail?",
            "meta": {"pile_set_name": "FreeLaw"},
        }
        yield {
            "text": f"Patients {i} received the drug and the trial is over.",
            "meta": {"pile_set_name": "PubMed Abstracts"},
        }
        yield {
            "text": f"Le parlement et la commission sont dans le débat {i} pour les citoyens.",
            "meta": {"pile_set_name": "EuroParl"},
        }
        yield {
            "text": f"This is the story of the town {i} and it was built in the year {1000 + i}.",
            "meta": {"pile_set_name": "Pile-CC"},
        }


def test_pile_concepts_use_the_subset_labels():
    concepts = pile_concepts(pile_rows(), per_class=50)
    assert set(concepts) == {"contains_code", "legal", "medical", "is_question", "french"}
    texts, labels = concepts["contains_code"]
    assert len(texts) == 100 and sum(labels) == 50
    assert all(("def f" in text) == bool(label) for text, label in zip(texts, labels))
    texts, labels = concepts["french"]
    assert all(("parlement" in text) == bool(label) for text, label in zip(texts, labels))
    texts, labels = concepts["is_question"]
    assert all(text.endswith("?") == bool(label) for text, label in zip(texts, labels))


def test_ag_news_sports_uses_the_label():
    rows = [
        {"text": f"match {i}", "label": 1} if i % 4 == 0 else {"text": f"market {i}", "label": 2} for i in range(400)
    ]
    texts, labels = ag_news_sports(rows, per_class=60)
    assert len(texts) == 120 and all(text.startswith("match") == bool(label) for text, label in zip(texts, labels))


def test_probe_callback_adds_probe_accuracy_to_eval_metrics(tiny_artifacts, tmp_path):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    tokenizer = AutoTokenizer.from_pretrained(tiny_artifacts / "teacher")
    student = build_student(teacher.config, 16, seed=0, num_attention_heads=4)
    concepts = {
        "number_parity": balanced(
            [f"sentence number {2 * i} says" for i in range(40)],
            [f"topic {i} is about something else entirely" for i in range(40)],
            40,
        )
    }
    callback = ProbeCallback(concepts, layer=1, tokenizer=tokenizer, seeds=2)
    blocks = load_from_disk(str(tiny_artifacts / "blocks"))
    args = DistillationConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        eval_strategy="steps",
        eval_steps=2,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        per_device_train_batch_size=4,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=blocks.select(range(16)),
        eval_dataset=blocks.select(range(16, 24)),
        data_collator=causal_lm_collator,
        callbacks=[callback],
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_probe_number_parity"] >= 0.9  # the two classes share no words: pooled states separate them
    assert [row["step"] for row in callback.history] == [2, 2]


@pytest.mark.slow
def test_probe_recipe_on_offline_concepts(tiny_artifacts, tmp_path, wheel_cache):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    build_student(teacher.config, 16).save_pretrained(tmp_path / "student")  # labelled by its config's width
    command = [
        sys.executable,
        str(ROOT / "recipes/probe.py"),
        "--models",
        str(tiny_artifacts / "teacher"),
        str(tmp_path / "student"),
        "--layer",
        "1",
        "--output_dir",
        str(tmp_path / "probes"),
        "--concepts",
        "offline",
        "--per_class",
        "30",
        "--seeds",
        "2",
        "--cache_dir",
        str(wheel_cache),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "probes" / "probes.csv")
    assert set(table["concept"]) == {"is_question", "contains_code"}
    assert table["model"].unique().tolist() == ["bag_of_tokens", "random_init", "teacher", "d_S=16"]
    assert {"shuffled_accuracy", "control_accuracy", "selectivity", "vs_bag_of_tokens_low", "carried"} <= set(table)
    assert (tmp_path / "probes" / "probes.png").stat().st_size > 0
    assert (tmp_path / "probes" / "carried.json").is_file()
