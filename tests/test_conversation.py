"""Multi-turn conversations through the real graph, planner, tools and checkpointer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from agents.service import Mixpilot
from tests.conftest import noise, sine
from tests.services import pg_url  # noqa: F401  (fixture)
from tools.analysis import analyze
from tools.audio import Audio, load, save


@pytest.fixture
def song() -> Audio:
    """A quiet, stereo 'song': chord + noise bed, 6 s at 44.1 kHz."""
    sr = 44100
    x = sum(sine(f, 6.0, sr, 0.05, 2) for f in (220.0, 277.2, 329.6, 440.0))
    x = x + noise(6.0, sr, 0.01, 2, seed=3)
    env = (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * np.arange(x.shape[1]) / sr)).astype(np.float32)
    return Audio(x * env, sr)


@pytest.fixture
def svc(tmp_path):
    with Mixpilot(data_dir=tmp_path / "data") as s:
        yield s


def test_three_turns_master_louder_undo(svc, song):
    aid = svc.import_audio(song)
    t1 = svc.turn("master this for Spotify", audio_id=aid)
    assert t1.kind == "process" and t1.output_id
    master1 = [s for s in t1.plan["steps"] if s["tool"] == "master"]
    assert master1 and master1[0]["params"]["target_lufs"] == pytest.approx(-14.0)
    lufs1 = analyze(svc.audio(t1.output_id)).integrated_lufs
    assert lufs1 == pytest.approx(-14.0, abs=0.5)

    t2 = svc.turn("a bit louder", thread_id=t1.thread_id)
    assert t2.kind == "adjust"
    master2 = [s for s in t2.plan["steps"] if s["tool"] == "master"][0]
    assert master2["params"]["target_lufs"] > -14.0
    lufs2 = analyze(svc.audio(t2.output_id)).integrated_lufs
    assert lufs2 > lufs1 + 0.5

    t3 = svc.turn("undo", thread_id=t1.thread_id)
    assert t3.kind == "undo" and t3.output_id == t1.output_id
    np.testing.assert_array_equal(svc.audio(t3.output_id).samples, svc.audio(t1.output_id).samples)

    t4 = svc.turn("go back to the original", thread_id=t1.thread_id)
    assert t4.kind == "reset" and t4.output_id == aid
    assert [t["kind"] for t in svc.history(t1.thread_id)] == ["process", "adjust", "undo", "reset"]


def test_same_as_before_but_for_apple_music(svc, song):
    aid = svc.import_audio(song)
    t1 = svc.turn("make it brighter and master for Spotify", audio_id=aid)
    t2 = svc.turn("same as before but for Apple Music", thread_id=t1.thread_id)
    tools1 = [s["tool"] for s in t1.plan["steps"]]
    tools2 = [s["tool"] for s in t2.plan["steps"]]
    assert "eq" in tools1 and tools1 == tools2
    m2 = [s for s in t2.plan["steps"] if s["tool"] == "master"][0]
    assert m2["params"]["target_lufs"] == pytest.approx(-16.0)
    assert analyze(svc.audio(t2.output_id)).integrated_lufs == pytest.approx(-16.0, abs=0.5)


def test_threads_survive_a_restart(tmp_path, song):
    with Mixpilot(data_dir=tmp_path / "d") as s1:
        t1 = s1.turn("master this for Spotify", audio_id=s1.import_audio(song))
    with Mixpilot(data_dir=tmp_path / "d") as s2:
        t3 = s2.turn("undo", thread_id=t1.thread_id)
        assert t3.output_id != t1.output_id  # back to the original
        assert [t["kind"] for t in s2.history(t1.thread_id)] == ["process", "undo"]


def test_threads_live_in_postgres_when_the_database_is_postgres(tmp_path, song, pg_url):  # noqa: F811
    """With a PostgreSQL database, threads are checkpointed there (not in the data dir's SQLite):
    a second process with the same database continues the conversation (workers on other machines)."""
    with Mixpilot(data_dir=tmp_path / "d", threads_url=pg_url) as s1:
        t1 = s1.turn("master this for Spotify", audio_id=s1.import_audio(song))
    assert not (tmp_path / "d" / "threads.sqlite").exists()
    with Mixpilot(data_dir=tmp_path / "d", threads_url=pg_url) as s2:
        t2 = s2.turn("a bit louder", thread_id=t1.thread_id)
        assert (
            analyze(s2.audio(t2.output_id)).integrated_lufs > analyze(s2.audio(t1.output_id)).integrated_lufs
        )
        assert [t["kind"] for t in s2.history(t1.thread_id)] == ["process", "adjust"]
    with Mixpilot(data_dir=tmp_path / "sqlite") as s3:  # the default keeps its own threads
        assert s3.history(t1.thread_id) == []


def test_out_of_scope_request_changes_nothing(svc, song):
    aid = svc.import_audio(song)
    t = svc.turn("what's the weather in Paris?", audio_id=aid)
    assert t.plan["steps"] == [] and t.output_id == aid
    assert t.plan["notes"]


def test_progress_events_stream(svc, song):
    events = []
    svc.turn("master this for Spotify", audio_id=svc.import_audio(song), on_event=events.append)
    names = [e["event"] for e in events]
    assert "plan" in names and "step_started" in names and "step_finished" in names and names[-1] == "done"


def test_process_cli_clean_and_master_pop(tmp_path, shared_fixtures):
    """The issue's check: a noisy music clip → within ±0.5 LU of the pop target, steps named."""
    clean = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac")
    x = clean.samples[:, : 12 * clean.sample_rate]
    rng = np.random.default_rng(7)
    noisy = Audio(x + rng.standard_normal(x.shape).astype(np.float32) * 0.02, clean.sample_rate)
    src = save(noisy, tmp_path / "noisy.wav", bit_depth=24)
    out = tmp_path / "out.flac"
    env = {"MIXPILOT_DATA_DIR": str(tmp_path / "data")}
    import os

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "process",
            str(src),
            "clean and master this in a pop style",
            "-o",
            str(out),
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    tools = [s["tool"] for s in d["steps"] if s["status"] in ("applied", "trimmed")]
    assert "denoise" in tools and "genre_preset" in tools and tools[-1] == "master"
    target = [s for s in d["plan"]["steps"] if s["tool"] == "master"][0]["params"]["target_lufs"]
    measured = analyze(load(out)).integrated_lufs
    assert measured == pytest.approx(target, abs=0.5)
    assert d["metrics_before"]["integrated_lufs"] != pytest.approx(
        d["metrics_after"]["integrated_lufs"], abs=0.1
    )
    for name in ("noise", "genre", "master"):
        assert name in d["explanation"].lower()


def test_plan_cli_with_thread_plans_follow_ups_against_the_conversation(tmp_path, song):
    import os

    data = tmp_path / "data"
    with Mixpilot(data_dir=data) as s:
        t1 = s.turn("master this for Spotify", audio_id=s.import_audio(song))
    env = {**os.environ, "MIXPILOT_DATA_DIR": str(data)}
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "plan", "a bit louder", "--thread", t1.thread_id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    master = [st for st in plan["steps"] if st["tool"] == "master"]
    assert master and master[0]["params"]["target_lufs"] > -14.0
    r2 = subprocess.run(
        [sys.executable, "-m", "app.cli", "plan", "a bit louder", "--thread", "nope", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r2.returncode == 0 and "no conversation" in " ".join(json.loads(r2.stdout)["notes"])


def test_reference_match_turn_stores_the_reference_once(tmp_path, song, monkeypatch):
    """Matching a reference keeps the reference's analysis and band spectrum (reference_tracks), once."""
    from app.runtime import open_service
    from app.settings import Settings

    for k in ("MIXPILOT_DATABASE_URL", "MIXPILOT_REDIS_URL", "MIXPILOT_CHROMA_URL"):
        monkeypatch.delenv(k, raising=False)
    with open_service(Settings(data_dir=tmp_path / "data")) as svc:
        _reference_turns(svc, song)


def _reference_turns(svc, song):
    sr = song.sample_rate
    bright = Audio(noise(6.0, sr, 0.05, 2, seed=9), sr)  # a brighter, louder reference
    ref_id = svc.store.put(bright)
    song_id = svc.store.put(song)
    first = svc.turn("match the reference track", audio_id=song_id, inputs={"reference": ref_id})
    assert any(o["tool"] == "reference_match" and o["status"] == "applied" for o in first.steps), first.steps
    refs = svc.memory.references(user_id=None)
    assert [r["audio_id"] for r in refs] == [ref_id]
    assert len(refs[0]["spectrum"]) == 24 and all(v is None or np.isfinite(v) for v in refs[0]["spectrum"])
    assert refs[0]["analysis"]["integrated_lufs"] > -30
    svc.turn("match the reference track", audio_id=song_id, inputs={"reference": ref_id})
    assert len(svc.memory.references(user_id=None)) == 1
    assert svc.memory.references(user_id="someone-else") == []
