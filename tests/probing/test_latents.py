import gc
import weakref

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPTNeoXForCausalLM

from hf_geokd.distill import pythia_like_config
from hf_geokd.probing import GroupedConcept, carried_concepts, concept_latents, pooled_latent_activations, probe_study
from hf_geokd.probing.controls import control_task_labels, token_counts, type_labels
from hf_geokd.probing.latents import single_feature_accuracy
from hf_geokd.probing.study import random_init_model

CONCEPT_TOKENS = range(32, 64)  # the planted concept: texts drawing a quarter of their tokens from these types
OTHER_TOKENS = range(1, 32)


class IdTokenizer:
    """Texts are space-separated token ids ("3 17 40")."""

    def __call__(self, texts, truncation=True, max_length=128):
        return {"input_ids": [[int(t) for t in text.split()][:max_length] for text in texts]}


def planted_texts(n: int = 240, length: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        tokens = [int(rng.choice(CONCEPT_TOKENS)) if label and rng.random() < 0.25 else int(rng.choice(OTHER_TOKENS))
                  for _ in range(length)]
        texts.append(" ".join(map(str, tokens)))
        labels.append(label)
    return texts, labels, [f"doc{i // 2}" for i in range(n)]


def planted_model(direction: torch.Tensor):
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(pythia_like_config(vocab_size=64, hidden_size=32))
    with torch.no_grad():
        model.gpt_neox.embed_in.weight[list(CONCEPT_TOKENS)] += 4.0 * direction  # the latent the test writes in
    return model.eval()


def test_control_task_is_built_per_token_type():
    types = list(range(200))
    coin = type_labels(types, seed=3)
    assert type_labels([types[7]], seed=3)[0] == coin[7]  # a type's label ignores the other types present
    ones, zeros = [t for t in types if coin[t]][:10], [t for t in types if not coin[t]][:10]
    single_type_texts = [[t] * 5 for t in ones + zeros]
    assert control_task_labels(single_type_texts, seed=3).tolist() == [1] * 10 + [0] * 10
    rng = np.random.default_rng(0)
    texts = [list(rng.integers(0, 200, 30)) for _ in range(50)]
    shuffled = [list(rng.permutation(text)) for text in texts]
    assert control_task_labels(texts, seed=3).tolist() == control_task_labels(shuffled, seed=3).tolist()
    assert control_task_labels(texts, seed=3).tolist() != control_task_labels(texts, seed=4).tolist()
    with pytest.raises(ValueError, match="same label"):
        control_task_labels([[1, 2], [2, 1]], seed=0)


def test_token_counts_count_the_most_frequent_types():
    counts, types = token_counts([[5, 5, 9], [9, 2]], max_types=2)
    # ranked by the number of texts holding a type, ties by lower id
    assert types.tolist() == [9, 2] and counts.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_single_feature_accuracy_finds_either_sign():
    x = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]] * 10)
    y = np.array([0, 0, 1, 1] * 10)
    idx = np.arange(40)
    assert single_feature_accuracy(x, y, idx[:20], idx[20:]).tolist() == [1.0, 1.0]


def test_a_planted_latent_is_found_and_random_directions_are_not():
    generator = torch.Generator().manual_seed(1)
    basis, _ = torch.linalg.qr(torch.randn(32, 17, generator=generator))
    planted, randoms = basis[:, 0], basis[:, 1:]  # random directions orthogonal to the planted one
    model = planted_model(planted)
    encoder = torch.cat([planted[:, None], randoms], 1)
    bias = torch.tensor([2.0] + [0.0] * 16)
    texts, labels, groups = planted_texts()
    tokenizer = IdTokenizer()
    activations = pooled_latent_activations(model, tokenizer, texts, model.gpt_neox.layers[0],
                                            lambda h: torch.relu(h @ encoder - bias))
    assert activations.shape == (240, 17)
    counts, _ = token_counts(tokenizer(texts)["input_ids"])
    found = concept_latents(activations, labels, groups, survival={"d_S=8": {100}, "d_S=16": {100, 7}},
                            importance_rank={100: 3}, token_counts=counts.numpy(),
                            latent_ids=[100] + list(range(16)))
    assert found.latents.tolist() == [100]
    assert found.baseline == "best single token type" and found.bar < 0.8 < found.accuracy[0]
    assert found.ranks.tolist() == [3] and found.survived == {"d_S=8": 1, "d_S=16": 1}
    assert found.summary()["carrying_latents"] == 1
    without = concept_latents(activations[:, 1:], labels, groups, token_counts=counts.numpy())
    assert without.latents.size == 0  # the random directions alone carry nothing


