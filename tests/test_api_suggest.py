"""A /chat job's result carries the turn contract: ask, get an answer with numbers and a suggestion, confirm it."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jwt")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import make_settings, register, upload, wait_job

CONTRACT = ("kind", "answer", "findings", "suggested_steps", "checks")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("api-suggest"))
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_job_result_schema_documents_the_turn_contract(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    props = schemas["JobResult"]["properties"]
    assert all(k in props for k in CONTRACT), sorted(props)
    assert {"problem", "severity", "evidence"} <= set(schemas["Finding"]["properties"])
    assert {"platform", "ready", "reasons"} <= set(schemas["PlatformCheck"]["properties"])


def test_ask_for_spotify_then_confirm_the_suggested_master(api):
    h = register(api)
    f = upload(api, h)
    r = api.post(
        "/api/v1/chat", json={"message": "is it ready for Spotify?", "file_ids": [f["id"]]}, headers=h
    )
    assert r.status_code == 202, r.text
    thread = r.json()["thread_id"]
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    res = job["result"]
    assert all(k in res for k in CONTRACT), sorted(res)
    assert res["kind"] == "answer", res
    assert "Spotify" in res["answer"] and re.search(r"-?−?\d+(\.\d+)? LUFS", res["answer"]), res["answer"]
    assert not res["applied"] and res["file_id"] in (None, f["id"])  # a question runs nothing
    assert res["checks"]["platform"] == "spotify" and isinstance(res["checks"]["ready"], bool)
    assert all({"problem", "severity", "evidence"} <= set(x) for x in res["findings"])
    assert any(s["tool"] == "master" for s in res["suggested_steps"]), res["suggested_steps"]

    r = api.post("/api/v1/chat", json={"message": "do it", "thread_id": thread}, headers=h)
    assert r.status_code == 202, r.text
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    res = job["result"]
    assert res["kind"] == "process" and any(s["tool"] == "master" for s in res["plan"]["steps"]), res
    assert res["file_id"] and res["file_id"] != f["id"]
    assert res["metrics"]["after"]["integrated_lufs"] == pytest.approx(-14.0, abs=1.0)


def test_a_file_with_its_diagnosis(api):
    h = register(api)
    f = upload(api, h)
    meta = api.get(f"/api/v1/files/{f['id']}", headers=h).json()
    assert meta["diagnosis"] is None and meta["analysis"]["integrated_lufs"] is not None
    meta = api.get(
        f"/api/v1/files/{f['id']}", params={"diagnosis": True, "analysis": False}, headers=h
    ).json()
    assert meta["analysis"] is None
    d = meta["diagnosis"]
    assert d["facts"]["integrated_lufs"] is not None and isinstance(d["findings"], list)
    assert all({"problem", "severity", "evidence"} <= set(x) for x in d["findings"])
