"""Where model weights come from: the one place that knows the catalogue, the folders and the checks.

Weights that cannot ship with mixpilot (Demucs, Vocos) are described by a `ModelCard` each
(what it enables, size, licence, where it is published, the checksums) and resolved by a
`ModelRepo`, demucs-style (`has_model` / `get_model`, one `ModelLoadingError`). A repo looks,
in order, in

- a folder the user names (``demucs_dir`` / ``vocos_dir`` settings), then
- the models dir (``models_dir`` setting, default ``<data dir>/models``), which
  ``mixpilot models pull`` fills (``models/hub.py``), then
- the cache the upstream package itself fills (torch hub checkpoints for Demucs, the
  Hugging Face hub cache for Vocos).

Nothing here downloads and nothing here reads the environment: a surface builds the repo from its
`Settings` (``Settings.weight_sources()``, which also reads where torch and huggingface_hub keep
their caches) and installs it with `use_sources`; tools ask `current_sources()`. Every failure is one `ModelLoadingError` whose message says what was looked for
and the command that gets it. ``find_*`` only look at file names (cheap, safe for
availability checks); ``resolve_*`` / ``verify`` also check the checksums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DEMUCS_MODEL = "htdemucs"
VOCOS_REPO_ID = "charactr/vocos-mel-24khz"
VOCOS_FILES = ("config.yaml", "pytorch_model.bin")
#: Vocos is pinned by commit and by content. The revision is the commit of ``charactr/vocos-mel-24khz`` that
#: ``main`` resolved to when these were read (the hub's snapshot folder name, quoted with these same file
#: hashes by several independent public manifests); this machine cannot reach the hub to re-check it.
#: ``pytorch_model.bin``'s sha256 is the hub's LFS object id (54,365,991 bytes). ``config.yaml``'s (461 bytes)
#: was re-derived here: the published layout (``tests/modelmirror.PUBLISHED_VOCOS_CONFIG``) hashes to it.
#: ``pull`` and ``verify`` refuse any file whose sha256 differs from its pin.
VOCOS_REVISION = "0feb3fdd929bcd6649e0e7c5a688cf7dd012ef21"
VOCOS_SHA256 = {
    "config.yaml": "da9033922f969a47f0c160010226919e59f27761fd5066f3828d46de6650b0fc",
    "pytorch_model.bin": "97ec976ad1fd67a33ab2682d29c0ac7df85234fae875aefcc5fb215681a91b2a",
}
#: Where the demucs package's remote list points (``demucs.pretrained.ROOT_URL``); a mirror serves the
#: same paths under ``<mirror>/demucs/``.
DEMUCS_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
HF_ENDPOINT_DEFAULT = "https://huggingface.co"
#: the install folders under the models dir
DEMUCS_SUBDIR = "demucs"
VOCOS_SUBDIR = "vocos-mel-24khz"
SETTING_DEMUCS_DIR = "MIXPILOT_DEMUCS_DIR"
SETTING_VOCOS_DIR = "MIXPILOT_VOCOS_DIR"
SETTING_DEMUCS_MODEL = "MIXPILOT_DEMUCS_MODEL"


class ModelLoadingError(RuntimeError):
    """Weights are missing, corrupt or of the wrong kind; the message says what to provide."""


# ---------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it installs (``name`` in the model's folder) and how it is checked.

    ``sha256`` is the full hex digest, or a prefix where the publisher gives only that (Demucs file
    names carry the first 8 hex digits). Demucs files come from ``url_path`` under the demucs root;
    Hugging Face files from ``hf_repo`` at ``revision``.
    """

    name: str
    sha256: str | None
    url_path: str | None = None
    hf_repo: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class ModelCard:
    name: str
    kind: str  # "demucs" | "vocos"
    tool: str  # the canonical tool it serves
    enables: str
    gain: str  # what it brings over the fallback, in plain words (quoted where it is missing)
    size_mb: float
    licence: str
    source: str
    files: tuple[RemoteFile, ...]
    bag: Mapping[str, Any] = field(default_factory=dict)  # Demucs: the bag yaml (models, weights, segment)
    default: bool = True  # pulled by `mixpilot models pull all`

    @property
    def folder(self) -> str:
        return DEMUCS_SUBDIR if self.kind == "demucs" else VOCOS_SUBDIR


