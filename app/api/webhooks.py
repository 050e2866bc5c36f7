"""Per-job callbacks: a signed POST to the job's ``callback_url`` once it ends, retried with backoff.

Signed as Standard Webhooks (standardwebhooks.com) do, so their libraries verify it:

- ``webhook-id``: the message id (``msg_<job id>``), the same on every retry: deduplicate on it;
- ``webhook-timestamp``: seconds since the epoch of this attempt: refuse old ones (replays);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``, where the key is the
  base64-decoded part of the user's secret ``whsec_…`` (``GET /api/v1/webhooks/secret``).

The secret is derived from the server's signing secret and the user id (nothing stored). Deliveries are
rows (``job_callbacks``): the API's `deliver_due` sends those whose job has ended and whose time has come,
whichever runner ran the job; a receiver that does not answer 2xx gets the same message again after
`WebhookPolicy.backoff_s` × 2^(attempt − 1) (capped), up to `WebhookPolicy.max_attempts`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs import TERMINAL
from memory import db

log = logging.getLogger("mixpilot.api.webhooks")


@dataclass(frozen=True, kw_only=True)
class WebhookPolicy:
    max_attempts: int = 8
    backoff_s: float = 5.0
    max_backoff_s: float = 3600.0
    timeout_s: float = 10.0
    batch: int = 20


def secret_for(signing_key: str, user_id: str) -> str:
    """The user's webhook secret, ``whsec_`` + base64 of 32 bytes (Standard Webhooks' format)."""
    raw = hmac.new(signing_key.encode(), f"mixpilot-webhook:{user_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance_s: int = 300) -> bool:
    """What a receiver does (also in the README): the signature matches and the timestamp is recent."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, ts = h["webhook-id"], int(h["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    expected = sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, s) for s in h.get("webhook-signature", "").split())


def check_url(settings: Any, url: str) -> None:
    """422 for a callback the server will not call: plain http in production."""
    from fastapi import HTTPException, status

    if settings.environment == "production" and not url.startswith("https://"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="body.callback_url: must be https:// in production"
        )


async def add_callback(session: AsyncSession, *, owner_id: str, job_id: str, url: str) -> None:
    session.add(db.JobCallback(job_id=job_id, owner_id=owner_id, url=url))
    await session.commit()


def _backoff(policy: WebhookPolicy, attempts: int) -> float:
    return min(policy.backoff_s * 2 ** max(attempts - 1, 0), policy.max_backoff_s)


async def deliver_due(state: Any, *, client: Any = None) -> int:
    """Send every due callback of an ended job once; returns how many were sent (answered 2xx or not)."""
    import httpx

    policy: WebhookPolicy = state.webhooks
    now = db.utcnow()
    async with state.sessions() as s:
        due = (
            await s.execute(
                select(db.JobCallback, db.Job)
                .join(db.Job, db.Job.id == db.JobCallback.job_id)
                .where(
                    db.JobCallback.state == "pending",
                    db.JobCallback.next_at <= now,
                    db.Job.status.in_(tuple(TERMINAL)),
                )
                .order_by(db.JobCallback.next_at)
                .limit(policy.batch)
            )
        ).all()
    if not due:
        return 0
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=False)
    try:
        await asyncio.gather(*(_deliver(state, client, cb, job, policy) for cb, job in due))
    finally:
        if own:
            await client.aclose()
    return len(due)


async def _deliver(state: Any, client: Any, cb: db.JobCallback, job: db.Job, policy: WebhookPolicy) -> None:
    from app.api.conversations import job_out

    async with state.sessions() as s:  # claim this attempt (another API process may be on the same row)
        claimed = await s.execute(
            update(db.JobCallback)
            .where(
                db.JobCallback.job_id == cb.job_id,
                db.JobCallback.state == "pending",
                db.JobCallback.attempts == cb.attempts,
            )
            .values(attempts=cb.attempts + 1, next_at=db.utcnow() + timedelta(seconds=policy.timeout_s * 3))
        )
        await s.commit()
        if db._rowcount(claimed) != 1:
            return
    attempt = cb.attempts + 1
    msg_id, ts = f"msg_{job.id}", int(time.time())
    body = json.dumps(
        {
            "type": f"job.{job.status}",
            "timestamp": db.utcnow().isoformat(),
            "data": job_out(job).model_dump(mode="json"),
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "mixpilot-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret_for(state.tokens.secret, cb.owner_id), msg_id, ts, body),
    }
    status_code: int | None = None
    error: str | None = None
    try:
        response = await client.post(cb.url, content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except Exception as exc:  # a receiver that is down or slow: retried
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    values: dict[str, Any] = {"last_status": status_code, "last_error": error}
    if error is None:
        values |= {"state": "delivered", "delivered_at": db.utcnow()}
    elif attempt >= policy.max_attempts:
        values |= {"state": "failed"}
        log.warning("webhook for job %s failed after %d attempts (%s)", job.id, attempt, error)
    else:
        values |= {"next_at": db.utcnow() + timedelta(seconds=_backoff(policy, attempt))}
    async with state.sessions() as s:
        await s.execute(update(db.JobCallback).where(db.JobCallback.job_id == cb.job_id).values(**values))
        await s.commit()
