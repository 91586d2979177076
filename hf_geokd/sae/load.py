"""Load a sparse autoencoder from any common layout as a sae-lens ``SAE``.

Layouts ``load_sae`` reads (a folder, or a folder inside a Hub repo named by ``sae_id``):

- ``sae_lens``: ``cfg.json`` + ``sae_weights.safetensors`` (what sae-lens saves and uploads); also any release of
  sae-lens's registry by name.
- ``sparsify`` (EleutherAI): ``cfg.json`` + ``sae.safetensors`` with ``encoder.weight`` [d_sae, d_in],
  ``encoder.bias``, ``W_dec`` [d_sae, d_in], ``b_dec``; a top-k ReLU SAE. Read by our own adapter: sae-lens's
  converter transposes ``W_dec``, which is already [d_sae, d_in].
- ``raw``: ``geokd_sae.json`` ({"d_in", "d_sae", "activation": "relu" | "topk", "k", "hook_name"}) +
  ``sae.safetensors`` with ``W_enc`` [d_in, d_sae], ``b_enc``, ``W_dec`` [d_sae, d_in], ``b_dec``; z = act(
  (x - b_dec) W_enc + b_enc).
- ``dictionary_learning``: ``config.json`` + ``ae.pt`` (a pickle: read only with ``allow_pickle=True``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from sae_lens import SAE
from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
from safetensors import SafetensorError

from ..checks import sae_subfolder
from ..files import read_json, read_safetensors
from ..sources import HUB_UNREACHABLE, hub_error, local_folder

RAW_CONFIG_NAME = "geokd_sae.json"
SPARSITY_NAME = "sparsity.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")


def detect_format(folder: Path) -> str:
    """Name the layout of an SAE folder, or explain what is missing."""
    names = {path.name for path in folder.iterdir()} if folder.is_dir() else set()
    if {"cfg.json", "sae_weights.safetensors"} <= names:
        return "sae_lens"
    if {"cfg.json", "sae.safetensors"} <= names:
        return "sparsify"
    if {RAW_CONFIG_NAME, "sae.safetensors"} <= names:
        return "raw"
    if "ae.pt" in names:
        return "dictionary_learning"
    raise FileNotFoundError(
        f"{folder} holds no SAE we can read (found: {sorted(names) or 'nothing'}). Expected cfg.json + "
        f"sae_weights.safetensors (sae-lens), cfg.json + sae.safetensors (sparsify), {RAW_CONFIG_NAME} + "
        "sae.safetensors (raw), or config.json + ae.pt (dictionary_learning). Pass sae_id= for a sub-folder."
    )


def _inference_config(state: dict[str, torch.Tensor], device: str, hook_name: str | None, k: int | None = None,
                      dtype: str = "float32", cfg_overrides: dict | None = None, **metadata: Any) -> dict[str, Any]:
    """The sae-lens config of a ReLU SAE (top-k when ``k`` is given) over weights laid out as sae-lens's."""
    d_in, d_sae = state["W_enc"].shape
    config: dict[str, Any] = {"architecture": "standard" if k is None else "topk", "d_in": d_in, "d_sae": d_sae,
                              "dtype": dtype, "device": device, "apply_b_dec_to_input": True,
                              "normalize_activations": "none", "hook_name": hook_name, **metadata}
    if k is not None:
        config["k"] = int(k)
    config.update(cfg_overrides or {})
    return config


