"""FloorPredictor: predicted distillation floors at any student width from a teacher's feature statistics."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from huggingface_hub import ModelCard, ModelHubMixin, hf_hub_download, metadata_load
from huggingface_hub.errors import EntryNotFoundError

from .ablation_floors import ABLATION_FLOORS_NAME, AblationFloors, stored_ablation_floors
from .calibration import TwoComponentFit, fit_two_component
from .capacity import (
    CapacityKind,
    FittedCapacity,
    capacity,
    check_kept_rule,
    critical_widths,
    kind_name,
    quiet_capacity_warnings,
)
from .cards import render_card
from .checks import sae_subfolder
from .files import known_fields, read_json
from .floors import check_widths, default_widths, example_widths, floor_table, floor_tables_every_kind
from .soft_floor import SoftFloorFit, soft_floor_model
from .sources import HUB_UNREACHABLE, hub_error, local_folder
from .stats import STATS_CONFIG_NAME, STATS_WEIGHTS_NAME, FeatureStats, stored_feature_stats
from .tables import markdown_table

PREDICTOR_CONFIG_NAME = "config.json"
CARD_NAME = "README.md"


def _decode_kind(kind: CapacityKind | dict) -> CapacityKind:
    return FittedCapacity(**known_fields(FittedCapacity, kind, "the saved capacity_kind")) if isinstance(
        kind, dict) else kind


def _is_predictor_config(path: Path) -> bool:
    """Whether ``path`` is a FloorPredictor's ``config.json`` (of this version or an earlier one)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and {"capacity_kind", "calibration", "allow_wider"} <= set(saved)


def _is_predictor_card(path: Path) -> bool:
    """Whether ``path`` is a model card hf-geokd wrote for a predictor (its metadata says so)."""
    try:
        metadata = metadata_load(path) or {}
    except (OSError, ValueError):
        return False
    return metadata.get("library_name") == "hf-geokd" and "predictor" in (metadata.get("tags") or [])


def _same_stats(folder: Path, stats: FeatureStats) -> bool:
    """Whether ``folder`` holds ``stats`` already (same numbers; saved metadata a subset of ours)."""
    try:
        saved = FeatureStats.load(folder)
    except (OSError, ValueError, TypeError):
        return False
    ours, theirs = stats.scalars(), saved.scalars()
    our_metadata = ours.pop("metadata")
    metadata_kept = all(our_metadata.get(key) == value for key, value in theirs.pop("metadata").items())
    return metadata_kept and ours == theirs and saved.contributions.equal(stats.contributions.to(saved.contributions))


def _describe(fit: SoftFloorFit) -> str:
    kind = fit.capacity_kind
    return (f"(s = {fit.shape.softness:.3g}, lambda = {fit.shape.interference:.3g}, "
            f"g_eff = {kind.a:.3g} g_{kind.base}^{kind.b:.3g})")


def _decode_ablation(ablation: AblationFloors | dict | None) -> AblationFloors | None:
    if ablation is None or isinstance(ablation, AblationFloors):
        return ablation
    if isinstance(ablation, dict):
        try:
            return AblationFloors(**ablation)
        except TypeError as error:
            raise ValueError(f"ablation: the dict is not AblationFloors' fields ({error}).") from error
    raise ValueError(f"ablation must be AblationFloors (hf_geokd.sae.measure_ablation_floors), got "
                     f"{type(ablation).__name__}.")


def _check_same_sae(stats: FeatureStats, ablation: AblationFloors) -> None:
    """The ablation floors were measured with the SAE of these statistics: at their hook, and, where both record
    it, with the same d_sae."""
    if not stats.hook_name:
        return
    if stats.hook_name not in ablation.hooks:
        raise ValueError(f"the ablation floors were measured at {ablation.hooks}, these statistics at "
                         f"{stats.hook_name!r}: pass the floors of this teacher's SAE.")
    sizes = ablation.metadata.get("d_sae") or []
    theirs = sizes[ablation.hooks.index(stats.hook_name)] if len(sizes) == len(ablation.hooks) else None
    mine = stats.metadata.get("d_sae")
    if None not in (theirs, mine) and theirs != mine:
        raise ValueError(f"the ablation floors were measured with an SAE of d_sae = {theirs}, these statistics with "
                         f"one of d_sae = {mine}: pass the floors of this SAE.")


