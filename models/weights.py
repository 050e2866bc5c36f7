"""Where model weights come from: local folders and the user's caches, never the network.

Weights that cannot ship with mixpilot (Demucs, Vocos) are looked up, in order, in

- a folder the user names (``MIXPILOT_DEMUCS_DIR``, ``MIXPILOT_VOCOS_DIR``), then
- the cache the upstream package itself fills when the user downloads them: the torch hub
  checkpoint folder (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``)
  for Demucs, the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, default
  ``~/.cache/huggingface/hub``) for Vocos.

Nothing here downloads. Every failure is one `ModelLoadingError` whose message says what
was looked for, where, and how to provide it. ``find_*`` functions only look at file
names (cheap, safe for availability checks); ``resolve_*`` also check what they can
(Demucs checksums in file names, the Vocos config).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMUCS_DIR_ENV = "MIXPILOT_DEMUCS_DIR"
DEMUCS_MODEL_ENV = "MIXPILOT_DEMUCS_MODEL"
DEFAULT_DEMUCS_MODEL = "htdemucs"
VOCOS_DIR_ENV = "MIXPILOT_VOCOS_DIR"
VOCOS_REPO_ID = "charactr/vocos-mel-24khz"
VOCOS_FILES = ("config.yaml", "pytorch_model.bin")


class ModelLoadingError(RuntimeError):
    """Weights are missing, corrupt or of the wrong kind; the message says what to provide."""


# ---------------------------------------------------------------------------- caches


def torch_hub_checkpoints_dir() -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps files (without importing torch)."""
    home = os.environ.get("TORCH_HOME")
    if home:
        base = Path(home)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "torch"
    return base / "hub" / "checkpoints"


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder (``models--owner--name/snapshots/<rev>/...``)."""
    for env in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(env):
            return Path(os.environ[env])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def hf_snapshot(repo_id: str, filenames: tuple[str, ...], cache_dir: Path | None = None) -> Path | None:
    """A snapshot folder of ``repo_id`` in the HF cache holding all ``filenames``, newest first."""
    root = (cache_dir or hf_hub_cache_dir()) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not root.is_dir():
        return None
    snaps = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in snaps:
        if all((snap / f).is_file() for f in filenames):
            return snap
    return None


def sha256_prefix(path: Path, n: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


# ---------------------------------------------------------------------------- Demucs


@dataclass(frozen=True)
class DemucsWeights:
    """A Demucs model resolved to files: ``files[i]`` holds the model with signature ``signatures[i]``."""

    name: str
    signatures: tuple[str, ...]
    files: tuple[Path, ...]
    bag: dict[str, Any] = field(default_factory=dict)  # the bag yaml: models, weights, segment


def demucs_model_name() -> str:
    return os.environ.get(DEMUCS_MODEL_ENV) or DEFAULT_DEMUCS_MODEL


def demucs_search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(DEMUCS_DIR_ENV):
        dirs.append(Path(os.environ[DEMUCS_DIR_ENV]).expanduser())
    dirs.append(torch_hub_checkpoints_dir())
    return dirs


def _demucs_bag(name: str, dirs: list[Path]) -> dict[str, Any]:
    """The bag description: ``<name>.yaml`` in a search folder, else the one the demucs package ships."""
    import yaml

    for d in dirs:
        p = d / f"{name}.yaml"
        if p.is_file():
            return yaml.safe_load(p.read_text()) or {}
    try:
        import importlib.resources as res

        text = (res.files("demucs") / "remote" / f"{name}.yaml").read_text()
        return yaml.safe_load(text) or {}
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    # not a bag: a single model signature
    return {"models": [name]}


def _find_signature(sig: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if not d.is_dir():
            continue
        hits = sorted(d.glob(f"{sig}-*.th")) + ([d / f"{sig}.th"] if (d / f"{sig}.th").is_file() else [])
        if hits:
            return hits[0]
    return None


def find_demucs(name: str | None = None) -> DemucsWeights:
    """Locate the files of Demucs model ``name`` (default ``$MIXPILOT_DEMUCS_MODEL`` or htdemucs).

    Looks at file names only. Raises `ModelLoadingError` naming the missing signatures.
    """
    name = name or demucs_model_name()
    dirs = demucs_search_dirs()
    bag = _demucs_bag(name, dirs)
    sigs = tuple(str(s) for s in bag.get("models", []))
    if not sigs:
        raise ModelLoadingError(f"Demucs model '{name}': its description lists no models")
    files, missing = [], []
    for sig in sigs:
        f = _find_signature(sig, dirs)
        (files.append(f) if f else missing.append(sig))
    if missing:
        where = ", ".join(str(d) for d in dirs)
        raise ModelLoadingError(
            f"Demucs weights for '{name}' not found (missing {', '.join(s + '-*.th' for s in missing)} in {where}); "
            f"put the checkpoint files in a folder and set {DEMUCS_DIR_ENV}, or let demucs download them once "
            "into the torch hub cache"
        )
    return DemucsWeights(name=name, signatures=sigs, files=tuple(files), bag=bag)


def resolve_demucs(name: str | None = None) -> DemucsWeights:
    """`find_demucs`, then check each file's sha256 against the prefix in its name (``<sig>-<sha8>.th``)."""
    w = find_demucs(name)
    for sig, f in zip(w.signatures, w.files):
        stem = f.stem
        if "-" in stem:
            want = stem.rsplit("-", 1)[1]
            got = sha256_prefix(f, len(want))
            if got != want:
                raise ModelLoadingError(
                    f"Demucs checkpoint {f} is corrupt (sha256 starts {got}, its name says {want}); "
                    "delete it and fetch it again"
                )
    return w


def load_demucs(name: str | None = None) -> Any:
    """Build the Demucs model (a ``BagOfModels``) from local files, in eval mode on the CPU."""
    w = resolve_demucs(name)
    try:
        from demucs.apply import BagOfModels
        from demucs.states import load_model
    except ModuleNotFoundError as exc:
        raise ModelLoadingError(f"Demucs needs the '{exc.name}' package: pip install 'mixpilot[separation]'") from None
    models = []
    for f in w.files:
        try:
            models.append(load_model(str(f)))  # a pickled package: only load files you trust
        except Exception as exc:
            raise ModelLoadingError(f"Demucs checkpoint {f} could not be loaded ({type(exc).__name__}: {exc})") from None
    bag = BagOfModels(models, w.bag.get("weights"), w.bag.get("segment"))
    bag.eval()
    return bag


# ---------------------------------------------------------------------------- Vocos


def find_vocos() -> Path:
    """The folder holding ``config.yaml`` and ``pytorch_model.bin`` of the Vocos mel checkpoint."""
    env = os.environ.get(VOCOS_DIR_ENV)
    if env:
        d = Path(env).expanduser()
        missing = [f for f in VOCOS_FILES if not (d / f).is_file()]
        if missing:
            raise ModelLoadingError(
                f"{VOCOS_DIR_ENV}={d} lacks {', '.join(missing)}; it must hold config.yaml and pytorch_model.bin "
                f"as published in {VOCOS_REPO_ID}"
            )
        return d
    snap = hf_snapshot(VOCOS_REPO_ID, VOCOS_FILES)
    if snap is None:
        raise ModelLoadingError(
            f"Vocos weights not found: set {VOCOS_DIR_ENV} to a folder with config.yaml and pytorch_model.bin, "
            f"or put {VOCOS_REPO_ID} in the Hugging Face cache ({hf_hub_cache_dir()})"
        )
    return snap
