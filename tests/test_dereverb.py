"""dereverb's WPE: the same estimator as nara_wpe, silent input, stereo reverberant speech at 44.1 kHz."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import fftconvolve

from tools import metrics as M
from tools.audio import Audio
from tools.dereverb import _wpe_bin, dereverb_array
from tools.registry import get_tool


def _bins(seed: int, channels: int, frames: int) -> np.ndarray:
    """A few STFT-like bins with a decaying recursive tail (so the prediction filter is not zero)."""
    rng = np.random.default_rng(seed)
    s = (
        rng.standard_normal((3, channels, frames)) + 1j * rng.standard_normal((3, channels, frames))
    ) * np.exp(rng.standard_normal((3, 1, frames)))
    y = s.copy()
    for t in range(3, frames):
        y[..., t] += 0.6 * y[..., t - 3] - 0.2 * y[..., t - 4]
    return y


@pytest.mark.parametrize("channels,taps,iterations", [(1, 10, 3), (2, 6, 4)])
def test_wpe_bin_matches_nara_wpe(channels, taps, iterations):
    wpe_v6 = pytest.importorskip("nara_wpe.wpe").wpe_v6
    for y in _bins(channels, channels, 400):
        ours = _wpe_bin(y, taps, 2, iterations)
        ref = wpe_v6(y, taps=taps, delay=2, iterations=iterations, statistics_mode="full")
        assert np.linalg.norm(y - ref) > 0.1 * np.linalg.norm(y)  # it did remove something
        assert np.linalg.norm(ours - ref) <= 1e-8 * np.linalg.norm(ref)


def test_silent_and_partly_silent_input():
    sr = 16000
    zeros = np.zeros((2, sr))
    out, info = dereverb_array(zeros, sr)
    assert np.array_equal(out, zeros)
    # a tone in one channel only: the silent bins and channel give singular statistics, never NaN
    x = np.zeros((2, sr))
    x[0] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    out, info = dereverb_array(x, sr)
    assert np.all(np.isfinite(out)) and np.isfinite(info["removed_to_input_db"])
    assert np.max(np.abs(out[1])) < 1e-6


def test_stereo_44k_reverberant_speech(shared_fixtures):
    path = shared_fixtures / "speech" / "speech-female.flac"
    if not path.is_file():
        pytest.skip("speech fixture absent")
    x, sr = sf.read(path, dtype="float64")
    rng = np.random.default_rng(1)
    rt60 = 0.7
    t = np.arange(int(rt60 * sr)) / sr
    wet, target = [], []
    for _ in range(2):  # a different room response per channel
        h = 0.05 * rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
        h[: int(0.002 * sr)] = 0
        h[0] = 1.0
        early = h.copy()
        early[int(0.05 * sr) :] = 0
        wet.append(fftconvolve(x, h)[: x.size])
        target.append(fftconvolve(x, early)[: x.size])
    res = get_tool("dereverb")(Audio(np.array(wet, dtype=np.float32), sr))
    y = res.audio.samples.astype(np.float64)
    assert res.report["n_fft"] == 2048 and res.report["taps"] == 20
    for c in range(2):
        # at 44.1 kHz the prediction delay is 23 ms, so part of the 23-50 ms "early" target goes too:
        # the dry speech is the fair reference (+4-5 dB here), and the tail beyond the target drops 5-7 dB
        assert M.si_sdr(y[c], x) >= M.si_sdr(wet[c], x) + 2.0
        a = np.dot(y[c], target[c]) / np.dot(target[c], target[c])
        late_db = 10 * np.log10(np.mean((y[c] - a * target[c]) ** 2) / np.mean((wet[c] - target[c]) ** 2))
        assert late_db < -3.0


def test_progress_reports_reach_the_end():
    seen: list[float] = []
    x = np.random.default_rng(0).standard_normal((1, 8000)) * 0.1
    dereverb_array(x, 16000, progress=lambda f, _m: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
