"""What is wrong (or not) with a recording: `diagnose(audio) -> Diagnosis`.

Pure, on `Audio`, beside `tools.analysis`. Findings use a fixed vocabulary (`PROBLEMS`); each
carries a severity 0-1, plain-words evidence quoting the measured number with its unit, and the
measurements behind it. `Diagnosis.facts` holds the measurements the planner answers questions
from (keys carry their units):

    integrated_lufs, true_peak_dbtp, sample_peak_dbfs, rms_dbfs, lra_lu, plr_db, crest_db,
    noise_floor_dbfs, snr_db, hum_hz, hum_db, clipping_ratio, bandwidth_hz, spectral_centroid_hz,
    spectral_tilt_db_per_octave, stereo_correlation, stereo_width, mono_loss_db,
    speech_probability, content ("speech" | "music"), duration_s, sample_rate, channels

Levels of silence read -120; a fact that cannot be measured is None.

How the detectors tell a problem from the programme:

* noise: per third-octave band (>= 8 FFT bins), minimum statistics of ~64 ms frames (10th
  percentile, corrected for the bias of that percentile on band-summed Gaussian noise). A band's
  floor is *steady* when its quietest fifth of the frames spreads no more than Gaussian noise with
  the band's number of bins would (3rd to 20th percentile, 2.5 dB of drift allowed), its average
  spectrum there has no lines, and at least 2 neighbouring bands agree (noise is broadband; under
  music, brown or real noise shows its steady floor in only a few low bands). When
  the content is surely speech (speech probability >= 0.6) its pauses are the floor, so every band
  counts; otherwise (music has no pauses) only steady bands count, so dense music does not read as
  noisy. ``noise_floor_dbfs`` is the power sum of the counted floors (RMS-style dBFS, like
  ``rms_dbfs``; None when nothing shows a floor), ``snr_db`` the active programme over it. The
  finding is decided on the A-weighted ratio (room rumble weighs less than hiss), or on the
  unweighted one when the floor comes within 22 dB (25 dB when the floor is steady in at least
  half of the bands: then it is surely noise, such as brown noise under speech). A steady
  infrasonic wander (median power from 1 to 12 Hz within 14 dB of the programme) is noise too.
* hum: a 2 kHz copy in 2 s frames (0.5 Hz bins): a line whose averaged peak sits within 0.25 Hz
  of k x 50 or k x 60 Hz and stands >= 8 dB over its neighbours (3-15 Hz away) in >= 70 % of the
  frames, at the fundamental or at two harmonics, no further than 50 dB under the programme.
  ``hum_hz`` is the mains frequency, ``hum_db`` the level of the lines relative to the programme
  RMS (dB, negative = under it).
* clipping: runs of >= 2 consecutive samples held within 0.01 % of the sample peak (>= 4 runs and
  0.01 % of the samples), plus the spike they make in the amplitude histogram next to the peak;
  clipped-then-attenuated audio counts (peaks down to -40 dBFS).
* bandlimited: `tools.analysis` finds the spectral cliff; under 0.8 x Nyquist (and 15 kHz) it is
  band limiting when no frame's content reaches past it (95 % of the frames stay 35 dB under the
  octave below): a filter holds in every frame, an instrument's top harmonic does not. A file
  sampled at 16 kHz is not band limited for its rate. ``bandwidth_hz`` then reads the -10 dB point.
* reverb (speech probability >= 0.25, or >= 0.1 at rates up to 16 kHz: reverb smears the speech
  cues): the 500-4000 Hz envelope in 10 ms frames; after each strong peak, the drop within 100 ms
  (a drop to the floor counts as fast). The 90th percentile of those drops (the fastest decays the
  room allows) gives a reverberation time; clean read speech reads 0.15-0.28 s, rooms of RT60
  0.4 s and more read above 0.3 s. Held notes read slow too, but they reach the floor within
  300 ms while a room's tail does not (90th percentile of the 300 ms drops under 38 dB).
* tonal findings compare band levels (relative to the 250-4000 Hz band) with limits outside what
  clean recordings show, per content (a genre shifts the music limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from tools.analysis import LEVEL_FLOOR_DB, SPEECH_THRESHOLD, Analysis, analyze
from tools.audio import Audio
from tools.dsp import stft_size
from tools.loudness import KBlocks, integrated_lufs, k_weighted_blocks

Problem = Literal[
    "noise",
    "hum",
    "clipping",
    "bandlimited",
    "reverb",
    "sibilance",
    "muddy",
    "boomy",
    "harsh",
    "dull",
    "thin",
    "over_compressed",
    "mono_compatibility",
    "true_peak",
    "loudness",
]
PROBLEMS: tuple[str, ...] = get_args(Problem)  # the fixed vocabulary, in one place: the Literal above
#: problems a repair tool fixes (the planner plans these only when found, or when ordered)
REPAIR_PROBLEMS: tuple[str, ...] = ("noise", "hum", "clipping", "bandlimited", "reverb")

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

FACT_KEYS: tuple[str, ...] = (
    "integrated_lufs",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "rms_dbfs",
    "lra_lu",
    "plr_db",
    "crest_db",
    "noise_floor_dbfs",
    "snr_db",
    "hum_hz",
    "hum_db",
    "clipping_ratio",
    "bandwidth_hz",
    "spectral_centroid_hz",
    "spectral_tilt_db_per_octave",
    "stereo_correlation",
    "stereo_width",
    "mono_loss_db",
    "low_end_db",
    "speech_probability",
    "content",
    "duration_s",
    "sample_rate",
    "channels",
)

# ----------------------------------------------------------------------------- thresholds (one place)

NOISE_SNR_DB = {"speech": 28.0, "music": 30.0}  # A-weighted floor closer than this under the programme: noise
NOISE_FLAT_SNR_DB = 22.0  # unweighted: a floor this close is a problem even when it is mostly rumble
#: ... or this close when it is steady in at least this share of the bands: surely noise, not programme
#: (brown noise 20 dB under speech reads ~22-24 dB over the active speech, clean speech rooms >= 29 dB)
NOISE_STEADY_SNR_DB = 25.0
NOISE_STEADY_FRACTION = 0.5
NOISE_MIN_BAND_FRACTION = 0.15  # music: share of the bands that must show a steady floor
RUMBLE_RATIO_DB = -14.0  # infrasonic (1-12 Hz) power over the programme: rumble / drift
HUM_PROMINENCE_DB = 8.0
HUM_PERSISTENCE = 0.7
HUM_TOLERANCE_HZ = 0.25
HUM_MIN_DB = -50.0  # lines further under the programme than this are inaudible
CLIP_RATIO = 1e-4  # fraction of samples in flat runs at the peak
CLIP_MIN_RUNS = 4
CLIP_SPIKE = 0.3  # samples at the peak over samples in the 5 % below it
_CLIP_MIN_RUN = 2  # samples in a row at the peak (lightly clipped 16 kHz speech shows pairs)
BANDLIMIT_FRACTION = 0.8  # cutoff under this share of Nyquist
BANDLIMIT_LEAK_DB = -35.0  # and no frame's content reaches past it by more than this
BANDLIMIT_MAX_HZ = 15000.0
REVERB_MIN_SPEECH = 0.25
REVERB_MIN_SPEECH_LOW_RATE = 0.1
REVERB_LATE_DB = 38.0  # and within 300 ms the fastest decays stay this far from falling through
REVERB_RT60_S = 0.30  # the fastest syllable decays (90th percentile) read slower than this: room
TRUE_PEAK_DBTP = -1.0
QUIET_LUFS = -30.0
LOUD_LUFS = -7.0
PLR_MIN_DB = 7.0
MONO_LOSS_DB = 4.5
SPEECH_DETECTORS_CUT = 0.5  # speech detectors (reverb, noise floor) run above this: lower than
#: tools.analysis.SPEECH_THRESHOLD (0.6, "is it speech") so singing and speech over music still get them
SURE_SPEECH = SPEECH_THRESHOLD  # "it is speech": the one threshold, tools.analysis

_MAX_SECONDS = 60.0  # longer audio is measured on evenly spread 5 s excerpts totalling this
_SILENT_POWER = 1e-13  # frames below this mean power (-130 dB) are digital silence
_MIN_BAND_BINS = 8  # fewer bins fluctuate too much to tell a steady floor from music


@dataclass(frozen=True)
class Finding:
    problem: str
    severity: float  # 0-1
    evidence: str  # plain words with the measured number and unit
    measurements: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "severity": round(float(self.severity), 2),
            "evidence": self.evidence,
            "measurements": dict(self.measurements),
        }


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    facts: dict[str, Any]

    def has(self, problem: str) -> bool:
        return any(f.problem == problem for f in self.findings)

    def get(self, problem: str) -> Finding | None:
        return next((f for f in self.findings if f.problem == problem), None)

    @property
    def repairs(self) -> list[Finding]:
        return [f for f in self.findings if f.problem in REPAIR_PROBLEMS]

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "facts": dict(self.facts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        findings = tuple(
            Finding(
                problem=str(f["problem"]),
                severity=float(f["severity"]),
                evidence=str(f.get("evidence", "")),
                measurements=dict(f.get("measurements") or {}),
            )
            for f in data.get("findings") or []
        )
        return cls(findings=findings, facts=dict(data.get("facts") or {}))


# ----------------------------------------------------------------------------- small helpers


def _db(power: float) -> float:
    return 10.0 * math.log10(power) if power > 1e-12 else LEVEL_FLOOR_DB


def _clamp01(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def _r(x: float | None, nd: int = 2) -> float | None:
    """Round for JSON; None for None / NaN / inf."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def _khz(hz: float) -> str:
    return f"{hz / 1000.0:.1f} kHz" if hz >= 1000.0 else f"{hz:.0f} Hz"


