"""The one audio type of mixpilot, and the edge where files become `Audio` and back.

`Audio` holds float32 samples shaped ``(channels, frames)`` and the sample rate. It is
immutable: tools build new `Audio` objects, they never change the caller's.

Files are read and written only here (`load`, `save`). Every problem with an input
raises `AudioError` with a message that says what is wrong and, where there is one,
the fix.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from soundfile import SoundFile

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
DEFAULT_MAX_DURATION_S = 30 * 60.0

#: formats `save` can write, and the bit depths each accepts
WRITE_FORMATS: dict[str, tuple[int, ...]] = {"wav": (16, 24, 32), "flac": (16, 24), "mp3": ()}
MP3_BITRATES_KBPS = (96, 128, 160, 192, 224, 256, 320)
_WRITE_BLOCK = 1 << 18  # frames per block when writing PCM
_FFMPEG_ONLY = {".m4a", ".aac", ".mp4", ".m4b", ".alac", ".wma", ".opus", ".webm"}


class AudioError(ValueError):
    """Bad audio input or output: the message says what is wrong and how to fix it."""


class AudioTooLarge(AudioError):
    """The input decodes to more samples than the budget allows (`load`'s ``max_samples``)."""


@dataclass(frozen=True, eq=False)
class Audio:
    """Float32 samples shaped (channels, frames) with their sample rate."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        s = np.asarray(self.samples)
        if s.ndim == 1:
            s = s[np.newaxis, :]
        if s.ndim != 2:
            raise AudioError(f"audio samples must be shaped (channels, frames), got {s.shape}")
        if s.dtype != np.float32:
            s = s.astype(np.float32)
        if not s.flags.c_contiguous:
            s = np.ascontiguousarray(s)
        if s.flags.writeable:
            if s is self.samples or np.shares_memory(s, np.asarray(self.samples)):
                s = s.copy()
            s.flags.writeable = False
        object.__setattr__(self, "samples", s)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.sample_rate)

    def with_samples(self, samples: np.ndarray, sample_rate: int | None = None) -> Audio:
        """A new `Audio` with other samples (same rate unless given)."""
        return Audio(samples, self.sample_rate if sample_rate is None else sample_rate)

    def mono(self) -> Audio:
        """Channel average, as a one-channel `Audio`."""
        if self.channels == 1:
            return self
        return self.with_samples(self.samples.mean(axis=0, keepdims=True))

    def to_channels(self, channels: int) -> Audio:
        """Up-mix mono to N identical channels, or down-mix to mono/stereo."""
        if channels == self.channels:
            return self
        if self.channels == 1:
            return self.with_samples(np.repeat(self.samples, channels, axis=0))
        if channels == 1:
            return self.mono()
        if channels == 2:
            # simple fold-down: odd channels left, even right
            left = self.samples[0::2].mean(axis=0)
            right = self.samples[1::2].mean(axis=0)
            return self.with_samples(np.stack([left, right]))
        raise AudioError(f"cannot convert {self.channels} channels to {channels}")

    def resample(self, sample_rate: int, quality: str = "VHQ") -> Audio:
        """High-quality resampling with soxr (linear phase)."""
        sample_rate = int(sample_rate)
        if sample_rate == self.sample_rate:
            return self
        _check_rate(sample_rate)
        return self.with_samples(resample(self.samples, self.sample_rate, sample_rate, quality), sample_rate)

    def __repr__(self) -> str:
        return f"Audio(channels={self.channels}, frames={self.frames}, sample_rate={self.sample_rate})"


def resample(samples: np.ndarray, sr_in: int, sr_out: int, quality: str = "VHQ") -> np.ndarray:
    """Resample (channels, frames) float32 with soxr."""
    import soxr

    if sr_in == sr_out:
        return samples
    out = soxr.resample(np.ascontiguousarray(samples.T), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, samples.shape[0]).T)


def _check_rate(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz; "
            "resample the file first"
        )


def validate(
    audio: Audio,
    *,
    require_signal: bool = False,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    name: str = "audio",
) -> Audio:
    """Check an `Audio` is something mixpilot can process; raise `AudioError` if not."""
    _check_rate(audio.sample_rate)
    if audio.channels < 1 or audio.channels > MAX_CHANNELS:
        raise AudioError(f"{name} has {audio.channels} channels; mixpilot handles 1–{MAX_CHANNELS}")
    if audio.frames == 0:
        raise AudioError(f"{name} has no samples")
    if max_duration_s is not None and audio.duration_s > max_duration_s:
        raise AudioError(
            f"{name} is {audio.duration_s / 60:.1f} min long; the limit is {max_duration_s / 60:.1f} min "
            "(set MIXPILOT_MAX_DURATION_S to change it)"
        )
    if not all_finite(audio.samples):
        bad = int((~np.isfinite(audio.samples)).sum())
        raise AudioError(f"{name} contains {bad} NaN or infinite samples; the file is corrupt")
    if require_signal and not np.any(audio.samples):
        raise AudioError(f"{name} is silent (all samples are zero); there is nothing to process")
    return audio


def all_finite(x: np.ndarray) -> bool:
    """No NaN or infinity in `x`, without a full-length mask: a NaN or an infinity makes the sum
    non-finite, so a finite sum settles it in one reading pass; only a non-finite sum (those, or an
    overflow of huge finite values) is checked again, in slices."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.sum(x))
    if math.isfinite(total):
        return True
    flat = x.reshape(-1)
    return all(bool(np.isfinite(flat[s : s + _WRITE_BLOCK]).all()) for s in range(0, flat.size, _WRITE_BLOCK))


# ---------------------------------------------------------------------------- loading


def ffmpeg_executable() -> str | None:
    """System ffmpeg, else the one the imageio-ffmpeg package carries, else None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return None


def load(
    path: str | os.PathLike[str],
    *,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    require_signal: bool = False,
    max_samples: int | None = None,
) -> Audio:
    """Read an audio file (WAV, FLAC, OGG/Vorbis, MP3, AIFF; M4A/AAC with ffmpeg) as `Audio`.

    `max_samples` bounds the decoded size (frames × channels; 4 bytes each as float32): it is
    checked from the header before decoding, and the decoder never reads past it (a header that
    understates the length cannot make it decode more).

    Raises `AudioError` for a missing, empty, unreadable, truncated, too large or otherwise unusable file.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: file not found")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    size = p.stat().st_size
    if size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes)")

    if p.suffix.lower() in _FFMPEG_ONLY:
        audio = _load_ffmpeg(p, max_duration_s, max_samples)
    else:
        audio = _load_soundfile(p, size, max_duration_s, max_samples)
    return validate(audio, require_signal=require_signal, max_duration_s=max_duration_s, name=str(p))