DEMUCS_CARDS: dict[str, dict[str, Any]] = {
    "htdemucs": dict(
        enables="separate: 4 stems (vocals, drums, bass, other) with Hybrid Transformer Demucs",
        gain="HT-Demucs reaches 9.0 dB average SDR on MUSDB-HQ, where the DSP fallback gains only +1.2 to +5.5 dB "
        "of vocal SI-SDR over the unseparated mix (two MUSDB excerpts)",
        size_mb=80.2,
        default=True,
    ),
    "htdemucs_ft": dict(
        enables="separate: the fine-tuned bag of 4 HT-Demucs models (one per stem; ~4x slower, a little cleaner); "
        "use it with MIXPILOT_DEMUCS_MODEL=htdemucs_ft",
        gain="about +0.3 dB SDR over htdemucs on MUSDB-HQ (9.2 dB), at 4x the time",
        size_mb=4 * 80.2,
        default=False,
    ),
}


def demucs_remote_list(remote_dir: Path | None = None) -> dict[str, str]:
    """signature → path under the demucs root (``hybrid_transformer/955717e8-8726e21a.th``), parsed from
    the demucs package's ``remote/files.txt`` (or ``remote_dir/files.txt``)."""
    text = _demucs_remote_text("files.txt", remote_dir)
    if text is None:
        return {}
    root, out = "", {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
        else:
            out[line.split("-", 1)[0]] = root + line
    return out


def _demucs_remote_text(name: str, remote_dir: Path | None) -> str | None:
    if remote_dir is not None:
        p = remote_dir / name
        return p.read_text() if p.is_file() else None
    try:
        import importlib.resources as res

        return (res.files("demucs") / "remote" / name).read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def _demucs_bag(name: str, remote_dir: Path | None) -> dict[str, Any]:
    import yaml

    text = _demucs_remote_text(f"{name}.yaml", remote_dir)
    return (yaml.safe_load(text) or {}) if text else {}


def default_cards(
    *,
    demucs_remote: Path | None = None,
    vocos_revision: str = VOCOS_REVISION,
    vocos_sha256: Mapping[str, str] | None = None,
) -> dict[str, ModelCard]:
    """The catalogue: Demucs models from the demucs package's remote list (URLs and checksums), Vocos
    pinned here. ``demucs_remote`` / ``vocos_*`` replace those sources (tests, an organisation's list)."""
    cards: dict[str, ModelCard] = {}
    remote = demucs_remote_list(demucs_remote)
    for name, info in DEMUCS_CARDS.items():
        bag = _demucs_bag(name, demucs_remote)
        sigs = [str(s) for s in bag.get("models", [])]
        if not sigs or any(s not in remote for s in sigs):
            continue  # the demucs package (separation extra) is not installed: nothing to offer
        files = tuple(
            RemoteFile(
                name=Path(remote[s]).name, sha256=Path(remote[s]).stem.rsplit("-", 1)[1], url_path=remote[s]
            )
            for s in sigs
        )
        cards[name] = ModelCard(
            name=name,
            kind="demucs",
            tool="separate",
            licence="MIT (demucs code and published weights)",
            source=DEMUCS_ROOT_URL + str(Path(remote[sigs[0]]).parent) + "/ (demucs remote list)",
            files=files,
            bag=bag,
            **info,
        )
    sha = dict(VOCOS_SHA256 if vocos_sha256 is None else vocos_sha256)
    cards["vocos"] = ModelCard(
        name="vocos",
        kind="vocos",
        tool="vocoder_enhance",
        enables="vocoder_enhance: re-synthesise a voice through the Vocos mel vocoder (24 kHz)",
        gain="smooths codec artefacts and phasiness that EQ and denoising leave; without it the planner uses DSP",
        size_mb=54.4,
        licence="MIT",
        source=f"huggingface.co/{VOCOS_REPO_ID} @ {vocos_revision}",
        files=tuple(
            RemoteFile(name=f, sha256=sha.get(f), hf_repo=VOCOS_REPO_ID, revision=vocos_revision)
            for f in VOCOS_FILES
        ),
    )
    return cards


ALIASES = {"vocos-mel-24khz": "vocos", VOCOS_REPO_ID: "vocos", "demucs": "htdemucs"}


# ---------------------------------------------------------------------------- the user's caches


def hf_snapshot(repo_id: str, filenames: tuple[str, ...], cache_dir: Path | None = None) -> Path | None:
    """A snapshot folder of ``repo_id`` in the HF cache ``cache_dir`` (default: the active sources')
    holding all ``filenames``, newest first."""
    cache_dir = cache_dir or current_sources().hf_hub_cache
    if cache_dir is None:
        return None
    root = cache_dir / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not root.is_dir():
        return None
    snaps = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in snaps:
        if all((snap / f).is_file() for f in filenames):
            return snap
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_prefix(path: Path, n: int) -> str:
    return sha256_file(path)[:n]


def check_sha256(path: Path, want: str | None) -> str | None:
    """None when ``path``'s sha256 starts with ``want`` (or nothing is pinned), else the one-line reason."""
    if not want:
        return None
    got = sha256_file(path)
    if got.startswith(want.lower()):
        return None
    return f"{path.name}: sha256 {got[: len(want)]}, expected {want}"


# ---------------------------------------------------------------------------- the repo


@dataclass(frozen=True)
class DemucsWeights:
    """A Demucs model resolved to files: ``files[i]`` holds the model with signature ``signatures[i]``."""

    name: str
    signatures: tuple[str, ...]
    files: tuple[Path, ...]
    bag: dict[str, Any] = field(default_factory=dict)  # the bag yaml: models, weights, segment


@dataclass(frozen=True)
class ModelState:
    """What `ModelRepo.status` says about one model (JSON-able through `to_dict`)."""

    name: str
    installed: bool
    path: Path | None
    detail: str
    card: ModelCard | None

    def to_dict(self) -> dict[str, Any]:
        c = self.card
        return {
            "name": self.name,
            "installed": self.installed,
            "path": str(self.path) if self.path else None,
            "detail": self.detail,
            "tool": c.tool if c else "",
            "enables": c.enables if c else "",
            "gain": c.gain if c else "",
            "size_mb": c.size_mb if c else None,
            "licence": c.licence if c else "",
            "source": c.source if c else "",
            "default": c.default if c else False,
        }


@dataclass(frozen=True)
class ModelRepo:
    """Weights on this machine, demucs-style: `has_model` / `get_model`, one `ModelLoadingError`.

    Built by a surface from `Settings` (``app.runtime.model_repo``); ``cards=None`` uses
    `default_cards`. ``mirror`` is where ``pull`` fetches from (``<mirror>/demucs/...`` and a Hugging
    Face endpoint at ``<mirror>``); None = the publishers (and ``HF_ENDPOINT`` for Vocos).
    """

    models_dir: Path | None = None
    mirror: str | None = None
    demucs_dir: Path | None = None
    vocos_dir: Path | None = None
    demucs_model: str = DEFAULT_DEMUCS_MODEL
    #: the upstream caches (torch hub checkpoints, Hugging Face hub); None = not searched
    torch_hub_dir: Path | None = None
    hf_hub_cache: Path | None = None
    #: another Op-GAN generator file for `restore` (written by models/train_opgan.py); None = the shipped one
    opgan_weights: Path | None = None
    cards: Mapping[str, ModelCard] | None = None

    # ---- catalogue
    def catalogue(self) -> Mapping[str, ModelCard]:
        if self.cards is None:
            object.__setattr__(self, "cards", default_cards())
        assert self.cards is not None  # for the type checker: set just above
        return self.cards

    def card(self, name: str) -> ModelCard:
        cards = self.catalogue()
        key = ALIASES.get(name, name)
        if key not in cards:
            known = ", ".join(cards) or "none (pip install 'mixpilot[separation]' for Demucs)"
            raise ModelLoadingError(f"unknown model '{name}'; known models: {known}")
        return cards[key]

    def install_dir(self, name: str) -> Path:
        if self.models_dir is None:
            raise ModelLoadingError("no models dir configured (MIXPILOT_MODELS_DIR)")
        return self.models_dir / self.card(name).folder

    # ---- Demucs
    def demucs_search_dirs(self) -> list[Path]:
        dirs = []
        if self.demucs_dir is not None:
            dirs.append(Path(self.demucs_dir).expanduser())
        if self.models_dir is not None:
            dirs.append(self.models_dir / DEMUCS_SUBDIR)
        if self.torch_hub_dir is not None:
            dirs.append(self.torch_hub_dir)
        return dirs

    def _bag(self, name: str, dirs: list[Path]) -> dict[str, Any]:
        import yaml

        for d in dirs:
            p = d / f"{name}.yaml"
            if p.is_file():
                return yaml.safe_load(p.read_text()) or {}
        cards = self.catalogue()
        if name in cards and cards[name].kind == "demucs":
            return dict(cards[name].bag)
        bag = _demucs_bag(name, None)
        return bag or {"models": [name]}  # not a bag: a single model signature

    def find_demucs(self, name: str | None = None) -> DemucsWeights:
        """Locate the files of Demucs model ``name`` (default: the configured one). File names only."""
        name = name or self.demucs_model
        dirs = self.demucs_search_dirs()
        bag = self._bag(name, dirs)
        sigs = tuple(str(s) for s in bag.get("models", []))
        if not sigs:
            raise ModelLoadingError(f"Demucs model '{name}': its description lists no models")
        files: list[Path] = []
        missing: list[str] = []
        for sig in sigs:
            f = _find_signature(sig, dirs)
            if f is None:
                missing.append(sig)
            else:
                files.append(f)
        if missing:
            raise ModelLoadingError(self._missing_demucs(name, missing, dirs))
        return DemucsWeights(name=name, signatures=sigs, files=tuple(files), bag=bag)

    def _missing_demucs(self, name: str, missing: list[str], dirs: list[Path]) -> str:
        cards = self.catalogue()
        where = ", ".join(str(d) for d in dirs) or "no folder configured"
        if name in cards:
            c = cards[name]
            return (
                f"needs the HT-Demucs weights, not installed: run `mixpilot models pull {name}` "
                f"({c.size_mb:.0f} MB, or name a folder with {SETTING_DEMUCS_DIR}); {c.gain}"
            )
        return (
            f"Demucs weights for '{name}' not found (missing {', '.join(s + '-*.th' for s in missing)} in "
            f"{where}); put the checkpoint files in a folder and set {SETTING_DEMUCS_DIR}"
        )

    def resolve_demucs(self, name: str | None = None) -> DemucsWeights:
        """`find_demucs`, then check each file's sha256 against the prefix in its name (``<sig>-<sha8>.th``)."""
        w = self.find_demucs(name)
        for f in w.files:
            if "-" in f.stem:
                want = f.stem.rsplit("-", 1)[1]
                got = sha256_prefix(f, len(want))
                if got != want:
                    raise ModelLoadingError(
                        f"Demucs checkpoint {f} is corrupt (sha256 starts {got}, its name says {want}); "
                        f"delete it and run `mixpilot models pull {w.name}` again"
                    )
        return w

    def load_demucs(self, name: str | None = None) -> Any:
        """Build the Demucs model (a ``BagOfModels``) from local files, in eval mode on the CPU."""
        w = self.resolve_demucs(name)
        try:
            from demucs.apply import BagOfModels
            from demucs.states import load_model
        except ModuleNotFoundError as exc:
            raise ModelLoadingError(
                f"Demucs needs the '{exc.name}' package: pip install 'mixpilot[separation]'"
            ) from None
        models = []
        for f in w.files:
            try:
                models.append(
                    load_model(str(f))
                )  # a pickled package: only load files you trust (checked above)
            except Exception as exc:
                raise ModelLoadingError(
                    f"Demucs checkpoint {f} could not be loaded ({type(exc).__name__}: {exc})"
                ) from None
        bag = BagOfModels(models, w.bag.get("weights"), w.bag.get("segment"))
        bag.eval()
        return bag

    # ---- Vocos
    def find_vocos(self) -> Path:
        """The folder holding ``config.yaml`` and ``pytorch_model.bin`` of the Vocos mel checkpoint."""
        if self.vocos_dir is not None:
            d = Path(self.vocos_dir).expanduser()
            missing = [f for f in VOCOS_FILES if not (d / f).is_file()]
            if missing:
                raise ModelLoadingError(
                    f"{SETTING_VOCOS_DIR}={d} lacks {', '.join(missing)}; it must hold config.yaml and "
                    f"pytorch_model.bin as published in {VOCOS_REPO_ID}"
                )
            return d
        if self.models_dir is not None:
            d = self.models_dir / VOCOS_SUBDIR
            if all((d / f).is_file() for f in VOCOS_FILES):
                return d
        snap = hf_snapshot(VOCOS_REPO_ID, VOCOS_FILES, self.hf_hub_cache) if self.hf_hub_cache else None
        if snap is None:
            c = self.catalogue().get("vocos")
            size = f" ({c.size_mb:.0f} MB)" if c else ""
            raise ModelLoadingError(
                f"needs the Vocos weights ({VOCOS_REPO_ID}): run `mixpilot models pull vocos`{size}, or set "
                f"{SETTING_VOCOS_DIR} to a folder with config.yaml and pytorch_model.bin"
            )
        return snap

    def load_vocos(self) -> Any:
        from models.vocos import load_vocos

        return load_vocos(self.find_vocos())

    # ---- the demucs-style interface
    def has_model(self, name: str) -> bool:
        try:
            self.locate(name)
        except ModelLoadingError:
            return False
        return True

    def get_model(self, name: str) -> Any:
        """The loaded model: a Demucs ``BagOfModels`` or a `models.vocos.Vocos`."""
        card = self.card(name)
        return self.load_demucs(card.name) if card.kind == "demucs" else self.load_vocos()

    def locate(self, name: str) -> Path:
        """The folder (or first file) the model is found in; `ModelLoadingError` when absent."""
        card = self.card(name)
        if card.kind == "demucs":
            return self.find_demucs(card.name).files[0]
        return self.find_vocos()

    def status(self, name: str) -> ModelState:
        card = self.card(name)
        try:
            path = self.locate(name)
        except ModelLoadingError as exc:
            return ModelState(card.name, False, None, str(exc), card)
        return ModelState(card.name, True, path, "installed", card)

    def list_models(self) -> list[ModelState]:
        return [self.status(n) for n in self.catalogue()]

    def verify(self, name: str) -> ModelState:
        """Check the installed files of ``name`` against the catalogue's checksums (and Vocos by loading it
        strictly: config.yaml has no published sha256). Raises `ModelLoadingError` with the reason."""
        card = self.card(name)
        if card.kind == "demucs":
            w = self.resolve_demucs(card.name)
            by_name = {f.name: f for f in w.files}
            for rf in card.files:
                f = by_name.get(rf.name)
                if f is not None and (why := check_sha256(f, rf.sha256)):
                    raise ModelLoadingError(
                        f"{card.name}: {why}; run `mixpilot models pull {card.name}` again"
                    )
            return ModelState(card.name, True, w.files[0], "verified", card)
        folder = self.find_vocos()
        for rf in card.files:
            if why := check_sha256(folder / rf.name, rf.sha256):
                raise ModelLoadingError(f"vocos: {why}; run `mixpilot models pull vocos` again")
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                self.load_vocos()
        except ModelLoadingError as exc:
            raise ModelLoadingError(f"vocos: {exc}") from None
        return ModelState(card.name, True, folder, "verified", card)


def _find_signature(sig: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if not d.is_dir():
            continue
        hits = sorted(d.glob(f"{sig}-*.th")) + ([d / f"{sig}.th"] if (d / f"{sig}.th").is_file() else [])
        if hits:
            return hits[0]
    return None


# ---------------------------------------------------------------------------- the process's repo

#: the same object under the name the rest of the code knows it by
WeightSources = ModelRepo
_SOURCES: ModelRepo = ModelRepo()


def use_sources(repo: ModelRepo) -> ModelRepo:
    """Make ``repo`` the one tools resolve weights through (a surface calls this at start-up, from
    `app.settings.Settings.weight_sources`); returns the previous one."""
    global _SOURCES
    prev, _SOURCES = _SOURCES, repo
    return prev


def current_sources() -> ModelRepo:
    return _SOURCES


use = use_sources
active = current_sources


# module-level shorthands on the active repo (what tools call)


def demucs_model_name() -> str:
    return active().demucs_model


def find_demucs(name: str | None = None) -> DemucsWeights:
    return active().find_demucs(name)


def resolve_demucs(name: str | None = None) -> DemucsWeights:
    return active().resolve_demucs(name)


def load_demucs(name: str | None = None) -> Any:
    return active().load_demucs(name)


def find_vocos() -> Path:
    return active().find_vocos()
