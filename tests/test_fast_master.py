"""The compiled passes of the master path give numpy's values: PCM quantising and packing (save), block
peaks and the true-peak interpolation (loudness), the finiteness check, and the limiter's gain."""

from __future__ import annotations

import math
import wave

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tools import dsp
from tools.audio import Audio, _ints_from_draws, _tpdf_draws, all_finite, load, save
from tools.loudness import _tp_filter, true_peak_linear

numba = pytest.importorskip("numba")


def signal(frames: int = 20_000, channels: int = 2, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (0.4 * rng.standard_normal((channels, frames))).astype(np.float32)
    # full scale, over it, the smallest steps and exact half-steps of a 24-bit LSB
    x[0, :10] = [1.0, -1.0, 0.99999994, -0.99999994, 1.5, -1.5, 0.0, 1e-9, 0.5 / 2**23, 1.5 / 2**23]
    return x


@pytest.mark.parametrize("bits", [16, 24])
@pytest.mark.parametrize("dither", [True, False])
def test_pcm_bytes_are_the_numpy_quantisers_integers(bits, dither):
    x = signal()
    raw = _tpdf_draws(np.random.default_rng(5), x.size) if dither else None
    ints = _ints_from_draws(np.ascontiguousarray(x.T), bits, raw)  # (frames, channels)
    words = dsp.pcm_bytes(x, bits, raw, 4)
    assert words is not None and np.array_equal(words.view("<i4").reshape(ints.shape), ints)
    packed = dsp.pcm_bytes(x, bits, raw, bits // 8)
    expect = np.ascontiguousarray(ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, : bits // 8])
    assert packed is not None and np.array_equal(packed, expect.reshape(-1))
    assert ints.min() >= -(2 ** (bits - 1)) and ints.max() <= 2 ** (bits - 1) - 1


def test_tpdf_draws_make_triangular_noise_within_one_lsb():
    x = np.full((1, 200_000), 0.3 / 2**15, np.float32)  # 0.3 LSB of 16 bits
    ints = _ints_from_draws(x, 16, _tpdf_draws(np.random.default_rng(2), x.size))
    assert set(np.unique(ints)) <= {-1, 0, 1, 2}
    assert abs(ints.mean() - 0.3) < 0.01  # unbiased: the average level is kept
    draws = _tpdf_draws(np.random.default_rng(4), 200_000)
    noise = _ints_from_draws(np.zeros((1, 200_000), np.float32), 16, draws)
    # triangular on (−1, 1) LSB, then rounded: ±1 with probability 1/8 each
    assert np.mean(noise == 1) == pytest.approx(0.125, abs=0.005)
    assert np.mean(noise == -1) == pytest.approx(0.125, abs=0.005)


@pytest.mark.parametrize("bits", [16, 24])
def test_wav_writer_and_libsndfile_writer_store_the_same_samples(tmp_path, bits):
    x = signal(70_000)
    a = Audio(x, 44100)
    wav = save(a, tmp_path / "a.wav", bit_depth=bits, rng=np.random.default_rng(9))  # the wave path
    flac = save(a, tmp_path / "a.flac", bit_depth=bits, rng=np.random.default_rng(9))  # libsndfile's
    assert np.array_equal(load(wav).samples, load(flac).samples)
    with wave.open(str(wav)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getnframes()) == (bits // 8, 2, 70_000)
    # the same seed, the same bytes; another seed, other dither
    again = save(a, tmp_path / "b.wav", bit_depth=bits, rng=np.random.default_rng(9))
    other = save(a, tmp_path / "c.wav", bit_depth=bits, rng=np.random.default_rng(10))
    assert again.read_bytes() == wav.read_bytes() != other.read_bytes()
    err = load(wav).samples - np.clip(x, -1.0, 1.0 - 2.0 ** (1 - bits))
    assert np.abs(err).max() <= 1.5 * 2.0 ** (1 - bits)  # within 1.5 LSB: dither plus rounding


def test_block_abs_peak_is_numpys():
    x = signal(10_000 + 37)
    got = dsp.block_abs_peak(x, 64)
    pad = np.zeros((2, -(-x.shape[1] // 64) * 64), np.float32)
    pad[:, : x.shape[1]] = np.abs(x)
    assert got is not None and np.array_equal(got, pad.reshape(2, -1, 64).max(axis=2))


def _reference_true_peak(x: np.ndarray, factor: int) -> float:
    """Every 4x (2x) interpolated value, windows ending at every sample (zeros before the signal)."""
    matrix, _ = _tp_filter(factor)
    taps = matrix.shape[0]
    best = float(np.abs(x).max())
    for row in x.astype(np.float64):
        padded = np.concatenate([np.zeros(taps - 1), row, np.zeros(64)])
        y = sliding_window_view(padded, taps) @ matrix.astype(np.float64)
        best = max(best, float(np.abs(y).max()))
    return best


@pytest.mark.parametrize("sr", [44100, 96000])
def test_compiled_true_peak_is_the_interpolators_peak(sr):
    x = signal(sr // 2, seed=7) * np.float32(0.5)
    t = np.arange(300) / sr
    x[1, 5000:5300] += (0.5 * np.sin(2 * np.pi * 0.45 * sr * t + 0.3)).astype(np.float32)  # near Nyquist
    a = Audio(x, sr)
    fast = true_peak_linear(a)
    assert fast == true_peak_linear(a, exhaustive=True)
    assert fast == pytest.approx(_reference_true_peak(x, 4 if sr < 96000 else 2), rel=1e-6)


def test_all_finite_without_a_mask():
    x = signal(5000)
    assert all_finite(x)
    huge = np.full((2, 1000), 3e38, np.float32)  # finite, but their sum overflows
    assert all_finite(huge)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 4321] = bad
        assert not all_finite(y)


def _limiter_gain_reference(peak, ceiling_lin, step_s, lookahead_ms=2.0, release_ms=80.0):
    """`dsp.limiter_gain` as written before it worked in place."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    req = np.minimum(1.0, ceiling_lin / np.maximum(peak.astype(np.float64), 1e-12))
    if req.min() >= 1.0:
        return np.ones_like(req)
    size = 2 * max(1, int(round(lookahead_ms * 1e-3 / step_s))) + 1

    def attack(g):
        m = minimum_filter1d(g, size=size, mode="nearest")
        return np.minimum(uniform_filter1d(m, size=size, mode="nearest"), g)

    g = attack(req)
    att = -20.0 * np.log10(g)
    ramp = np.arange(att.size, dtype=np.float64) * (6.0 * step_s / max(release_ms * 1e-3, 1e-6))
    att = np.maximum.accumulate(att + ramp) - ramp
    return attack(10.0 ** (-att / 20.0))


@pytest.mark.parametrize("ceiling, release", [(0.8, 80.0), (0.3, 10.0), (5.0, 80.0)])
def test_limiter_gain_in_place_gives_the_same_values(ceiling, release):
    peak = np.abs(signal(50_001)[0]) + np.float32(0.01)
    got = dsp.limiter_gain(peak, ceiling, 16 / 44100, release_ms=release)
    assert np.array_equal(got, _limiter_gain_reference(peak, ceiling, 16 / 44100, release_ms=release))
    assert got.max() <= 1.0 and math.isfinite(float(got.min()))


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_wav_pcm_reads_the_samples_libsndfile_reads(tmp_path, subtype, channels):
    import soundfile as sf

    x = signal(300_001, channels, seed=channels).clip(-1.0, 0.999)
    path = tmp_path / "in.wav"
    sf.write(path, x.T, 44100, subtype=subtype)
    with open(path, "ab") as f:  # a chunk after the data (as some editors write) is not audio
        f.write(b"LIST\x04\x00\x00\x00abcd")
    expect, sr = sf.read(path, dtype="float32", always_2d=True)
    dsp.warm_compiled()  # the compiled decoder serves once loaded (a first load does not wait for it)
    dsp._WARMING[0].join()
    assert dsp.pcm_decode(np.empty(0, np.uint8), 3, np.empty((channels, 0), np.float32), 0)
    got = load(path)
    assert got.sample_rate == sr == 44100 and np.array_equal(got.samples, expect.T)
    short = load(path, max_samples=10**9)
    assert np.array_equal(short.samples, expect.T)


def test_pcm_bytes_of_a_frame_range_are_those_of_the_range_alone():
    x = signal(9_000)
    raw = _tpdf_draws(np.random.default_rng(6), 2 * 4_000)
    part = dsp.pcm_bytes(x, 24, raw, 3, 1_000, 5_000)
    alone = dsp.pcm_bytes(np.ascontiguousarray(x[:, 1_000:5_000]), 24, raw, 3)
    assert (
        part is not None and alone is not None and np.array_equal(part, alone) and part.size == 4_000 * 2 * 3
    )


def test_warm_up_compiles_what_the_tools_call():
    """After `warm_compiled` a warm service compiles nothing on a user's turn: `genre_preset` (FIR, width,
    spectra, loudness), `stereo_width` with and without its bass crossover, `dynamic_eq`, `master` and
    the meters add no specialisation to any kernel (a fresh process: this one's kernels may already hold
    the tests' types)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = """
import numpy as np
from tools import dsp
from tools.audio import Audio
from tools.loudness import loudness_stats
from tools.registry import get_tool

def specialisations():
    return {name: set(map(str, k.signatures)) for name, k in dsp._JIT.items() if k is not None}

dsp.warm_compiled()
dsp._WARMING[0].join()
warm = specialisations()
rng = np.random.default_rng(1)
audio = Audio((0.1 * rng.standard_normal((2, 3 * 44100))).astype(np.float32), 44100)
for name, params in [
    ("genre_preset", {"genre": "pop"}),
    ("stereo_width", {}),
    ("stereo_width", {"width": 1.3, "bass_mono_hz": 0}),
    ("dynamic_eq", {}),
    ("master", {"platform": "spotify"}),
]:
    get_tool(name)(audio, params)
loudness_stats(audio)
after = specialisations()
print(sorted(after))
print({name: sorted(after[name] - warm.get(name, set())) for name in after if after[name] - warm.get(name, set())})
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    used, new = out.stdout.strip().splitlines()
    for kernel in ("_width_kernel", "_welch_segments_kernel", "_power_sum_kernel", "_k_power_peak_kernel"):
        assert kernel in used
    assert new == "{}", f"compiled on a turn, not in `warm_compiled`: {new}"


@pytest.mark.parametrize("channels", [2, 3])
def test_k_power_of_a_thread_per_channel_is_that_of_channels_side_by_side(channels):
    """`k_power_and_block_peak` on long audio (a thread per channel, one channel per call) and
    `k_chunk_power` (all channels in one call, two at a time) give the same chunk powers, and the peaks
    are `block_peak`'s."""
    from tools.loudness import k_weighting_sos

    dsp.warm_compiled()
    dsp._WARMING[0].join()
    x = signal((1 << 20) + 123, channels, seed=11)
    sos = k_weighting_sos(44100)
    fused = dsp.k_power_and_block_peak(x, sos, 45, 16)
    alone = dsp.k_chunk_power(x, sos, 45)
    assert fused is not None and alone is not None
    assert alone.shape == fused[0].shape == (channels, x.shape[1] // 45)
    assert np.array_equal(fused[0], alone) and np.all(alone > 0)
    np.testing.assert_allclose(fused[1], dsp.block_peak(x, 16), rtol=1e-6, atol=1e-7)
