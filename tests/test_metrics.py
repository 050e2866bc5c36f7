"""tools.metrics: SDR family and LSD on synthetic signals, PESQ/STOI/DNSMOS on one real pair."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import noise, sine
from tools import metrics as M
from tools.audio import Audio


def _speechlike(sr: int = 16000, seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """Harmonic tone with syllable-rate amplitude modulation (enough for SDR/LSD tests)."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * ph) / k for k in range(1, 20))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.1 * x * env).astype(np.float64)


def test_si_sdr_is_scale_invariant_and_tracks_noise_level():
    s = _speechlike()
    n = noise(3.0, 16000, amp=1.0, seed=3)[0].astype(np.float64)
    n *= np.sqrt(np.mean(s**2) / np.mean(n**2))
    assert M.si_sdr(s + 0.1 * n, s) == pytest.approx(20.0, abs=0.3)
    assert M.si_sdr(3.0 * (s + 0.1 * n), s) == pytest.approx(20.0, abs=0.3)
    assert M.si_sdr(s + n, s) == pytest.approx(0.0, abs=0.3)
    # plain SDR is not scale invariant: a 2x gain error is −0 dB SDR
    assert M.sdr(2 * s, s) == pytest.approx(0.0, abs=0.01)
    assert M.sdr(s, s) > 100


def test_lsd_zero_for_identical_and_grows_with_lowpass():
    from scipy.signal import butter, sosfiltfilt

    x = noise(2.0, 44100, amp=0.1)[0]
    assert M.lsd(x, x, 44100) == pytest.approx(0.0, abs=1e-6)
    lp8 = sosfiltfilt(butter(8, 8000, fs=44100, output="sos"), x)
    lp4 = sosfiltfilt(butter(8, 4000, fs=44100, output="sos"), x)
    assert M.lsd(lp4, x, 44100) > M.lsd(lp8, x, 44100) > 3.0
    # restricted to the pass band the low-passed signal is nearly identical
    assert M.lsd(lp8, x, 44100, max_hz=6000) < 1.0


def test_composite_rewards_improvement():
    s = _speechlike()
    n = noise(3.0, 16000, amp=0.05, seed=4)[0]
    noisy = s + n
    better = s + 0.1 * n
    good = M.composite_score(better, s, noisy, 16000)
    same = M.composite_score(noisy, s, noisy, 16000)
    assert 0 <= same < good <= 100
    assert good > same + 15
    assert M.composite_score(s, s, noisy, 16000) > good


def test_accepts_audio_and_rejects_rate_mismatch():
    a = Audio(sine(440, 1.0, 16000), 16000)
    b = Audio(sine(440, 1.0, 8000), 8000)
    assert M.si_sdr(a, a) > 100
    with pytest.raises(ValueError, match="resample"):
        M.lsd(a, b)
    with pytest.raises(ValueError, match="sample rate"):
        M.stoi(np.zeros(100), np.zeros(100))


def test_real_pair_intrusive_and_dnsmos(shared_fixtures):
    import soundfile as sf

    d = shared_fixtures / "speech_pairs" / "vbdemand"
    files = sorted((d / "noisy").glob("*.wav"))
    if not files:
        pytest.skip("no vbdemand pairs")
    noisy, sr = sf.read(files[0])
    clean, _ = sf.read(d / "clean" / files[0].name)
    m_noisy = M.evaluate(noisy, clean, sr, degraded=noisy)
    m_clean = M.evaluate(clean, clean, sr, dnsmos=False)
    assert m_clean["pesq_wb"] > 4.4 and m_clean["stoi"] > 0.99
    assert 1.0 < m_noisy["pesq_wb"] < m_clean["pesq_wb"]
    assert m_noisy["stoi"] < m_clean["stoi"]
    for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"):
        assert 1.0 <= m_noisy[k] <= 5.0
    # the noisy clip's background is rated worse than the clean clip's
    assert M.dnsmos(clean, sr)["bak"] > m_noisy["dnsmos_bak"] + 0.5
