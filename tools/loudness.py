"""Loudness and peak metering: ITU-R BS.1770-4 / EBU R128, EBU Tech 3341/3342, true peak.

Everything here is vectorised numpy on the whole signal; nothing loops per block in Python. Where numba
is installed the K-weighted chunk power and the true-peak meter's block peaks and interpolation are
compiled passes (`tools.dsp`), with numpy's values (the power within ~1e-7 relative).

Conventions (so callers know what an empty answer looks like):

* Loudness values are LUFS (= LKFS). When there is nothing to measure (silence below the
  -70 LUFS absolute gate, or audio shorter than the 400 ms gating block) the integrated
  loudness is ``-inf``. Momentary / short-term maxima are ``-inf`` when the audio is shorter
  than their window (400 ms / 3 s) or is digital silence. Use `finite_or(x, floor)` to turn
  them into a JSON-safe number.
* LRA (EBU Tech 3342) is ``0.0`` when fewer than two short-term blocks pass its gates.
* Peak values are dBFS / dBTP relative to a full-scale sample (|x| = 1.0); silence gives ``-inf``.

Channel weights (BS.1770-4 Table 3) by channel count, assuming the usual layouts:
1-3 ch (mono, L R, L R C): all 1.0; 4 ch (L R Ls Rs): 1, 1, 1.41, 1.41; 5 ch (L R C Ls Rs):
1, 1, 1, 1.41, 1.41; 6 ch (5.1, L R C LFE Ls Rs): LFE excluded, surrounds 1.41; 7 ch (6.1) and
8 ch (7.1, L R C LFE Ls Rs Lb Rb): LFE excluded, every channel after it 1.41.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tools.audio import Audio

ABS_GATE_LUFS = -70.0
REL_GATE_LU = -10.0  # BS.1770-4 relative gate for integrated loudness
LRA_REL_GATE_LU = -20.0  # EBU Tech 3342 relative gate for loudness range
MOMENTARY_S = 0.4
SHORT_TERM_S = 3.0
_OFFSET = -0.691  # BS.1770 constant so a 997 Hz sine at 0 dBFS on one channel reads -3.01 LUFS
_TP_TAPS_PER_PHASE = 16
_TP_BLOCK = 64  # samples per block for true-peak pruning (>= taps per phase)
_TP_BATCH = 4096  # interpolation windows per matrix product
_K_BLOCK = 1 << 18  # frames per block of K-filtering in `k_weighted_blocks`
_TP_GATHER = 1 << 14  # candidate blocks gathered at once by `true_peak_linear`


@dataclass(frozen=True)
class LoudnessStats:
    integrated_lufs: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    lra_lu: float
    true_peak_dbtp: float


def finite_or(value: float, floor: float | None = None) -> float | None:
    """`value` if finite, else `floor` (e.g. -120.0, or None for JSON null)."""
    return float(value) if math.isfinite(value) else floor


# ----------------------------------------------------------------------------- K-weighting


@lru_cache(maxsize=32)
def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """K-weighting (pre-filter shelf + RLB high-pass) as second-order sections for any rate.

    Derived from the analogue prototypes as in libebur128, so at 48 kHz the coefficients
    equal the ones tabulated in BS.1770-4 to ~1e-9; at other rates they are the bilinear
    transform of the same prototypes.
    """
    fs = float(sample_rate)
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770-4 channel weights G_i for `channels` (see module docstring for layouts)."""
    table = {
        1: [1.0],
        2: [1.0, 1.0],
        3: [1.0, 1.0, 1.0],
        4: [1.0, 1.0, 1.41, 1.41],
        5: [1.0, 1.0, 1.0, 1.41, 1.41],
        6: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41],
        7: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41],
        8: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41],
    }
    if channels not in table:
        raise ValueError(f"loudness metering handles 1–8 channels, got {channels}")
    return np.array(table[channels], dtype=np.float64)


def _k_filter(audio: Audio) -> np.ndarray:
    """K-weighted channels, float32 (its error, ~1e-7 relative, is far below 0.01 LU)."""
    from scipy.signal import sosfilt

    sos = k_weighting_sos(audio.sample_rate).astype(np.float32)
    x = audio.samples
    if audio.channels > 1 and audio.frames >= 1 << 20:
        # scipy's sosfilt runs without the GIL: long multichannel audio filters a channel per thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(audio.channels, 2)) as pool:
            return np.stack(list(pool.map(lambda c: sosfilt(sos, c), x)))
    y: np.ndarray = sosfilt(sos, x, axis=1)
    return y


def k_weighted_power(audio: Audio) -> np.ndarray:
    """Per-sample channel-weighted K-filtered power  sum_i G_i * y_i[n]^2  (float64, shape (frames,))."""
    y = _k_filter(audio).astype(np.float64)
    return channel_weights(audio.channels) @ (y * y)