def decoded_bytes(frames: int, channels: int) -> int:
    """Bytes of float32 samples that `frames` × `channels` decode to."""
    return int(frames) * int(channels) * 4


def check_decoded_size(
    p: Path | str, frames: int, channels: int, sample_rate: int, max_samples: int | None
) -> None:
    """Raise `AudioError` when `frames` × `channels` is over `max_samples` (before anything is decoded)."""
    if max_samples is None or frames * channels <= max_samples:
        return
    minutes = frames / max(sample_rate, 1) / 60
    limit_min = max_samples / max(channels, 1) / max(sample_rate, 1) / 60
    raise AudioTooLarge(
        f"{p}: decodes to {decoded_bytes(frames, channels) / 1e6:.0f} MB of samples ({minutes:.1f} min at "
        f"{sample_rate} Hz × {channels} channels); the limit is {decoded_bytes(max_samples, 1) / 1e6:.0f} MB "
        f"({limit_min:.1f} min at this rate and channel count): send a shorter file, or fewer channels or a "
        "lower sample rate"
    )


def _load_soundfile(
    p: Path, size: int, max_duration_s: float | None, max_samples: int | None = None
) -> Audio:
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile's own words are cryptic; say it plainly
        if ffmpeg_executable() and _looks_like_container(p):
            return _load_ffmpeg(p, max_duration_s, max_samples)
        raise AudioError(f"{p}: not a readable audio file ({_first_line(exc)})") from None
    _check_rate(int(info.samplerate)) if info.samplerate else None
    if info.channels > MAX_CHANNELS:
        raise AudioError(f"{p}: has {info.channels} channels; mixpilot handles 1–{MAX_CHANNELS}")
    if max_duration_s is not None and info.frames > 0 and info.frames / info.samplerate > max_duration_s:
        raise AudioError(
            f"{p}: is {info.frames / info.samplerate / 60:.1f} min long; the limit is {max_duration_s / 60:.1f} min "
            "(set MIXPILOT_MAX_DURATION_S to change it)"
        )
    if info.frames > 0:
        check_decoded_size(p, info.frames, info.channels, info.samplerate, max_samples)
    if info.format in ("WAV", "WAVEX", "RF64"):
        _check_wav_complete(p, size)
    # never decode past the budget, whatever the header said (one frame more tells that it was over)
    limit = max_samples // max(info.channels, 1) + 1 if max_samples is not None else -1
    try:
        wav = (
            _read_wav_pcm(p, limit) if info.format == "WAV" and info.subtype in ("PCM_16", "PCM_24") else None
        )
        samples, sr = wav if wav is not None else _read_planar(p, limit, max(info.frames, 0))
    except Exception as exc:
        raise AudioError(f"{p}: the file is damaged or truncated ({_first_line(exc)})") from None
    frames = samples.shape[1]
    if max_samples is not None and frames >= limit:
        del samples
        check_decoded_size(p, max(limit, info.frames), info.channels, info.samplerate, max_samples)
    if info.format in ("FLAC", "AIFF", "OGG") and info.frames > 0 and frames < info.frames:
        raise AudioError(
            f"{p}: the file is truncated (header promises {info.frames} frames, only {frames} could be read)"
        )
    if frames == 0:
        raise AudioError(f"{p}: contains no audio frames")
    samples = np.ascontiguousarray(samples)
    samples.flags.writeable = False  # ours alone: `Audio` then keeps it instead of copying it
    return Audio(samples, int(sr))