def test_study_rule_refuses_a_concept_that_tokens_alone_give():
    texts, labels, groups = planted_texts(n=120)
    concept = GroupedConcept(texts, labels, groups)
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(pythia_like_config(vocab_size=64, hidden_size=32)).eval()
    random_model = GPTNeoXForCausalLM(pythia_like_config(vocab_size=64, hidden_size=32)).eval()
    table = probe_study({"teacher": teacher}, {"planted": concept}, layer=1, tokenizer=IdTokenizer(),
                        random_model=random_model, seeds=3)
    assert table["model"].tolist() == ["bag_of_tokens", "random_init", "teacher"]
    bag = table.set_index("model").loc["bag_of_tokens"]
    assert bag["accuracy"] > 0.9  # the concept is lexical: token counts give it
    assert bag["accuracy_low"] <= bag["accuracy"] <= bag["accuracy_high"]
    assert abs(table["shuffled_accuracy"] - 0.5).max() < 0.2
    assert np.allclose(table["selectivity"], table["accuracy"] - table["control_accuracy"])
    assert carried_concepts(table) == {"teacher": []}  # an untrained teacher cannot beat the tokens
    with pytest.raises(ValueError, match="GroupedConcept"):
        probe_study({"teacher": teacher}, {"planted": (texts, labels)}, 1, IdTokenizer(), random_model)


def test_study_loads_models_given_as_loaders_one_at_a_time():
    """A student given as a loader is loaded when its turn comes and let go before the next one loads, even one that
    holds a reference cycle (as a model placed by accelerate's device_map does); the table is the one the loaded
    models give, row for row."""
    first, second = (GroupedConcept(*planted_texts(n=60, seed=seed)) for seed in (0, 1))
    concepts = {"planted": first, "again": second}

    def student(seed: int) -> GPTNeoXForCausalLM:
        torch.manual_seed(seed)
        return GPTNeoXForCausalLM(pythia_like_config(vocab_size=64, hidden_size=16)).eval()

    alive: list[weakref.ref] = []

    def loader(seed: int):
        def load() -> GPTNeoXForCausalLM:
            assert all(ref() is None for ref in alive), "the previous model is still held"
            model = student(seed)
            model.__dict__["cycle"] = [model]  # freed by the cycle collector only
            alive.append(weakref.ref(model))
            return model
        return load

    teacher, random_model = student(0), student(9)
    kwargs = {"concepts": concepts, "layer": 1, "tokenizer": IdTokenizer(), "seeds": 2}
    loaded = probe_study({"teacher": teacher, "d_S=16": student(1), "d_S=8": student(2)}, random_model=random_model,
                         **kwargs)
    gc.disable()  # only probe_study's own collection may free the cycles
    try:
        lazy = probe_study({"teacher": teacher, "d_S=16": loader(1), "d_S=8": loader(2)}, random_model=loader(9),
                           **kwargs)
    finally:
        gc.enable()
    assert len(alive) == 3  # the random-init teacher and both students, each loaded once
    assert lazy[["model", "concept"]].values.tolist() == [
        [model, concept] for concept in concepts for model in ("bag_of_tokens", "random_init", "teacher", "d_S=16",
                                                               "d_S=8")]
    pd.testing.assert_frame_equal(lazy, loaded)


def test_the_random_init_teacher_is_drawn_from_its_seed_alone():
    config = pythia_like_config(vocab_size=64, hidden_size=16)
    first = random_init_model(config, seed=3)
    torch.rand(100)  # whatever drew from torch's random state in between
    again, other = random_init_model(config, seed=3), random_init_model(config, seed=4)
    weights = {name: tensor for name, tensor in first.state_dict().items() if "bias" not in name}
    assert all(torch.equal(tensor, again.state_dict()[name]) for name, tensor in weights.items())
    assert not any(torch.equal(tensor, other.state_dict()[name]) for name, tensor in weights.items()
                   if tensor.numel() > 1 and tensor.std() > 0)