def _sparsify_converter(path: str | Path, device: str = "cpu", cfg_overrides: dict | None = None):
    """Our reader for sparsify folders: top-k of ReLU((x - b_dec) W_enc + b_enc), W_dec stored [d_sae, d_in].

    (sae-lens 6.54's converter transposes W_dec, builds a ReLU SAE without the top-k, and drops b_dec from the input
    when the decoder is normalised, each unlike sparsify's own encode.) The hook is the folder's name, a module path
    relative to the base model (``layers.6`` is ``gpt_neox.layers.6`` in a GPTNeoX causal LM).
    """
    raw = read_json(Path(path) / "cfg.json")
    weights = read_safetensors(Path(path) / "sae.safetensors", device=device)
    state = {"W_enc": weights["encoder.weight"].T.contiguous(), "b_enc": weights["encoder.bias"],
             "W_dec": weights["W_dec"], "b_dec": weights["b_dec"]}
    d_sae, d_in = state["W_dec"].shape
    if state["W_enc"].shape != (d_in, d_sae):
        raise ValueError(
            f"sparsify encoder.weight has shape {tuple(weights['encoder.weight'].shape)}, expected [{d_sae}, {d_in}]."
        )
    dtype = str(state["W_dec"].dtype).removeprefix("torch.")
    return _inference_config(state, device, Path(path).name, raw["k"], dtype, cfg_overrides), state


def _raw_converter(path: str | Path, device: str = "cpu", cfg_overrides: dict | None = None):
    raw = read_json(Path(path) / RAW_CONFIG_NAME)
    weights = read_safetensors(Path(path) / "sae.safetensors", device=device)
    missing = {"W_enc", "b_enc", "W_dec", "b_dec"} - set(weights)
    if missing:
        raise ValueError(
            f"{path}/sae.safetensors lacks {sorted(missing)} (the raw layout needs W_enc, b_enc, W_dec, b_dec)."
        )
    state = {key: weights[key] for key in ("W_enc", "b_enc", "W_dec", "b_dec")}
    k = raw["k"] if raw.get("activation") == "topk" else None
    config = _inference_config(
        state, device, raw.get("hook_name"), k, cfg_overrides=cfg_overrides, model_name=raw.get("model_name")
    )
    return config, state


def _dictionary_learning_converter(path: str | Path, device: str = "cpu", cfg_overrides: dict | None = None):
    """Our disk reader for dictionary_learning folders (sae-lens reads these from the Hub only)."""
    raw = read_json(Path(path) / "config.json")
    trainer = raw.get("trainer", raw)
    weights = torch.load(Path(path) / "ae.pt", map_location=device, weights_only=True)
    W_enc = weights["W_enc"] if "W_enc" in weights else weights["encoder.weight"].T
    W_dec = weights["W_dec"] if "W_dec" in weights else weights["decoder.weight"].T
    b_enc = weights.get("b_enc", weights.get("encoder.bias"))
    b_dec = weights.get("b_dec", weights.get("bias", weights.get("decoder.bias")))
    state = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
    config = _inference_config(
        state,
        device,
        trainer.get("submodule_name"),
        trainer.get("k"),
        cfg_overrides=cfg_overrides,
        model_name=trainer.get("lm_name"),
    )
    return config, state


CONVERTERS = {
    "sparsify": _sparsify_converter,
    "raw": _raw_converter,
    "dictionary_learning": _dictionary_learning_converter,
}


def _fetch(repo_id: str, subfolder: str | None) -> Path:
    """Download one SAE folder of a Hub repo (only that folder); return the snapshot's root."""
    try:
        return Path(snapshot_download(repo_id, allow_patterns=[f"{subfolder}/*" if subfolder else "*"]))
    except HUB_UNREACHABLE as error:
        raise hub_error(repo_id, error) from error


def _layout_folders(paths: list[str]) -> list[str]:
    """The folders (``.`` for the root) holding an SAE's config file, among repo-relative file paths."""
    configs = {"cfg.json", RAW_CONFIG_NAME, "ae.pt"}
    return sorted({str(Path(path).parent) for path in paths if Path(path).name in configs})


def sae_folders(root: Path) -> list[str]:
    """The SAE folders in a local directory, two levels deep at most."""
    paths = [path.relative_to(root).as_posix() for pattern in ("*", "*/*", "*/*/*") for path in root.glob(pattern)]
    return _layout_folders(paths)


def _hub_sae_folders(repo_id: str) -> list[str] | None:
    """The SAE folders of a Hub repo, or None when its file list cannot be read."""
    try:
        return _layout_folders(HfApi().list_repo_files(repo_id))
    except (HfHubHTTPError, OSError):
        return None


