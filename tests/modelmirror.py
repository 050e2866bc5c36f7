"""A local model mirror for tests: tiny randomly initialised checkpoints of the published formats, served
over HTTP the way the real hosts serve them.

- Demucs: ``<root>/demucs/hybrid_transformer/955717e8-<sha8>.th``, a pickled package written by
  ``demucs.states.save_with_checksum`` (the format of the published ``.th`` files) holding a small
  HTDemucs, plus a demucs-style remote list (``files.txt`` and ``htdemucs.yaml``) naming it;
- Vocos: a Hugging Face endpoint, ``<root>/charactr/vocos-mel-24khz/resolve/<rev>/<file>``, answering
  HEAD with the headers ``huggingface_hub`` reads (``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``,
  sizes) and GET with ``Range`` support, at the catalogue's pinned commit; ``config.yaml`` has the
  published layout (smaller dims).

`MirrorServer.cut` makes the next GET of a path stop after N bytes (an interrupted transfer);
`MirrorServer.hold` makes GETs of a path trickle until released (a pull that is still running);
`MirrorServer.requests` records (method, path, Range header).

``python -m tests.modelmirror ROOT REMOTE ARGS...`` runs the ``mixpilot`` CLI with ``ARGS``, its catalogue
at the checksums of the mirror written to ``ROOT`` (``REMOTE``: its demucs remote list), as
``Mirror.cards`` gives them: a second process pulling from the same mirror.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from models.weights import VOCOS_REVISION

#: the mirror serves Vocos at the catalogue's pinned commit, as the hub does
VOCOS_COMMIT = VOCOS_REVISION
DEMUCS_SIG = "955717e8"  # htdemucs's signature in the demucs remote list

#: ``config.yaml`` of ``charactr/vocos-mel-24khz`` as published (461 bytes; its sha256 is the catalogue's pin)
PUBLISHED_VOCOS_CONFIG = """\
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024
    hop_length: 256
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: 512
    intermediate_dim: 1536
    num_layers: 8

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: 512
    n_fft: 1024
    hop_length: 256
    padding: center
"""
#: the same layout, smaller dims (a checkpoint of a few hundred kB)
TINY_VOCOS_CONFIG = (
    PUBLISHED_VOCOS_CONFIG.replace("dim: 512", "dim: 64")
    .replace("intermediate_dim: 1536", "intermediate_dim: 192")
    .replace("num_layers: 8", "num_layers: 2")
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Mirror:
    root: Path  # served at the server's base URL
    remote: Path  # demucs-style remote list (files.txt, htdemucs.yaml)
    demucs_file: Path
    vocos_files: dict[str, Path]

    def cards(self, *, vocos_sha256: dict[str, str] | None = None) -> dict:
        from models.weights import default_cards

        sha = {name: sha256(f) for name, f in self.vocos_files.items()}
        return default_cards(
            demucs_remote=self.remote,
            vocos_revision=VOCOS_COMMIT,
            vocos_sha256=sha if vocos_sha256 is None else vocos_sha256,
        )


#: the tiny HTDemucs: the published class with small widths, 1 s segments (so a few seconds make several)
TINY_HTDEMUCS_KWARGS: dict = dict(
    sources=["drums", "bass", "other", "vocals"],
    audio_channels=2,
    channels=4,
    depth=4,
    t_layers=1,
    t_heads=2,
    t_hidden_scale=1.0,
    dconv_comp=2,
    segment=1.0,
    samplerate=44100,
)


def tiny_htdemucs():
    """A tiny randomly initialised HTDemucs (seed 0), in eval mode."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    return HTDemucs(**TINY_HTDEMUCS_KWARGS).eval()


