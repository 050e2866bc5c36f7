import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from tests.mixhelpers import band_db
from tools.audio import Audio, load
from tools.registry import get_tool

de_ess = get_tool("de_ess")


def vowel_and_s(sr: int, seed: int = 0) -> tuple[np.ndarray, list, list]:
    """Alternating 'vowels' (harmonic 150 Hz complex + a little air) and 's' bursts (5–10 kHz noise)."""
    rng = np.random.default_rng(seed)
    seg = int(0.3 * sr)
    parts, vowels, esses = [], [], []
    t = np.arange(seg) / sr
    hf = butter(4, [min(5000, 0.3 * sr), min(10000, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    for i in range(8):
        if i % 2 == 0:
            v = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * 0.1
            v += 0.005 * sosfilt(hf, rng.standard_normal(seg))  # faint air, not sibilance
            vowels.append((i * seg, (i + 1) * seg))
        else:
            v = 0.2 * sosfilt(hf, rng.standard_normal(seg))
            esses.append((i * seg, (i + 1) * seg))
        parts.append(v)
    return np.concatenate(parts).astype(np.float32), vowels, esses


@pytest.mark.parametrize("sr", [44100, 48000])
def test_lowers_sibilance_only_in_sibilant_frames(sr):
    x, vowels, esses = vowel_and_s(sr)
    y = de_ess(Audio(x, sr), {"amount": 0.6}).audio.samples[0]
    m = int(0.05 * sr)  # skip the smoothing edges
    for a, b in esses:
        d = band_db(y[a + m : b - m], sr, 5000, 10000) - band_db(x[a + m : b - m], sr, 5000, 10000)
        assert d < -4.0
    for a, b in vowels:
        d = band_db(y[a + m : b - m], sr, 5000, 10000) - band_db(x[a + m : b - m], sr, 5000, 10000)
        assert abs(d) < 0.5
        d_low = band_db(y[a + m : b - m], sr, 100, 3000) - band_db(x[a + m : b - m], sr, 100, 3000)
        assert abs(d_low) < 0.2


def test_amount_zero_identity_and_low_rate_clamp():
    x, _, _ = vowel_and_s(16000)
    r = de_ess(Audio(x, 16000), {"amount": 0.5})
    assert any("0.45" in w or "band moved" in w for w in r.warnings)
    assert np.array_equal(de_ess(Audio(x, 16000), {"amount": 0}).audio.samples, x[None])


def test_real_speech_sibilant_frames(shared_fixtures):
    a = load(shared_fixtures / "speech" / "speech-female.flac")
    r = de_ess(a, {"amount": 0.7})
    assert r.report["sibilant_fraction"] > 0.01
    x, y = a.samples[0], r.audio.samples[0]
    assert band_db(y, a.sample_rate, 5000, 10000) < band_db(x, a.sample_rate, 5000, 10000) - 0.5
    assert abs(band_db(y, a.sample_rate, 100, 2000) - band_db(x, a.sample_rate, 100, 2000)) < 0.2


@pytest.mark.parametrize("channels", [1, 2])
def test_band_cut_resynthesises_only_cut_frames_as_the_full_istft(channels):
    """Only frames with a cut are resynthesised; the result is `dsp.istft` of the whole masked
    spectrum (cuts at the very first and last frames, lone frames, runs whose samples overlap)."""
    from tools import dsp
    from tools.de_ess import _with_band_cut

    sr, n_fft = 44100, 1024
    hop = n_fft // 4
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((channels, 2 * sr + 123))).astype(np.float32)
    z, total = dsp.stft(x, n_fft, hop)
    depth = np.zeros(z.shape[1])
    for t in (0, 1, 40, 43, 47, 100, z.shape[1] - 1):  # 40 and 43: their samples overlap
        depth[t] = rng.uniform(0.2, 0.9)
    depth[200:260] = np.linspace(0.8, 1e-12, 60)  # a release tail into nothing
    mask = dsp.band_mask(np.fft.rfftfreq(n_fft, 1.0 / sr), 5000.0, 10000.0, 0.25)
    want = dsp.istft(z * (1.0 - depth[:, None] * mask[None, :])[None], n_fft, hop, total, x.shape[1])
    got = _with_band_cut(x, z, depth, mask, n_fft, hop)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert np.abs(got - x).max() > 1e-3  # and it did cut
    untouched = slice(110 * hop, 190 * hop)  # no frame with a cut reaches these samples
    assert np.array_equal(got[:, untouched], x[:, untouched])