class FloorPredictor(
    ModelHubMixin,
    library_name="hf-geokd",
    tags=["hf-geokd", "knowledge-distillation", "superposition", "loss-floor"],
    paper_url="https://arxiv.org/abs/2604.04037",
):
    """Predict the loss floor L*(d_S) of a distilled student (paper Eq. 2) and, once calibrated, its observed floor
    C * L*(d_S) + B (paper Eq. 3).

    Args:
        stats: the teacher's :class:`FeatureStats`.
        capacity_kind: the capacity model g(alpha): ``paper`` (Eq. 1), ``dt_signed``, ``dt_nonneg``, ``mono``,
            ``info`` or a :class:`FittedCapacity`.
        calibration: a :class:`TwoComponentFit` mapping predicted to observed floors (see :meth:`calibrate`).
        allow_wider: accept widths above the teacher's hidden size (by default they are an error: a student wider
            than its teacher is not a compression).
        floor_model: None for Eq. 2 (the paper), or the soft floor (``"soft"``: the shape shipped with hf-geokd,
            fitted on the toy grid; or a :class:`~hf_geokd.soft_floor.SoftFloorFit`): soft retention by rank, an
            effective capacity and superposition interference (see :mod:`hf_geokd.soft_floor`). ``predicted_floor``
            is then the soft floor and ``eq2_floor`` keeps Eq. 2's value beside it. The soft floor carries its own
            effective capacity g_eff, which every column then uses: a different ``capacity_kind`` is an error.
        kept_rule: where Eq. 2 cuts the ranked spectrum: ``floor`` (F_S = floor(d_S g), the paper) or
            ``continuous`` (the real-valued rank d_S g, interpolated between integer ranks: no jump when one
            feature more or less fits; see :func:`hf_geokd.capacity.predicted_floor`).
        ablation: the teacher's ablation floors (:func:`hf_geokd.sae.measure_ablation_floors`): floors in nats at
            the widths where they were measured, with no student trained. Saved and loaded with the predictor;
            :meth:`predict` adds them as ``ablation_floor`` (NaN at widths not measured).
    """

    def __init__(
        self,
        stats: FeatureStats,
        capacity_kind: CapacityKind = "paper",
        calibration: TwoComponentFit | dict | None = None,
        allow_wider: bool = False,
        floor_model: str | SoftFloorFit | dict | None = None,
        kept_rule: str = "floor",
        ablation: AblationFloors | dict | None = None,
    ) -> None:
        if not isinstance(stats, FeatureStats):
            raise ValueError(f"stats must be a FeatureStats, got {type(stats).__name__}.")
        self.stats = stats
        self.floor_model = soft_floor_model(floor_model)
        kind = _decode_kind(capacity_kind)
        if self.floor_model is not None and kind not in ("paper", self.floor_model.capacity_kind):
            raise ValueError(
                f"capacity_kind={kind_name(kind)!r} with a soft floor: the soft floor uses its own effective capacity "
                f"({self.floor_model.capacity_kind.name}). Leave capacity_kind unset with floor_model, or drop "
                "floor_model to use Eq. 2 with that capacity."
            )
        self._kind = kind
        capacity(stats.alpha, self.capacity_kind)  # validates the kind; the one warning outside the paper's regime
        self.calibration = TwoComponentFit.from_dict(calibration) if isinstance(calibration, dict) else calibration
        self.allow_wider = allow_wider
        self.kept_rule = check_kept_rule(kept_rule)
        self.ablation = _decode_ablation(ablation)
        if self.ablation is not None:
            _check_same_sae(stats, self.ablation)

    # ----------------------------------------------------------------------------------------------- predictions
    @property
    def capacity_kind(self) -> CapacityKind:
        """The capacity every column uses: the soft floor's g_eff with a soft floor, else the one given."""
        return self.floor_model.capacity_kind if self.floor_model is not None else self._kind

    @property
    def approximation(self) -> str | None:
        """What is approximate in this predictor's statistics (e.g. built with no forward pass), or None."""
        return self.stats.metadata.get("approximation")

    @property
    def capacity(self) -> float:
        """g(alpha) of the teacher's sparsity under this predictor's capacity kind."""
        with quiet_capacity_warnings():  # warned at construction
            return capacity(self.stats.alpha, self.capacity_kind)

    @property
    def critical_width(self) -> float:
        """d* = F / g(alpha): the narrowest student that keeps every feature."""
        return self.stats.n_features / self.capacity

    def _check_widths(self, widths: Iterable[int] | int) -> list[int]:
        return check_widths(widths, self.stats.d_in, self.allow_wider)

    def predict(self, widths: Iterable[int] | int) -> pd.DataFrame:
        """One row per width: kept features F_S, dropped features, the predicted floor as a fraction of the
        teacher's feature energy (Table 2 units), the raw floor, and the calibrated floor when calibrated
        (:func:`hf_geokd.floors.floor_table`)."""
        table = floor_table(self.stats, self._check_widths(widths), self._kind, self.floor_model, self.calibration,
                            self.kept_rule)
        if self.ablation is not None:
            measured = dict(zip(self.ablation.widths, self.ablation.kl))
            table["ablation_floor"] = [measured.get(int(width), float("nan")) for width in table["width"]]
        return table

    def calibrate(
        self, widths: Iterable[int], observed: Iterable[float], control_width: int | None = None, seed: int = 0
    ) -> TwoComponentFit:
        """Fit observed floors as C * L*(d_S) + B (paper Eq. 3) and attach the fit to this predictor.

        With ``control_width`` (normally d_S = d_T), B is that run's observed floor and C is fitted on the other
        widths, as in the paper; otherwise C and B are both fitted (affine).
        """
        widths = self._check_widths(widths)
        observed = [float(value) for value in observed]
        if len(observed) != len(widths):
            raise ValueError(f"observed has {len(observed)} values but widths has {len(widths)}: pass one per width.")
        predicted = self.predict(widths)["predicted_floor"].tolist()
        if control_width is None:
            fit = fit_two_component(predicted, observed, seed=seed)
        else:
            if control_width not in widths:
                raise ValueError(f"control_width={control_width} is not among widths {widths}: add its observed floor.")
            index = widths.index(control_width)
            rest = [i for i in range(len(widths)) if i != index]
            fit = fit_two_component(
                [predicted[i] for i in rest], [observed[i] for i in rest], baseline=observed[index], seed=seed
            )
        self.calibration = fit
        return fit

    def predict_every_kind(self, widths: Iterable[int] | int) -> dict[str, pd.DataFrame]:
        """Eq. 2 under every built-in capacity kind, keyed by kind (for side-by-side tables and plots)."""
        return floor_tables_every_kind(self.stats, self._check_widths(widths), self.kept_rule)

    @classmethod
    def from_sae(
        cls,
        repo_or_dir: str | Path,
        sae_id: str | None = None,
        model=None,
        dataset=None,
        hook_name: str | None = None,
        n_tokens: int = 1_000_000,
        capacity_kind: CapacityKind = "paper",
        calibration: TwoComponentFit | dict | None = None,
        allow_wider: bool = False,
        allow_pickle: bool = False,
        floor_model: str | SoftFloorFit | dict | None = None,
        approximate: bool = False,
        kept_rule: str = "floor",
        **measure_kwargs: Any,
    ) -> FloorPredictor:
        """A predictor from an SAE (a folder, a Hub repo and the SAE's folder in it, or a sae-lens release).

        Uses the ``FeatureStats`` stored beside the SAE when present (``train_sae`` and ``push_sae_to_hub`` put them
        there); otherwise measures them with ``model`` (an object or a repo id) on ``dataset`` (held-out tokens),
        passing ``hook_name``, ``n_tokens`` and ``measure_kwargs`` to :func:`hf_geokd.measure_feature_stats`. The
        SAE's hook may be a TransformerLens name (``blocks.4.hook_resid_pre``) and its training-time processing is
        reproduced. With ``approximate=True`` and no model, the statistics come from the SAE's
        ``sparsity.safetensors`` with no forward pass (:mod:`hf_geokd.sae.sparsity`: approximate contributions).
        The statistics come from :func:`hf_geokd.sae.sae_feature_stats`; this is its thin entry point. Ablation
        floors saved beside the SAE (``ablation_floors.json``) come with them.
        """
        local_or_hub = "/" in str(repo_or_dir) or Path(repo_or_dir).exists()
        stats = stored_feature_stats(repo_or_dir, sae_id) if local_or_hub else None  # no SAE library needed
        if stats is not None:
            subfolder = sae_subfolder(sae_id)
            stats.metadata.setdefault("sae", str(repo_or_dir) + (f" ({subfolder})" if subfolder else ""))
            hidden = getattr(getattr(model, "config", None), "hidden_size", None)
            if hidden is not None and stats.d_in is not None and hidden != stats.d_in:
                raise ValueError(f"model has hidden size {hidden}, and the statistics stored beside the SAE were "
                                 f"measured at d_in = {stats.d_in}: this model is not the SAE's teacher. Pass the "
                                 "teacher, or leave model= out to use the stored statistics.")
        else:
            # Deferred: the SAE side (sae-lens, transformers) loads only when the statistics must come from the
            # SAE itself. The one import of a subpackage from the core: hf_geokd.sae never imports the predictor.
            from .sae.source import sae_feature_stats

            stats = sae_feature_stats(repo_or_dir, sae_id, model=model, dataset=dataset, hook_name=hook_name,
                                      n_tokens=n_tokens, allow_pickle=allow_pickle, approximate=approximate,
                                      **measure_kwargs)
        ablation = stored_ablation_floors(repo_or_dir, sae_id) if local_or_hub else None
        return cls(stats, capacity_kind, calibration=calibration, allow_wider=allow_wider, floor_model=floor_model,
                   kept_rule=kept_rule, ablation=ablation)

    # ---------------------------------------------------------------------------------------------- persistence
    def config(self) -> dict[str, Any]:
        kind = self.capacity_kind
        return {
            "capacity_kind": kind.to_dict() if isinstance(kind, FittedCapacity) else kind,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "allow_wider": self.allow_wider,
            "floor_model": None if self.floor_model is None else self.floor_model.to_dict(),
            "kept_rule": self.kept_rule,
        }

    def save_pretrained(self, save_directory: str | Path, *, overwrite: bool = False, **kwargs: Any) -> str | None:
        """Write ``config.json``, ``feature_stats.json``, ``feature_stats.safetensors`` and the model card
        ``README.md`` into ``save_directory`` (then push them when ``push_to_hub=True``, as ``ModelHubMixin`` does).

        Nothing already there is replaced silently. A folder that holds a FloorPredictor (its ``config.json`` is a
        predictor's) is updated, its hf-geokd card included. A ``config.json`` of anything else, or different
        feature statistics, raise ``FileExistsError`` unless ``overwrite=True``. A ``README.md`` that is not an
        hf-geokd predictor card is kept, with a warning, unless ``overwrite=True``.
        """
        folder = Path(save_directory)
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"{folder} is a file: pass a folder to save the predictor in.")
        if not overwrite:
            clobbered = self._foreign_files(folder)
            if clobbered:
                raise FileExistsError(
                    f"{folder} already holds {', '.join(clobbered)}, not this predictor's: save into another folder, "
                    "or pass overwrite=True to replace them."
                )
        card = folder / CARD_NAME
        replace_card = card.is_file() and (overwrite or _is_predictor_card(card))
        keep_card = card.is_file() and not replace_card
        result = super().save_pretrained(folder, **kwargs)
        if replace_card:  # the mixin never replaces a README.md
            self.generate_model_card(**(kwargs.get("model_card_kwargs") or {})).save(card)
        if keep_card:
            warnings.warn(
                f"{card} already exists and is not an hf-geokd predictor card: kept it, the predictor's card was not "
                "written (pass overwrite=True to replace it).",
                stacklevel=2,
            )
        return result

    def _foreign_files(self, folder: Path) -> list[str]:
        """Files in ``folder`` that saving would replace and that are not this predictor's (or any predictor's)."""
        config = folder / PREDICTOR_CONFIG_NAME
        if config.is_file() and _is_predictor_config(config):
            return []
        foreign = [PREDICTOR_CONFIG_NAME] if config.is_file() else []
        stats_files = [name for name in (STATS_CONFIG_NAME, STATS_WEIGHTS_NAME) if (folder / name).is_file()]
        if stats_files and not _same_stats(folder, self.stats):
            foreign += stats_files
        return foreign

    def _save_pretrained(self, save_directory: Path) -> None:
        self.stats.save(save_directory)
        if self.ablation is not None:
            self.ablation.save(save_directory, overwrite=True)  # _foreign_files vetted the folder
        else:  # a predictor saved here before with ablation floors: they are not this one's
            (Path(save_directory) / ABLATION_FLOORS_NAME).unlink(missing_ok=True)
        (Path(save_directory) / PREDICTOR_CONFIG_NAME).write_text(json.dumps(self.config(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> FloorPredictor:
        """Load a predictor saved by :meth:`save_pretrained` from a folder or a Hub repo (``ModelHubMixin``'s
        arguments: ``revision``, ``cache_dir``, ``token``, ...). A path that does not exist, a Hub repo that cannot
        be read and a damaged file each raise an error that names them. A folder of bare ``FeatureStats`` (no
        ``config.json``) gives a predictor with default settings."""
        source = str(pretrained_model_name_or_path)
        folder = local_folder(pretrained_model_name_or_path)
        if folder is not None and not (folder / PREDICTOR_CONFIG_NAME).is_file():  # a FeatureStats folder
            settings = ("capacity_kind", "calibration", "allow_wider", "floor_model", "kept_rule")
            init_kwargs = {key: value for key, value in kwargs.items() if key in settings}
            return cls(FeatureStats.load(folder), **init_kwargs, ablation=AblationFloors.stored(folder))
        if folder is not None:
            read_json(folder / PREDICTOR_CONFIG_NAME)  # a damaged config.json is named here, not by json.load
        try:
            return super().from_pretrained(source, **kwargs)
        except HUB_UNREACHABLE as error:
            raise hub_error(source, error) from error

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir,
        force_download: bool,
        local_files_only: bool,
        token,
        **model_kwargs: Any,
    ) -> FloorPredictor:
        if Path(model_id).is_dir():
            folder = Path(model_id)
        else:
            paths = []
            for filename in (STATS_WEIGHTS_NAME, STATS_CONFIG_NAME):
                try:
                    paths.append(
                        hf_hub_download(
                            repo_id=model_id,
                            filename=filename,
                            revision=revision,
                            cache_dir=cache_dir,
                            force_download=force_download,
                            local_files_only=local_files_only,
                            token=token,
                        )
                    )
                except HUB_UNREACHABLE:
                    raise
                except EntryNotFoundError as error:
                    raise FileNotFoundError(
                        f"{model_id} has no {filename}: it is not a FloorPredictor repo (push one with "
                        "FloorPredictor.push_to_hub, or build one from an SAE with FloorPredictor.from_sae)."
                    ) from error
            folder = Path(paths[0]).parent
            model_kwargs["ablation"] = stored_ablation_floors(model_id, revision=revision, cache_dir=cache_dir,
                                                              force_download=force_download,
                                                              local_files_only=local_files_only, token=token)
        model_kwargs.setdefault("ablation", AblationFloors.stored(folder))
        return cls(stats=FeatureStats.load(folder), **model_kwargs)

    def card_context(self) -> dict[str, Any]:
        """What the predictor card template reads: the predictor, its floor table, d* per kind and, when measured, its
        ablation floors."""
        return {
            "ablation_table": None if self.ablation is None else markdown_table(self.ablation.table()),
            "predictor": self,
            "floor_table": markdown_table(self.predict(default_widths(self.stats.d_in))),
            "example_widths": example_widths(self.stats.d_in),
            "critical_widths": critical_widths(self.stats.n_features, self.stats.alpha),
        }

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """A card with the teacher's statistics, d* per capacity kind and the predicted floor table."""
        return render_card("predictor", **{**self.card_context(), **kwargs})

    def summary(self) -> str:
        s = self.stats
        return (
            ("APPROXIMATE statistics (see .approximation); " if self.approximation else "")
            + f"F = {s.n_features:,} alive features, L0 = {s.l0:.4g}, alpha = {s.alpha:.5f}; "
            f"g = {self.capacity:.4g} ({kind_name(self.capacity_kind)}), d* = {self.critical_width:,.1f}"
            + ("" if self.kept_rule == "floor" else f"; {self.kept_rule} cut")
            + ("" if self.floor_model is None else "; soft floor " + _describe(self.floor_model))
            + ("" if self.ablation is None else f"; ablation floors measured at widths {self.ablation.widths}")
        )

    def __repr__(self) -> str:
        return f"FloorPredictor({self.summary()})"
