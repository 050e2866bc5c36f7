"""Shared test helpers: synthetic signals and the real recordings in ../shared/fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_FIXTURES = REPO / "tests" / "fixtures"


def shared_fixtures_dir() -> Path:
    """../shared/fixtures beside the repo (or MIXPILOT_SHARED_FIXTURES)."""
    env = os.environ.get("MIXPILOT_SHARED_FIXTURES")
    return Path(env) if env else REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    d = shared_fixtures_dir()
    if not d.is_dir():
        pytest.skip(f"real recordings not found at {d} (set MIXPILOT_SHARED_FIXTURES)")
    return d


@pytest.fixture(scope="session")
def local_fixtures() -> Path:
    return LOCAL_FIXTURES


def sine(
    freq_hz: float = 1000.0,
    seconds: float = 1.0,
    sr: int = 48000,
    amp: float = 0.5,
    channels: int = 1,
    phase: float = 0.0,
) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)
    return np.repeat(x[None, :], channels, axis=0)


def noise(
    seconds: float = 1.0, sr: int = 48000, amp: float = 0.1, channels: int = 1, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal((channels, int(seconds * sr)))).astype(np.float32)


@pytest.fixture()
def weight_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``weight_env(NAME=value or None, ...)``: set (or remove) environment variables, then install the
    model-weight sources `app.settings.Settings` builds from them, as a surface does at start-up
    (`models.weights` itself never reads the environment). The models dir defaults to an empty temp
    folder, so weights pulled on this machine never leak in. Undone after the test."""

    def apply(**env: str | None) -> None:
        env.setdefault("MIXPILOT_MODELS_DIR", str(tmp_path / "no-models"))
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        from app.settings import Settings

        monkeypatch.setattr("models.weights._SOURCES", Settings(_env_file=None).weight_sources())

    return apply
