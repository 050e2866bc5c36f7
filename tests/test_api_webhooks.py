"""Webhooks: per-job callbacks and per-account endpoints. A local receiver gets the ended job, signed
(Standard Webhooks), again after a failure; the delivery log shows each attempt."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.webhooks import WebhookPolicy, verify
from tests.apiclient import make_settings, register, upload, wait_job
from tests.services import pg_url  # noqa: F401 (fixture)


class Receiver:
    """An HTTP receiver on loopback that answers `statuses` in turn (the last one from then on)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.got = list(statuses), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.got.append((dict(self.headers.items()), body, time.monotonic()))
                code = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < n:
            assert time.monotonic() < deadline, f"{len(self.got)} deliveries, expected {n}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("hook-data"), webhook_max_endpoints=3, **extra)
    with TestClient(create_app(settings)) as client:
        client.app.state.mp.webhooks = WebhookPolicy(backoff_s=0.3, max_attempts=3, timeout_s=5)
        yield client


def _start(api, h, f, url=None):
    body = {"message": "is it ready for Spotify?", "file_ids": [f["id"]]}
    r = api.post("/api/v1/chat", json=body | ({"callback_url": url} if url else {}), headers=h)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def test_callback_is_signed_and_retried_until_the_receiver_accepts(api):
    h = register(api)
    f = upload(api, h)
    secret = api.get("/api/v1/webhooks/secret", headers=h).json()["secret"]
    assert (
        secret.startswith("whsec_")
        and api.get("/api/v1/webhooks/secret", headers=h).json()["secret"] == secret
    )
    assert api.get("/api/v1/webhooks/secret", headers=register(api)).json()["secret"] != secret
    receiver = Receiver([500, 204])
    try:
        job_id = _start(api, h, f, receiver.url)
        job = wait_job(api, h, job_id)
        receiver.wait(2)
        time.sleep(1.5)  # delivered: no third attempt
        assert len(receiver.got) == 2
        (h1, b1, t1), (h2, b2, t2) = receiver.got
        assert t2 - t1 >= 0.25  # the backoff
        assert h1["webhook-id"] == h2["webhook-id"] == f"msg_{job_id}"  # one message, delivered twice
        for headers, body in ((h1, b1), (h2, b2)):
            assert verify(secret, headers, body)
            assert not verify(secret, headers, body.replace(b"succeeded", b"failed"))
            assert not verify("whsec_" + "A" * 44, headers, body)
        event = json.loads(b2)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
        assert event["data"]["status"] == job["status"] == "succeeded" and event["data"]["result"]["kind"]
        # a stale timestamp is refused by the receiver's check
        assert not verify(secret, h2 | {"webhook-timestamp": str(int(h2["webhook-timestamp"]) - 3600)}, b2)
    finally:
        receiver.close()


def test_callback_gives_up_after_the_last_attempt(api):
    h = register(api)
    f = upload(api, h)
    receiver = Receiver([503])
    try:
        job_id = _start(api, h, f, receiver.url)
        wait_job(api, h, job_id)
        receiver.wait(3)
        time.sleep(2.0)
        assert len(receiver.got) == 3  # max_attempts
    finally:
        receiver.close()


def test_callback_url_must_be_http(api):
    h = register(api)
    f = upload(api, h)
    for url in ("ftp://example.com/x", "javascript:alert(1)", "http://", "https://a b"):
        r = api.post(
            "/api/v1/chat",
            json={"message": "is it loud?", "file_ids": [f["id"]], "callback_url": url},
            headers=h,
        )
        assert r.status_code == 422, (url, r.text)


# ---------------------------------------------------------------------------------- account webhooks


def _webhook_rows(api, owner_id: str, delivery_ids: list[str]) -> dict[str, int]:
    """Rows of the owner's left in the webhook tables (only the tables that have some)."""
    from sqlalchemy import func, select

    from memory import db

    state = api.app.state.mp
    where = {
        db.WebhookEndpoint: db.WebhookEndpoint.owner_id == owner_id,
        db.WebhookDelivery: db.WebhookDelivery.owner_id == owner_id,
        db.WebhookAttempt: db.WebhookAttempt.delivery_id.in_(delivery_ids),
    }

    async def count() -> dict[str, int]:
        async with state.sessions() as s:
            out = {}
            for model, cond in where.items():
                n = (await s.execute(select(func.count()).select_from(model).where(cond))).scalar_one()
                if n:
                    out[model.__tablename__] = n
            return out

    return api.portal.call(count)