def save_tiny_htdemucs(path: Path) -> None:
    """`tiny_htdemucs`, saved the way demucs publishes checkpoints (the file name gains the checksum)."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import save_with_checksum

    package = {
        "klass": HTDemucs,
        "args": (),
        "kwargs": TINY_HTDEMUCS_KWARGS,
        "state": tiny_htdemucs().state_dict(),
    }
    save_with_checksum(package, path)


def build_mirror(root: Path) -> Mirror:
    """Write the tiny checkpoints and the remote list under ``root``."""
    import torch
    import yaml

    from models.vocos import Vocos

    ht = root / "demucs" / "hybrid_transformer"
    ht.mkdir(parents=True)
    save_tiny_htdemucs(ht / f"{DEMUCS_SIG}.th")
    demucs_file = next(ht.glob(f"{DEMUCS_SIG}-*.th"))
    remote = root.parent / (root.name + "-remote")
    remote.mkdir()
    (remote / "files.txt").write_text(
        f"# Hybrid Transformer models\nroot: hybrid_transformer/\n{demucs_file.name}\n"
    )
    (remote / "htdemucs.yaml").write_text(f"models: ['{DEMUCS_SIG}']\n")

    hf = root / "charactr" / "vocos-mel-24khz" / "resolve" / VOCOS_COMMIT
    hf.mkdir(parents=True)
    (hf / "config.yaml").write_text(TINY_VOCOS_CONFIG)
    torch.save(Vocos.from_config(yaml.safe_load(TINY_VOCOS_CONFIG)).state_dict(), hf / "pytorch_model.bin")
    return Mirror(
        root=root,
        remote=remote,
        demucs_file=demucs_file,
        vocos_files={f: hf / f for f in ("config.yaml", "pytorch_model.bin")},
    )


@dataclass
class MirrorServer:
    root: Path
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    cuts: dict[str, int] = field(default_factory=dict)
    holds: dict[str, threading.Event] = field(default_factory=dict)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def cut(self, url_path: str, after_bytes: int) -> None:
        self.cuts[url_path] = after_bytes

    def hold(self, url_path: str) -> threading.Event:
        """GETs of ``url_path`` trickle (a byte every 0.2 s: slow, never timed out) until the returned
        event is set, then send the rest."""
        self.holds[url_path] = threading.Event()
        return self.holds[url_path]

    def start(self) -> MirrorServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _file(self) -> Path | None:
                path = self.path.split("?", 1)[0]
                # the hub answers /<repo>/resolve/main/... too: map any revision to the one commit served
                parts = path.strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    parts[3] = VOCOS_COMMIT
                p = server.root.joinpath(*parts)
                return p if p.is_file() else None

            def _headers(self, f: Path, status: int, start: int, end: int) -> None:
                self.send_response(status)
                size = f.stat().st_size
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                if "/resolve/" in self.path:
                    digest = sha256(f)
                    self.send_header("X-Repo-Commit", VOCOS_COMMIT)
                    self.send_header("ETag", f'"{digest}"')
                    if f.suffix == ".bin":  # LFS files: the hub sends the sha256 as the linked etag
                        self.send_header("X-Linked-Etag", f'"{digest}"')
                        self.send_header("X-Linked-Size", str(size))
                self.end_headers()

            def _range(self, size: int) -> tuple[int, int, int]:
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].partition("-")
                    start = int(a or 0)
                    end = int(b) + 1 if b else size
                    return 206, start, min(end, size)
                return 200, 0, size

            def do_HEAD(self) -> None:
                server.requests.append(("HEAD", self.path, self.headers.get("Range")))
                f = self._file()
                if f is None:
                    self.send_error(404)
                    return
                self._headers(f, 200, 0, f.stat().st_size)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, self.headers.get("Range")))
                f = self._file()
                if f is None:
                    self.send_error(404)
                    return
                size = f.stat().st_size
                status, start, end = self._range(size)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._headers(f, status, start, end)
                data = f.read_bytes()[start:end]
                held = server.holds.get(self.path)
                while held is not None and not held.is_set() and data:
                    self.wfile.write(data[:1])
                    self.wfile.flush()
                    data = data[1:]
                    held.wait(0.2)
                cut = server.cuts.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def closed_port_url() -> str:
    """A URL on this machine where nothing listens (an offline host)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


if __name__ == "__main__":
    import sys

    import models.weights
    from app.cli import main

    root, remote = Path(sys.argv[1]), Path(sys.argv[2])
    hf = root / "charactr" / "vocos-mel-24khz" / "resolve" / VOCOS_COMMIT
    m = Mirror(
        root=root,
        remote=remote,
        demucs_file=next((root / "demucs" / "hybrid_transformer").glob(f"{DEMUCS_SIG}-*.th")),
        vocos_files={f: hf / f for f in ("config.yaml", "pytorch_model.bin")},
    )
    cards = m.cards()
    models.weights.default_cards = lambda **kw: cards  # type: ignore[assignment]
    sys.exit(main(sys.argv[3:]))
