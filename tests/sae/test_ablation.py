"""The ablation floor (floors in nats without a student), checked against hand computations on tiny models."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata
from tl_reference import VOCAB, D, tiny_model

from hf_geokd import FittedCapacity
from hf_geokd.ablation_floors import AblationFloors
from hf_geokd.sae import measure_ablation_floors, measure_feature_stats
from hf_geokd.sae.hooks import hook_point
from hf_geokd.sae.processing import sae_processing
from hf_geokd.soft_floor import SHIPPED_SOFT_FLOOR

TOKENS = torch.randint(0, VOCAB, (6, 12), generator=torch.Generator().manual_seed(3))
ROWS = [{"input_ids": row.tolist()} for row in TOKENS]
N_POSITIONS = TOKENS.shape[0] * (TOKENS.shape[1] - 1)
NOTHING_KEPT = FittedCapacity(a=1e-9, b=0.0)  # g ~ 0: every width keeps no latent


@pytest.fixture(scope="module")
def neox():
    torch.manual_seed(0)
    return tiny_model("neox").eval()


def random_sae(hook_name: str, kwargs: dict | None = None, seed: int = 0) -> StandardSAE:
    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=D, d_sae=4 * D, metadata=SAEMetadata(
        hook_name=hook_name, model_from_pretrained_kwargs=kwargs or {})))
    with torch.no_grad():
        sae.b_enc.add_(0.3 * torch.randn_like(sae.b_enc))
        sae.b_dec.add_(0.2 * torch.randn_like(sae.b_dec))
    return sae


def exact_sae(hook_name: str) -> StandardSAE:
    """z = [relu(x), relu(-x)], decode(z) = relu(x) - relu(-x) = x: a reconstruction with no error at all."""
    sae = StandardSAE(StandardSAEConfig(d_in=D, d_sae=2 * D, metadata=SAEMetadata(hook_name=hook_name)))
    eye = torch.eye(D)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def stats_of(sae, model, hook_name=None):
    return measure_feature_stats(sae, model, ROWS, hook_name, n_tokens=TOKENS.numel(), progress=False,
                                 alive_threshold=0.0)


def hand_floor(model, changes: list[tuple[str, str, object]], temperature: float = 2.0) -> float:
    """T^2 KL(teacher || the model with each (module, "output" | "input", change) applied), per next-token position,
    from full logits (no chunking, no copies)."""
    with torch.no_grad():
        teacher = model(input_ids=TOKENS).logits[:, :-1]
        handles = []
        for module_name, read, change in changes:
            module = model.get_submodule(module_name)
            if read == "output":
                handles.append(module.register_forward_hook(
                    lambda _m, _i, out, change=change: (change(out[0]), *out[1:]) if isinstance(out, tuple)
                    else change(out)))
            else:
                handles.append(module.register_forward_pre_hook(
                    lambda _m, args, change=change: (change(args[0]), *args[1:])))
        try:
            ablated = model(input_ids=TOKENS).logits[:, :-1]
        finally:
            for handle in handles:
                handle.remove()
    log_p = F.log_softmax(teacher / temperature, -1)
    log_q = F.log_softmax(ablated / temperature, -1)
    return float(temperature**2 * (log_p.exp() * (log_p - log_q)).sum(-1).mean())


def test_removing_nothing_costs_exactly_nothing(neox):
    """A width past d* drops no latent: its floor is 0 exactly; an SAE that reconstructs exactly splices in at
    exactly 0 too (the copies made at the hook run exactly as the teacher does)."""
    sae = exact_sae("gpt_neox.layers.0")
    stats = stats_of(sae, neox)
    floors = measure_ablation_floors(sae, neox, ROWS, [1, 2 * D], stats=stats, n_tokens=N_POSITIONS, progress=False,
                                     capacity_kind="info", allow_wider=True)  # 2 D: past d* for certain
    assert floors.splice_kl == 0.0 and floors.splice_ce == floors.teacher_ce
    assert floors.kl[1] == 0.0 and floors.ce[1] == floors.teacher_ce
    assert floors.kl[0] > 0.0 and floors.n_tokens == N_POSITIONS


def test_removing_every_latent_subtracts_every_decoder_contribution(neox):
    hook = "gpt_neox.layers.0"
    sae = random_sae(hook)
    floors = measure_ablation_floors(sae, neox, ROWS, [3], stats=stats_of(sae, neox), n_tokens=N_POSITIONS,
                                     capacity_kind=NOTHING_KEPT, progress=False)
    expected = hand_floor(neox, [(hook, "output", lambda x: x - sae.encode(x) @ sae.W_dec)])
    assert floors.kept == [0.0]
    assert floors.kl[0] == pytest.approx(expected, rel=1e-5)
    splice = hand_floor(neox, [(hook, "output", lambda x: sae.decode(sae.encode(x)))])
    assert floors.splice_kl == pytest.approx(splice, rel=1e-5)


def top_k_sae(hook_name: str) -> TopKSAE:
    """A top-k SAE (k = 2 of 4 D latents): its removals take the sparse path (only the active latents decoded)."""
    torch.manual_seed(8)
    return TopKSAE(TopKSAEConfig(d_in=D, d_sae=4 * D, k=2, metadata=SAEMetadata(hook_name=hook_name)))


@pytest.mark.parametrize("hook, make_sae", [("gpt_neox.layers.1", lambda hook: random_sae(hook, seed=1)),
                                            ("gpt_neox.layers.0", top_k_sae)], ids=["relu", "top-k"])
def test_the_cut_follows_the_importance_ranking(neox, hook, make_sae):
    """At width 1 under the info kind the kept rank is 1/p: the latents ranked beyond it, and only they, go (a ReLU
    SAE through the dense removal, a top-k SAE through its active latents only)."""
    sae = make_sae(hook)
    stats = stats_of(sae, neox)
    rank = int(1.0 / (1.0 - stats.alpha))
    dropped = stats.latents[rank:]
    floors = measure_ablation_floors(sae, neox, ROWS, [1], stats=stats, n_tokens=N_POSITIONS, capacity_kind="info",
                                     progress=False)
    expected = hand_floor(neox, [(hook, "output", lambda x: x - sae.encode(x)[..., dropped] @ sae.W_dec[dropped])])
    assert 0 < rank < stats.n_features
    assert floors.kept == [pytest.approx(rank)]
    assert floors.kl[0] == pytest.approx(expected, rel=1e-5)


def test_widths_batched_after_the_hook_equal_widths_measured_alone(neox):
    sae = random_sae("gpt_neox.layers.0", seed=2)
    stats = stats_of(sae, neox)
    together = measure_ablation_floors(sae, neox, ROWS, [1, 2, 3], stats=stats, n_tokens=N_POSITIONS,
                                       capacity_kind="info", kept_rule="continuous", progress=False)
    alone = [measure_ablation_floors(sae, neox, ROWS, [width], stats=stats, n_tokens=N_POSITIONS,
                                     capacity_kind="info", kept_rule="continuous", progress=False).kl[0]
             for width in (1, 2, 3)]
    assert together.kl == pytest.approx(alone, rel=1e-5)
    assert together.kl[0] >= together.kl[1] >= together.kl[2]


@pytest.mark.parametrize("hook_name", ["blocks.1.hook_resid_post", "blocks.1.hook_resid_pre"])
def test_a_transformer_lens_hooked_sae_ablates_where_it_reads_with_its_processing_undone(neox, hook_name):
    """Centering (center_writing_weights) and an unfolded norm scaling factor s: the SAE sees s (x - mean x); the
    removal is written back as C(z W_dec) / s at the same module (a block's output, or its input for resid_pre)."""
    sae = random_sae(hook_name, {"center_writing_weights": True}, seed=4)
    sae.cfg.normalize_activations = "expected_average_only_in"
    scale = 0.7
    point = hook_point(neox, hook_name)
    processing = sae_processing(sae, point, "model", norm_scaling_factor=scale)
    assert processing.center and processing.scale == scale

    def remove_all(x):
        removed = sae.encode(processing(x)) @ sae.W_dec
        return x - (removed - removed.mean(-1, keepdim=True)) / scale

    stats = measure_feature_stats(sae, neox, ROWS, n_tokens=TOKENS.numel(), progress=False, alive_threshold=0.0,
                                  norm_scaling_factor=scale)
    floors = measure_ablation_floors(sae, neox, ROWS, [2], stats=stats, n_tokens=N_POSITIONS,
                                     capacity_kind=NOTHING_KEPT, norm_scaling_factor=scale, progress=False)
    assert floors.kl[0] == pytest.approx(hand_floor(neox, [(point.module_name, point.read, remove_all)]), rel=1e-5)


def test_two_saes_at_two_hooks_are_ablated_together(neox):
    first, second = random_sae("gpt_neox.layers.0", seed=5), random_sae("gpt_neox.layers.1", seed=6)
    stats = [stats_of(first, neox), stats_of(second, neox)]
    floors = measure_ablation_floors([first, second], neox, ROWS, [2], stats=stats, n_tokens=N_POSITIONS,
                                     capacity_kind=NOTHING_KEPT, progress=False)
    expected = hand_floor(neox, [("gpt_neox.layers.0", "output", lambda x: x - first.encode(x) @ first.W_dec),
                                 ("gpt_neox.layers.1", "output", lambda x: x - second.encode(x) @ second.W_dec)])
    alone = measure_ablation_floors(first, neox, ROWS, [2], stats=stats[0], n_tokens=N_POSITIONS,
                                    capacity_kind=NOTHING_KEPT, progress=False)
    assert floors.hooks == ["gpt_neox.layers.0", "gpt_neox.layers.1"]
    assert floors.kl[0] == pytest.approx(expected, rel=1e-5)
    assert floors.kl[0] != pytest.approx(alone.kl[0], rel=1e-3)


def test_bad_inputs_are_named(neox):
    sae = random_sae("gpt_neox.layers.0")
    stats = stats_of(sae, neox)
    run = dict(stats=stats, n_tokens=N_POSITIONS, progress=False)
    with pytest.raises(ValueError, match="widths must be a positive integer"):
        measure_ablation_floors(sae, neox, ROWS, [0], **run)
    with pytest.raises(ValueError, match="widths must be a non-empty list"):
        measure_ablation_floors(sae, neox, ROWS, [], **run)
    wide = StandardSAE(StandardSAEConfig(d_in=2 * D, d_sae=4 * D, metadata=SAEMetadata(hook_name="gpt_neox.layers.0"))
                       )
    with pytest.raises(ValueError, match=f"SAE d_in = {2 * D} but the model.s hidden size is {D}"):
        measure_ablation_floors(wide, neox, ROWS, [2], **run)
    with pytest.raises(ValueError, match="swap them"):
        measure_ablation_floors(neox, sae, ROWS, [2], **run)
    with pytest.raises(ValueError, match="only .* next-token positions"):
        measure_ablation_floors(sae, neox, ROWS, [2], stats=stats, n_tokens=10 * N_POSITIONS, progress=False)
    with pytest.raises(ValueError, match="hook_normalized"):
        measure_ablation_floors(random_sae("blocks.1.ln2.hook_normalized"), neox, ROWS, [2], **run)
    with pytest.raises(ValueError, match="kept_rule must be one of"):
        measure_ablation_floors(sae, neox, ROWS, [2], kept_rule="round", **run)
    with pytest.raises(ValueError, match="kept_rule='soft' needs floor_model='soft'"):
        measure_ablation_floors(sae, neox, ROWS, [2], kept_rule="soft", **run)
    with pytest.raises(ValueError, match="floor_model= goes only with kept_rule='soft' \\(got kept_rule='floor'\\)"):
        measure_ablation_floors(sae, neox, ROWS, [2], floor_model="soft", **run)
    with pytest.raises(ValueError, match=f"widths \\[{D + 1}\\] exceed the teacher's hidden size {D}"):
        measure_ablation_floors(sae, neox, ROWS, [2, D + 1], **run)
    smaller = exact_sae("gpt_neox.layers.0")  # d_sae = 2 D: its statistics rank latents this SAE also has
    with pytest.raises(ValueError, match=f"stats were measured with an SAE of d_sae = {2 * D}, and this SAE has "
                                         f"d_sae = {4 * D}: they belong to another SAE"):
        measure_ablation_floors(sae, neox, ROWS, [2], **{**run, "stats": stats_of(smaller, neox)})
    with pytest.raises(ValueError, match="one-shot iterator"):
        measure_ablation_floors(sae, neox, iter(ROWS), [2], **run)


def test_an_sae_ablated_at_another_site_than_its_own_is_warned_about(neox):
    sae = random_sae("gpt_neox.layers.0")
    run = dict(stats=stats_of(sae, neox), n_tokens=N_POSITIONS, progress=False)
    with pytest.warns(UserWarning, match="hook_name='gpt_neox.layers.1' is not where this SAE was trained "
                                         "\\('gpt_neox.layers.0'\\)"):
        measure_ablation_floors(sae, neox, ROWS, [2], hook_name="gpt_neox.layers.1", **run)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the same site under its TransformerLens name: no warning
        measure_ablation_floors(sae, neox, ROWS, [2], hook_name="blocks.0.hook_resid_post", **run)


def test_the_shipped_soft_floor_is_named_soft(neox):
    sae = random_sae("gpt_neox.layers.0")
    run = dict(stats=stats_of(sae, neox), n_tokens=N_POSITIONS, progress=False, kept_rule="soft")
    named = measure_ablation_floors(sae, neox, ROWS, [2, 4], floor_model="soft", **run)
    assert named == measure_ablation_floors(sae, neox, ROWS, [2, 4], floor_model=SHIPPED_SOFT_FLOOR, **run)


def test_an_attention_with_a_batch_sized_mask_or_soft_capped_logits_is_refused(neox):
    sae = random_sae("gpt_neox.layers.0")
    run = dict(stats=stats_of(sae, neox), n_tokens=N_POSITIONS, progress=False)
    neox.set_attn_implementation("eager")
    try:
        with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
            measure_ablation_floors(sae, neox, ROWS, [2], **run)
    finally:
        neox.set_attn_implementation("sdpa")
    head = neox.get_output_embeddings()
    original = head.forward
    head.forward = lambda hidden: 30.0 * torch.tanh(original(hidden) / 30.0)  # a Gemma-2-style logit soft-cap
    try:
        with pytest.raises(ValueError, match="not its lm_head applied to its last hidden state"):
            measure_ablation_floors(sae, neox, ROWS, [2], **run)
    finally:
        head.forward = original


def test_ablation_floors_round_trip_and_refuse_damage(tmp_path):
    floors = AblationFloors(widths=[4, 8], kl=[0.5, 0.1], ce=[3.0, 2.7], kept=[10.0, 20.0], splice_kl=0.05,
                            splice_ce=2.65, teacher_ce=2.6, temperature=2.0, n_tokens=100, capacity_kind="dt_signed",
                            kept_rule="floor", hooks=["gpt_neox.layers.1"])
    floors.save(tmp_path)
    assert AblationFloors.load(tmp_path) == floors
    floors.save(tmp_path)  # the same floors again: left as they are
    other = AblationFloors(**{**floors.__dict__, "kl": [0.6, 0.1]})
    with pytest.raises(FileExistsError, match="holds other ablation floors"):
        other.save(tmp_path)
    other.save(tmp_path, overwrite=True)
    assert AblationFloors.load(tmp_path) == other
    for bad, message in (({"widths": [4, 8.5]}, "positive integer"), ({"temperature": -2.0}, "temperature"),
                         ({"n_tokens": -5}, "n_tokens"), ({"kept_rule": "bogus"}, "kept_rule")):
        with pytest.raises(ValueError, match=message):
            AblationFloors(**{**floors.__dict__, **bad})
    assert floors.floor(8) == 0.1
    with pytest.raises(ValueError, match="no ablation floor was measured at width 16"):
        floors.floor(16)
    (tmp_path / "ablation_floors.json").write_text("{")
    with pytest.raises(ValueError, match="ablation_floors.json"):
        AblationFloors.load(tmp_path)
    with pytest.raises(ValueError, match="one kl, ce and kept value per width"):
        AblationFloors(widths=[4], kl=[0.5, 0.1], ce=[3.0], kept=[1.0], splice_kl=0.0, splice_ce=0.0, teacher_ce=0.0,
                       temperature=2.0, n_tokens=1, capacity_kind="info", kept_rule="floor", hooks=[])


@pytest.mark.parametrize("active, shared", [(3, True), (3, False), (0, True), (40, True), (40, False)])
def test_removed_contributions_equal_the_dense_product(active, shared):
    """Sparse latents (3 of 64 active per position) are decoded through their active ones only, dense ones (40 of
    64) one width at a time: both equal sum_i m_{w,i} z_i W_dec,i computed densely, for latents shared by every
    width or one row per width (a later hook's copies), and no latent active at all gives 0."""
    from hf_geokd.sae.ablation import removed_contributions

    generator = torch.Generator().manual_seed(7)
    widths, d_sae, d = 3, 64, 8
    z = torch.randn(1 if shared else widths, 5, 6, d_sae, generator=generator)
    keep = z.abs().argsort(-1, descending=True).argsort(-1) < active  # `active` latents per position
    z = torch.where(keep, z, torch.zeros(()))
    weights = torch.rand(widths, d_sae, generator=generator)
    decoder = torch.randn(d_sae, d, generator=generator)
    dense = (z * weights.view(widths, 1, 1, d_sae)) @ decoder
    removed = removed_contributions(z, weights, decoder)
    assert removed.shape == (widths, 5, 6, d)
    assert torch.allclose(removed, dense, atol=1e-5)
    assert removed_contributions(z, weights[:0], decoder).shape == (0, 5, 6, d)  # every width past d*: no copy