_READ_BLOCK = 1 << 18  # frames per block when decoding


def _read_planar(p: Path, limit: int, expected: int) -> tuple[np.ndarray, int]:
    """Float32 samples shaped (channels, frames), at most `limit` frames (-1: all), and the rate.

    Decoded block by block straight into the planar array (`expected` frames from the header size
    it; it grows if the file holds more), so a long file needs no interleaved full-length copy.
    """
    import soundfile as sf

    if expected <= 0:  # no length in the header (streamed FLAC): decode at once, up to the limit
        data, sr = sf.read(str(p), dtype="float32", always_2d=True, frames=limit)
        return np.ascontiguousarray(data.T), int(sr)
    with sf.SoundFile(str(p)) as f:
        cap = expected if limit < 0 else min(expected, limit)
        out = np.empty((f.channels, max(cap, 1)), np.float32)
        n = 0
        while limit < 0 or n < limit:
            block = f.read(
                _READ_BLOCK if limit < 0 else min(_READ_BLOCK, limit - n), dtype="float32", always_2d=True
            )
            if block.shape[0] == 0:
                break
            if n + block.shape[0] > out.shape[1]:  # more than the header said
                grown = np.empty((f.channels, max(2 * out.shape[1], n + block.shape[0])), np.float32)
                grown[:, :n] = out[:, :n]
                out = grown
            out[:, n : n + block.shape[0]] = block.T
            n += block.shape[0]
        return (out if n == out.shape[1] else out[:, :n]), int(f.samplerate)


def _read_wav_pcm(p: Path, limit: int) -> tuple[np.ndarray, int] | None:
    """A plain 16/24-bit PCM WAV (RIFF, ``fmt `` then ``data``) as planar float32 and its rate, at most
    `limit` frames (-1: all): read block by block and decoded in one compiled pass each
    (`tools.dsp.pcm_decode`: the values libsndfile gives, without its interleaved float copy and our
    transpose: a 3-minute stereo 24-bit file about 0.1 s -> 0.03 s). None for anything else (no numba,
    an extensible or odd header, a data chunk without a size): `_read_planar` reads it then."""
    from tools import dsp

    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        fmt: tuple[int, ...] | None = None
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"fmt ":
                body = f.read(csize + (csize & 1))
                if len(body) < 16:
                    return None
                fmt = struct.unpack("<HHIIHH", body[:16])
                continue
            if cid == b"data":
                break
            f.seek(csize + (csize & 1), os.SEEK_CUR)
        if fmt is None or csize in (0, 0xFFFFFFFF):
            return None
        tag, channels, rate, _, align, bits = fmt
        width = bits // 8
        if tag != 1 or bits not in (16, 24) or channels < 1 or align != channels * width:
            return None
        frames = csize // align if limit < 0 else min(csize // align, limit)
        if not dsp.pcm_decode(np.empty(0, np.uint8), width, np.empty((channels, 0), np.float32), 0):
            return None  # the compiled decoder is not loaded yet (a first load does not wait for numba)
        out = np.empty((channels, frames), np.float32)
        buf = np.empty(min(frames, _READ_BLOCK) * align, np.uint8)
        done = 0
        while done < frames:
            n = min(frames - done, _READ_BLOCK)
            got = f.readinto(buf[: n * align].data)
            n = (got or 0) // align
            if n == 0:
                break
            if not dsp.pcm_decode(buf[: n * align], width, out, done):
                return None
            done += n
    return (out if done == frames else out[:, :done]), int(rate)


