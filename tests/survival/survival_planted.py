"""A planted teacher, SAE and students whose survivors are known, shared by the survival tests.

The teacher's residual at module ``layers.0`` is x = E[token] (+ P[previous token] for ``ContextLM``); the SAE reads
orthonormal directions U, z = ReLU(U^T x - 1), with decoder norms 0.8^i so latent i is the i-th most important; a
planted student's residual is the teacher's projected onto chosen directions.
"""

from types import SimpleNamespace

import torch
from torch import nn

from hf_geokd.survival import FeatureSurvivalConfig, measure_feature_survival

VOCAB, D_T, SEQ = 3000, 32, 64


class ToyLM(nn.Module):
    """Residual stream x = E[token] at module ``layers.0``: its coordinates along the SAE's orthonormal directions
    are independent N(0, 1) per token id."""

    def __init__(self, embedding: torch.Tensor) -> None:
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embedding)
        self.layers = nn.ModuleList([nn.Identity()])
        self.config = SimpleNamespace(vocab_size=embedding.shape[0])

    def residual(self, input_ids):
        return self.embed(input_ids)

    def forward(self, input_ids, attention_mask=None):
        return self.layers[0](self.residual(input_ids))


class ContextLM(ToyLM):
    """x = E[token] + P[previous token]: latents along P's directions are not a function of the current token."""

    def __init__(self, embedding: torch.Tensor, previous: torch.Tensor) -> None:
        super().__init__(embedding)
        self.previous = nn.Embedding.from_pretrained(previous)

    def residual(self, input_ids):
        shifted = torch.cat([torch.zeros_like(input_ids[:, :1]), input_ids[:, :-1]], dim=1)
        return self.embed(input_ids) + self.previous(shifted)


class PlantedStudent(nn.Module):
    """A student of width d_S whose residual (``layers.0``) is the teacher's projected onto d_S given directions."""

    def __init__(self, teacher: ToyLM, directions: torch.Tensor) -> None:
        super().__init__()
        self.teacher = [teacher]  # a list: not a submodule, so the student's parameters are its own
        self.layers = nn.ModuleList([nn.Linear(directions.shape[0], directions.shape[1], bias=False)])
        self.layers[0].weight.data = directions.T.clone()

    def forward(self, input_ids, attention_mask=None):
        return self.layers[0](self.teacher[0].residual(input_ids))


class ToySAE(nn.Module):
    """z = ReLU(U^T x - 1) with orthonormal U; decoder norms 0.8^i make latent i the i-th most important."""

    def __init__(self, directions: torch.Tensor) -> None:
        super().__init__()
        self.W_enc = nn.Parameter(directions.clone())
        self.b_enc = nn.Parameter(-torch.ones(directions.shape[1]))
        norms = 0.8 ** torch.arange(directions.shape[1], dtype=torch.float32)
        self.W_dec = nn.Parameter(directions.T * norms[:, None])
        self.cfg = SimpleNamespace(d_in=directions.shape[0], d_sae=directions.shape[1],
                                   metadata=SimpleNamespace(hook_name="layers.0"))

    def encode(self, x):
        return torch.relu(x @ self.W_enc + self.b_enc)


def planted_setup(context: bool = False, seed: int = 0, n_rows: int = 400):
    """(teacher, SAE, directions U, rows). With ``context``, latents 0-15 read the current token's embedding and
    16-31 the previous token's."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.linalg.qr(torch.randn(D_T, D_T, generator=generator))[0]
    embedding = torch.randn(VOCAB, D_T, generator=generator)
    if context:
        half = D_T // 2
        previous = torch.randn(VOCAB, D_T, generator=generator)
        embedding[:, half:], previous[:, :half] = 0, 0
        teacher = ContextLM(embedding @ directions.T, previous @ directions.T)
    else:
        teacher = ToyLM(embedding @ directions.T)
    rows = [{"input_ids": torch.randint(0, VOCAB, (SEQ,), generator=generator).tolist()} for _ in range(n_rows)]
    return teacher, ToySAE(directions), directions, rows


def random_projection_students(teacher, width, seeds):
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return [PlantedStudent(teacher, torch.linalg.qr(torch.randn(D_T, width, generator=g))[0]) for g in generators]


def survival_of(planted, kept, seeds=(11, 12, 13), n_tokens=20_000, **settings):
    """The survival of a planted student keeping the latents ``kept``, with random projections as the null."""
    teacher, sae, directions, rows = planted
    student = PlantedStudent(teacher, directions[:, kept])
    nulls = random_projection_students(teacher, len(kept), seeds)
    config = FeatureSurvivalConfig(n_tokens=n_tokens, **settings)
    return measure_feature_survival(teacher, sae, student, rows, config, null_models=nulls, progress=False)
