"""How much a turn's audio costs in storage, and how fast the stores move it.

    .venv/bin/python bench/storage.py [--quick] [--no-s3]

1. Bytes per 3-minute stereo version, before (32-bit float WAV, what every version was) and after
   (`memory.storage.encode`), on the real music in ../shared/fixtures/music (30 s excerpts, scaled to
   180 s): the decoded upload (16-bit sources: exactly 24-bit, so FLAC) and the float output of the
   `master` tool (what a turn adds), with the alternatives the choice was made from: FLAC 24 (exact only
   for the upload), zstd of the raw float bytes at levels 3/6/9 and of their byte planes (byte k of every
   sample together) at level 6. (Levels 17-19 reach ~56% on results but at < 1 MB/s: not a candidate.)
2. Throughput of `put` (encode + write) and a cold `get` (read + decode; no cache in memory or on disk)
   of a 3-minute version, in MB/s of float32 audio, against the local store (a temp dir) and the S3
   store (moto's server on loopback; needs `moto[server]`).

Timings on a shared 2-core machine are noisy; run twice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.storage import LocalAudioStore, _encode_flac, encode
from tools.audio import Audio, load

MB = 1e6
TURN_S = 180.0


def _fixtures(quick: bool) -> list[Path]:
    d = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "music"
    files = sorted(d.glob("*.flac")) if d.is_dir() else []
    files = [f for f in files if "trumpet" not in f.name]  # 5 s: too short to say much
    return files[:2] if quick else files


def _mastered(audio: Audio) -> Audio:
    from tools.master import SPEC, MasterParams
    from tools.registry import ToolContext

    return SPEC.run(audio, MasterParams(), ToolContext()).audio


def _zstd(data: bytes, level: int) -> int:
    import zstandard

    return len(zstandard.ZstdCompressor(level=level).compress(data))


def _planes(audio: Audio) -> bytes:
    return audio.samples.astype("<f4").view(np.uint8).reshape(-1, 4).T.tobytes()


def sizes(files: list[Path]) -> None:
    print("1. bytes per 3-minute stereo version (MB), scaled from 30 s excerpts")
    cols = ["float WAV", "FLAC 24", "zstd raw 3", "raw 6", "raw 9", "planes 6", "chosen"]
    print(f"   {'':34s}" + "".join(f"{c:>12s}" for c in cols))
    totals: dict[str, list[float]] = {"upload": [], "result": []}
    for f in files:
        src = load(f, max_duration_s=None)
        for kind, audio in (("upload", src), ("result", _mastered(src))):
            scale = TURN_S / audio.duration_s * audio.channels / 2 / MB
            raw = audio.samples.astype("<f4").tobytes()
            suffix, chosen = encode(audio)
            flac = len(_encode_flac(audio)) if suffix == ".flac" else None
            row = [
                44 + len(raw),
                flac,
                _zstd(raw, 3),
                _zstd(raw, 6),
                _zstd(raw, 9),
                _zstd(_planes(audio), 6),
                len(chosen),
            ]
            cells = "".join(f"{v * scale:12.1f}" if v is not None else f"{'not exact':>12s}" for v in row)
            print(f"   {f.stem[:24] + ' ' + kind:34s}{cells}  {suffix}")
            totals[kind].append(len(chosen) / (44 + len(raw)))
    for kind, ratios in totals.items():
        print(
            f"   {kind}: stored {np.mean(ratios) * 100:.0f}% of float WAV on average "
            f"({TURN_S / 60:.0f}-minute stereo at 44.1 kHz: {TURN_S * 44100 * 2 * 4 / MB:.1f} MB before, "
            f"{np.mean(ratios) * TURN_S * 44100 * 2 * 4 / MB:.1f} MB after)"
        )


def _throughput(name: str, make_store, audios: list[Audio], reps: int) -> None:
    for label, audio in zip(("upload (FLAC)", "result (zstd)"), audios, strict=True):
        mb = audio.samples.nbytes / MB
        puts, gets = [], []
        for _ in range(reps):
            store = make_store()
            t = time.perf_counter()
            vid = store.put(audio)
            puts.append(time.perf_counter() - t)
            cold = make_store()  # nothing in memory, an empty disk cache
            t = time.perf_counter()
            cold.get(vid)
            gets.append(time.perf_counter() - t)
            store.remove(vid)
        print(
            f"   {name:6s} {label:14s} put {mb / np.median(puts):7.1f} MB/s   get {mb / np.median(gets):7.1f} MB/s"
            f"   ({mb:.0f} MB of float32, median of {reps})"
        )


def throughput(files: list[Path], reps: int, s3: bool) -> None:
    print("2. store throughput for a 3-minute stereo version (MB/s of float32 audio)")
    src = load(files[0], max_duration_s=None)
    reps_needed = int(np.ceil(TURN_S / src.duration_s))
    long = Audio(np.tile(src.samples, (1, reps_needed))[:, : int(TURN_S * src.sample_rate)], src.sample_rate)
    audios = [long, _mastered(long)]
    with tempfile.TemporaryDirectory() as tmp:
        _throughput("local", lambda: LocalAudioStore(Path(tmp) / "audio"), audios, reps)
        if not s3:
            return
        try:
            from tests.s3server import S3Server
        except ImportError as exc:
            print(f"   s3: skipped ({exc})")
            return
        server = S3Server()
        try:
            from memory.objectstore import open_s3_store

            bucket = server.new_bucket()
            n = [0]

            def s3_store():
                n[0] += 1
                return open_s3_store(
                    f"s3://{bucket}/bench",
                    endpoint_url=server.endpoint,
                    access_key_id="bench",
                    secret_access_key="bench",
                    allow_http=True,
                    cache_dir=Path(tmp) / f"cache{n[0]}",
                    cache_bytes=1 << 30,
                )

            _throughput("s3", s3_store, audios, reps)
        finally:
            server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two recordings, one repetition")
    ap.add_argument("--no-s3", action="store_true", help="the local store only")
    args = ap.parse_args()
    files = _fixtures(args.quick)
    if not files:
        print("no recordings in ../shared/fixtures/music", file=sys.stderr)
        return 2
    sizes(files)
    throughput(files, 1 if args.quick else 3, not args.no_s3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