def _check_wav_complete(p: Path, size: int) -> None:
    """A WAV whose data chunk claims more bytes than the file holds was cut off."""
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return
        if head[:4] == b"RF64":
            return  # sizes live in the ds64 chunk; libsndfile checks those
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            hdr = f.read(8)
            if len(hdr) < 8:
                return
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                if csize != 0xFFFFFFFF and pos + 8 + csize > size:
                    have = size - pos - 8
                    raise AudioError(
                        f"{p}: the file is truncated (its data chunk promises {csize} bytes, the file holds {have})"
                    )
                return
            pos += 8 + csize + (csize & 1)


def _looks_like_container(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(12)
    return head[4:8] == b"ftyp" or head[:4] == b"\x1aE\xdf\xa3" or head[:2] in (b"\xff\xf1", b"\xff\xf9")


def _load_ffmpeg(p: Path, max_duration_s: float | None, max_samples: int | None = None) -> Audio:
    exe = ffmpeg_executable()
    if exe is None:
        raise AudioError(
            f"{p}: {p.suffix or 'this'} files need ffmpeg to decode; install ffmpeg or convert to WAV/FLAC first"
        )
    probe = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-i", str(p)], capture_output=True, text=True, errors="replace"
    )
    sr, ch = _parse_ffmpeg_stream(probe.stderr)
    if sr is None:
        raise AudioError(f"{p}: not a readable audio file (ffmpeg found no audio stream)")
    _check_rate(sr)
    if ch > MAX_CHANNELS:
        raise AudioError(f"{p}: has {ch} channels; mixpilot handles 1–{MAX_CHANNELS}")
    duration = _parse_ffmpeg_duration(probe.stderr)
    if duration is not None:
        check_decoded_size(p, int(duration * sr), ch, sr, max_samples)
    cmd = [exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(p), "-map", "0:a:0"]
    caps = [max_duration_s + 1.0] if max_duration_s is not None else []
    if max_samples is not None:  # the decoder stops one frame past the budget, whatever the header said
        caps.append((max_samples // max(ch, 1) + 1) / sr)
    if caps:
        cmd += ["-t", f"{min(caps):.6f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-"]
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0:
        raise AudioError(f"{p}: the file is damaged ({_first_line(out.stderr.decode(errors='replace'))})")
    data = np.frombuffer(out.stdout, dtype="<f4")
    if data.size == 0:
        raise AudioError(f"{p}: contains no audio frames")
    if max_samples is not None and data.size > max_samples:
        check_decoded_size(p, data.size // max(ch, 1), ch, sr, max_samples)
    data = data[: data.size - data.size % ch].reshape(-1, ch).T
    return Audio(np.ascontiguousarray(data), sr)


def _parse_ffmpeg_stream(text: str) -> tuple[int | None, int]:
    import re

    m = re.search(r"Audio: [^\n]*?(\d+) Hz, ([^,\n]+)", text)
    if not m:
        return None, 0
    layout = m.group(2).strip()
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
    ch = named.get(layout.split("(")[0])
    if ch is None:
        n = re.match(r"(\d+) channels", layout)
        ch = int(n.group(1)) if n else 2
    return int(m.group(1)), ch


def _parse_ffmpeg_duration(text: str) -> float | None:
    """The container's duration from ffmpeg's banner (``Duration: 00:29:00.00``), None when absent."""
    import re

    m = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# ---------------------------------------------------------------------------- saving


def tpdf_dither(samples: np.ndarray, bits: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Quantise to `bits` with triangular (TPDF, ±1 LSB) dither; returns float in [-1, 1)."""
    q = _dithered_ints(samples, bits, rng or np.random.default_rng()).astype(np.float64)
    q /= float(2 ** (bits - 1))
    return q


def _tpdf_draws(rng: np.random.Generator, n: int) -> np.ndarray:
    """Raw 64-bit draws of `rng`'s bit generator for `n` samples, one per two: sample ``k``'s TPDF noise
    is ``(a − b)·2^-16`` LSB, ``a`` and ``b`` the low and high 16 bits of the 32-bit half ``k % 2`` of
    draw ``k // 2`` (two uniforms of 16 bits each, a quarter of a draw: dither finer than 1/65536 LSB
    changes nothing audible or measurable, and the generator's work is a quarter of two 32-bit ones)."""
    raw: np.ndarray = rng.bit_generator.random_raw((n + 1) // 2)
    return raw


def _dithered_ints(samples: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """round(x·2^(bits−1) + u1 − u2), clipped to the `bits`-bit range, as int32 (u1, u2 uniform in [0, 1)
    from `_tpdf_draws`, in C order)."""
    return _ints_from_draws(samples, bits, _tpdf_draws(rng, samples.size))


def _ints_from_draws(samples: np.ndarray, bits: int, raw: np.ndarray | None) -> np.ndarray:
    """`_dithered_ints` with its draws given (None: no dither), in numpy; `tools.dsp.pcm_bytes` computes
    the same integers in one compiled pass."""
    scale = float(2 ** (bits - 1))
    q = samples.astype(np.float64)  # float64: a 24-bit step is below float32's resolution near full scale
    q *= scale
    if raw is not None:
        halves = np.empty(2 * raw.size, np.int64)  # the 32-bit halves, low first: one per sample
        halves[0::2] = raw & np.uint64(0xFFFFFFFF)
        halves[1::2] = raw >> np.uint64(32)
        words = halves[: samples.size].reshape(samples.shape)
        noise = ((words & 0xFFFF) - (words >> 16)).astype(np.float64)
        del halves, words
        noise *= 2.0**-16  # exact, as the kernel's
        q += noise
        del noise
    np.rint(q, out=q)
    np.clip(q, -scale, scale - 1, out=q)
    ints: np.ndarray = q.astype(np.int32)
    return ints


def save(
    audio: Audio,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    bit_depth: int | None = None,
    mp3_bitrate_kbps: int = 320,
    dither: bool = True,
    rng: np.random.Generator | None = None,
) -> Path:
    """Write `audio` atomically (temp file in the same folder, then rename).

    Formats: WAV 16/24-bit PCM or 32-bit float, FLAC 16/24, MP3 (CBR, `mp3_bitrate_kbps`).
    Reducing to 16 or 24 bits applies TPDF dither unless `dither=False` (its noise from `rng`: a seeded
    generator makes the file reproducible). PCM is written in blocks, so long audio needs no
    full-length temporaries.
    """
    p = Path(path)
    fmt = (format or p.suffix.lstrip(".")).lower()
    if fmt == "aif":
        fmt = "aiff"
    if fmt not in WRITE_FORMATS:
        raise AudioError(f"cannot write '{fmt or p.name}': choose one of {', '.join(WRITE_FORMATS)}")
    if fmt == "mp3" and mp3_bitrate_kbps not in MP3_BITRATES_KBPS:
        raise AudioError(f"MP3 bitrate {mp3_bitrate_kbps} kbps: choose one of {MP3_BITRATES_KBPS}")
    depth = bit_depth or 24
    if fmt != "mp3" and depth not in WRITE_FORMATS[fmt]:
        raise AudioError(f"{fmt.upper()} bit depth {depth}: choose one of {WRITE_FORMATS[fmt]}")
    validate(audio, max_duration_s=None, name="output audio")
    if not p.parent.exists():
        raise AudioError(f"{p.parent}: output folder does not exist")

    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".part.{fmt}", dir=p.parent)
    os.close(fd)
    try:
        if fmt == "mp3":
            _write_mp3(audio, tmp, mp3_bitrate_kbps)
        else:
            _write_pcm(audio, tmp, fmt, depth, dither, rng)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a saved file gets the usual mode
        os.replace(tmp, p)
    except AudioError:
        _unlink(tmp)
        raise
    except Exception as exc:
        _unlink(tmp)
        raise AudioError(f"{p}: could not write ({_first_line(exc)})") from None
    return p


def _write_pcm(
    audio: Audio, tmp: str, fmt: str, bits: int, dither: bool, rng: np.random.Generator | None = None
) -> None:
    import soundfile as sf

    x = audio.samples
    subtype = "FLOAT" if bits == 32 else f"PCM_{bits}"
    rng = rng or np.random.default_rng()
    if fmt == "wav" and bits in (16, 24) and audio.channels <= 2:
        _write_wav_int(x, tmp, audio.sample_rate, bits, dither, rng)
        return
    with sf.SoundFile(tmp, "w", audio.sample_rate, audio.channels, subtype=subtype, format=fmt.upper()) as f:
        if bits == 32:
            _no_peak_chunk(f)
        for s in range(0, max(audio.frames, 1), _WRITE_BLOCK):
            block = x[:, s : s + _WRITE_BLOCK]
            if bits == 32:
                f.write(block.T)
                continue
            # hand libsndfile exact integers so it does no requantising of its own
            ints = _quantised(x, s, s + _WRITE_BLOCK, bits, dither, rng)
            ints <<= 32 - bits
            f.write(ints)


def _pcm_block(
    x: np.ndarray, start: int, stop: int, bits: int, width: int, dither: bool, rng: np.random.Generator
) -> np.ndarray:
    """The planar float frames ``x[:, start:stop]`` as interleaved little-endian `bits`-bit PCM, `width`
    bytes a sample (uint8), dithered from `_tpdf_draws` (interleaved order)."""
    from tools import dsp

    block = x[:, start:stop]
    raw = _tpdf_draws(rng, block.size) if dither else None
    packed = dsp.pcm_bytes(x, bits, raw, width, start, stop)
    if packed is not None:
        return packed
    ints = _ints_from_draws(np.ascontiguousarray(block.T), bits, raw)  # without numba
    le = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width]
    return np.ascontiguousarray(le).reshape(-1)


def _quantised(
    x: np.ndarray, start: int, stop: int, bits: int, dither: bool, rng: np.random.Generator
) -> np.ndarray:
    """The planar float frames ``x[:, start:stop]`` as the integers of a `bits`-bit PCM file: int32
    shaped (frames, channels)."""
    packed = _pcm_block(x, start, stop, bits, 4, dither, rng)
    ints: np.ndarray = packed.view("<i4").astype(np.int32, copy=False)
    return ints.reshape(-1, x.shape[0])


def _write_wav_int(
    x: np.ndarray, tmp: str, rate: int, bits: int, dither: bool, rng: np.random.Generator
) -> None:
    """16/24-bit mono or stereo WAV through the standard library's `wave`: the same samples as the
    libsndfile path writes (the same dither draws, block by block), packed straight to the file's bytes
    (`tools.dsp.pcm_bytes`) without libsndfile's per-sample conversion."""
    import wave

    width = bits // 8
    with wave.open(tmp, "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.setnframes(x.shape[1])
        for s in range(0, max(x.shape[1], 1), _WRITE_BLOCK):
            w.writeframesraw(_pcm_block(x, s, s + _WRITE_BLOCK, bits, width, dither, rng).data)


def _no_peak_chunk(f: SoundFile) -> None:
    """No PEAK chunk in a float WAV/AIFF: libsndfile stamps it with the time of writing, so the same audio
    would give different bytes each time (SFC_SET_ADD_PEAK_CHUNK, before the first write)."""
    from soundfile import _ffi, _snd

    _snd.sf_command(f._file, 0x1050, _ffi.NULL, 0)


def _write_mp3(audio: Audio, tmp: str, kbps: int) -> None:
    from pedalboard.io import AudioFile

    a = audio if audio.channels <= 2 else audio.to_channels(2)
    ok_rates = (32_000, 44_100, 48_000, 16_000, 22_050, 24_000, 8_000, 11_025, 12_000)
    if a.sample_rate not in ok_rates:
        a = a.resample(48_000 if a.sample_rate > 48_000 else 44_100)
    # MPEG-2/2.5 layer III (rates below 32 kHz) tops out at 160 kbps
    rate_kbps = kbps if a.sample_rate >= 32_000 else min(kbps, 160)
    with AudioFile(tmp, "w", a.sample_rate, a.channels, quality=rate_kbps) as f:
        f.write(np.clip(a.samples, -1.0, 1.0))


def _read_umask() -> int:
    mask = os.umask(0o022)  # read once at import: os.umask is process-wide, racy in threads later
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
