"""``Idempotency-Key`` on the POSTs that create something (IETF draft-ietf-httpapi-idempotency-key-header).

A client that did not get the answer to a POST (a timeout, a dropped connection) sends it again with the
same key: the same key with the same request replays the first response (status, body, ``Location``,
plus ``Idempotent-Replayed: true``) instead of creating a second job, thread or file; the same key with
another request is a 422; while the first request is still running, 409 (retry after a second).
Keys are per user and per operation and kept for `TTL`; a request that fails leaves no key behind.
The rows live in the database (``idempotency_keys``), so every API process sees them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Annotated, Any

from fastapi import Header, HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.api.state import AppState
from memory import db

TTL = timedelta(hours=24)
#: visible ASCII, 1–255 characters (a UUID is the usual choice)
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
KEY_DESCRIPTION = (
    "send the same POST again with the same key to get the first response instead of a second "
    "job or file (kept 24 h; the same key with another request is a 422)"
)
#: the header parameter of a route that takes a key
KeyHeader = Annotated[str | None, Header(pattern=KEY_PATTERN, description=KEY_DESCRIPTION)]
#: documented on every route that takes the key
RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "a request with this Idempotency-Key is still running: retry in a second"}
}


def fingerprint(*parts: bytes | str) -> str:
    """SHA-256 over the parts of a request that make it this request (length-prefixed, so never ambiguous)."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.hexdigest()


async def run_once(
    state: AppState,
    *,
    owner_id: str,
    scope: str,
    key: str | None,
    request_hash: str,
    create: Callable[[], Awaitable[BaseModel]],
    status_code: int,
    location: Callable[[Any], str | None] | None = None,
) -> JSONResponse:
    """`create()` once per (user, `scope`, `key`) and its response; without a key, simply `create()`."""
    if key is None:
        return _respond(await create(), status_code, location)
    row_id = await _claim(state, owner_id=owner_id, scope=scope, key=key, request_hash=request_hash)
    if isinstance(row_id, JSONResponse):
        return row_id
    try:
        out = await create()
    except BaseException:
        async with state.sessions() as s:
            await s.execute(delete(db.IdempotencyKey).where(db.IdempotencyKey.id == row_id))
            await s.commit()
        raise
    response = _respond(out, status_code, location)
    async with state.sessions() as s:
        row = await s.get(db.IdempotencyKey, row_id)
        if row is not None:
            row.status_code, row.response = status_code, out.model_dump(mode="json")
            row.location = response.headers.get("location")
            await s.commit()
    return response


def _respond(out: BaseModel, status_code: int, location: Callable[[Any], str | None] | None) -> JSONResponse:
    where = location(out) if location is not None else None
    return JSONResponse(
        out.model_dump(mode="json"), status_code=status_code, headers={"Location": where} if where else None
    )


async def _claim(
    state: AppState, *, owner_id: str, scope: str, key: str, request_hash: str
) -> str | JSONResponse:
    """The id of a new pending row for the key, or the answer when the key is already known."""
    for _ in range(2):
        async with state.sessions() as s:
            row = (
                await s.execute(
                    select(db.IdempotencyKey).where(
                        db.IdempotencyKey.owner_id == owner_id,
                        db.IdempotencyKey.scope == scope,
                        db.IdempotencyKey.key == key,
                    )
                )
            ).scalar_one_or_none()
            if row is not None and _expired(row):
                await s.delete(row)
                await s.commit()
                row = None
            if row is not None:
                return _known(row, key=key, request_hash=request_hash)
            pending = db.IdempotencyKey(owner_id=owner_id, scope=scope, key=key, fingerprint=request_hash)
            s.add(pending)
            try:
                await s.commit()
            except IntegrityError:  # the same key at the same moment: read the other request's row
                await s.rollback()
                continue
            return pending.id
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        headers={"Retry-After": "1"},
        detail=f"a request with Idempotency-Key '{key[:60]}' is still running: retry in a second",
    )


def _expired(row: db.IdempotencyKey) -> bool:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return db.utcnow() - created > TTL


def _known(row: db.IdempotencyKey, *, key: str, request_hash: str) -> JSONResponse:
    if row.fingerprint != request_hash:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"Idempotency-Key '{key[:60]}' was used with a different request: "
            "send a new key for a new request",
        )
    if row.status_code is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            headers={"Retry-After": "1"},
            detail=f"a request with Idempotency-Key '{key[:60]}' is still running: retry in a second",
        )
    headers = {"Idempotent-Replayed": "true"} | ({"Location": row.location} if row.location else {})
    return JSONResponse(row.response, status_code=row.status_code, headers=headers)