def test_account_webhook_is_signed_with_its_own_secret_retried_and_logged(api):
    h = register(api)
    f = upload(api, h)
    before = _start(api, h, f)  # ended before the webhook exists: never sent
    wait_job(api, h, before)
    receiver, only_failed = Receiver([500, 204]), Receiver([204])
    try:
        r = api.post("/api/v1/webhooks", json={"url": receiver.url, "description": "ci"}, headers=h)
        assert r.status_code == 201, r.text
        hook = r.json()
        assert r.headers["location"] == f"/api/v1/webhooks/{hook['id']}"
        assert hook["secret"].startswith("whsec_") and hook["url"] == receiver.url
        assert sorted(hook["events"]) == ["job.cancelled", "job.failed", "job.succeeded"]
        r = api.post("/api/v1/webhooks", json={"url": only_failed.url, "events": ["job.failed"]}, headers=h)
        assert r.status_code == 201, r.text
        listed = api.get("/api/v1/webhooks", headers=h).json()
        assert listed["total"] == 2 and all("secret" not in w for w in listed["items"])
        assert api.get(f"/api/v1/webhooks/{hook['id']}", headers=h).json()["url"] == receiver.url

        job_id = _start(api, h, f)
        assert wait_job(api, h, job_id)["status"] == "succeeded"
        receiver.wait(2)
        time.sleep(1.5)  # delivered on the second attempt: no third; the job.failed-only endpoint: nothing
        assert len(receiver.got) == 2 and only_failed.got == []
        (h1, b1, t1), (h2, b2, t2) = receiver.got
        assert t2 - t1 >= 0.25  # the backoff
        assert h1["webhook-id"] == h2["webhook-id"] and h1["webhook-id"].startswith("msg_")
        user_secret = api.get("/api/v1/webhooks/secret", headers=h).json()["secret"]
        for headers, body in ((h1, b1), (h2, b2)):
            assert verify(hook["secret"], headers, body)
            assert not verify(user_secret, headers, body)  # each endpoint signs with its own secret
            assert not verify(hook["secret"], headers, body.replace(b"succeeded", b"failed"))
        event = json.loads(b2)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id

        log = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=h).json()
        assert log["total"] == 1, log  # the job that ended before registration is not there
        (d,) = log["items"]
        assert d["job_id"] == job_id and d["event"] == "job.succeeded" and d["state"] == "delivered"
        assert h1["webhook-id"] == f"msg_{d['id']}" and d["delivered_at"] and d["next_attempt_at"] is None
        a1, a2 = d["attempts"]
        assert (a1["attempt"], a1["status_code"], a2["attempt"], a2["status_code"]) == (1, 500, 2, 204)
        assert "500" in a1["error"] and a2["error"] is None and a1["started_at"] <= a2["started_at"]
        assert a1["duration_ms"] >= 0

        # deleting the account takes its webhooks, deliveries and their log
        me = api.get("/api/v1/auth/me", headers=h).json()
        assert _webhook_rows(api, me["id"], [d["id"]]) == {
            "webhook_endpoints": 2,
            "webhook_deliveries": 1,
            "webhook_attempts": 2,
        }
        r = api.delete("/api/v1/auth/me", params={"confirm": me["email"]}, headers=h)
        assert r.status_code == 204, r.text
        assert _webhook_rows(api, me["id"], [d["id"]]) == {}
    finally:
        receiver.close()
        only_failed.close()


def test_account_webhooks_belong_to_their_owner_and_can_be_deleted(api):
    h, other = register(api), register(api)
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=h)
    assert r.status_code == 201, r.text
    hook_id = r.json()["id"]
    for method, path in (
        ("GET", f"/api/v1/webhooks/{hook_id}"),
        ("GET", f"/api/v1/webhooks/{hook_id}/deliveries"),
        ("DELETE", f"/api/v1/webhooks/{hook_id}"),
    ):
        r = api.request(method, path, headers=other)
        assert r.status_code == 404 and r.json()["webhook_id"] == hook_id, r.text
    assert api.get("/api/v1/webhooks", headers=other).json()["total"] == 0
    assert api.delete(f"/api/v1/webhooks/{hook_id}", headers=h).status_code == 204
    assert api.get(f"/api/v1/webhooks/{hook_id}", headers=h).status_code == 404
    # bad input: a URL the server will not call, an unknown event, too many endpoints
    for body in ({"url": "ftp://example.com/x"}, {"url": "http://x.io/h", "events": ["job.started"]}):
        r = api.post("/api/v1/webhooks", json=body, headers=h)
        assert r.status_code == 422 and r.json()["errors"], r.text
    for i in range(3):
        assert (
            api.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{i}"}, headers=h).status_code
            == 201
        )
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/4"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "too_many_webhooks" and r.json()["limit"] == 3


