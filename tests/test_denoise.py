"""denoise: real noisy/clean speech pairs (PESQ up, STOI not down), routing and the fallback path."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import noise, sine
from tools import metrics as M
from tools.audio import Audio
from tools.registry import get_tool


def _pair(d, name):
    noisy, sr = sf.read(d / "noisy" / name, dtype="float32")
    clean, _ = sf.read(d / "clean" / name, dtype="float32")
    n = min(noisy.size, clean.size)
    return noisy[:n], clean[:n], sr


@pytest.mark.parametrize(
    "folder,name", [("vbdemand", "p287_002.wav"), ("vbdemand", "p287_006.wav"), ("babble", "speech.wav")]
)
def test_real_pair_pesq_up_stoi_kept(shared_fixtures, folder, name):
    d = shared_fixtures / "speech_pairs" / folder
    if not (d / "noisy" / name).is_file():
        pytest.skip(f"{d / name} absent")
    noisy, clean, sr = _pair(d, name)
    res = get_tool("denoise")(Audio(noisy, sr))
    assert res.report["method"] == "deepfilternet", res.report
    out = res.audio.samples[0]
    assert out.shape == noisy.shape
    gain = M.pesq_wb(out, clean, sr) - M.pesq_wb(noisy, clean, sr)
    assert gain >= 0.1, gain
    assert M.stoi(out, clean, sr) >= M.stoi(noisy, clean, sr) - 0.005
    # output is time-aligned with the input (DFN delay compensated)
    c = np.correlate(out, clean, "full")
    assert abs(int(np.argmax(c)) - (clean.size - 1)) <= 1


def _speechlike(sr=48000, seconds=3.0):
    t = np.arange(int(sr * seconds)) / sr
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.5 * t)
    ph = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * ph) / k for k in range(1, 25))
    env = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    return (0.2 * x * env).astype(np.float32)


def test_fallback_when_dfn_cannot_load(monkeypatch):
    from tools import deepfilter

    monkeypatch.setattr(deepfilter, "availability", lambda: (False, "simulated: library missing"))
    sr = 16000
    clean = _speechlike(sr)
    noisy = clean + noise(3.0, sr, amp=0.03, seed=5)[0]
    res = get_tool("denoise")(Audio(noisy, sr), {"method": "deepfilternet", "strength": 0.9})
    assert res.report["method"] == "spectral"
    assert "simulated" in res.report["reason"] and res.warnings
    out = res.audio.samples[0]
    assert M.si_sdr(out, clean) > M.si_sdr(noisy, clean) + 1.5
    assert res.report["noise_reduction_db"] > 3.0


def test_spectral_gating_on_music_keeps_tone_and_removes_hiss():
    sr = 44100
    gate = (np.arange(3 * sr) // int(0.25 * sr)) % 2 == 0  # notes with rests, as music has
    tone = sine(440, 3.0, sr, amp=0.3, channels=2) * gate
    hiss = noise(3.0, sr, amp=0.01, channels=2, seed=2)
    res = get_tool("denoise")(Audio(tone + hiss, sr), {"method": "spectral", "strength": 0.9})
    out = res.audio.samples
    assert res.report["method"] == "spectral" and out.shape == tone.shape
    resid_in = np.mean(hiss**2)
    resid_out = np.mean((out - tone) ** 2)
    assert 10 * np.log10(resid_in / resid_out) > 6.0
    # the tone itself survives within 1 dB
    assert abs(10 * np.log10(np.mean(out**2) / np.mean(tone**2))) < 1.0


def test_own_gate_without_noisereduce(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "noisereduce":
            raise ImportError("no noisereduce")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    sr = 16000
    clean = _speechlike(sr)
    noisy = clean + noise(3.0, sr, amp=0.03, seed=6)[0]
    res = get_tool("denoise")(Audio(noisy, sr), {"method": "spectral", "stationary": False})
    assert "builtin" in res.report["implementation"]
    assert M.si_sdr(res.audio.samples[0], clean) > M.si_sdr(noisy, clean) + 2.0


def test_auto_routing_follows_analysis(local_fixtures):
    from tools.registry import ToolContext

    x, sr = sf.read(local_fixtures / "slow_motion_dream_3s.flac", dtype="float32")
    res = get_tool("denoise")(Audio(x, sr), None, ToolContext(analysis={"speech_probability": 0.1}))
    assert res.report["method"] == "spectral" and res.report["speech_probability_source"] == "analysis"
    x, sr = sf.read(local_fixtures / "speech_female_16k.flac", dtype="float32")
    from tools.analysis import analyze, speech_change_score

    assert analyze(Audio(x, sr)).speech_probability > 0.5
    assert speech_change_score(Audio(x, sr)) > 0.5
    noisy = x + noise(x.size / sr, sr, amp=0.01, seed=7)[0]
    res = get_tool("denoise")(Audio(noisy, sr), {"strength": 0.0})
    assert res.report["method"] == "none" and np.array_equal(res.audio.samples[0], noisy)


def test_dfn_stereo_48k_shape_and_strength():
    sr = 48000
    clean = _speechlike(sr, 2.0)
    x = np.stack([clean, clean]) + noise(2.0, sr, amp=0.02, channels=2, seed=8)
    weak = get_tool("denoise")(Audio(x, sr), {"method": "deepfilternet", "strength": 0.2})
    strong = get_tool("denoise")(Audio(x, sr), {"method": "deepfilternet", "strength": 1.0})
    assert strong.audio.samples.shape == x.shape
    assert weak.report["atten_lim_db"] < strong.report["atten_lim_db"]
    assert strong.report["noise_reduction_db"] > weak.report["noise_reduction_db"]


def _gate_by_scipy(x: np.ndarray, sr: int, strength: float) -> np.ndarray:
    """The stationary gate as first written with scipy's stft / uniform_filter / istft (float64)."""
    from scipy.ndimage import uniform_filter
    from scipy.signal import istft, stft

    n_fft = 2048 if sr > 24000 else 1024
    out = np.empty(x.shape)
    for c in range(x.shape[0]):
        _, _, z = stft(x[c].astype(np.float64), sr, nperseg=n_fft, noverlap=n_fft * 3 // 4)
        p = np.abs(z) ** 2
        e = p.sum(axis=0)
        floor = p[:, e <= np.percentile(e, 20)].mean(axis=1, keepdims=True) + 1e-20
        gain = np.clip(1.0 - 1.5 / np.maximum(p / floor, 1e-9), 0.0, 1.0)
        gain = 1.0 - strength * (1.0 - uniform_filter(gain, size=(3, 5)))
        out[c] = istft(z * gain, sr, nperseg=n_fft, noverlap=n_fft * 3 // 4)[1][: x.shape[1]]
    return out


@pytest.mark.parametrize("sr,seconds,channels", [(44100, 7.0, 2), (16000, 2.3, 1), (48000, 0.1, 2)])
def test_own_gate_is_the_scipy_gate(sr, seconds, channels):
    """The float32 block-wise gate gives the scipy formulation's output (ends, odd lengths, both
    FFT sizes, the two-thread path for the stereo 7 s) to float32 rounding."""
    from tools.denoise import _own_gate

    n = int(seconds * sr) + 7
    t = np.arange(n) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) * (t % 0.5 < 0.3) for c in range(channels)])
    x = (x + noise(n / sr + 1, sr, amp=0.01, channels=channels, seed=3)[:, :n]).astype(np.float32)
    got = _own_gate(x, sr, 0.8)
    want = _gate_by_scipy(x, sr, 0.8)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.abs(got - want).max() < 1e-5
    rest = (t % 0.5) > 0.35
    if rest.any():  # and it did gate: the rests lost most of their hiss
        assert np.mean(got[:, rest] ** 2) < 0.3 * np.mean(x[:, rest] ** 2)