def _excerpt(x: F32, sr: int) -> F32:
    """At most `_MAX_SECONDS` of `x`: evenly spread 5 s pieces of longer audio."""
    n = x.shape[1]
    limit = int(_MAX_SECONDS * sr)
    if n <= limit:
        return x
    piece = 5 * sr
    count = limit // piece
    starts = np.linspace(0, n - piece, count).astype(int)
    return np.concatenate([x[:, s : s + piece] for s in starts], axis=1)


# ----------------------------------------------------------------------------- spectrogram and bands


@dataclass(frozen=True)
class _Spectrum:
    power: F64  # (frames, bins), channel-averaged, sum over bins = mean power per sample
    freqs: F64
    hop_s: float
    band_lo: F64  # Hz, per band
    band_hi: F64
    band_bins: npt.NDArray[np.int64]  # FFT bins per band
    band_power: F64  # (frames, bands) over non-silent frames
    frame_power: F64  # (frames,) total power of non-silent frames


def _spectrum(x: F32, sr: int) -> _Spectrum:
    import scipy.fft

    n_fft = stft_size(sr, 0.064)
    hop = n_fft // 2
    ch, n = x.shape
    if n < n_fft:
        x = np.concatenate([x, np.zeros((ch, n_fft - n), np.float32)], axis=1)
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    power: F64 | None = None
    for c in range(ch):
        frames = np.lib.stride_tricks.sliding_window_view(x[c], n_fft)[::hop] * win
        spec = scipy.fft.rfft(frames, axis=1, workers=2)
        p = spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2
        power = p if power is None else power + p
    assert power is not None  # ch >= 1 (Audio guarantees it)
    scale = np.full(power.shape[1], 2.0)
    scale[0] = scale[-1] = 1.0
    power = power * (scale / (ch * n_fft * float(np.sum(win.astype(np.float64) ** 2))))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float64)
    frame_power = power.sum(axis=1)
    live = frame_power > _SILENT_POWER
    power = power[live] if live.any() else power[:1]
    frame_power = power.sum(axis=1)

    # third-octave bands from 20 Hz, widened to >= _MIN_BAND_BINS FFT bins each, up to 0.97 x Nyquist
    top = 0.97 * sr / 2.0
    edges = [20.0]
    while edges[-1] * 2 ** (1 / 3) < top:
        edges.append(edges[-1] * 2 ** (1 / 3))
    bins = np.searchsorted(freqs, np.array(edges + [top]))
    starts: list[int] = []
    stop = int(bins[-1])
    i = int(bins[0])
    for b in bins[1:]:
        if int(b) - i >= _MIN_BAND_BINS:
            starts.append(i)
            i = int(b)
    if not starts:
        starts = [int(bins[0])]
    ends = starts[1:] + [stop]
    st = np.array(starts)
    en = np.array(ends)
    band_power = np.add.reduceat(power[:, :stop], st, axis=1)
    return _Spectrum(
        power=power,
        freqs=freqs,
        hop_s=hop / sr,
        band_lo=freqs[st],
        band_hi=freqs[np.minimum(en, freqs.size - 1)],
        band_bins=(en - st).astype(np.int64),
        band_power=band_power,
        frame_power=frame_power,
    )


