"""202 responses name the job in `Location`; job events carry SSE `id:` lines and resume after `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.jobs.bus import LocalBus, RedisBus
from tests.apiclient import make_settings, register, upload
from tests.services import redis_url  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("events-data"))
    with TestClient(create_app(settings)) as client:
        yield client


def read_events(client, headers, job_id, last_event_id=None, timeout_s=120.0, params=None):
    """(id or None, event, data) triples to the `end` event."""
    out: list[tuple[str | None, str, dict]] = []
    event_id = name = None
    deadline = time.monotonic() + timeout_s
    extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with client.stream(
        "GET", f"/api/v1/jobs/{job_id}/events", headers=headers | extra, timeout=timeout_s, params=params
    ) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                out.append((event_id, name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
            elif not line:
                event_id = name = None
            assert time.monotonic() < deadline, "event stream did not end"
    return out


def test_chat_202_names_the_job_in_location_and_events_resume(api):
    h = register(api)
    f = upload(api, h)
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [f["id"]]}, headers=h
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert api.get(r.headers["location"], headers=h).json()["id"] == job_id

    full = read_events(api, h, job_id)
    assert full[-1][1:] == ("end", {"status": "succeeded"})
    progress = [(i, n, d) for i, n, d in full if i is not None]
    ids = [int(i) for i, _, _ in progress]
    assert len(ids) >= 4 and ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {n for _, n, _ in progress} >= {"plan", "step_started", "step_finished"}
    assert full[0][0] is None and full[0][1] == "status"  # the snapshot
    assert all(i is None for i, n, _ in full if n in ("end", "heartbeat"))
    assert all("_id" not in d for _, _, d in full)

    # a client that lost the stream after the k-th event gets a snapshot, the events after it, then the end
    k = len(progress) // 2
    resumed = read_events(api, h, job_id, last_event_id=progress[k - 1][0])
    assert resumed[0][1] == "status" and resumed[0][2]["status"] == "succeeded"
    assert [x for x in resumed if x[0] is not None] == progress[k:]
    assert resumed[-1][1:] == ("end", {"status": "succeeded"})
    # resuming after the last event: nothing missed
    assert [x[1] for x in read_events(api, h, job_id, last_event_id=progress[-1][0])] == ["status", "end"]
    bad = api.get(f"/api/v1/jobs/{job_id}/events", headers=h | {"Last-Event-ID": "x; drop"})
    assert bad.status_code == 422


def test_a_browser_follows_a_job_with_a_stream_token(api):
    """EventSource cannot send headers: a short-lived stream token, bound to one job, opens that job's stream
    as `?token=`; it opens no other job's stream and is no access token."""
    h = register(api)
    f = upload(api, h)
    jobs = [
        api.post("/api/v1/chat", json={"message": m, "file_ids": [f["id"]]}, headers=h).json()["job_id"]
        for m in ("master this for Spotify", "a bit brighter")
    ]
    r = api.post(f"/api/v1/jobs/{jobs[0]}/stream-token", headers=h)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    body = r.json()
    assert body["token_type"] == "stream" and 0 < body["expires_in"] <= 600
    events = read_events(api, {}, jobs[0], params={"token": body["token"]})
    assert events[-1][1] == "end"
    assert api.get(body["url"]).status_code == 200  # the URL as given, no header
    other = api.get(f"/api/v1/jobs/{jobs[1]}/events", params={"token": body["token"]})
    assert other.status_code == 401 and "another job" in other.json()["detail"]
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 401
    assert api.get(f"/api/v1/jobs/{jobs[0]}/events").status_code == 401  # neither token nor header
    stranger = register(api)
    assert api.post(f"/api/v1/jobs/{jobs[0]}/stream-token", headers=stranger).status_code == 404


async def _collect(bus, job_id, after):
    gen = bus.subscribe(job_id, wait_s=0.2, after=after)
    try:
        return await anext(gen)
    finally:
        await gen.aclose()


def test_local_bus_resumes_after_an_id():
    async def main():
        bus = LocalBus(asyncio.get_running_loop())
        for i in range(5):
            bus.publish("j", {"event": "step", "i": i})
        await asyncio.sleep(0.01)
        everything = await _collect(bus, "j", None)
        assert [e["i"] for e in everything] == [0, 1, 2, 3, 4]
        rest = await _collect(bus, "j", everything[1]["_id"])
        assert [e["i"] for e in rest] == [2, 3, 4] and [e["_id"] for e in rest] == [
            e["_id"] for e in everything[2:]
        ]

    asyncio.run(main())


def test_redis_bus_resumes_after_an_id(redis_url):  # noqa: F811
    async def main():
        bus = RedisBus(redis_url)
        job = uuid.uuid4().hex
        try:
            for i in range(5):
                bus.publish(job, {"event": "step", "i": i})
            everything = await _collect(bus, job, None)
            assert [e["i"] for e in everything] == [0, 1, 2, 3, 4]
            rest = await _collect(bus, job, everything[1]["_id"])
            assert [e["i"] for e in rest] == [2, 3, 4]
            assert [e["_id"] for e in rest] == [e["_id"] for e in everything[2:]]
        finally:
            bus._sync.delete(RedisBus.PREFIX + job)
            await bus.aclose()

    asyncio.run(main())
