import pytest
import torch
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import build_student, pythia_config, student_config

PAPER_PARAMS = {128: 17.6e6, 256: 44.7e6, 512: 127.2e6, 768: 247.4e6, 1024: 405.3e6}  # paper Table 8 / section 6


@pytest.mark.parametrize("width,expected", PAPER_PARAMS.items())
def test_pythia_410m_students_have_the_papers_sizes(width, expected):
    with torch.device("meta"):
        student = GPTNeoXForCausalLM(student_config("EleutherAI/pythia-410m", width))
    assert student.num_parameters() == pytest.approx(expected, rel=0.01)
    config = student.config
    assert (config.num_hidden_layers, config.vocab_size) == (24, 50304)
    assert config.rope_parameters == pythia_config("410m").rope_parameters  # rotary on 25% of each head
    assert config.intermediate_size == 4 * width
    assert config.num_attention_heads == (8 if width == 128 else 16)


def test_pythia_names_and_aliases():
    assert pythia_config("EleutherAI/pythia-70m-deduped").hidden_size == 512
    assert pythia_config("pythia-12b").vocab_size == 50688
    assert pythia_config("1.4b").num_hidden_layers == 24
    with pytest.raises(ValueError, match="known sizes"):
        pythia_config("pythia-3b")


def test_student_rules_and_errors():
    assert student_config("70m", 96, num_attention_heads=6).num_attention_heads == 6
    with pytest.raises(ValueError, match="not divisible"):
        student_config("70m", 100)
    with pytest.raises(ValueError, match="width"):
        student_config("70m", 0)
    student = build_student(pythia_config("70m"), 64, seed=0, num_hidden_layers=1)
    assert student.config.hidden_size == 64 and student.config.num_hidden_layers == 1