# ----------------------------------------------------------------------------- noise

_STATIONARY_TOL_DB = 2.5  # dB of spread over what Gaussian noise shows (a little drift allowed)
_MIN_RUN_BANDS = 2  # brown noise under music shows its floor in only a few low bands
_LINE_RATIO = 4.0  # a bin 6 dB over its neighbours' median is a line
_HANN_DOF = 0.6  # effective independent bins per FFT bin of a Hann window (calibrated on white noise)


def _gamma_ppf(q: float, k: F64) -> F64:
    from scipy.special import gammaincinv

    return np.asarray(gammaincinv(k, q), dtype=np.float64) / k


@dataclass(frozen=True)
class _Noise:
    floor_dbfs: float | None
    snr_db: float | None
    snr_a_db: float | None  # A-weighted: what the ear hears of it
    stationary_fraction: float
    counted_bands: int


def _a_weight_db(f: F64) -> F64:
    f2 = np.maximum(f, 1.0) ** 2
    ra = (12194.0**2 * f2**2) / (
        (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    )
    return np.asarray(20.0 * np.log10(ra) + 2.0, dtype=np.float64)


def _noise(sp: _Spectrum, speech: bool) -> _Noise:
    from scipy.ndimage import median_filter

    lev = 10.0 * np.log10(sp.band_power + 1e-30)
    frames, n_bands = lev.shape
    k = np.maximum(sp.band_bins.astype(np.float64) * _HANN_DOF, 1.0)
    if frames >= 10:
        q3, q10, q20 = np.percentile(lev, [3.0, 10.0, 20.0], axis=0)
        expected = 10.0 * np.log10(_gamma_ppf(0.2, k) / _gamma_ppf(0.03, k))
        stationary = (q20 - q3) <= expected + _STATIONARY_TOL_DB
        bias = 1.0 / _gamma_ppf(0.1, k)
    else:
        q10 = lev.min(axis=0)
        q20 = q10
        stationary = np.zeros(n_bands, bool)
        bias = np.ones(n_bands)
    # a steady floor made of lines (a held note, hum) is not noise: the quiet frames' spectrum must be smooth
    edges = np.concatenate([[0], np.cumsum(sp.band_bins)]) + int(np.searchsorted(sp.freqs, sp.band_lo[0]))
    for band in np.flatnonzero(stationary):
        b = int(band)
        quiet = lev[:, b] <= q20[b]
        avg = sp.power[quiet, edges[b] : edges[b + 1]].mean(axis=0)
        smooth = median_filter(avg, size=7, mode="nearest")
        if float(np.max(avg / np.maximum(smooth, 1e-30))) > _LINE_RATIO:
            stationary[b] = False
    floor_p = 10.0 ** (q10 / 10.0) * bias
    # noise is broadband: a steady floor counts in runs of >= 2 neighbouring bands, never in one band alone
    broad = np.zeros(n_bands, bool)
    run_start = 0
    for end in range(n_bands + 1):
        if end == n_bands or not stationary[end]:
            if end - run_start >= _MIN_RUN_BANDS:
                broad[run_start:end] = True
            run_start = end + 1
    stationary = broad
    counted = np.ones(n_bands, bool) if speech else stationary.copy()
    frac = float(stationary.mean()) if n_bands else 0.0
    if not speech and frac < NOISE_MIN_BAND_FRACTION:
        counted[:] = False
    if not counted.any():
        return _Noise(None, None, None, frac, 0)
    noise_p = float(floor_p[counted].sum())
    active = sp.frame_power > 4.0 * noise_p
    act = sp.band_power[active] if active.any() else sp.band_power
    sig_b = np.maximum(act.mean(axis=0) - np.where(counted, floor_p, 0.0), 0.0)
    sig = float(sig_b.sum())
    snr = 10.0 * math.log10(max(sig, 1e-30) / noise_p) if noise_p > 0 else 120.0
    wa = 10.0 ** (_a_weight_db(np.sqrt(sp.band_lo * sp.band_hi)) / 10.0)
    noise_a = float((floor_p * wa)[counted].sum())
    snr_a = 10.0 * math.log10(max(float((sig_b * wa).sum()), 1e-30) / noise_a) if noise_a > 0 else 120.0
    return _Noise(
        _db(noise_p),
        float(min(max(snr, 0.0), 120.0)),
        float(min(max(snr_a, 0.0), 120.0)),
        frac,
        int(counted.sum()),
    )


# ----------------------------------------------------------------------------- hum


@dataclass(frozen=True)
class _Hum:
    mains_hz: float | None
    level_db: float | None  # relative to the programme RMS
    harmonics: int
    persistence: float
    rumble_db: float  # power from 1 to 12 Hz over the programme power (dB)


def _hum(mono: F32, sr: int, rms_power: float) -> _Hum:
    from scipy.signal import resample_poly

    q = max(1, sr // 2000)
    x = mono.astype(np.float64) - float(np.mean(mono))  # a DC offset is no rumble (nor a filter transient)
    y = resample_poly(x, 1, q) if q > 1 else x
    fs = sr / q
    n_fft = int(2 * fs)
    if y.size < n_fft:
        y = np.concatenate([y, np.zeros(n_fft - y.size)])
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[:: n_fft // 2]
    frames = frames - frames.mean(axis=1, keepdims=True)  # a DC offset is no rumble
    win = np.hanning(n_fft)
    p = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2
    p *= 2.0 / (n_fft * float(np.sum(win**2)))
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    df = f[1]
    avg = p.mean(axis=0)
    # median over frames: a handling bump is no rumble, a steady infrasonic wander is
    sub = float(np.median(p[:, (f >= 1.0) & (f <= 12.0)].sum(axis=1)))
    rumble = _db(sub / rms_power) if rms_power > 0 else LEVEL_FLOOR_DB
    best = _Hum(None, None, 0, 0.0, rumble)
    best_score = 0.0
    for mains in (50.0, 60.0):
        found = 0
        persist: list[float] = []
        line_power = 0.0
        fundamental_ok = False
        for h in range(1, 9):
            fh = h * mains
            if fh > min(0.45 * fs, 1000.0):
                break
            centre = int(round(fh / df))
            # mean over the line's main lobe (a fixed 3 bins: no max-of-many bias on noise) vs the neighbours
            line = p[:, centre - 1 : centre + 2].mean(axis=1)
            lo = int(round(3.0 / df))
            hi = int(round(15.0 / df))
            neigh_idx = np.concatenate(
                [np.arange(centre - hi, centre - lo), np.arange(centre + lo + 1, centre + hi + 1)]
            )
            neigh_idx = neigh_idx[(neigh_idx > 0) & (neigh_idx < f.size)]
            neigh = np.median(p[:, neigh_idx], axis=1)
            live = neigh > 1e-16
            prom = 10.0 * np.log10(line[live] / neigh[live] + 1e-30) if live.any() else np.zeros(1)
            share = float(np.sum(prom >= HUM_PROMINENCE_DB)) / len(neigh)
            # mains sits on its nominal frequency: the averaged line's peak (parabolic) within 0.25 Hz of it
            seg = np.log(avg[centre - 2 : centre + 3] + 1e-30)
            i = int(np.argmax(seg))
            delta = 0.0
            if 0 < i < 4 and seg[i - 1] - 2 * seg[i] + seg[i + 1] < 0:
                delta = 0.5 * (seg[i - 1] - seg[i + 1]) / (seg[i - 1] - 2 * seg[i] + seg[i + 1])
            on_mains = abs((centre - 2 + i + delta) * df - fh) <= HUM_TOLERANCE_HZ
            if share >= HUM_PERSISTENCE and on_mains:
                found += 1
                persist.append(share)
                # a Hann line's power is the sum over its lobe (5 bins), less the neighbours' share
                lobe = p[:, centre - 2 : centre + 3].sum(axis=1)
                line_power += float(np.median(np.maximum(lobe - 5.0 * neigh, 0.0)))
                if h == 1:
                    fundamental_ok = True
        ok = fundamental_ok or found >= 2
        score = found + (1 if fundamental_ok else 0)
        if ok and score > best_score:
            best_score = score
            lvl = _db(line_power) - _db(rms_power) if rms_power > 0 else None
            best = _Hum(mains, lvl, found, float(np.mean(persist)) if persist else 0.0, rumble)
    return best


# ----------------------------------------------------------------------------- clipping


@dataclass(frozen=True)
class _Clip:
    ratio: float
    runs: int
    spike: float
    level_dbfs: float


_BLOCK = 1 << 20  # samples per block in the full-length scans (no full-length temporaries)


def _at_or_over(ch: F32, thr: np.float32, upper: bool) -> npt.NDArray[np.int64]:
    """Indices where ``ch >= thr`` (``upper``) or ``ch <= -thr``, found block by block."""
    parts = [
        np.flatnonzero(ch[i : i + _BLOCK] >= thr if upper else ch[i : i + _BLOCK] <= -thr) + i
        for i in range(0, ch.size, _BLOCK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _clipping(x: F32) -> _Clip:
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0  # no |x| copy of a long recording
    if peak < 0.01:  # under -40 dBFS: nothing to call clipping
        return _Clip(0.0, 0, 0.0, _db(peak * peak))
    thr = np.float32(peak * (1.0 - 1e-4))
    near = np.float32(peak * 0.95)
    held = 0
    runs = 0
    at_peak = 0
    below = 0
    for ch in x:
        for upper in (True, False):
            idx = _at_or_over(ch, thr, upper)
            at_peak += idx.size
            below -= idx.size
            if idx.size:
                # runs of consecutive indices: the samples held at the peak
                breaks = np.flatnonzero(np.diff(idx) != 1) + 1
                lens = np.diff(np.concatenate([[0], breaks, [idx.size]]))
                long = lens[lens >= _CLIP_MIN_RUN]
                held += int(long.sum())
                runs += int(long.size)
        below += sum(
            int(np.count_nonzero(ch[i : i + _BLOCK] >= near))
            + int(np.count_nonzero(ch[i : i + _BLOCK] <= -near))
            for i in range(0, ch.size, _BLOCK)
        )
    spike = at_peak / max(below, 1)
    return _Clip(held / float(x.size), runs, float(spike), _db(peak * peak))


# ----------------------------------------------------------------------------- band limit


@dataclass(frozen=True)
class _Cutoff:
    cutoff_hz: float  # where the top end falls 10 dB under the octave below the edge
    leak_db: float  # 95th percentile over frames of the power just above the edge vs the octave under it


def _cutoff(sp: _Spectrum, edge_hz: float, nyq: float) -> _Cutoff:
    """A filter's cliff holds in every frame; an instrument's top harmonic does not (attacks leak past)."""
    f = sp.freqs
    above = (f >= edge_hz * 1.1) & (f <= min(edge_hz * 1.6, nyq))
    below = (f >= edge_hz / 2.0) & (f <= edge_hz)
    if above.sum() < 2 or below.sum() < 2:
        return _Cutoff(edge_hz, 0.0)
    pa = sp.power[:, above].mean(axis=1)
    pb = sp.power[:, below].mean(axis=1)
    ratio = 10.0 * np.log10((pa + 1e-30) / (pb + 1e-30))
    leak = float(np.percentile(ratio, 95))
    # the -10 dB point: 1/24-octave levels of the average spectrum, walked down from the edge
    spec = sp.power.mean(axis=0)
    centres = edge_hz * 2.0 ** (-np.arange(0, 48) / 24.0)
    lev = np.array(
        [
            float(spec[(f >= c * 2 ** (-1 / 48)) & (f < c * 2 ** (1 / 48))].mean())
            if np.any((f >= c * 2 ** (-1 / 48)) & (f < c * 2 ** (1 / 48)))
            else 0.0
            for c in centres
        ]
    )
    lev_db = 10.0 * np.log10(lev + 1e-30)
    ref = float(np.median(lev_db[(centres >= edge_hz / 2.5) & (centres <= edge_hz / 1.5)]))
    ok = np.flatnonzero(lev_db >= ref - 10.0)
    cutoff = float(centres[ok[0]]) if ok.size else edge_hz
    return _Cutoff(cutoff, leak)


# ----------------------------------------------------------------------------- reverb


@dataclass(frozen=True)
class _Reverb:
    rt60_s: float | None
    decays: int
    late_drop_db: float | None  # 90th percentile of the drop within 300 ms: a room keeps it from the floor


def _reverb(mono: F32, sr: int) -> _Reverb:
    """Reverberation time from how fast the strongest syllables die away (see module docstring)."""
    from scipy.signal import butter, sosfilt

    hi = min(4000.0, 0.45 * sr)
    sos = butter(4, [500.0, hi], btype="bandpass", fs=sr, output="sos")
    y = sosfilt(sos, mono.astype(np.float64))
    frame = max(1, round(0.01 * sr))
    m = y.size // frame
    if m < 50:
        return _Reverb(None, 0, None)
    e = 10.0 * np.log10(np.mean(y[: m * frame].reshape(m, frame) ** 2, axis=1) + 1e-14)
    floor = float(np.percentile(e, 3))
    top = float(np.percentile(e, 98))
    if top - floor < 20.0:  # too noisy (or too steady) to see decays
        return _Reverb(None, 0, None)
    w = _REVERB_WINDOW_FRAMES
    wl = _REVERB_LATE_FRAMES
    drops: list[float] = []
    late: list[float] = []

    def drop(i: int, n: int) -> float:
        low = float(e[i + 1 : i + 1 + n].min())
        # a decay that reaches the floor inside the window is as fast as we can see: count it as fast
        return _REVERB_FAST_DB if low <= floor + 3.0 else min(float(e[i]) - low, _REVERB_FAST_DB)

    for i in range(1, m - w):
        if e[i] >= top - 15.0 and e[i] >= e[i - 1] and e[i] >= e[i + 1]:
            drops.append(drop(i, w))
            if i < m - wl:
                late.append(drop(i, wl))
    if len(drops) < 3 or not late:
        return _Reverb(None, len(drops), None)
    fastest = float(np.percentile(drops, 90))
    return _Reverb(60.0 * w * 0.01 / max(fastest, 1e-3), len(drops), float(np.percentile(late, 90)))


_REVERB_WINDOW_FRAMES = 10  # 100 ms after each peak
_REVERB_FAST_DB = 40.0
_REVERB_LATE_FRAMES = 30  # 300 ms: held notes and closed syllables reach the floor, a room's tail does not


# ----------------------------------------------------------------------------- tonal balance

# Band (lo, hi Hz) levels are power relative to the 250-4000 Hz band (dB). Clean recordings spread
# widely (a solo violin has no bass, a frame drum little else), so the limits sit outside what the
# clean recordings of ../shared/fixtures show (median, in brackets, for reference) and a tonal
# finding means a balance far from anything typical, not a matter of taste.
_TONAL_BANDS: dict[str, tuple[float, float]] = {
    "boom": (60.0, 160.0),
    "mud": (160.0, 450.0),
    "harsh": (2000.0, 5000.0),
    "sibilance": (5000.0, 10000.0),
    "air": (8000.0, 16000.0),
}
_TYPICAL: dict[str, dict[str, float]] = {
    "speech": {"boom": -16.0, "mud": -2.0, "harsh": -13.5, "sibilance": -17.5, "air": -21.5},
    "music": {"boom": -15.0, "mud": -4.0, "harsh": -16.0, "sibilance": -30.0, "air": -35.0},
}
#: (problem, band, "above" | "below", limit dB) per content; "thin" and "dull" also need the next band down
_LIMITS: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "speech": (
        ("boomy", "boom", "above", 5.0),
        ("muddy", "mud", "above", 6.0),
        ("harsh", "harsh", "above", -5.0),
        ("sibilance", "sibilance", "above", -6.0),
        ("thin", "boom", "below", -38.0),
        ("dull", "air", "below", -45.0),
    ),
    "music": (
        ("boomy", "boom", "above", 12.0),
        ("muddy", "mud", "above", 6.0),
        ("harsh", "harsh", "above", 3.0),
        ("thin", "boom", "below", -60.0),
        ("dull", "air", "below", -60.0),
    ),
}
_PAIR = {
    "thin": ("mud", -12.0, -20.0),
    "dull": ("sibilance", -30.0, -50.0),
}  # band, speech limit, music limit
#: dB added to the music limits per genre word (bass-led styles carry more low end, etc.)
_GENRE_SHIFT: dict[str, dict[str, float]] = {
    "hip hop": {"boom": 4.0},
    "hiphop": {"boom": 4.0},
    "edm": {"boom": 4.0},
    "electronic": {"boom": 3.0},
    "rock": {"harsh": 2.0},
    "metal": {"harsh": 3.0, "mud": 1.0},
    "classical": {"boom": -2.0, "air": -4.0},
    "jazz": {"air": -2.0},
    "lofi": {"air": -10.0},
    "lo-fi": {"air": -10.0},
    "acoustic": {"boom": -2.0},
}


def typical_band_db(content: str, band: str) -> float:
    """The typical level of a tonal band (``_TONAL_BANDS``) against 250 Hz-4 kHz for speech or music, in dB."""
    return _TYPICAL["speech" if content == "speech" else "music"][band]


def tonal_band_hz(band: str) -> tuple[float, float]:
    return _TONAL_BANDS[band]


_WORDS = {
    "boomy": "heavy low bass",
    "muddy": "crowded low mids",
    "harsh": "strong upper mids",
    "sibilance": "loud esses",
    "thin": "little low end",
    "dull": "little top end",
}


def _tonal(
    sp: _Spectrum, content: str, genre: str | None, bandwidth_hz: float
) -> tuple[dict[str, float], list[Finding]]:
    spec = sp.power.mean(axis=0)
    f = sp.freqs

    def level(lo: float, hi: float) -> float:
        sel = (f >= lo) & (f < hi)
        return _db(float(spec[sel].sum())) if sel.any() else LEVEL_FLOOR_DB

    ref = level(250.0, 4000.0)
    rel = {name: level(lo, hi) - ref for name, (lo, hi) in _TONAL_BANDS.items()}
    shift: dict[str, float] = {}
    if genre and content == "music":
        for word, sh in _GENRE_SHIFT.items():
            if word in genre.lower():
                for k, v in sh.items():
                    shift[k] = shift.get(k, 0.0) + v
    nyq = float(f[-1])
    out: list[Finding] = []
    for problem, band, side, limit in _LIMITS[content]:
        lo, hi = _TONAL_BANDS[band]
        if hi > nyq or (problem == "dull" and bandwidth_hz < 14000.0):
            continue  # a band the file cannot hold (or past a cutoff: bandlimited) says nothing of tone
        lim = limit + shift.get(band, 0.0)
        excess = rel[band] - lim if side == "above" else lim - rel[band]
        if excess <= 0.0:
            continue
        if problem in _PAIR:
            other, sp_lim, mu_lim = _PAIR[problem]
            if rel[other] > (sp_lim if content == "speech" else mu_lim):
                continue
        typical = _TYPICAL[content][band]
        out.append(
            Finding(
                problem,
                _clamp01(0.3 + excess / 12.0),
                f"{_WORDS[problem]}: {_khz(lo)}-{_khz(hi)} sits {rel[band]:+.1f} dB against the "
                f"250 Hz-4 kHz band (typical {content}: {typical:+.0f} dB)",
                {"band_hz": [lo, hi], "relative_db": _r(rel[band]), "limit_db": _r(lim)},
            )
        )
    return {k: float(v) for k, v in rel.items()}, out


# ----------------------------------------------------------------------------- diagnose


def _mono_loss_db(audio: Audio, stereo_lufs: float | None) -> float | None:
    if audio.channels < 2 or stereo_lufs is None or stereo_lufs <= LEVEL_FLOOR_DB:
        return 0.0 if audio.channels < 2 else None
    mid = audio.samples[:2].mean(axis=0, keepdims=True)
    mid.flags.writeable = False  # ours: `Audio` keeps it without a copy
    # the fold on both speakers is two equal channels: twice the K-weighted power of one (filtered once)
    one = k_weighted_blocks(Audio(mid, audio.sample_rate))
    mono = integrated_lufs(audio, KBlocks(2.0 * one.chunk_power, one.chunk, one.hop, one.sample_rate))
    if not math.isfinite(mono):
        return float(stereo_lufs - (-70.0))
    return float(stereo_lufs - mono)


def diagnose(audio: Audio, analysis: Analysis | None = None, *, genre: str | None = None) -> Diagnosis:
    """Findings and facts for `audio` (never changes it); reuses `analysis` when given."""
    x = audio.samples
    if x.size == 0:
        raise ValueError("cannot diagnose audio with no samples")
    if not all(np.isfinite(x[:, i : i + _BLOCK]).all() for i in range(0, x.shape[1], _BLOCK)):
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"audio contains {bad} NaN or infinite samples; the file is corrupt")
    a = analysis if analysis is not None else analyze(audio)
    sr = audio.sample_rate
    nyq = sr / 2.0
    speech = a.speech_probability >= SPEECH_DETECTORS_CUT
    content = "speech" if speech else "music"
    # pauses are noise only when we are sure it is speech; otherwise only a steady floor counts
    sure_speech = a.speech_probability >= SURE_SPEECH
    integrated = a.integrated_lufs
    loud_ok = integrated is not None and integrated > LEVEL_FLOOR_DB
    facts: dict[str, Any] = {
        "integrated_lufs": _r(integrated) if loud_ok else (None if integrated is None else LEVEL_FLOOR_DB),
        "true_peak_dbtp": _r(a.true_peak_dbtp),
        "sample_peak_dbfs": _r(a.sample_peak_dbfs),
        "rms_dbfs": _r(a.rms_dbfs),
        "lra_lu": _r(a.lra_lu),
        "plr_db": _r(a.true_peak_dbtp - integrated) if loud_ok and integrated is not None else None,
        "crest_db": _r(a.crest_db),
        "noise_floor_dbfs": None,
        "snr_db": None,
        "hum_hz": None,
        "hum_db": None,
        "clipping_ratio": 0.0,
        "bandwidth_hz": _r(a.bandwidth_hz, 0),
        "spectral_centroid_hz": _r(a.spectral_centroid_hz, 0),
        "spectral_tilt_db_per_octave": _r(a.spectral_tilt_db_per_octave),
        "stereo_correlation": _r(a.stereo_correlation, 3),
        "stereo_width": _r(a.stereo_width, 3),
        "mono_loss_db": None,
        "low_end_db": None,
        "speech_probability": _r(a.speech_probability, 3),
        "content": content,
        "duration_s": _r(a.duration_s, 3),
        "sample_rate": sr,
        "channels": audio.channels,
    }
    if a.silent:
        facts["noise_floor_dbfs"] = LEVEL_FLOOR_DB
        facts["mono_loss_db"] = 0.0
        finding = Finding(
            "loudness",
            1.0,
            "digital silence: every sample is zero (peak -120 dBFS)",
            {"sample_peak_dbfs": LEVEL_FLOOR_DB},
        )
        return Diagnosis((finding,), facts)

    findings: list[Finding] = []
    ex = _excerpt(x, sr)
    mono = ex.mean(axis=0) if ex.shape[0] > 1 else ex[0]
    sp = _spectrum(ex, sr)
    rms_power = 10.0 ** (a.rms_dbfs / 10.0)
    what = "speech" if speech else "programme"

    # --- noise (decided on the A-weighted ratio: rumble and room tone weigh less than hiss)
    nz = _noise(sp, sure_speech)
    hm = _hum(mono, sr, rms_power)
    facts["noise_floor_dbfs"] = _r(nz.floor_dbfs)
    facts["snr_db"] = _r(nz.snr_db)
    flat_limit = NOISE_STEADY_SNR_DB if nz.stationary_fraction >= NOISE_STEADY_FRACTION else NOISE_FLAT_SNR_DB
    if (
        nz.snr_a_db is not None
        and nz.floor_dbfs is not None
        and nz.snr_db is not None
        and (nz.snr_a_db < NOISE_SNR_DB[content] or nz.snr_db < flat_limit)
    ):
        limit = NOISE_SNR_DB[content]
        # how far past either limit, on the A-weighted scale
        past = max(limit - nz.snr_a_db, flat_limit - nz.snr_db)
        sev = _clamp01(0.2 + 0.8 * past / (limit - 5.0))
        findings.append(
            Finding(
                "noise",
                sev,
                f"noise floor {nz.floor_dbfs:.0f} dBFS, {nz.snr_db:.0f} dB under the {what} "
                f"({nz.snr_a_db:.0f} dB A-weighted)",
                {
                    "noise_floor_dbfs": _r(nz.floor_dbfs),
                    "snr_db": _r(nz.snr_db),
                    "snr_a_db": _r(nz.snr_a_db),
                    "stationary_band_fraction": _r(nz.stationary_fraction),
                },
            )
        )
    elif hm.rumble_db > RUMBLE_RATIO_DB:
        sev = _clamp01(0.2 + (hm.rumble_db - RUMBLE_RATIO_DB) / 20.0)
        findings.append(
            Finding(
                "noise",
                sev,
                f"infrasonic rumble from 1 to 12 Hz, {-hm.rumble_db:.0f} dB under the {what}",
                {"infrasonic_db": _r(hm.rumble_db)},
            )
        )

    # --- hum
    if hm.mains_hz is not None and hm.level_db is not None and hm.level_db > HUM_MIN_DB:
        facts["hum_hz"] = hm.mains_hz
        facts["hum_db"] = _r(hm.level_db)
        lvl = hm.level_db if hm.level_db is not None else -60.0
        sev = _clamp01(0.3 + (lvl + 40.0) / 35.0)
        findings.append(
            Finding(
                "hum",
                sev,
                f"{hm.mains_hz:.0f} Hz mains hum with {hm.harmonics} line(s) at multiples of "
                f"{hm.mains_hz:.0f} Hz in {hm.persistence * 100:.0f}% of the time, "
                f"{-lvl:.0f} dB under the {what}",
                {"hum_hz": hm.mains_hz, "hum_db": _r(hm.level_db), "lines": hm.harmonics},
            )
        )

    # --- clipping
    cl = _clipping(x)
    facts["clipping_ratio"] = _r(cl.ratio, 6)
    if cl.ratio >= CLIP_RATIO and cl.runs >= CLIP_MIN_RUNS and cl.spike >= CLIP_SPIKE:
        sev = _clamp01(0.3 + math.log10(cl.ratio / CLIP_RATIO) / 2.5)
        findings.append(
            Finding(
                "clipping",
                sev,
                f"{cl.ratio * 100:.2g}% of samples held at the peak "
                f"({cl.level_dbfs / 2:.1f} dBFS) in {cl.runs} runs",
                {
                    "clipping_ratio": _r(cl.ratio, 6),
                    "runs": cl.runs,
                    "clip_level_dbfs": _r(cl.level_dbfs / 2),
                },
            )
        )

    # --- bandlimited: a cliff well under Nyquist that no frame crosses
    bw = a.bandwidth_hz
    if 0.0 < bw < min(BANDLIMIT_FRACTION * nyq, BANDLIMIT_MAX_HZ):
        co = _cutoff(sp, bw, nyq)
        if co.leak_db < BANDLIMIT_LEAK_DB:
            facts["bandwidth_hz"] = _r(co.cutoff_hz, 0)
            sev = _clamp01(0.3 + 0.7 * (1.0 - co.cutoff_hz / (BANDLIMIT_FRACTION * nyq)) * 1.5)
            findings.append(
                Finding(
                    "bandlimited",
                    sev,
                    f"top end stops at {_khz(co.cutoff_hz)} (Nyquist {_khz(nyq)}); "
                    f"above it the level stays {-co.leak_db:.0f} dB down in 95% of the frames",
                    {"bandwidth_hz": _r(co.cutoff_hz, 0), "nyquist_hz": nyq, "leak_db": _r(co.leak_db)},
                )
            )

    # --- reverb (speech)
    # reverb smears the cues that make speech read as speech; at speech rates (<= 16 kHz: music is rarely
    # delivered there) anything not plainly music gets the check
    min_speech = REVERB_MIN_SPEECH_LOW_RATE if sr <= 16000 else REVERB_MIN_SPEECH
    if a.speech_probability >= min_speech:
        rv = _reverb(mono, sr)
        slow_tail = rv.late_drop_db is not None and rv.late_drop_db < REVERB_LATE_DB
        if rv.rt60_s is not None and rv.rt60_s > REVERB_RT60_S and slow_tail:
            sev = _clamp01(0.3 + (rv.rt60_s - REVERB_RT60_S) / 1.0)
            findings.append(
                Finding(
                    "reverb",
                    sev,
                    f"word endings decay slowly: reverberation time about {rv.rt60_s:.2f} s "
                    f"(the fastest endings fall only {rv.late_drop_db:.0f} dB in 300 ms)",
                    {
                        "reverb_rt60_s": _r(rv.rt60_s),
                        "late_drop_db": _r(rv.late_drop_db),
                        "decays": rv.decays,
                    },
                )
            )

    # --- tonal balance
    limited = any(f.problem == "bandlimited" for f in findings)
    rel, tonal = _tonal(sp, content, genre, bw if not limited else 0.0)
    findings.extend(tonal)
    facts["low_end_db"] = _r(rel["boom"])  # 60-160 Hz against 250 Hz-4 kHz

    # --- dynamics, stereo, peaks, loudness
    plr = facts["plr_db"]
    if not speech and plr is not None and plr < PLR_MIN_DB and a.lra_lu < 5.0:
        findings.append(
            Finding(
                "over_compressed",
                _clamp01(0.3 + (PLR_MIN_DB - plr) / 6.0),
                f"peak-to-loudness ratio {plr:.1f} dB and loudness range {a.lra_lu:.1f} LU",
                {"plr_db": plr, "lra_lu": _r(a.lra_lu)},
            )
        )
    mono_loss = _mono_loss_db(audio, integrated if loud_ok else None)
    facts["mono_loss_db"] = _r(mono_loss)
    if (
        audio.channels >= 2
        and mono_loss is not None
        and (mono_loss > MONO_LOSS_DB or a.stereo_correlation < -0.2)
    ):
        findings.append(
            Finding(
                "mono_compatibility",
                _clamp01(0.3 + (mono_loss - MONO_LOSS_DB) / 6.0),
                f"mono fold-down {mono_loss:.1f} dB quieter, channel correlation {a.stereo_correlation:.2f}",
                {"mono_loss_db": _r(mono_loss), "stereo_correlation": _r(a.stereo_correlation, 3)},
            )
        )
    if a.true_peak_dbtp > TRUE_PEAK_DBTP:
        over = a.true_peak_dbtp > 0.0
        findings.append(
            Finding(
                "true_peak",
                0.7 if over else 0.3,
                f"true peak {a.true_peak_dbtp:+.1f} dBTP ({'over full scale' if over else 'above -1 dBTP'})",
                {"true_peak_dbtp": _r(a.true_peak_dbtp)},
            )
        )
    if loud_ok and integrated is not None and (integrated < QUIET_LUFS or integrated > LOUD_LUFS):
        quiet = integrated < QUIET_LUFS
        sev = _clamp01(0.3 + ((QUIET_LUFS - integrated) if quiet else (integrated - LOUD_LUFS)) / 20.0)
        findings.append(
            Finding(
                "loudness",
                sev,
                f"integrated loudness {integrated:.1f} LUFS ({'very quiet' if quiet else 'very loud'})",
                {"integrated_lufs": _r(integrated)},
            )
        )
    elif not loud_ok and integrated is not None:
        findings.append(
            Finding(
                "loudness",
                1.0,
                "integrated loudness under -70 LUFS (below the gate: near silence)",
                {"integrated_lufs": LEVEL_FLOOR_DB},
            )
        )
    findings.sort(
        key=lambda f: (PROBLEMS.index(f.problem) if f.problem in REPAIR_PROBLEMS else 99, -f.severity)
    )
    return Diagnosis(tuple(findings), facts)
