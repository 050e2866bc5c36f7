import numpy as np
import pytest

from tools.audio import Audio
from tools.registry import get_tool

delay = get_tool("delay")


def click(sr, channels=1):
    x = np.zeros((channels, 2 * sr), np.float32)
    x[:, int(0.1 * sr)] = 0.8
    return x


@pytest.mark.parametrize("sr", [44100, 48000])
def test_echoes_at_time_with_feedback(sr):
    y = delay(Audio(click(sr), sr), {"time_ms": 250, "feedback": 0.5, "amount": 0.5}).audio.samples[0]
    i = int(0.1 * sr)
    d = int(0.25 * sr)
    e1 = np.abs(y[i + d - 20 : i + d + 20]).max()
    e2 = np.abs(y[i + 2 * d - 20 : i + 2 * d + 20]).max()
    assert e1 > 0.05
    assert 0.35 < e2 / e1 < 0.6  # feedback 0.5 (a little darker each time)
    assert np.abs(y[i + 50 : i + d - 100]).max() < 1e-3


def test_slapback_is_single_short_echo_and_pingpong_alternates():
    sr = 48000
    r = delay(Audio(click(sr), sr), {"style": "slapback", "amount": 0.5})
    assert r.report["time_ms"] == 110 and r.report["echoes"] == 1
    y = r.audio.samples[0]
    i, d = int(0.1 * sr), int(0.11 * sr)
    assert np.abs(y[i + 2 * d - 50 : i + 2 * d + 50]).max() < 1e-4
    pp = delay(
        Audio(click(sr), sr), {"style": "ping_pong", "time_ms": 200, "feedback": 0.6, "amount": 0.5}
    ).audio.samples
    assert pp.shape[0] == 2
    d = int(0.2 * sr)
    assert np.abs(pp[0, i + d - 20 : i + d + 20]).max() > 5 * np.abs(pp[1, i + d - 20 : i + d + 20]).max()
    assert (
        np.abs(pp[1, i + 2 * d - 20 : i + 2 * d + 20]).max()
        > 5 * np.abs(pp[0, i + 2 * d - 20 : i + 2 * d + 20]).max()
    )
