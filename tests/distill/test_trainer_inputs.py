"""The distillation trainers refuse students and teachers they cannot train honestly, keep earlier students listed
after a partial retrain, and say on the card why no floor was measured."""

import json

import pytest
from transformers import AutoModelForCausalLM

from hf_geokd.distill import (
    DistillationConfig,
    DistillationTrainer,
    LossFloorCallback,
    MultiStudentDistillationTrainer,
    build_student,
)


@pytest.fixture()
def models(tiny_artifacts):
    teacher = AutoModelForCausalLM.from_pretrained(tiny_artifacts / "teacher")
    return teacher, {width: build_student(teacher.config, width, seed=width, num_attention_heads=4)
                     for width in (16, 32)}


def args(tmp_path) -> DistillationConfig:
    return DistillationConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], max_steps=1)


@pytest.mark.parametrize("students, message", [
    (lambda s, t: {"a": s[16], "b": s[16]}, "students 'a' and 'b' share parameters .* Build one model per student"),
    (lambda s, t: [s[16], t], r"student 'w32' is the teacher \(it shares the teacher's parameters"),
    (lambda s, t: s[16], "model must be a list of students or a dict of named students, got GPTNeoXForCausalLM: for "
                         "one student, use DistillationTrainer"),
    (lambda s, t: [None], r"model\[0\] is NoneType, not a transformers model"),
    (lambda s, t: {"a": s[16], "b": "w32"}, "student 'b' is str, not a transformers model"),
])
def test_the_multi_student_trainer_refuses_students_it_cannot_train(models, tmp_path, students, message):
    teacher, built = models
    with pytest.raises(ValueError, match=message):
        MultiStudentDistillationTrainer(model=students(built, teacher), teacher_model=teacher, args=args(tmp_path))


@pytest.mark.parametrize("trainer", [DistillationTrainer, MultiStudentDistillationTrainer])
def test_a_missing_or_unloaded_teacher_is_named(models, tmp_path, trainer):
    _, built = models
    model = built[16] if trainer is DistillationTrainer else [built[16], built[32]]
    for teacher, kind in ((None, "NoneType"), ("EleutherAI/pythia-410m", "str")):
        with pytest.raises(ValueError, match=rf"teacher_model is {kind}, not a loaded transformers model: pass "
                                             r"AutoModelForCausalLM.from_pretrained"):
            trainer(model=model, teacher_model=teacher, args=args(tmp_path))


def test_the_single_trainer_refuses_the_teacher_as_its_student_and_a_missing_student(models, tmp_path):
    teacher, _ = models
    with pytest.raises(ValueError, match="model is the teacher"):
        DistillationTrainer(model=teacher, teacher_model=teacher, args=args(tmp_path))
    with pytest.raises(ValueError, match="model is None: pass the student"):
        DistillationTrainer(model=None, teacher_model=teacher, args=args(tmp_path))


def test_a_partial_retrain_keeps_the_earlier_students_listed(models, tmp_path):
    teacher, built = models
    first = MultiStudentDistillationTrainer(model=[built[16], built[32]], teacher_model=teacher, args=args(tmp_path))
    first.save_model()
    out = tmp_path / "out"
    assert json.loads((out / "students.json").read_text()) == {"students": ["w16", "w32"]}
    retrain = build_student(teacher.config, 32, seed=1, num_attention_heads=4)
    MultiStudentDistillationTrainer(model={"w32": retrain, "w64": build_student(teacher.config, 64, seed=1)},
                                    teacher_model=teacher, args=args(tmp_path)).save_model()
    assert json.loads((out / "students.json").read_text()) == {"students": ["w16", "w32", "w64"]}


def test_a_card_without_evaluations_says_why_there_is_no_floor(models, tmp_path):
    teacher, built = models
    sweep = MultiStudentDistillationTrainer(model=[built[16], built[32]], teacher_model=teacher, args=args(tmp_path))
    sweep.create_model_card()
    card = (tmp_path / "out" / "w16" / "README.md").read_text()
    assert "not measured: no evaluation ran (set eval_strategy and pass an eval_dataset)" in card
    assert "no LossFloorCallback" not in card  # the sweep adds its floor callback itself
    for callbacks, expected in (([LossFloorCallback()], "no evaluation ran"), ([], "no LossFloorCallback")):
        single = DistillationTrainer(model=built[16], teacher_model=teacher, args=args(tmp_path / "single"),
                                     callbacks=callbacks)
        single.create_model_card()
        assert expected in (tmp_path / "single" / "out" / "README.md").read_text()
