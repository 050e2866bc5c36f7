"""Webhooks: a signed POST once a job ends, retried with backoff, to the job's ``callback_url`` (per job)
and to every endpoint its owner registered (``POST /api/v1/webhooks``, per account, with a delivery log).

Signed as Standard Webhooks (standardwebhooks.com) do, so their libraries verify it:

- ``webhook-id``: the message id (``msg_<job id>`` for a callback, ``msg_<delivery id>`` for an endpoint),
  the same on every retry: deduplicate on it;
- ``webhook-timestamp``: seconds since the epoch of this attempt: refuse old ones (replays);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``, where the key is the
  base64-decoded part of the secret ``whsec_…``: for a ``callback_url`` the user's
  (``GET /api/v1/webhooks/secret``), for a registered endpoint its own (shown once, when it is created).

Secrets are derived from the server's signing secret and the user id, or the endpoint id and a random salt
kept with it (the secret itself is stored nowhere). Deliveries are rows (``job_callbacks``;
``webhook_deliveries`` with one ``webhook_attempts`` row per POST, the delivery log): the API's
`deliver_due` records an event for each endpoint whose owner has a job that ended since it was registered,
then sends what is due, whichever runner ran the job; a receiver that does not answer 2xx gets the same
message (same ``webhook-id``) again after `WebhookPolicy.backoff_s` × 2^(attempt − 1) (capped), up to
`WebhookPolicy.max_attempts`.
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

from sqlalchemy import exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.problems import ProblemError
from app.api.schemas import WebhookAttemptOut, WebhookCreated, WebhookDeliveryOut, WebhookIn, WebhookOut
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


def endpoint_secret(signing_key: str, endpoint_id: str, salt: str) -> str:
    """A registered endpoint's secret (``whsec_…``), from the server key, its id and its random salt."""
    raw = hmac.new(signing_key.encode(), f"mixpilot-endpoint:{endpoint_id}:{salt}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(raw.digest()).decode()


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


def check_url(settings: Any, url: str, *, field: str = "callback_url") -> None:
    """422 for a URL the server will not call: plain http in production."""
    if settings.environment == "production" and not url.startswith("https://"):
        raise ProblemError(
            422,
            f"body.{field}: must be https:// in production",
            code="validation_error",
            errors=[{"loc": ["body", field], "msg": "must be https:// in production", "type": "url_scheme"}],
        )


async def add_callback(session: AsyncSession, *, owner_id: str, job_id: str, url: str) -> None:
    session.add(db.JobCallback(job_id=job_id, owner_id=owner_id, url=url))
    await session.commit()


# ---------------------------------------------------------------------------------- endpoints


def endpoint_out(row: db.WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        created_at=row.created_at,
    )


async def create_endpoint(
    state: Any, session: AsyncSession, *, owner_id: str, body: WebhookIn
) -> WebhookCreated:
    """Register an endpoint; the answer is the only time its secret is shown."""
    import secrets

    check_url(state.settings, body.url, field="url")
    limit = state.settings.webhook_max_endpoints
    count = (
        await session.execute(
            select(func.count())
            .select_from(db.WebhookEndpoint)
            .where(db.WebhookEndpoint.owner_id == owner_id)
        )
    ).scalar_one()
    if count >= limit:
        raise ProblemError(
            409,
            f"you have {count} webhooks, the limit is {limit}: delete one (DELETE /api/v1/webhooks/{{id}})",
            code="too_many_webhooks",
            limit=limit,
        )
    row = db.WebhookEndpoint(
        owner_id=owner_id,
        url=body.url,
        events=sorted(set(body.events)),
        description=body.description,
        secret_salt=secrets.token_hex(16),
    )
    session.add(row)
    await session.commit()
    secret = endpoint_secret(state.tokens.secret, row.id, row.secret_salt)
    return WebhookCreated(**endpoint_out(row).model_dump(), secret=secret)


async def owned_endpoint(session: AsyncSession, *, owner_id: str, webhook_id: str) -> db.WebhookEndpoint:
    from app.api.deps import not_found  # deps -> state -> this module: imported when used

    row = await session.get(db.WebhookEndpoint, webhook_id)
    if row is None or row.owner_id != owner_id:
        raise not_found("webhook", webhook_id)
    return row


async def delete_endpoint(session: AsyncSession, *, owner_id: str, webhook_id: str) -> None:
    """The endpoint, its deliveries and their log (nothing more is sent to it)."""
    from sqlalchemy import delete

    row = await owned_endpoint(session, owner_id=owner_id, webhook_id=webhook_id)
    deliveries = select(db.WebhookDelivery.id).where(db.WebhookDelivery.endpoint_id == row.id)
    await session.execute(delete(db.WebhookAttempt).where(db.WebhookAttempt.delivery_id.in_(deliveries)))
    await session.execute(delete(db.WebhookDelivery).where(db.WebhookDelivery.endpoint_id == row.id))
    await session.delete(row)
    await session.commit()


async def delivery_outs(session: AsyncSession, rows: list[db.WebhookDelivery]) -> list[WebhookDeliveryOut]:
    """Deliveries with their attempts (one query for the attempts of the whole page)."""
    ids = [r.id for r in rows]
    attempts: dict[str, list[WebhookAttemptOut]] = {i: [] for i in ids}
    if ids:
        for a in (
            await session.execute(
                select(db.WebhookAttempt)
                .where(db.WebhookAttempt.delivery_id.in_(ids))
                .order_by(db.WebhookAttempt.attempt)
            )
        ).scalars():
            attempts[a.delivery_id].append(
                WebhookAttemptOut(
                    attempt=a.attempt,
                    status_code=a.status_code,
                    error=a.error,
                    started_at=a.started_at,
                    duration_ms=round(a.duration_ms, 1),
                )
            )
    return [
        WebhookDeliveryOut(
            id=r.id,
            event=r.event,
            job_id=r.job_id,
            state=r.state,
            next_attempt_at=r.next_at if r.state == "pending" else None,
            delivered_at=r.delivered_at,
            created_at=r.created_at,
            attempts=attempts[r.id],
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------------- delivery


def _backoff(policy: WebhookPolicy, attempts: int) -> float:
    return min(policy.backoff_s * 2 ** max(attempts - 1, 0), policy.max_backoff_s)


def event_body(job: db.Job, event: str) -> bytes:
    """The payload: ``{"type": "job.succeeded", "timestamp": …, "data": <the job as GET /jobs/{id}>}``."""
    from app.api.conversations import job_out

    return json.dumps(
        {"type": event, "timestamp": db.utcnow().isoformat(), "data": job_out(job).model_dump(mode="json")},
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True, kw_only=True)
class Attempt:
    status_code: int | None
    error: str | None  # None: delivered
    started_at: Any
    duration_ms: float


async def post_signed(client: Any, url: str, *, secret: str, msg_id: str, body: bytes) -> Attempt:
    """One signed POST; any answer but a 2xx (or no answer) is an error to retry."""
    ts = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "mixpilot-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }
    started, t0 = db.utcnow(), time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        response = await client.post(url, content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except Exception as exc:  # a receiver that is down or slow: retried
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return Attempt(
        status_code=status_code,
        error=error,
        started_at=started,
        duration_ms=(time.perf_counter() - t0) * 1000,
    )


def outcome(policy: WebhookPolicy, attempt: int, result: Attempt) -> dict[str, Any]:
    """The row's new state after attempt number `attempt`: delivered, failed for good, or retried later."""
    values: dict[str, Any] = {"last_status": result.status_code, "last_error": result.error}
    if result.error is None:
        return values | {"state": "delivered", "delivered_at": db.utcnow()}
    if attempt >= policy.max_attempts:
        return values | {"state": "failed"}
    return values | {"next_at": db.utcnow() + timedelta(seconds=_backoff(policy, attempt))}


async def record_account_events(state: Any) -> int:
    """A pending delivery for each (endpoint, job that ended after it was registered, event it wants) not
    recorded yet; returns how many were added."""
    status_event = literal("job.") + db.Job.status
    async with state.sessions() as s:
        rows = (
            await s.execute(
                select(
                    db.WebhookEndpoint.id,
                    db.WebhookEndpoint.owner_id,
                    db.WebhookEndpoint.events,
                    db.Job.id,
                    db.Job.status,
                )
                .join(db.Job, db.Job.owner_id == db.WebhookEndpoint.owner_id)
                .where(
                    db.Job.status.in_(tuple(TERMINAL)),
                    db.Job.updated_at >= db.WebhookEndpoint.created_at,
                    ~exists().where(
                        db.WebhookDelivery.endpoint_id == db.WebhookEndpoint.id,
                        db.WebhookDelivery.job_id == db.Job.id,
                        db.WebhookDelivery.event == status_event,
                    ),
                )
                .limit(state.webhooks.batch * 10)
            )
        ).all()
        added = 0
        for endpoint_id, owner_id, events, job_id, status in rows:
            event = f"job.{status}"
            if event not in (events or ()):
                continue
            try:
                async with s.begin_nested():  # another API process may record the same event at once
                    s.add(
                        db.WebhookDelivery(
                            endpoint_id=endpoint_id, owner_id=owner_id, job_id=job_id, event=event
                        )
                    )
                added += 1
            except IntegrityError:
                pass
        await s.commit()
    return added


async def deliver_due(state: Any, *, client: Any = None) -> int:
    """Record new account events, then send every due callback and delivery once; returns how many were sent
    (answered 2xx or not)."""
    import httpx

    policy: WebhookPolicy = state.webhooks
    await record_account_events(state)
    now = db.utcnow()
    async with state.sessions() as s:
        callbacks = (
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
        deliveries = (
            await s.execute(
                select(db.WebhookDelivery, db.WebhookEndpoint, db.Job)
                .join(db.WebhookEndpoint, db.WebhookEndpoint.id == db.WebhookDelivery.endpoint_id)
                .join(db.Job, db.Job.id == db.WebhookDelivery.job_id)
                .where(db.WebhookDelivery.state == "pending", db.WebhookDelivery.next_at <= now)
                .order_by(db.WebhookDelivery.next_at)
                .limit(policy.batch)
            )
        ).all()
    if not callbacks and not deliveries:
        return 0
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=False)
    try:
        await asyncio.gather(
            *(_deliver_callback(state, client, cb, job, policy) for cb, job in callbacks),
            *(_deliver_event(state, client, d, ep, job, policy) for d, ep, job in deliveries),
        )
    finally:
        if own:
            await client.aclose()
    return len(callbacks) + len(deliveries)


async def _claim(state: Any, model: Any, where: Any, attempts: int, policy: WebhookPolicy) -> bool:
    """Take this attempt (another API process may be on the same row): attempts + 1 if nobody did yet."""
    async with state.sessions() as s:
        claimed = await s.execute(
            update(model)
            .where(where, model.state == "pending", model.attempts == attempts)
            .values(attempts=attempts + 1, next_at=db.utcnow() + timedelta(seconds=policy.timeout_s * 3))
        )
        await s.commit()
        return db._rowcount(claimed) == 1


async def _deliver_callback(
    state: Any, client: Any, cb: db.JobCallback, job: db.Job, policy: WebhookPolicy
) -> None:
    if not await _claim(state, db.JobCallback, db.JobCallback.job_id == cb.job_id, cb.attempts, policy):
        return
    attempt = cb.attempts + 1
    secret = secret_for(state.tokens.secret, cb.owner_id)
    result = await post_signed(
        client, cb.url, secret=secret, msg_id=f"msg_{job.id}", body=event_body(job, f"job.{job.status}")
    )
    values = outcome(policy, attempt, result)
    if values.get("state") == "failed":
        log.warning("webhook for job %s failed after %d attempts (%s)", job.id, attempt, result.error)
    async with state.sessions() as s:
        await s.execute(update(db.JobCallback).where(db.JobCallback.job_id == cb.job_id).values(**values))
        await s.commit()


async def _deliver_event(
    state: Any,
    client: Any,
    d: db.WebhookDelivery,
    endpoint: db.WebhookEndpoint,
    job: db.Job,
    policy: WebhookPolicy,
) -> None:
    if not await _claim(state, db.WebhookDelivery, db.WebhookDelivery.id == d.id, d.attempts, policy):
        return
    attempt = d.attempts + 1
    secret = endpoint_secret(state.tokens.secret, endpoint.id, endpoint.secret_salt)
    result = await post_signed(
        client, endpoint.url, secret=secret, msg_id=f"msg_{d.id}", body=event_body(job, d.event)
    )
    values = outcome(policy, attempt, result)
    if values.get("state") == "failed":
        log.warning(
            "webhook %s: %s of job %s failed after %d attempts (%s)",
            endpoint.id,
            d.event,
            job.id,
            attempt,
            result.error,
        )
    async with state.sessions() as s:
        s.add(
            db.WebhookAttempt(
                delivery_id=d.id,
                attempt=attempt,
                status_code=result.status_code,
                error=result.error,
                started_at=result.started_at,
                duration_ms=result.duration_ms,
            )
        )
        await s.execute(update(db.WebhookDelivery).where(db.WebhookDelivery.id == d.id).values(**values))
        await s.commit()
