"""The ablation floor: floors in nats from the teacher and its SAE alone, no student trained.

For every student width d_S, the latents a width-d_S student cannot carry (ranked beyond Eq. 2's cut) are removed
from the teacher's activation at the SAE's hook, the SAE's reconstruction error left in place, and the rest of the
teacher runs on what is left (:mod:`hf_geokd.ablation_floors` has the formulas):

    x'_w = x - C(sum_i m_{w,i} z_i W_dec,i) / s,     L_abl(d_S) = T^2 E_t[KL(softmax(u_t / T) || softmax(u'_t / T))]

with z = SAE(p(x)) computed on p(x) = s C x, the activation as the SAE was trained on it (C: TransformerLens's
centering over d_model when the SAE was trained with ``center_writing_weights``, s: its norm scaling factor), so the
removal is mapped back to the raw activation by undoing both. m_{w,i} is 1 for a latent ranked beyond the kept rank
r(d_S), 0 before it, and r - floor(r) short of 1 at the cut for the continuous rule (linear in rank); the soft rule
uses the soft floor's retention, m = 1 - 1 / (1 + (rank / k)^s) with k = d_S g_eff.

One streaming pass serves every width: the teacher runs to the hook once per batch, then the batch is copied there
(the teacher itself, the splice reference and one copy per width that drops anything) and the rest of the teacher
runs on all copies at once; the KL of every copy against the teacher shares one soft-max of the teacher per chunk of
tokens (:func:`hf_geokd.distill.kl.multi_student_distillation_loss`). A width past d* drops nothing: its floor is 0
exactly and costs nothing. A sparse SAE's removals decode only each position's active latents
(:func:`removed_contributions`). Several SAEs at several hooks are ablated together: the batch is copied at the first
hook the forward reaches, and each later hook removes, in each copy, that copy's own latents beyond the same width's
cut.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..ablation_floors import ABLATION_RULES, AblationFloors
from ..capacity import CapacityKind, capacity, kept_rank, kind_name, quiet_capacity_warnings
from ..checks import check_positive_int
from ..distill.kl import multi_student_distillation_loss
from ..floors import check_widths
from ..soft_floor import SoftFloorFit, soft_floor_model
from ..stats import FeatureStats
from .hooks import hook_point, sae_hook_name
from .measure import _check_vocabulary, _real_tokens, check_sae_and_models, measure_feature_stats, training_processing
from .processing import Processing
from .tl_hooks import HookPoint

ROUNDING = 1e-6  # a per-token KL this far below 0 is float rounding, set to 0 (AblationFloors refuses anything lower)
BATCH_AGNOSTIC_ATTENTION = ("sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
SPARSE_SHARE = 4  # decode only the active latents when every position has at most d_sae / SPARSE_SHARE of them


def removal_weights(stats: FeatureStats, d_sae: int, widths: Sequence[int], kind: CapacityKind = "dt_signed",
                    kept_rule: str = "floor", floor_model: SoftFloorFit | None = None
                    ) -> tuple[torch.Tensor, list[float]]:
    """[widths, d_sae] removal weights m_{w,i} in [0, 1] per SAE latent, and the kept rank of each width.

    Latents are ranked by ``stats`` (descending contribution; ``stats.latents`` names them). ``floor`` and
    ``continuous`` cut at :func:`hf_geokd.capacity.kept_rank`: m = clip(rank - r, 0, 1). ``soft`` uses
    ``floor_model``'s retention at k = d_S g_eff: m = 1 - 1 / (1 + (rank / k)^s). Latents that are not alive (not in
    ``stats``) are never removed.
    """
    if stats.latents is None:
        raise ValueError("these FeatureStats do not name their SAE latents (measured by an earlier version): measure "
                         "them again with measure_feature_stats, or pass stats=None to measure them here.")
    if int(stats.latents.max()) >= d_sae:
        raise ValueError(f"the statistics name latent {int(stats.latents.max())} but the SAE has d_sae = {d_sae}: they "
                         "belong to another SAE.")
    ranks = torch.arange(1, stats.n_features + 1, dtype=torch.float64)
    weights = torch.zeros(len(widths), d_sae, dtype=torch.float64)
    kept = []
    with quiet_capacity_warnings():  # the regime is the predictor's to report
        for row, width in enumerate(widths):
            if kept_rule == "soft":
                if floor_model is None:
                    raise ValueError("kept_rule='soft' needs floor_model= (a SoftFloorFit, e.g. SHIPPED_SOFT_FLOOR).")
                k = width * capacity(stats.alpha, floor_model.capacity_kind)
                removal = 1.0 - floor_model.shape.retention(ranks.numpy(), k)
                weights[row, stats.latents] = torch.from_numpy(np.asarray(removal, dtype=np.float64))
                kept.append(float(k))
                continue
            rank = kept_rank(width, stats.alpha, stats.n_features, kind, kept_rule)
            weights[row, stats.latents] = (ranks - rank).clamp(0.0, 1.0)
            kept.append(rank)
    return weights, kept


@dataclass
class _Site:
    """One SAE at its hook: where it reads, how its input was processed, and its removal weights per width."""

    sae: object
    point: HookPoint
    processing: Processing
    weights: torch.Tensor  # [active widths, d_sae] in the SAE's dtype

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, p(x)): the latents of raw activations x [..., d] and the processed activation they encode."""
        processed = self.processing(x.to(self.sae.W_dec.dtype))
        if not torch.isfinite(processed).all():
            raise ValueError(f"NaN or infinite activations at {self.point.hook_name}: check the model's dtype and "
                             "inputs.")
        return self.sae.encode(processed), processed

    def to_raw(self, delta: torch.Tensor) -> torch.Tensor:
        """A change of the processed activation mapped back to the raw one: C delta / s (centering and the norm
        scaling factor undone; the mean over d_model, which the SAE never sees, is left as it was)."""
        if self.processing.center:
            delta = delta - delta.mean(-1, keepdim=True)
        return delta if self.processing.scale is None else delta / self.processing.scale

    def ablate(self, x: torch.Tensor, copies: int, batch: int) -> torch.Tensor:
        """The copies of x at this hook: [teacher, splice, one per width] x batch rows. ``x`` holds the teacher's
        batch (the first hook: it is copied here) or every copy already (a later hook: each copy loses its own)."""
        expand = x.shape[0] == batch
        source = x if expand else x.view(copies, batch, *x.shape[1:])
        z, processed = self.encode(source if expand else source[1:])
        if expand:
            width_z, splice_z, splice_in, base = z.unsqueeze(0), z, processed, x.unsqueeze(0)
        else:
            width_z, splice_z, splice_in, base = z[1:], z[0], processed[0], source[1:]
        error = splice_in - self.sae.decode(splice_z)
        removed = torch.cat([error.unsqueeze(0), removed_contributions(width_z, self.weights, self.sae.W_dec)], 0)
        ablated = base - self.to_raw(removed).to(x.dtype)
        teacher = x if expand else source[0]
        return torch.cat([teacher.unsqueeze(0), ablated], 0).reshape(copies * batch, *x.shape[1:])


