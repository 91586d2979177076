"""``geokd demo``: the whole paper at tiny scale, offline on a CPU, leaving ``report.md`` and its figures.

embedded Wikipedia -> byte-level BPE tokenizer -> tiny Pythia-shaped teacher (cached) -> SAE (sae-lens) ->
FeatureStats on held-out tokens -> predicted floors (every capacity kind) -> students distilled with
DistillationTrainer -> observed floors -> two-component calibration and power law -> probes -> report.
Each stage is the library call that the recipes run at full scale (recipes/pythia-410m/).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer, GPTNeoXForCausalLM, Trainer, TrainingArguments

from ..calibration import fit_power_law, fit_two_component
from ..data import blocks_dataset, causal_lm_collator, train_bpe_tokenizer
from ..distill import DistillationConfig, DistillationTrainer, LossFloorCallback, build_student, pythia_like_config
from ..paper import paper_checks, paper_claims
from ..predictor import FloorPredictor
from ..probing import offline_concepts, run_probes
from ..reporting.plots import (
    accuracy_heatmap,
    plot_calibration,
    plot_power_law,
    plot_predicted_floors,
    plot_spectrum,
)
from ..reporting.reports import render_report, write_paper_report
from ..sae import train_sae
from ..stats import FeatureStats
from .corpus import gensim_wheel, wiki_articles


@dataclass
class DemoConfig:
    """Sizes of the embedded run (2 CPU cores, about 10 minutes)."""

    out: Path = Path("outputs/demo")
    cache_dir: Path = Path(".cache/hf-geokd")
    vocab_size: int = 4096
    block_size: int = 128
    teacher_hidden: int = 128
    teacher_layers: int = 4
    teacher_heads: int = 4
    teacher_steps: int = 400
    batch_size: int = 16
    sae_layer: int = 2
    sae_expansion: int = 8
    sae_l1: float = 5.0
    sae_tokens: int = 300_000
    stats_tokens: int = 50_000
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    student_steps: int = 240
    eval_every: int = 20
    temperature: float = 2.0
    probe_per_class: int = 150
    probe_seeds: int = 5
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _stage(config: DemoConfig, name: str):
    """Print the stage and record its wall time in ``config.timings``."""
    print(f"[demo] {name} ...", flush=True)
    start = time.perf_counter()
    yield
    config.timings[name] = time.perf_counter() - start
    print(f"[demo] {name}: {config.timings[name]:.1f} s", flush=True)


def _data(config: DemoConfig):
    articles = wiki_articles(gensim_wheel(config.cache_dir))
    held_out = max(1, len(articles) // 10)
    train_articles, test_articles = articles[:-held_out], articles[-held_out:]
    tokenizer_dir = config.out / "teacher"
    if (tokenizer_dir / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_bpe_tokenizer(train_articles, config.vocab_size)
    train = blocks_dataset(train_articles, tokenizer, config.block_size)
    return articles, tokenizer, train, blocks_dataset(test_articles, tokenizer, config.block_size)


def _train_teacher(config: DemoConfig, tokenizer, train, test):
    folder = config.out / "teacher"
    if (folder / "model.safetensors").is_file():
        return GPTNeoXForCausalLM.from_pretrained(folder)
    torch.manual_seed(config.seed)
    model = GPTNeoXForCausalLM(pythia_like_config(len(tokenizer), config.teacher_hidden, config.teacher_layers,
                                                  config.teacher_heads, max_position_embeddings=config.block_size))
    args = TrainingArguments(output_dir=str(config.out / "teacher-run"), max_steps=config.teacher_steps,
                             per_device_train_batch_size=config.batch_size, learning_rate=3e-3, warmup_steps=20,
                             lr_scheduler_type="cosine", weight_decay=0.01, logging_steps=50, save_strategy="no",
                             report_to=[], use_cpu=not torch.cuda.is_available(), seed=config.seed)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test.select(range(min(64, len(test)))),
                      data_collator=causal_lm_collator)
    trainer.train()
    metrics = trainer.evaluate()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "eval.json").write_text(json.dumps(metrics, indent=2))
    return model


def _students(config: DemoConfig, teacher, train, test) -> pd.DataFrame:
    rows = []
    eval_set = test.select(range(min(48, len(test))))
    for width in config.widths:
        folder = config.out / "students" / f"w{width}"
        result_file = folder / "floor.json"
        if result_file.is_file():
            rows.append(json.loads(result_file.read_text()))
            continue
        heads = config.teacher_heads if width % config.teacher_heads == 0 else 1
        student = build_student(teacher.config, width, seed=config.seed, num_attention_heads=heads)
        args = DistillationConfig(
            output_dir=str(folder), max_steps=config.student_steps, per_device_train_batch_size=config.batch_size,
            learning_rate=3e-3, warmup_steps=20, lr_scheduler_type="cosine", eval_strategy="steps",
            eval_steps=config.eval_every, logging_steps=config.eval_every, save_strategy="no", report_to=[],
            temperature=config.temperature, use_cpu=not torch.cuda.is_available(), seed=config.seed,
            teacher_model_name_or_path=str(config.out / "teacher"),
        )
        floor = LossFloorCallback()
        trainer = DistillationTrainer(model=student, teacher_model=teacher, args=args, train_dataset=train,
                                      eval_dataset=eval_set, data_collator=causal_lm_collator, callbacks=[floor])
        trainer.train()
        trainer.save_model()
        trainer.create_model_card(dataset_name="embedded Wikipedia sample (gensim wheel)")
        ce = [entry["eval_ce"] for entry in trainer.state.log_history if "eval_ce" in entry]
        row = {"width": width, "parameters": student.num_parameters(), "observed_floor": floor.floor,
               "eval_ce": float(np.mean(ce[-max(1, len(ce) // 10):])), "evaluations": len(floor.evaluations)}
        result_file.write_text(json.dumps(row))
        rows.append(row)
    return pd.DataFrame(rows)


def _probes(config: DemoConfig, articles, tokenizer, teacher, students_dir: Path) -> pd.DataFrame:
    concepts = offline_concepts(articles, config.probe_per_class)
    torch.manual_seed(config.seed)
    random_teacher = GPTNeoXForCausalLM(teacher.config)
    tables = []
    models = {"teacher": teacher, **{f"d_S={w}": GPTNeoXForCausalLM.from_pretrained(students_dir / f"w{w}")
                                     for w in (config.widths[0], config.widths[-1])}}
    for name, model in models.items():
        table = run_probes(model, concepts, config.sae_layer, tokenizer, seeds=config.probe_seeds,
                           random_model=random_teacher if name == "teacher" else None)
        table.insert(0, "model", name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def run_demo(out: str | Path, config: DemoConfig | None = None) -> Path:
    """Run every stage and return the path of ``report.md``; finished stages are reused from ``out``."""
    config = config or DemoConfig()
    config.out = Path(out)
    config.out.mkdir(parents=True, exist_ok=True)
    hook = f"gpt_neox.layers.{config.sae_layer}"
    with _stage(config, "corpus and tokenizer"):
        articles, tokenizer, train, test = _data(config)
        train.save_to_disk(str(config.out / "blocks"))
    with _stage(config, "teacher"):
        teacher = _train_teacher(config, tokenizer, train, test)
        teacher.eval()
    sae_dir = config.out / "sae" / hook
    with _stage(config, "SAE and feature statistics"):
        if not (sae_dir / "feature_stats.json").is_file():
            train_sae(teacher, train, [hook], config.out / "sae", expansion_factor=config.sae_expansion,
                      l1_coefficient=config.sae_l1, training_tokens=config.sae_tokens, train_batch_size_tokens=2048,
                      measure_tokens=min(config.stats_tokens, len(test) * config.block_size), measure_dataset=test)
        stats = FeatureStats.load(sae_dir)
    with _stage(config, "predicted floors"):
        tables = FloorPredictor(stats, "paper").predict_every_kind(list(config.widths))
        plot_predicted_floors(tables, config.out / "predicted_floors.png", "Tiny teacher: predicted floor vs width")
        plot_spectrum(stats, config.out / "importance_spectrum.png")
    with _stage(config, "students"):
        students = _students(config, teacher, train, test)
    predictor = FloorPredictor(stats, "paper")
    students["predicted_floor"] = predictor.predict(list(students["width"]))["predicted_floor"].to_numpy()
    widths, observed = students["width"].to_numpy(), students["observed_floor"].to_numpy()
    fixed = predictor.calibrate(list(widths), list(observed), control_width=int(widths.max()))
    affine = fit_two_component(students["predicted_floor"], observed)
    power = fit_power_law(widths, observed)
    plot_calibration(students["predicted_floor"], observed, affine, config.out / "calibration.png", labels=widths,
                     title="Tiny teacher: observed vs predicted floor")
    plot_power_law(widths, observed, power, config.out / "power_law.png", title="Tiny teacher: observed floor vs width")
    predictor.save_pretrained(config.out / "predictor")
    with _stage(config, "probes"):
        probes = _probes(config, articles, tokenizer, teacher, config.out / "students")
        accuracy_heatmap(probes, config.out / "probes.png", f"Probe accuracy, layer {config.sae_layer}")
    paper_report = write_paper_report(paper_checks(), config.out / "paper")
    return _write_report(config, stats, tables, students, fixed, affine, power, probes, paper_report)


def _write_report(config, stats, tables, students, fixed, affine, power, probes, paper_report) -> Path:
    observed = students["observed_floor"].to_numpy()
    predicted = students["predicted_floor"].to_numpy()
    predicted_table = pd.DataFrame({"width": list(config.widths),
                                    **{kind: table["predicted_floor"].to_numpy() for kind, table in tables.items()}})
    return render_report(
        "demo.md.j2", config.out / "report.md", config=config, stats=stats, claims=paper_claims(),
        critical_widths={kind: table.attrs["critical_width"] for kind, table in tables.items()},
        predicted_table=predicted_table, students=students, fixed=fixed, affine=affine, power=power, probes=probes,
        decreasing=bool(np.all(np.diff(observed) < 0)),
        same_order=bool(np.all(np.argsort(-predicted, kind="stable") == np.argsort(-observed, kind="stable"))),
        paper_report=paper_report.relative_to(config.out), timings=pd.DataFrame([config.timings]),
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items() if k != "timings"},
    )