@dataclass(frozen=True)
class KBlocks:
    """K-weighted power summed over short chunks, the base of every loudness figure.

    ``chunk_power[j]`` is the summed weighted power of samples ``[j*chunk, (j+1)*chunk)``;
    ``hop`` (100 ms) is a whole number of chunks, so gating blocks are exact.
    """

    chunk_power: np.ndarray
    chunk: int
    hop: int
    sample_rate: int

    def window_mean_power(self, window_hops: int, step_chunks: int) -> np.ndarray:
        """Mean power of windows of `window_hops` x 100 ms, starting every `step_chunks` chunks."""
        per_hop = self.hop // self.chunk
        w = window_hops * per_hop
        n = self.chunk_power.size
        if n < w:
            return np.empty(0)
        cs = np.concatenate([[0.0], np.cumsum(self.chunk_power)])
        starts = np.arange(0, n - w + 1, step_chunks)
        return np.asarray((cs[starts + w] - cs[starts]) / float(w * self.chunk))


def k_weighted_blocks(audio: Audio, *, compiled: bool = True) -> KBlocks:
    """Chunked K-weighted power; chunks of ~1 ms that tile the 100 ms gating hop exactly.

    With `compiled` (and numba loaded, see `dsp.k_chunk_power`) one compiled pass per channel filters and
    sums; else scipy's ``sosfilt`` block by block, then square and sum: the same float32 filter, the
    power within ~1e-7 relative (the chunks' float64 sums add in another order).
    """
    from tools import dsp

    sr = audio.sample_rate
    hop = max(1, int(round(0.1 * sr)))
    target = max(1, sr // 1000)
    chunk = max(d for d in range(1, target + 1) if hop % d == 0)
    weights = channel_weights(audio.channels)
    per_chunk = dsp.k_chunk_power(audio.samples, k_weighting_sos(sr), chunk) if compiled else None
    if per_chunk is None:
        per_chunk = _k_chunk_power_scipy(audio, chunk)
    return KBlocks(weights @ per_chunk, chunk, hop, sr)


def _k_chunk_power_scipy(audio: Audio, chunk: int) -> np.ndarray:
    """`k_weighted_blocks`'s per-channel chunk powers with scipy (without numba, or before it is loaded)."""
    n = audio.frames // chunk
    per_chunk = np.empty((audio.channels, n), np.float64)
    sos = k_weighting_sos(audio.sample_rate).astype(np.float32)
    step = max(1, _K_BLOCK // chunk) * chunk

    def channel(c: int) -> None:
        """K-filter one channel block by block (the filter state carried over: the same samples as one
        pass) and sum its power per chunk, so that long audio needs no full-length temporaries."""
        from scipy.signal import sosfilt

        x = audio.samples[c]
        zi = np.zeros((sos.shape[0], 2), np.float32)
        for s in range(0, n * chunk, step):
            y, zi = sosfilt(sos, x[s : min(s + step, n * chunk)], zi=zi)
            np.square(y, out=y)
            # float32 sums over ~1 ms chunks (45-48 samples) lose nothing measurable; float64 beyond
            per_chunk[c, s // chunk : s // chunk + y.size // chunk] = y.reshape(-1, chunk).sum(
                axis=1, dtype=np.float64
            )

    if audio.channels > 1 and audio.frames >= 1 << 20:
        # scipy's sosfilt runs without the GIL: long multichannel audio filters a channel per thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(audio.channels, 2)) as pool:
            list(pool.map(channel, range(audio.channels)))
    else:
        for c in range(audio.channels):
            channel(c)
    return per_chunk


def _lufs(mean_power: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return _OFFSET + 10.0 * np.log10(mean_power)


def power_to_lufs(mean_power: np.ndarray) -> np.ndarray:
    """K-weighted mean power (channel-weighted) → LUFS; -inf for silence."""
    return np.asarray(_lufs(mean_power))


def _gated_integrated(block_power: np.ndarray) -> float:
    """BS.1770-4 two-stage gating over 400 ms / 75 %-overlap block powers."""
    if block_power.size == 0:
        return -math.inf
    loud = _lufs(block_power)
    keep = block_power[loud > ABS_GATE_LUFS]
    if keep.size == 0:
        return -math.inf
    rel = _lufs(keep.mean()) + REL_GATE_LU
    keep = keep[_lufs(keep) > rel]
    if keep.size == 0:
        return -math.inf
    return float(_lufs(keep.mean()))


def _lra(short_term_power: np.ndarray) -> float:
    """EBU Tech 3342 loudness range from short-term (3 s) block powers at 10 Hz."""
    if short_term_power.size == 0:
        return 0.0
    loud = np.asarray(_lufs(short_term_power))
    ok = loud > ABS_GATE_LUFS
    if ok.sum() < 2:
        return 0.0
    rel = _lufs(short_term_power[ok].mean()) + LRA_REL_GATE_LU
    vals = loud[ok & (loud > rel)]
    if vals.size < 2:
        return 0.0
    lo, hi = np.percentile(vals, [10.0, 95.0])
    return float(hi - lo)


def integrated_lufs(audio: Audio, blocks: KBlocks | None = None) -> float:
    """Integrated loudness (BS.1770-4, gated); -inf for silence or audio under 400 ms."""
    blocks = blocks or k_weighted_blocks(audio)
    per_hop = blocks.hop // blocks.chunk
    return _gated_integrated(blocks.window_mean_power(4, per_hop))


def loudness_from_blocks(blocks: KBlocks) -> tuple[float, float, float, float]:
    """(integrated, max momentary, max short-term, LRA) from precomputed `KBlocks`.

    Maxima are taken over windows starting at every chunk (~1 ms), so a burst is never
    missed by more than ~1 ms of its 400 ms / 3 s window (< 0.02 dB).
    """
    per_hop = blocks.hop // blocks.chunk
    integrated = _gated_integrated(blocks.window_mean_power(4, per_hop))
    m = blocks.window_mean_power(4, 1)
    s = blocks.window_mean_power(30, 1)
    max_m = float(_lufs(m.max())) if m.size and m.max() > 0 else -math.inf
    max_s = float(_lufs(s.max())) if s.size and s.max() > 0 else -math.inf
    lra = _lra(blocks.window_mean_power(30, per_hop))
    return integrated, max_m, max_s, lra


# ----------------------------------------------------------------------------- peaks


def sample_peak_dbfs(audio: Audio) -> float:
    """Largest |sample| in dBFS; -inf for digital silence."""
    peak = float(np.abs(audio.samples).max()) if audio.frames else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


@lru_cache(maxsize=8)
def _tp_filter(factor: int) -> tuple[np.ndarray, float]:
    """Polyphase interpolation matrix (taps, factor) and its worst-case gain bound.

    Equiripple (Parks-McClellan) low-pass, 16 taps per phase: flat within ~0.1 dB up to
    0.42 x the input rate (18.5 kHz at 44.1 kHz), images down >= 40 dB from 0.58 x; each phase
    is scaled to unit DC gain, so a sine at fs/4 with 45 degrees phase reads +3.01 dB over its
    samples. ``bound = max_p sum_k |h_p[k]|`` (~2.2, +7.0 dB) is the largest factor by which any
    interpolated value can exceed the largest input sample in its filter window.
    """
    from scipy.signal import remez

    taps = _TP_TAPS_PER_PHASE
    edge = 0.42
    # odd length (symmetric, integer delay): the phases then sit at exactly 0, 1/4, 1/2, 3/4 of a
    # sample, so a sine at fs/4 with 45 degrees phase has its crest on an output point
    h = (
        remez(factor * taps - 1, [0.0, edge / factor, (1.0 - edge) / factor, 0.5], [1.0, 0.0], fs=1.0)
        * factor
    )
    h = np.append(h, 0.0)
    phases = h.reshape(taps, factor)  # phases[k, p] = h[k*factor + p]
    phases = phases / phases.sum(axis=0, keepdims=True)
    matrix = np.ascontiguousarray(phases[::-1]).astype(np.float32)  # window x[n-taps+1..n] @ matrix
    bound = float(np.abs(phases).sum(axis=0).max())
    return matrix, bound


def _interp_peak(segments: np.ndarray, matrix: np.ndarray) -> float:
    """Largest |interpolated value| over rows of `segments` (each row carries its own context)."""
    from numpy.lib.stride_tricks import sliding_window_view

    taps = matrix.shape[0]
    best = 0.0
    # ~4k windows per product: small enough to stay in cache (and below BLAS's threading
    # threshold, which on a busy 2-core machine costs far more than it gains)
    rows = max(1, _TP_BATCH // max(1, segments.shape[1] - taps + 1))
    for s in range(0, segments.shape[0], rows):
        win = sliding_window_view(segments[s : s + rows], taps, axis=1)
        y = win.reshape(-1, taps) @ matrix  # reshape copies the strided windows, batch by batch
        best = max(best, float(y.max()), -float(y.min()))
    return best


def true_peak_linear(audio: Audio, exhaustive: bool = False) -> float:
    """True peak (BS.1770-4 Annex 2 style) as a linear amplitude.

    Oversampling is 4x below 96 kHz and 2x from 96 kHz up, with a 16-tap-per-phase polyphase
    FIR. Only short blocks (64 samples) that *could* hold the peak are oversampled: a block whose
    neighbourhood sample peak m satisfies ``m * bound < best-so-far`` is skipped, where ``bound``
    is the filter's worst-case gain (sum of |taps| of the worst phase, ~2.2 = +7.0 dB). That
    bound is a triangle-inequality fact about the FIR, not a guess about music, so the pruned
    result equals the exhaustive one (``exhaustive=True``; the tests compare both). On real music
    1-20 % of the blocks survive the pruning. Where numba is installed, the block peaks and the
    surviving blocks' interpolation are compiled passes (`dsp.block_abs_peak`, `dsp.interp_peak_blocks`:
    no gathered copies; the bound re-checked against the best so far at every block).
    """
    from tools import dsp

    x = audio.samples
    if audio.frames == 0:
        return 0.0
    blk = _TP_BLOCK
    n_blocks = -(-audio.frames // blk)
    # block sample peaks, one silent block either side (= zero context); no full-length copies
    bpk = np.zeros((audio.channels, n_blocks + 2), dtype=np.float32)
    compiled_peaks = dsp.block_abs_peak(x, blk)
    if compiled_peaks is not None:
        bpk[:, 1:-1] = compiled_peaks
    else:
        full = audio.frames // blk
        step = max(1, _K_BLOCK // blk) * blk
        for c in range(audio.channels):
            for s in range(0, full * blk, step):
                e = min(s + step, full * blk)
                bpk[c, 1 + s // blk : 1 + e // blk] = np.abs(x[c, s:e]).reshape(-1, blk).max(axis=1)
            if full < n_blocks:  # the last, partial block
                bpk[c, 1 + full] = np.abs(x[c, full * blk :]).max()
    sample_peak = float(bpk.max())  # = max |x|
    if sample_peak == 0.0:
        return 0.0
    factor = 4 if audio.sample_rate < 96_000 else 2
    matrix, bound = _tp_filter(factor)
    taps = matrix.shape[0]
    # neighbourhood peak: a block's windows reach `taps` (<= blk) samples into the block before
    neigh = np.maximum(bpk[:, 1:-1], bpk[:, :-2])
    loudest = np.array([] if exhaustive else [int(np.argmax(neigh))], np.int64)
    compiled = dsp.interp_peak_blocks(  # the loudest block first, then every one the bound cannot rule out
        x,
        matrix,
        neigh,
        loudest,
        math.inf if exhaustive else bound,
        sample_peak,
        blk,
    )
    if compiled is not None:
        return compiled
    ch_idx, b_idx = np.nonzero(neigh > 0)
    vals = neigh[ch_idx, b_idx]
    offsets = np.arange(blk + taps - 1)

    def segments(sel: np.ndarray) -> np.ndarray:
        """(block + context) rows gathered from any channel at once, zeros outside the audio."""
        idx = (b_idx[sel] * blk - (taps - 1))[:, None] + offsets[None, :]
        inside = (idx >= 0) & (idx < audio.frames)
        rows = x[ch_idx[sel][:, None], np.clip(idx, 0, audio.frames - 1)]
        return np.where(inside, rows, np.float32(0.0))

    if exhaustive:
        every = np.arange(vals.size)
        return max(
            [sample_peak]
            + [
                _interp_peak(segments(every[s : s + _TP_GATHER]), matrix)
                for s in range(0, every.size, _TP_GATHER)
            ]
        )
    k = min(32, vals.size)
    first = np.argpartition(vals, vals.size - k)[vals.size - k :]
    best = max(sample_peak, _interp_peak(segments(first), matrix))
    rest = np.flatnonzero(vals * bound >= best)
    rest = rest[~np.isin(rest, first)]
    for s in range(0, rest.size, _TP_GATHER):  # in batches: noise-like audio keeps most blocks
        best = max(best, _interp_peak(segments(rest[s : s + _TP_GATHER]), matrix))
    return best


def true_peak_dbtp(audio: Audio) -> float:
    """True peak in dBTP (>= 4x oversampling below 96 kHz); -inf for silence."""
    tp = true_peak_linear(audio)
    return 20.0 * math.log10(tp) if tp > 0 else -math.inf


# ----------------------------------------------------------------------------- all at once


def loudness_stats(audio: Audio, blocks: KBlocks | None = None) -> LoudnessStats:
    """Integrated, max momentary, max short-term, LRA and true peak in one pass."""
    blocks = blocks or k_weighted_blocks(audio)
    integrated, max_m, max_s, lra = loudness_from_blocks(blocks)
    return LoudnessStats(
        integrated_lufs=integrated,
        max_momentary_lufs=max_m,
        max_short_term_lufs=max_s,
        lra_lu=lra,
        true_peak_dbtp=true_peak_dbtp(audio),
    )
