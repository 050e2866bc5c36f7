"""An independent loudness meter for tests: ffmpeg's `ebur128` filter (libavfilter's own code).

    from tests.ffmeter import ebur128, require_ffmpeg

    exe = require_ffmpeg()            # skips the test when there is no ffmpeg
    m = ebur128("song.flac")          # or ebur128(audio) for a tools.audio.Audio
    m.integrated_lufs, m.true_peak_dbtp, m.lra_lu, m.max_momentary_lufs, m.max_short_term_lufs

Values come from the filter's per-frame metadata (3 decimals, 10 Hz) rather than the summary
(1 decimal): integrated loudness and LRA are the last frame's, true peak is the largest
per-channel ``true_peak`` (ffmpeg oversamples to 192 kHz), M/S maxima are over its 10 Hz frames.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.audio import Audio, ffmpeg_executable


@dataclass(frozen=True)
class FFMeter:
    integrated_lufs: float
    lra_lu: float
    true_peak_dbtp: float
    max_momentary_lufs: float
    max_short_term_lufs: float


def require_ffmpeg() -> str:
    """The ffmpeg executable, or skip the calling test with a clear reason."""
    import pytest

    exe = ffmpeg_executable()
    if exe is None:
        pytest.skip("ffmpeg not found (install ffmpeg or the imageio-ffmpeg package)")
    return exe


def ebur128(source: str | os.PathLike | Audio, exe: str | None = None) -> FFMeter:
    """Measure a file (or an `Audio`, written to a temporary 32-bit float WAV) with ffmpeg."""
    exe = exe or ffmpeg_executable()
    if exe is None:
        raise RuntimeError("ffmpeg not found")
    if isinstance(source, Audio):
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "meter.wav"
            sf.write(str(path), source.samples.T, source.sample_rate, subtype="FLOAT")
            return _run(exe, path)
    return _run(exe, Path(source))


def _run(exe: str, path: Path) -> FFMeter:
    cmd = [
        exe,
        "-hide_banner",
        "-nostats",
        "-nostdin",
        "-i",
        str(path),
        "-af",
        "ebur128=peak=true:metadata=1,ametadata=print:file=-",
        "-f",
        "null",
        "-",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {out.stderr.strip().splitlines()[-1:]}")
    vals: dict[str, list[float]] = {}
    for key, val in re.findall(r"lavfi\.r128\.([\w.]+)=(\S+)", out.stdout):
        try:
            vals.setdefault(key, []).append(float(val))
        except ValueError:
            pass
    if "I" not in vals:
        raise RuntimeError("ffmpeg printed no ebur128 metadata")
    peaks = [v for k, v in vals.items() if k.startswith("true_peaks_ch")]
    tp = max(max(p) for p in peaks) if peaks else max(vals.get("true_peak", [0.0]))

    def db(x: float) -> float:
        return 20.0 * math.log10(x) if x > 0 else -math.inf

    return FFMeter(
        integrated_lufs=vals["I"][-1],
        lra_lu=vals.get("LRA", [0.0])[-1],
        true_peak_dbtp=db(tp),
        max_momentary_lufs=max(vals.get("M", [-math.inf])),
        max_short_term_lufs=max(vals.get("S", [-math.inf])),
    )
