"""`Mixpilot.preview`: the plan on the loudest 15 s, its master aimed with the whole file's loudness."""

from __future__ import annotations

import numpy as np
import pytest

from agents.service import Mixpilot
from tests.conftest import noise, sine
from tools.audio import Audio
from tools.loudness import integrated_lufs


@pytest.fixture
def svc(tmp_path):
    with Mixpilot(data_dir=tmp_path / "data") as s:
        yield s


def song(sr: int = 22050) -> Audio:
    """40 s: 10 s quiet, 15 s loud (10–25 s), 15 s quiet; a chord over a little noise."""
    x = sum(sine(f, 40.0, sr, 0.1, 2) for f in (220.0, 330.0, 550.0)) + noise(40.0, sr, 0.01, 2, seed=3)
    env = np.full(x.shape[1], 0.2, np.float32)
    env[10 * sr : 25 * sr] = 1.0
    return Audio((x * env).astype(np.float32), sr)


def test_preview_renders_the_loudest_15_s_at_the_whole_files_gain(svc):
    a = song()
    vid = svc.import_audio(a)
    p = svc.preview("master it for spotify", audio_id=vid)
    assert p["seconds"] == pytest.approx(15.0, abs=0.01)
    assert 9.5 <= p["start_s"] <= 10.5
    assert [s["tool"] for s in p["plan"]["steps"]][-1] == "master"
    whole, part = integrated_lufs(a), integrated_lufs(svc.audio(p["source_excerpt_id"]))
    out = integrated_lufs(svc.audio(p["preview_id"]))
    # the excerpt gets the gain that brings the whole file to -14 LUFS (within the limiter's share)
    assert out == pytest.approx(-14.0 + (part - whole), abs=0.5)
    assert p["match_gain_db"] == pytest.approx(part - out, abs=0.01)


# ------------------------------------------------------------------ API: POST /preview, POST /chat?preview=true


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings

    settings = make_settings(tmp_path_factory.mktemp("preview-data"), max_upload_mb=20.0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    import soundfile as sf

    path = tmp_path_factory.mktemp("preview-song") / "song.wav"
    a = song()
    sf.write(path, a.samples.T, a.sample_rate, subtype="PCM_16")
    return path


def _download(api, headers, file_id: str, tmp_path) -> Audio:
    from tools.audio import load

    r = api.get(f"/api/v1/files/{file_id}/download", headers=headers, params={"format": "wav"})
    assert r.status_code == 200, r.text
    path = tmp_path / f"{file_id}.wav"
    path.write_bytes(r.content)
    return load(path)


def test_api_preview_returns_a_playable_excerpt_and_its_matching_gain(api, song_file, tmp_path):
    from tests.apiclient import register, upload

    h = register(api)
    f = upload(api, h, song_file)
    r = api.post("/api/v1/preview", json={"message": "master it for spotify", "file_id": f["id"]}, headers=h)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["seconds"] == pytest.approx(15.0, abs=0.01) and 9.5 <= p["start_s"] <= 10.5
    assert p["plan"]["steps"][-1]["tool"] == "master"
    out = _download(api, h, p["file_id"], tmp_path)
    src = _download(api, h, p["source_excerpt_id"], tmp_path)
    assert out.duration_s == pytest.approx(15.0, abs=0.01)
    # the gain that plays the preview at the source excerpt's loudness
    assert p["match_gain_db"] == pytest.approx(integrated_lufs(src) - integrated_lufs(out), abs=0.1)
    assert p["match_gain_db"] < -1.0  # mastering made it louder: played quieter to compare fairly
    other = register(api)
    r = api.post("/api/v1/preview", json={"message": "master it", "file_id": f["id"]}, headers=other)
    assert r.status_code == 404


def test_chat_with_preview_publishes_the_preview_before_the_result(api, song_file, tmp_path):
    from tests.apiclient import follow_events, register, upload

    h = register(api)
    f = upload(api, h, song_file)
    r = api.post(
        "/api/v1/chat",
        params={"preview": "true"},
        json={"message": "master it for spotify", "file_ids": [f["id"]]},
        headers=h,
    )
    assert r.status_code == 202, r.text
    events = follow_events(api, h, r.json()["job_id"])
    names = [name for name, _ in events]
    assert "preview" in names, names
    preview = dict(events)["preview"]
    assert preview["seconds"] == pytest.approx(15.0, abs=0.01)
    assert _download(api, h, preview["file_id"], tmp_path).duration_s == pytest.approx(15.0, abs=0.01)
    done = [
        i for i, (name, data) in enumerate(events) if name == "status" and data.get("status") == "succeeded"
    ]
    assert done and names.index("preview") < done[-1]
    # without the flag: no preview
    r = api.post(
        "/api/v1/chat", json={"message": "a bit louder", "thread_id": r.json()["thread_id"]}, headers=h
    )
    assert "preview" not in [name for name, _ in follow_events(api, h, r.json()["job_id"])]
