"""Register, log in, refresh, client credentials: the business logic behind routes/auth.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import HTTPException, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import unauthorized
from app.api.schemas import TokenOut
from app.api.security import (
    ADDRESS_PREFIX,
    API_KEY_PREFIX,
    TokenError,
    check_password_unknown_user,
    client_address,
    create_token,
    decode_claims,
    hash_password,
    password_problem,
    verify_password,
)
from app.api.state import AppState
from memory import db

LOGIN_FAILED = "incorrect email or password"


def request_client(state: AppState, request: Request) -> str:
    """The client's address (proxy headers only from `Settings.trusted_proxies`)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, state.settings.trusted_proxies)


async def register(state: AppState, session: AsyncSession, *, email: str, password: str) -> db.User:
    problem = password_problem(password, email=email)
    if problem is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem)
    if await db.get_user_by_email(session, email=email) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="an account with this email already exists")
    hashed = await run_in_threadpool(hash_password, password)
    try:
        user = await db.create_user(session, email=email, password_hash=hashed)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="an account with this email already exists"
        ) from None
    return user


async def issue_tokens(state: AppState, session: AsyncSession, user_id: str) -> TokenOut:
    """A new access + refresh pair; the refresh token is recorded (single use, revocable) and committed."""
    cfg = state.tokens
    jti = uuid.uuid4().hex
    await db.add_refresh_token(
        session, owner_id=user_id, jti=jti, expires_at=datetime.now(UTC) + cfg.refresh_ttl
    )
    await session.commit()
    return TokenOut(
        access_token=create_token(cfg, subject=user_id, type="access"),
        refresh_token=create_token(cfg, subject=user_id, type="refresh", jti=jti),
        expires_in=int(cfg.access_ttl.total_seconds()),
    )


async def login(
    state: AppState, session: AsyncSession, *, email: str, password: str, client: str
) -> TokenOut:
    """Tokens for a correct email + password; the same 401 for every failure; 429 when throttled.

    Throttled: an account from one address after `login_max_failures` failures; an address after
    `login_max_address_failures` failures on any emails, but then only for accounts that have not
    signed in from it before (a shared address under attack still lets its known users in)."""
    account = email.strip().lower()
    key, address, known = f"{account}|{client}", f"{ADDRESS_PREFIX}{client}", f"ok|{account}|{client}"
    wait = state.throttle.retry_after(key)
    if not wait:
        wait = state.throttle.retry_after(address)
        if wait and state.throttle.known(known):
            wait = 0.0
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed logins: try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = await db.get_user_by_email(session, email=email) if len(email) <= 320 else None
    if user is None or not user.is_active or not user.password_hash:
        ok = await run_in_threadpool(check_password_unknown_user, password)
    else:
        ok = await run_in_threadpool(verify_password, password, user.password_hash)
    if not ok or user is None:  # (no user: ok is False already; the check is for the type checker)
        state.throttle.failed(key)
        state.throttle.failed(address)
        raise unauthorized(LOGIN_FAILED)
    state.throttle.succeeded(key)
    state.throttle.remember(known)
    return await issue_tokens(state, session, user.id)


async def refresh(state: AppState, session: AsyncSession, *, refresh_token: str) -> TokenOut:
    """Rotation: a refresh token is good once. Presenting a spent or revoked one again means it
    leaked (or the client replayed it): every refresh token of that user is revoked, so both the
    thief and the user must sign in again."""
    try:
        claims = decode_claims(state.tokens, refresh_token, expected_type="refresh")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    user = await db.get_user(session, user_id=claims["sub"])
    if user is None or not user.is_active:
        raise unauthorized()
    spent = await db.use_refresh_token(session, owner_id=user.id, jti=claims["jti"])
    if spent != "ok":
        await session.commit()  # a reuse revokes the user's other refresh tokens: keep that
        raise unauthorized(
            {
                "reused": "refresh token already used: every session was signed out, sign in again",
                "revoked": "refresh token revoked or expired: sign in again",
            }.get(spent, "unknown refresh token: sign in again")
        )
    return await issue_tokens(state, session, user.id)


async def client_credentials(
    state: AppState, *, client_secret: str, client_id: str | None, scope: str | None
) -> TokenOut:
    """OAuth2 client-credentials grant (RFC 6749 4.4): an API key as the client secret (its id, if sent, as
    the client id) → an access token for the key's owner that carries the key's id (``kid``) and the scopes
    asked for (default: all of the key's). No refresh token: ask again. The token is checked against its key
    on every request, so revoking the key ends it at once."""
    from app.api import keys

    row = await keys.verify(state, client_secret)
    if client_id and client_id not in (row.id, f"{API_KEY_PREFIX}{row.id}"):
        raise unauthorized("client_id does not match the API key")
    asked = set((scope or "").split()) or set(row.scopes)
    if not asked <= set(row.scopes):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"scope: this key allows {' '.join(row.scopes)}, not {' '.join(sorted(asked - set(row.scopes)))}",
        )
    granted = " ".join(s for s in row.scopes if s in asked)
    cfg = state.tokens
    return TokenOut(
        access_token=create_token(
            cfg, subject=row.owner_id, type="access", extra={"kid": row.id, "scope": granted}
        ),
        refresh_token=None,
        expires_in=int(cfg.access_ttl.total_seconds()),
        scope=granted,
    )


async def logout(state: AppState, session: AsyncSession, *, refresh_token: str) -> None:
    """Revoke a refresh token (its access token lapses at its expiry, minutes at most)."""
    try:
        claims = decode_claims(state.tokens, refresh_token, expected_type="refresh")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    await db.revoke_refresh_tokens(session, owner_id=claims["sub"], jti=claims["jti"])
    await session.commit()
