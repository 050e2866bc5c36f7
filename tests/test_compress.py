import numpy as np
import pytest

from tests.mixhelpers import pink
from tools.audio import Audio, load
from tools.compress import crest_db
from tools.registry import get_tool

comp = get_tool("compress")


def drums(sr: int, channels: int) -> np.ndarray:
    x = pink(3.0, sr, channels, amp=0.02)
    for k in range(6):  # loud decaying hits over a quiet bed, far enough apart for the release
        i = int((0.1 + 0.5 * k) * sr)
        n = int(0.12 * sr)
        x[:, i : i + n] += (
            0.7 * np.exp(-np.arange(n) / (0.03 * sr)) * np.sin(2 * np.pi * 90 * np.arange(n) / sr)
        )
    return x.astype(np.float32)


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_reduces_crest_factor_more_with_amount(sr, channels):
    a = Audio(drums(sr, channels), sr)

    # envelope crest (loudest 50 ms RMS over the mean RMS): what a compressor acts on
    def env_crest(x):
        hop = int(0.05 * sr)
        n = x.shape[1] // hop
        p = (x[:, : n * hop].astype(np.float64) ** 2).reshape(x.shape[0], n, hop).mean(axis=(0, 2))
        return 10 * np.log10(p.max() / p.mean())

    half = comp(a, {"amount": 0.5}).audio.samples
    full = comp(a, {"amount": 1.0}).audio.samples
    assert env_crest(half) < env_crest(a.samples) - 0.3
    assert env_crest(full) < env_crest(half)
    # and the sample-peak crest factor at a high amount (look-ahead catches the transients)
    assert crest_db(full) < crest_db(a.samples) - 1.0


def test_explicit_settings_ratio_and_parallel_mix():
    sr = 48000
    t = np.arange(2 * sr) / sr
    x = (np.where(t < 1, 0.05, 0.5) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    r = comp(
        Audio(x, sr),
        {"threshold_db": -20, "ratio": 4, "attack_ms": 1, "release_ms": 50, "knee_db": 0, "makeup_db": 0},
    )
    y = r.audio.samples[0]

    def lvl(s: np.ndarray) -> float:
        return float(20 * np.log10(np.sqrt(np.mean(s.astype(np.float64) ** 2))))

    # the loud half sits at -9 dBFS RMS: 11 dB over, 4:1 leaves 2.75 dB over → -17.25
    assert abs(lvl(y[int(1.5 * sr) :]) - (-17.25)) < 0.6
    assert abs(lvl(y[int(0.3 * sr) : int(0.9 * sr)]) - lvl(x[int(0.3 * sr) : int(0.9 * sr)])) < 0.1
    par = comp(Audio(x, sr), {"threshold_db": -20, "ratio": 4, "makeup_db": 0, "mix": 0.5}).audio.samples[0]
    assert lvl(y[int(1.5 * sr) :]) < lvl(par[int(1.5 * sr) :]) < lvl(x[int(1.5 * sr) :])
    assert r.report["gain_reduction_db"]["max"] > 5


def test_real_music_crest_drops(shared_fixtures):
    a = load(shared_fixtures / "music" / "admiralbob77_-_Choice_-_Drum-bass.flac")
    a = a.with_samples(a.samples[:, : 10 * a.sample_rate])
    r = comp(a, {"amount": 0.5})
    assert r.report["crest_db_after"] < r.report["crest_db_before"] - 1.0
