"""API keys for server-to-server use: created, listed and revoked by their owner; checked on every request.

- A key reads ``mp_live_<id>_<secret>`` (`app.api.security.new_api_key`): the id finds the row, the whole
  key is compared by its keyed hash (`api_key_hash`: why HMAC-SHA256, there). The key itself is shown
  once, in the answer to its creation, and kept nowhere.
- Sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (`authenticate`), or traded for a
  short access token with the OAuth2 client-credentials grant (`app.api.accounts.client_credentials`;
  such a token names its key, ``kid``, and its ``scope``, and is checked against the key on each request).
- Scopes: ``read`` (GET, HEAD) and ``write`` (every other method); a key without the scope a request needs
  gets 403.
- Revocation counts from the next request: the row is read on every request made with the key (one
  primary-key read, `app.api.reads.Reads.api_key`), never cached.
- Keys are managed with the account's own sign-in (a password token), never with a key
  (`SignedInUser`): a leaked key cannot mint more keys or delete the account.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CurrentUser, not_found
from app.api.reads import Page, page
from app.api.schemas import SCOPES, ApiKeyCreated, ApiKeyIn, ApiKeyOut
from app.api.security import API_KEY_PREFIX, api_key_hash, new_api_key, parse_api_key
from app.api.state import AppState
from memory import db

#: methods a ``read`` key may use; every other one needs ``write``
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: how often a key's ``last_used_at`` is written (not on every request: that would be a write per read)
LAST_USED_EVERY = timedelta(minutes=1)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def needed_scope(method: str) -> str:
    return "read" if method.upper() in READ_METHODS else "write"


def check_scope(scopes: list[str] | tuple[str, ...] | set[str], method: str) -> None:
    """403 unless `scopes` allow `method`."""
    need = needed_scope(method)
    if need not in scopes:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this API key has scope {' '.join(sorted(scopes)) or 'none'}: {method.upper()} needs "
            f'\'{need}\' (create a key with scopes ["read", "write"])',
        )


async def live_key(state: AppState, key_id: str) -> db.ApiKey | None:
    """The key's row when it is neither revoked nor expired (None otherwise)."""
    row = await state.reads.api_key(key_id)
    if row is None or row.revoked_at is not None:
        return None
    expires = _utc(row.expires_at)
    if expires is not None and expires <= datetime.now(UTC):
        return None
    return row


async def verify(state: AppState, key: str) -> db.ApiKey:
    """The live row of `key`; 401 (one message for unknown, wrong, revoked or expired keys) otherwise."""
    key_id = parse_api_key(key)
    row = await live_key(state, key_id) if key_id else None
    expected = row.secret_hash if row is not None else "0" * 64
    ok = hmac.compare_digest(api_key_hash(state.tokens.secret, key).encode(), expected.encode())
    if row is None or not ok:
        raise unauthorized("invalid, revoked or expired API key")
    return row


async def authenticate(state: AppState, request: Request, key: str) -> str:
    """The owner id of a key sent with a request; 401 for a bad key, 403 when its scope does not allow
    the request's method. Marks the request as made with a key (`SignedInUser` refuses those)."""
    row = await verify(state, key)
    check_scope(row.scopes, request.method)
    request.state.api_key_id = row.id
    await _touch(state, row)
    return row.owner_id


async def check_token_key(state: AppState, request: Request, claims: dict[str, Any]) -> None:
    """An access token from the client-credentials grant: its key must still be live (a revocation ends
    its tokens at once) and its scope must allow the method."""
    key_id = str(claims.get("kid") or "")
    row = await live_key(state, key_id) if key_id else None
    if row is None or row.owner_id != claims.get("sub"):
        raise unauthorized("the API key this token was issued for is revoked or expired")
    scopes = set(str(claims.get("scope") or "").split()) & set(row.scopes)
    check_scope(scopes, request.method)
    request.state.api_key_id = row.id


async def _touch(state: AppState, row: db.ApiKey) -> None:
    now = datetime.now(UTC)
    last = _utc(row.last_used_at)
    if last is not None and now - last < LAST_USED_EVERY:
        return
    async with state.sessions() as session:
        await session.execute(update(db.ApiKey).where(db.ApiKey.id == row.id).values(last_used_at=now))
        await session.commit()


async def signed_in_user(user: CurrentUser, request: Request) -> db.User:
    """The user, signed in with their password (a token from the password or refresh grant); 403 for a
    request made with an API key or a client-credentials token."""
    if getattr(request.state, "api_key_id", None):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="not with an API key: manage keys and the account with a token from signing in "
            "(POST /api/v1/auth/token with grant_type=password)",
        )
    return user


SignedInUser = Annotated[db.User, Depends(signed_in_user)]


def key_out(row: db.ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=f"{API_KEY_PREFIX}{row.id[:8]}",
        scopes=list(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


async def create(state: AppState, session: AsyncSession, *, owner_id: str, body: ApiKeyIn) -> ApiKeyCreated:
    held = (
        await session.execute(
            select(func.count())
            .select_from(db.ApiKey)
            .where(db.ApiKey.owner_id == owner_id, db.ApiKey.revoked_at.is_(None))
        )
    ).scalar_one()
    if held >= state.settings.max_api_keys:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"you hold {held} API keys, the most you may: revoke one you no longer use first",
        )
    key_id, key = new_api_key()
    scopes = [s for s in SCOPES if s in body.scopes]  # canonical order, no repeats
    row = db.ApiKey(
        id=key_id,
        owner_id=owner_id,
        name=body.name,
        secret_hash=api_key_hash(state.tokens.secret, key),
        scopes=scopes,
        expires_at=datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.commit()
    return ApiKeyCreated(**key_out(row).model_dump(), key=key)


async def list_keys(
    session: AsyncSession, *, owner_id: str, limit: int, cursor: str | None, include_revoked: bool
) -> Page:
    where = [db.ApiKey.owner_id == owner_id]
    if not include_revoked:
        where.append(db.ApiKey.revoked_at.is_(None))
    return await page(
        session,
        db.ApiKey,
        where=where,
        limit=limit,
        cursor=cursor,
        filters={"include_revoked": include_revoked},
    )


async def revoke(session: AsyncSession, *, owner_id: str, key_id: str) -> None:
    """Revoke one of the owner's keys (again: no change); 404 for a key that is not theirs."""
    row = (
        await session.execute(select(db.ApiKey).where(db.ApiKey.id == key_id, db.ApiKey.owner_id == owner_id))
    ).scalar_one_or_none()
    if row is None:
        raise not_found("API key", key_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await session.commit()
