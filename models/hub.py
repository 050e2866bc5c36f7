"""`mixpilot models pull`: fetch published weights once, with consent, verified, installed atomically.

The catalogue (what to fetch, the checksums) and where installed weights are looked up live in
`models.weights`; this module only moves bytes:

- **Demucs** files from the URL the demucs package's remote list names
  (``https://dl.fbaipublicfiles.com/demucs/<path>``, or ``<mirror>/demucs/<path>``), with an HTTP
  ``Range`` resume of a partial download and a progress bar; each file's sha256 must start with the
  checksum in its published name.
- **Vocos** through ``huggingface_hub.hf_hub_download`` at the pinned revision (``endpoint`` =
  the mirror when one is set, else ``HF_ENDPOINT`` as huggingface_hub reads it); its own resume
  and progress bar; the sha256 of the weights must match the pin.

A pull holds ``<models dir>/.partial/<model>.lock`` (`filelock`): a second pull of the same model waits
for the first and then finds it installed. Files land in ``<models dir>/.partial/<model>/`` while they download and move into place (an
``os.replace`` on the same file system) only when every file of the model has passed its check:
a checksum mismatch or a broken transfer installs nothing. Every failure is one
`ModelLoadingError` with a one-line message.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from models.weights import (
    DEMUCS_ROOT_URL,
    HF_ENDPOINT_DEFAULT,
    ModelCard,
    ModelLoadingError,
    ModelRepo,
    ModelState,
    RemoteFile,
    check_sha256,
)

PARTIAL_DIR = ".partial"
CHUNK = 1 << 16
OFFLINE_HINT = "check the connection, or set MIXPILOT_MODEL_MIRROR to a server that hosts the weights"


def demucs_url(repo: ModelRepo, rf: RemoteFile) -> str:
    base = repo.mirror.rstrip("/") + "/demucs/" if repo.mirror else DEMUCS_ROOT_URL
    return base + str(rf.url_path)


def hf_endpoint(repo: ModelRepo) -> str:
    """Where Vocos comes from: the mirror, else huggingface_hub's own endpoint (``HF_ENDPOINT``)."""
    if repo.mirror:
        return repo.mirror.rstrip("/")
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except ModuleNotFoundError:
        return HF_ENDPOINT_DEFAULT


def source_of(repo: ModelRepo, card: ModelCard) -> str:
    """Where ``pull`` would fetch ``card`` from, as one line."""
    if card.kind == "demucs":
        return demucs_url(repo, card.files[0]).rsplit("/", 1)[0] + "/"
    rf = card.files[0]
    return f"{hf_endpoint(repo)}/{rf.hf_repo} @ {rf.revision}"