def sae_folder_listing(folders: list[str] | None) -> str:
    """How an error names the SAE folders there are."""
    if folders is None:
        return "its file list could not be read"
    if not folders:
        return "it holds no SAE folder"
    shown = ", ".join(repr(folder) for folder in folders[:8])
    return f"its SAE folders: {shown}{', ...' if len(folders) > 8 else ''}"


def release_location(release: str, sae_id: str | None) -> tuple[str, str | None] | None:
    """The Hub repo and folder of an SAE of sae-lens's registry (``gpt2-small-res-jb``, ``blocks.4.hook_resid_pre``),
    or None when ``release`` is not a registry release. An unknown ``sae_id`` is an error listing a few valid ones."""
    lookup = get_pretrained_saes_directory().get(release)
    if lookup is None:
        return None
    if sae_id is not None and sae_id not in lookup.saes_map:
        known = list(lookup.saes_map)
        raise ValueError(f"{release} has no SAE {sae_id!r}; its {len(known)} SAEs include {known[:5]}.")
    return lookup.repo_id, None if sae_id is None else lookup.saes_map[sae_id]


def load_sae(repo_or_dir: str | Path, sae_id: str | None = None, allow_pickle: bool = False, device: str = "cpu"):
    """Load an SAE as a sae-lens ``SAE`` from a folder, a Hub repo (``sae_id``: the folder inside it) or a release
    of sae-lens's registry. Weights are read from safetensors only, unless ``allow_pickle=True`` (pickles can run
    code: opt in only for files you trust)."""
    return load_sae_and_sparsity(repo_or_dir, sae_id, allow_pickle, device)[0]


def load_sae_and_sparsity(repo_or_dir: str | Path, sae_id: str | None = None, allow_pickle: bool = False,
                          device: str = "cpu") -> tuple[Any, torch.Tensor | None]:
    """:func:`load_sae`, and the SAE's ``sparsity.safetensors`` when it ships one: log10 of each latent's firing
    frequency (+1e-10) over sae-lens's last feature-sampling window; None otherwise."""
    subfolder = sae_subfolder(sae_id)
    if not Path(repo_or_dir).exists() and str(repo_or_dir) in get_pretrained_saes_directory():
        if subfolder is None:
            raise ValueError(f"{repo_or_dir} is a sae-lens release: pass sae_id= (one of its SAEs).")
        sae, _, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(str(repo_or_dir), subfolder, device=device)
        return sae, log_sparsity
    source = local_folder(repo_or_dir)
    root = source if source is not None else _fetch(str(repo_or_dir), subfolder)
    folder = root / subfolder if subfolder else root
    if not folder.is_dir():
        known = sae_folders(source) if source is not None else _hub_sae_folders(str(repo_or_dir))
        raise FileNotFoundError(f"{repo_or_dir} has no folder {subfolder!r} (the folder sae_id names does not "
                                f"exist): check sae_id; {sae_folder_listing(known)}.")
    layout = detect_format(folder)
    if layout == "dictionary_learning" and not allow_pickle:
        pickles = [path.name for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES]
        raise ValueError(
            f"{folder} stores its weights as a pickle ({', '.join(pickles)}), which can run code when loaded. Convert "
            "it to safetensors, or pass allow_pickle=True if you trust its source."
        )
    sparsity_file = folder / SPARSITY_NAME
    log_sparsity = read_safetensors(sparsity_file)["sparsity"] if sparsity_file.is_file() else None
    if layout == "sae_lens":
        try:
            return SAE.load_from_disk(folder, device=device), log_sparsity
        except (ValueError, SafetensorError):
            read_json(folder / "cfg.json")  # names the damaged file, if one is
            read_safetensors(folder / "sae_weights.safetensors")
            raise
    return SAE.load_from_disk(folder, device=device, converter=CONVERTERS[layout]), log_sparsity