def _walk(api, h, path: str, limit: int) -> tuple[list[dict], list[int]]:
    """Every page of a list, following `next_cursor`: (items, the total each page gave)."""
    items, totals, cursor = [], [], None
    for _ in range(20):
        r = api.get(path, params={"limit": limit} | ({"cursor": cursor} if cursor else {}), headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor", "total"} and len(page["items"]) <= limit
        items += page["items"]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, totals
    raise AssertionError("next_cursor never ended")


def test_webhook_lists_page_like_every_list(api):
    """/webhooks and /webhooks/{id}/deliveries: keyset pages (newest first, ties broken by id), the total,
    validated limit and cursor, unknown query parameters refused, a cursor good for one webhook only."""
    from datetime import UTC, datetime, timedelta

    from memory import db

    h, other = register(api), register(api)
    me = api.get("/api/v1/auth/me", headers=h).json()["id"]
    hooks = [
        api.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/p{i}"}, headers=h).json()["id"]
        for i in range(3)
    ]
    api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/theirs"}, headers=other)
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    state = api.app.state.mp

    async def seed() -> None:
        """5 delivered events on the first webhook (two pairs at the same instant), 1 on the second; the
        webhooks themselves at set times (the last two at the same instant)."""
        async with state.sessions() as s:
            for i, hook_id in enumerate(hooks):
                (await s.get(db.WebhookEndpoint, hook_id)).created_at = t0 + timedelta(minutes=min(i, 1))
            for i in range(6):
                job = await db.create_job(s, owner_id=me, request=f"r{i}")
                job.status = "succeeded"
                s.add(
                    db.WebhookDelivery(
                        endpoint_id=hooks[0] if i < 5 else hooks[1],
                        owner_id=me,
                        job_id=job.id,
                        event="job.succeeded",
                        state="delivered",
                        created_at=t0 + timedelta(minutes=i // 2),
                    )
                )
            await s.commit()

    api.portal.call(seed)

    def newest_first(items: list[dict]) -> bool:
        keys = [(datetime.fromisoformat(i["created_at"]), i["id"]) for i in items]
        return keys == sorted(keys, reverse=True)

    listed, totals = _walk(api, h, "/api/v1/webhooks", 2)
    assert sorted(w["id"] for w in listed) == sorted(hooks) and totals == [3, 3] and newest_first(listed)
    path = f"/api/v1/webhooks/{hooks[0]}/deliveries"
    log, totals = _walk(api, h, path, 2)
    assert len({d["id"] for d in log}) == 5 and totals == [5, 5, 5] and newest_first(log)
    one, totals = _walk(api, h, f"/api/v1/webhooks/{hooks[1]}/deliveries", 1)
    assert len(one) == 1 and totals == [1] and not {d["id"] for d in one} & {d["id"] for d in log}

    # query checking, as on /files, /jobs, /threads
    for p in ("/api/v1/webhooks", path):
        r = api.get(p, params={"offset": 2}, headers=h)
        assert r.status_code == 400 and "'offset'" in r.text and "limit" in r.text, r.text
        for bad in (0, 201, "x"):
            assert api.get(p, params={"limit": bad}, headers=h).status_code == 422
        r = api.get(p, params={"cursor": "AAAA"}, headers=h)
        assert r.status_code == 400 and "next_cursor" in r.text, r.text
    cursor = api.get(path, params={"limit": 2}, headers=h).json()["next_cursor"]
    r = api.get(f"/api/v1/webhooks/{hooks[1]}/deliveries", params={"cursor": cursor}, headers=h)
    assert r.status_code == 400 and "filters" in r.text, r.text  # another webhook's cursor
    assert api.get(path, headers=other).status_code == 404