def removed_contributions(z: torch.Tensor, weights: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
    """[W, ..., d]: for each row w of ``weights`` [W, d_sae], sum_i m_{w,i} z_i W_dec,i, with ``z`` [W or 1, ...,
    d_sae] (one row of latents per width, or one shared by all) and ``decoder`` W_dec [d_sae, d].

    When at most 1 / :data:`SPARSE_SHARE` of the latents are active at every position (top-k, batch-top-k and most
    trained SAEs), only the active ones are decoded (``embedding_bag`` over each position's L0 latents: W L0 d
    multiply-adds per position instead of W d_sae d); otherwise one width at a time, so that no [W, ..., d_sae]
    tensor is ever made.
    """
    active = int((z != 0).sum(-1).max()) if z.numel() else 0
    if active == 0 or weights.shape[0] == 0:  # nothing to remove, or no width that removes anything
        return z.new_zeros(weights.shape[0], *z.shape[1:-1], decoder.shape[1])
    sparse = active * SPARSE_SHARE <= z.shape[-1]
    if sparse:  # each position's active latents (and zeros where it has fewer)
        index = z.abs().topk(active, dim=-1).indices
        values = z.gather(-1, index)
    rows = []
    for row, weight in enumerate(weights):
        pick = row if z.shape[0] > 1 else 0
        if not sparse:
            rows.append((z[pick] * weight) @ decoder)
            continue
        bags = torch.nn.functional.embedding_bag(index[pick].reshape(-1, active), decoder, mode="sum",
                                                 per_sample_weights=(values[pick] * weight[index[pick]])
                                                 .reshape(-1, active))
        rows.append(bags.view(*z.shape[1:-1], decoder.shape[1]))
    return torch.stack(rows)


def _install(model: torch.nn.Module, site: _Site, copies: int, batch: list[int]):
    """Hook ``site`` into ``model``: the module's output (or a decoder block's input, resid_pre) is replaced by its
    copies. ``batch[0]`` is the current batch's row count."""
    module = model.get_submodule(site.point.module_name)

    def on_output(_module, _inputs, output):
        x = output[0] if isinstance(output, tuple) else output
        y = site.ablate(x, copies, batch[0])
        return (y, *output[1:]) if isinstance(output, tuple) else y

    def on_input(_module, args, kwargs):
        if args:
            return (site.ablate(args[0], copies, batch[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": site.ablate(kwargs["hidden_states"], copies, batch[0])}

    if site.point.read == "output":
        return module.register_forward_hook(on_output)
    return module.register_forward_pre_hook(on_input, with_kwargs=True)


def _check_ablation_site(point: HookPoint, model: torch.nn.Module) -> None:
    """Only a residual-stream write can be ablated: a module's output, or a decoder block's input (resid_pre)."""
    if point.normalize is not None:
        raise ValueError(f"{point.hook_name!r} is a normalised view of the residual stream (hook_normalized): removing "
                         "latents there cannot be written back into the model. Use an SAE on a residual-stream hook.")
    if point.read == "input" and "hook_resid_mid" in point.hook_name:
        raise ValueError(f"{point.hook_name!r} is read as the input of the second norm: changing it would change "
                         "only what the MLP sees, not the residual stream. Use hook_resid_pre or hook_resid_post.")


def _equal_length_batches(dataset, batch_size: int) -> Iterator[torch.Tensor]:
    """[rows, length] token batches whose rows share one length (padding dropped first), so that no attention mask
    is needed when the batch is copied at the hook."""
    pending: dict[int, list[list[int]]] = {}
    for index, row in enumerate(dataset):
        tokens = _real_tokens(row, index)["input_ids"]
        group = pending.setdefault(len(tokens), [])
        group.append(tokens)
        if len(group) == batch_size:
            yield torch.tensor(pending.pop(len(tokens)))
    for group in pending.values():
        yield torch.tensor(group)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _kind_record(kind: CapacityKind) -> str | dict:
    """How AblationFloors records the capacity that set the cut: a kind's name, or a fitted capacity's dict."""
    return kind.to_dict() if hasattr(kind, "to_dict") else kind_name(kind)


def _check_attention(model: torch.nn.Module) -> None:
    """The copies made at the hook need an attention that builds no batch-sized mask (SDPA's causal path)."""
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if implementation is not None and implementation not in BATCH_AGNOSTIC_ATTENTION:
        raise ValueError(f"the model's attention is {implementation!r}, whose causal mask has the batch's size: the "
                         "copies made at the hook cannot pass it. Load the model with attn_implementation='sdpa' (or "
                         "call model.set_attn_implementation('sdpa')).")


def _check_lm_head(model: torch.nn.Module) -> torch.Tensor:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or not hasattr(model, "base_model"):
        raise ValueError(f"{type(model).__name__} has no language-model head: pass a causal LM (AutoModelForCausalLM).")
    if getattr(head, "bias", None) is not None:
        raise ValueError("the model's lm_head has a bias, which the fused KL does not add: not supported.")
    return head.weight


@torch.no_grad()
def measure_ablation_floors(
    sae, model, dataset, widths: Sequence[int], stats: FeatureStats | Sequence[FeatureStats] | None = None,
    hook_name: str | Sequence[str] | None = None, n_tokens: int = 100_000, capacity_kind: CapacityKind = "dt_signed",
    kept_rule: str = "floor", floor_model: str | SoftFloorFit | dict | None = None, temperature: float = 2.0,
    batch_size: int = 8, chunk_size: int = 512, device: str | torch.device | None = None, progress: bool = True,
    norm_scaling_factor: float | None = None, allow_wider: bool = False,
) -> AblationFloors:
    """The teacher's own floor at each student width when the latents that width cannot carry are removed at the
    SAE's hook: T^2 KL(teacher || ablated teacher) per token, in nats, with no student trained (see the module).

    Args:
        sae: a sae-lens ``SAE`` of any architecture (its ``normalize_activations`` ``none`` or
            ``expected_average_only_in``), or a list of SAEs at several hooks, ablated together.
        model: the teacher, a ``transformers`` causal LM.
        dataset: rows with ``input_ids`` (or token lists) of held-out tokens, as for :func:`measure_feature_stats`.
        widths: student widths d_S (each a positive int, at most the teacher's hidden size unless ``allow_wider``).
        stats: the SAE's :class:`FeatureStats` (they rank the latents; ``stats.latents`` names them), one per SAE;
            None to measure them first on the same tokens (one more pass).
        hook_name: the SAE's hook (a module path or a TransformerLens name; default: the SAE's own), one per SAE.
        n_tokens: next-token positions to measure on (whole rows; the dataset must hold that many).
        capacity_kind: the capacity g that sets the kept rank r = d_S g (default ``dt_signed``).
        kept_rule: ``floor`` (floor(d_S g), the paper), ``continuous`` (the real-valued d_S g) or ``soft`` (the soft
            floor's retention; needs ``floor_model``).
        floor_model: with ``kept_rule="soft"`` only: ``"soft"`` (the soft floor shipped with hf-geokd,
            :data:`~hf_geokd.soft_floor.SHIPPED_SOFT_FLOOR`) or a fitted :class:`~hf_geokd.soft_floor.SoftFloorFit`;
            its own capacity g_eff replaces ``capacity_kind``.
        temperature: T of the KL (the paper's distillation temperature is 2).
        batch_size: rows per forward; the rest of the teacher runs on (widths + 2) x batch_size rows at once.
        chunk_size: tokens per chunk of the fused KL.
        device: where to run (default: the model's device).
        progress: show a progress bar over the tokens.
        norm_scaling_factor: for an unfolded ``expected_average_only_in`` SAE, the factor it was trained with (else
            estimated as :func:`measure_feature_stats` does).
        allow_wider: measure at widths above the teacher's hidden size too (as ``FloorPredictor(allow_wider=True)``).
    """
    saes = _as_list(sae)
    for one in saes:
        check_sae_and_models(one, {"model": model}, "measure_ablation_floors(sae, model, dataset, widths, ...)")
    hooks = [None] * len(saes) if hook_name is None else _as_list(hook_name)
    stats_list = [None] * len(saes) if stats is None else _as_list(stats)
    if not (len(hooks) == len(stats_list) == len(saes)):
        raise ValueError(f"pass one hook_name and one stats per SAE: {len(saes)} SAEs, {len(hooks)} hooks, "
                         f"{len(stats_list)} stats.")
    if isinstance(widths, (int, str)) or not len(widths):
        raise ValueError(f"widths must be a non-empty list of student widths, got {widths!r}.")
    widths = check_widths(widths, getattr(getattr(model, "config", None), "hidden_size", None), allow_wider)
    if len(set(widths)) != len(widths):
        raise ValueError(f"widths must be distinct, got {widths}.")
    check_positive_int(n_tokens, "n_tokens")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(chunk_size, "chunk_size")
    if kept_rule not in ABLATION_RULES:
        raise ValueError(f"kept_rule must be one of {ABLATION_RULES} (Eq. 2's floor(d_S g), the real-valued rank "
                         f"d_S g, or the soft floor's retention), got {kept_rule!r}.")
    floor_model = soft_floor_model(floor_model)
    if kept_rule == "soft" and floor_model is None:
        raise ValueError("kept_rule='soft' needs floor_model='soft' (the soft floor shipped with hf-geokd) or a fitted "
                         "SoftFloorFit.")
    if floor_model is not None and kept_rule != "soft":
        raise ValueError(f"floor_model= goes only with kept_rule='soft' (got kept_rule={kept_rule!r}): the soft floor "
                         "sets its own capacity g_eff; the floor and continuous cuts use capacity_kind.")
    if iter(dataset) is dataset:
        raise ValueError("dataset is a one-shot iterator: the ablation pass (and the statistics or the SAE's norm "
                         "scaling factor it may need first) reads it more than once; pass a list or a "
                         "datasets.Dataset.")
    _check_attention(model)
    if not (isinstance(temperature, (int, float)) and 0 < temperature < float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    head = _check_lm_head(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    sites, all_kept = [], []
    for one, hook, one_stats in zip(saes, hooks, stats_list):
        site, kept = _site(one, model, dataset, widths, one_stats, hook, capacity_kind, kept_rule, floor_model,
                           batch_size, device, norm_scaling_factor, n_tokens)
        sites.append(site)
        all_kept.append(kept)
    active = [index for index in range(len(widths)) if any(bool(s.weights[index].any()) for s in sites)]
    for site in sites:
        site.weights = site.weights[active].to(device, site.sae.W_dec.dtype)
    sums = _ablation_pass(model, head, sites, dataset, len(active), n_tokens, temperature, batch_size, chunk_size,
                          device, progress)
    kl, ce = np.zeros(len(widths)), np.full(len(widths), sums["teacher_ce"])
    kl[active], ce[active] = sums["kl"][2:], sums["ce"][2:]
    return AblationFloors(
        widths=widths, kl=kl.tolist(), ce=ce.tolist(), kept=all_kept[0], splice_kl=float(sums["kl"][1]),
        splice_ce=float(sums["ce"][1]), teacher_ce=float(sums["teacher_ce"]), temperature=float(temperature),
        n_tokens=int(sums["n_tokens"]),
        capacity_kind=_kind_record(floor_model.capacity_kind if floor_model is not None else capacity_kind),
        kept_rule=kept_rule, hooks=[site.point.hook_name for site in sites],
        metadata={"d_sae": [int(site.sae.cfg.d_sae) for site in sites],
                  "processing": [site.processing.describe() for site in sites],
                  "kept_ranks": all_kept, "batch_size": batch_size,
                  "floor_model": None if floor_model is None else floor_model.to_dict()},
    )


def _site(sae, model, dataset, widths, stats, hook_name, kind, kept_rule, floor_model, batch_size, device,
          norm_scaling_factor, n_tokens) -> tuple[_Site, list[float]]:
    own = sae_hook_name(sae)
    hook_name = hook_name or own
    if not hook_name:
        raise ValueError("the SAE's config names no hook: pass hook_name= (e.g. 'gpt_neox.layers.12').")
    point = hook_point(model, hook_name)
    if own and own != hook_name and not _same_site(model, own, point):
        warnings.warn(f"hook_name={hook_name!r} is not where this SAE was trained ({own!r}): its latents are ablated "
                      "at another site than the one they describe. Leave hook_name unset to use the SAE's own.",
                      stacklevel=3)
    _check_ablation_site(point, model)
    hidden = getattr(model.config, "hidden_size", sae.cfg.d_in)
    if sae.cfg.d_in != hidden:
        raise ValueError(f"SAE d_in = {sae.cfg.d_in} but the model's hidden size is {hidden}: this SAE belongs to "
                         "another model.")
    mode = getattr(sae.cfg, "normalize_activations", "none") or "none"
    if mode not in ("none", "expected_average_only_in"):
        raise ValueError(f"the SAE normalises each activation inside encode ({mode!r}): the removal of a latent is not "
                         "a fixed vector in the residual stream there. Fold the normalisation first.")
    sae = sae.to(device)
    if stats is None:  # the latents ranked on the same tokens the ablation is measured on
        stats = measure_feature_stats(sae, model, dataset, hook_name, n_tokens=min(n_tokens, _count_tokens(dataset)),
                                      batch_size=batch_size, device=device, progress=False,
                                      norm_scaling_factor=norm_scaling_factor)
    if not isinstance(stats, FeatureStats):
        raise ValueError(f"stats must be the SAE's FeatureStats (or None), got {type(stats).__name__}.")
    measured = {"d_sae": stats.metadata.get("d_sae"), "d_in": stats.d_in}
    for key, value in measured.items():
        if value is not None and value != getattr(sae.cfg, key):
            raise ValueError(f"stats were measured with an SAE of {key} = {value}, and this SAE has {key} = "
                             f"{getattr(sae.cfg, key)}: they belong to another SAE. Pass this SAE's own FeatureStats, "
                             "or stats=None to measure them here.")
    processing = training_processing(sae, model, point, dataset, batch_size, device, norm_scaling_factor)
    weights, kept = removal_weights(stats, sae.cfg.d_sae, widths, kind, kept_rule, floor_model)
    return _Site(sae, point, processing, weights), kept


def _same_site(model: torch.nn.Module, hook_name: str, point: HookPoint) -> bool:
    """Whether ``hook_name`` reads what ``point`` reads, whatever each is called (a module path or a TransformerLens
    name); a hook this model does not have reads something else."""
    try:
        other = hook_point(model, hook_name)
    except ValueError:
        return False
    return (other.module_name, other.read, other.normalize) == (point.module_name, point.read, point.normalize)


def _count_tokens(dataset) -> int:
    """Real tokens in a re-iterable dataset."""
    return sum(len(_real_tokens(row, index)["input_ids"]) for index, row in enumerate(dataset))


def _check_logits(model, head: torch.Tensor, input_ids: torch.Tensor) -> None:
    """The fused KL computes logits as lm_head(final hidden state): check, on one row, that this is what the model
    outputs (a logit soft-cap or scale, as Gemma 2 and Cohere have, would make every floor wrong)."""
    logits = model(input_ids=input_ids).logits[0].float()
    hidden = model.base_model(input_ids=input_ids).last_hidden_state
    ours = torch.nn.functional.linear(hidden.to(head.dtype), head)[0].float()
    if not torch.allclose(logits, ours, rtol=1e-3, atol=1e-3 * float(logits.abs().max())):
        raise ValueError(f"{type(model).__name__}'s logits are not its lm_head applied to its last hidden state (a "
                         "soft-cap or a logit scale?): the ablation floor's KL would be wrong for it.")


def _ablation_pass(model, head, sites: list[_Site], dataset, n_widths: int, n_tokens: int, temperature: float,
                   batch_size: int, chunk_size: int, device: torch.device, progress: bool) -> dict:
    """Stream the dataset once: per batch, one forward with every copy, then the fused KL of each copy against the
    teacher copy. Returns per-token means: kl and ce per copy ([teacher, splice, widths...]), the teacher's CE."""
    copies = n_widths + 2
    current = [0]
    handles: list = []  # the hooks go in after the first batch's plain check (_check_logits)
    kl_sums, ce_sums, seen = np.zeros(copies), np.zeros(copies), 0
    vocab_size = getattr(model.config, "vocab_size", None)
    try:
        with tqdm(total=n_tokens, desc="ablation floors", unit="tok", disable=not progress) as bar:
            for input_ids in _equal_length_batches(dataset, batch_size):
                if input_ids.shape[1] < 2:
                    continue  # a one-token row predicts nothing
                _check_vocabulary(input_ids, vocab_size)
                input_ids = input_ids.to(device)
                if not handles:
                    _check_logits(model, head, input_ids[:1])
                    handles = [_install(model, site, copies, current) for site in sites]
                current[0] = input_ids.shape[0]
                hidden = model.base_model(input_ids=input_ids).last_hidden_state
                if hidden.shape[0] != copies * current[0]:
                    raise ValueError(f"{type(model).__name__} did not run the copies made at the hook (got "
                                     f"{hidden.shape[0]} rows for {copies} x {current[0]}): the forward never reached "
                                     f"{sites[0].point.hook_name!r}, or this model cannot change its batch mid-way.")
                hidden = hidden.view(copies, current[0], *hidden.shape[1:])
                losses = multi_student_distillation_loss(list(hidden), [head] * copies, hidden[0], head, input_ids,
                                                         temperature=temperature, chunk_size=chunk_size, num_items=1)
                kl_sums += [float(loss.kl_sum) for loss in losses]
                ce_sums += [float(loss.ce_sum) for loss in losses]
                positions = losses[0].n_tokens
                seen += positions
                bar.update(positions)
                if seen >= n_tokens:
                    break
    finally:
        for handle in handles:
            handle.remove()
    if seen < n_tokens:
        raise ValueError(f"the dataset yields only {seen:,} next-token positions of the n_tokens={n_tokens:,} "
                         "requested: pass more data or a smaller n_tokens.")
    kl = kl_sums / seen
    # KL >= 0 exactly; float sums of p (log p - log q) over a vocabulary dip below 0 by ~1e-10 when q ~ p
    kl[(kl < 0) & (kl > -ROUNDING)] = 0.0
    return {"kl": kl, "ce": ce_sums / seen, "teacher_ce": ce_sums[0] / seen, "n_tokens": seen}
