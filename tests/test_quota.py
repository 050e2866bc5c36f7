"""Per-user quota of stored bytes (``user_quota_bytes``): an upload or a job that would take a user over it is
refused with 507 and a readable message, before anything is stored, and nothing already stored is lost."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import SONG, make_settings, register, stored_files, upload, wait_job

#: the song decodes to this many float32 bytes (what a new upload is counted at before it is stored)
SONG_F32 = sf.info(str(SONG)).frames * sf.info(str(SONG)).channels * 4


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # room for the song (counted at its float32 size), not for the song stored and a second one that size
    settings = make_settings(tmp_path_factory.mktemp("quota-data"), user_quota_bytes=SONG_F32 + 1000)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def _other_song(tmp_path) -> str:
    info = sf.info(str(SONG))
    rng = np.random.default_rng(3)
    noise = (0.1 * rng.standard_normal((info.frames, info.channels))).astype(np.float32)
    path = tmp_path / "other.wav"
    sf.write(str(path), noise, info.samplerate, subtype="PCM_24")
    return str(path)


def test_an_upload_over_the_quota_is_507_and_nothing_is_lost(api, tmp_path):
    from memory.storage import audio_id
    from tools.audio import load

    h = register(api)
    song = upload(api, h)
    before = api.get(f"/api/v1/files/{song['id']}/download", params={"format": "flac"}, headers=h)
    assert before.status_code == 200
    other = _other_song(tmp_path)
    with open(other, "rb") as f:
        r = api.post("/api/v1/files", files={"file": ("other.wav", f, "audio/wav")}, headers=h)
    assert r.status_code == 507, r.text
    detail = r.json()["detail"]
    assert "storage quota reached" in detail and "you may keep" in detail and "more" in detail
    assert "DELETE /api/v1/files/" in detail
    # nothing of the refused upload was stored; what was there is whole
    store = api.app.state.mp.service.store
    assert not store.exists(audio_id(load(other)))
    assert [f["id"] for f in api.get("/api/v1/files", headers=h).json()["items"]] == [song["id"]]
    after = api.get(f"/api/v1/files/{song['id']}/download", params={"format": "flac"}, headers=h)
    assert after.status_code == 200 and after.content == before.content
    assert not [p for p in stored_files(api.settings.data_dir) if "uploads" in p.parts]
    # the same audio again costs nothing (it is already theirs); another user has a quota of their own
    assert upload(api, h)["deduplicated"] is True
    assert upload(api, register(api))["id"] == song["id"]


def test_a_job_whose_result_would_not_fit_fails_before_it_runs(api):
    h = register(api)
    song = upload(api, h)["id"]
    r = api.post("/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [song]}, headers=h)
    assert r.status_code == 202, r.text
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "failed" and "storage quota reached" in job["error"]
    assert [f["id"] for f in api.get("/api/v1/files", headers=h).json()["items"]] == [song]
    assert api.get(f"/api/v1/files/{song}/download", headers=h).status_code == 200


def test_a_full_quota_refuses_new_jobs_with_507(api):
    h = register(api)
    song = upload(api, h)["id"]
    settings = api.app.state.mp.settings
    old = settings.user_quota_bytes
    settings.user_quota_bytes = 1000  # an operator lowered the quota under what the user keeps
    try:
        r = api.post("/api/v1/chat", json={"message": "make it brighter", "file_ids": [song]}, headers=h)
        assert r.status_code == 507, r.text
        assert "storage quota reached" in r.json()["detail"]
        assert api.get("/api/v1/jobs", headers=h).json()["items"] == []
    finally:
        settings.user_quota_bytes = old
    assert api.get(f"/api/v1/files/{song}/download", headers=h).status_code == 200