def pull(
    repo: ModelRepo,
    name: str,
    *,
    progress: bool = True,
    timeout_s: float = 30.0,
    wait_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> ModelState:
    """Fetch, check and install model ``name`` into ``repo.models_dir``; a no-op when it is installed and
    its checksums match. Returns the new state; raises `ModelLoadingError` with one line.

    One pull of a model at a time per models dir (an OS file lock, released when its process ends, however
    it ends): a second one says so and waits up to ``wait_s`` seconds (None: as long as it takes; 0: not
    at all, `ModelLoadingError`), then finds the model installed and fetches nothing."""
    card = repo.card(name)
    if repo.models_dir is None:
        raise ModelLoadingError("no models dir configured (set MIXPILOT_MODELS_DIR)")
    say = log or (lambda s: None)
    with _pull_lock(repo.models_dir, card.name, wait_s, say):
        return _pull_locked(repo, card, repo.models_dir, progress=progress, timeout_s=timeout_s, say=say)


@contextmanager
def _pull_lock(
    models_dir: Path, name: str, wait_s: float | None, say: Callable[[str], None]
) -> Iterator[None]:
    from filelock import FileLock, Timeout

    path = models_dir / PARTIAL_DIR / f"{name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadingError(f"cannot write to the models dir {models_dir} ({exc.strerror})") from None
    lock = FileLock(str(path))
    busy = f"another `mixpilot models pull {name}` is running on {models_dir}"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait_s is not None and wait_s <= 0:
            raise ModelLoadingError(f"{busy}; wait for it to finish, then run this again") from None
        say(f"{name}: {busy}; waiting for it to finish")
        try:
            lock.acquire(timeout=-1 if wait_s is None else wait_s)
        except Timeout:
            raise ModelLoadingError(f"{busy} and did not finish within {wait_s:g} s") from None
    try:
        yield
    finally:
        lock.release()


def _pull_locked(
    repo: ModelRepo,
    card: ModelCard,
    models_dir: Path,
    *,
    progress: bool,
    timeout_s: float,
    say: Callable[[str], None],
) -> ModelState:
    final = models_dir / card.folder
    staging = models_dir / PARTIAL_DIR / card.name
    if _installed_ok(final, card):
        say(f"{card.name}: already installed in {final}")
        return repo.status(card.name)
    staging.mkdir(parents=True, exist_ok=True)
    if card.kind == "demucs":
        for rf in card.files:
            dest = staging / rf.name
            if not (dest.is_file() and check_sha256(dest, rf.sha256) is None):
                _download(demucs_url(repo, rf), dest, progress=progress, timeout_s=timeout_s, label=rf.name)
            _check_or_discard(dest, rf, card)
        _install_demucs(card, staging, final)
    else:
        for rf in card.files:
            got = _hf_download(repo, rf, staging, progress=progress, timeout_s=timeout_s)
            _check_or_discard(got, rf, card)
        _install_folder(card, staging, final)
    shutil.rmtree(staging, ignore_errors=True)
    state = repo.status(card.name)
    if not state.installed:  # pragma: no cover - the install just put the files there
        raise ModelLoadingError(f"{card.name}: installed but not found ({state.detail})")
    say(f"{card.name}: installed in {final}")
    return state


def _installed_ok(final: Path, card: ModelCard) -> bool:
    files = [final / rf.name for rf in card.files]
    if not all(f.is_file() for f in files):
        return False
    return all(check_sha256(f, rf.sha256) is None for f, rf in zip(files, card.files))


def _check_or_discard(path: Path, rf: RemoteFile, card: ModelCard) -> None:
    why = check_sha256(path, rf.sha256)
    if why is not None:
        path.unlink(missing_ok=True)
        raise ModelLoadingError(f"{card.name}: checksum mismatch, refused ({why}); nothing was installed")


def _install_demucs(card: ModelCard, staging: Path, final: Path) -> None:
    """Checkpoints into the shared demucs folder (each an atomic rename), then the bag description."""
    import yaml

    final.mkdir(parents=True, exist_ok=True)
    for rf in card.files:
        os.replace(staging / rf.name, final / rf.name)
    tmp = final / f".{card.name}.yaml.tmp"
    tmp.write_text(yaml.safe_dump(dict(card.bag), sort_keys=False))
    os.replace(tmp, final / f"{card.name}.yaml")


def _install_folder(card: ModelCard, staging: Path, final: Path) -> None:
    """The model's whole folder at once: build it beside the target, swap it in."""
    tmp = final.parent / f".{final.name}.new"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rf in card.files:
        os.replace(staging / rf.name, tmp / rf.name)
    old = final.parent / f".{final.name}.old"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------- HTTP (Demucs)


def _download(url: str, dest: Path, *, progress: bool, timeout_s: float, label: str) -> None:
    """GET ``url`` into ``dest`` via ``dest.part``, resuming a partial file with a Range request."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "mixpilot", "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole
            os.replace(part, dest)
            return
        raise ModelLoadingError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelLoadingError(f"cannot reach {_host(url)} ({reason}); {OFFLINE_HINT}") from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the range: start again
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = _bar(total, have, label, progress)
        got = have
        try:
            with open(part, "ab" if have else "wb") as f:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
        except Exception as exc:  # http.client.IncompleteRead, ConnectionResetError, a timeout, ...
            raise _interrupted(got, total, exc) from None
        finally:
            bar.close()
    if total is not None and got < total:
        raise _interrupted(got, total, None)
    os.replace(part, dest)


def _interrupted(got: int, total: int | None, exc: BaseException | None) -> ModelLoadingError:
    of = f" of {total / 1e6:.1f} MB" if total else ""
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return ModelLoadingError(
        f"transfer interrupted after {got / 1e6:.1f} MB{of}{why}; run the same command again to resume"
    )


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int | None, initial: int, label: str, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return _NoBar()
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        file=sys.stderr,
        leave=True,
    )


# ---------------------------------------------------------------------------- Hugging Face (Vocos)


def _hf_download(repo: ModelRepo, rf: RemoteFile, staging: Path, *, progress: bool, timeout_s: float) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ModuleNotFoundError:
        raise ModelLoadingError(
            "pulling Vocos needs the huggingface_hub package: pip install huggingface_hub"
        ) from None
    _reachable(f"{hf_endpoint(repo)}/{rf.hf_repo}/resolve/{rf.revision}/{rf.name}", rf, timeout_s)
    kwargs: dict[str, Any] = {
        "revision": rf.revision,
        "local_dir": str(staging),
        "etag_timeout": timeout_s,
        "endpoint": hf_endpoint(repo),
    }
    if not progress:
        kwargs["tqdm_class"] = _quiet_tqdm()
    import logging

    hf_log = logging.getLogger("huggingface_hub")
    level = hf_log.level
    hf_log.setLevel(logging.ERROR)  # its retry chatter; the failure comes back as one line
    try:
        path = hf_hub_download(str(rf.hf_repo), rf.name, **kwargs)
    except Exception as exc:  # huggingface_hub raises many kinds; one line each
        raise ModelLoadingError(_hf_error_line(repo, rf, exc)) from None
    finally:
        hf_log.setLevel(level)
    return Path(str(path))


def _reachable(url: str, rf: RemoteFile, timeout_s: float) -> None:
    """Fail fast, in one line, when the endpoint cannot be reached at all (huggingface_hub would retry
    with back-off for half a minute); any HTTP answer counts as reachable."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "mixpilot"})
    try:
        urllib.request.urlopen(req, timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelLoadingError(
            f"cannot reach {_host(url)} for {rf.hf_repo}/{rf.name} ({reason}); {OFFLINE_HINT}"
        ) from None


def _hf_error_line(repo: ModelRepo, rf: RemoteFile, exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    where = hf_endpoint(repo)
    offline = name in (
        "LocalEntryNotFoundError",
        "OfflineModeIsEnabled",
        "ConnectError",
        "ConnectTimeout",
        "ConnectionError",
        "ReadTimeout",
        "TimeoutException",
    )
    if offline or "connect" in text.lower():
        return f"cannot reach {_host(where) or where} for {rf.hf_repo}/{rf.name}; {OFFLINE_HINT}"
    return f"{rf.hf_repo}/{rf.name} @ {rf.revision} from {where}: {name}: {text[:200]}"


def _quiet_tqdm() -> Any:
    from tqdm.auto import tqdm

    class Quiet(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet
