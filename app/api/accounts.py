"""Register, log in, refresh: the business logic behind routes/auth.py."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import unauthorized
from app.api.schemas import TokenOut
from app.api.security import (
    TokenError,
    check_password_unknown_user,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from app.api.state import AppState
from memory import db

LOGIN_FAILED = "incorrect email or password"


async def register(state: AppState, session: AsyncSession, *, email: str, password: str) -> db.User:
    if await db.get_user_by_email(session, email=email) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="an account with this email already exists")
    hashed = await run_in_threadpool(hash_password, password)
    try:
        user = await db.create_user(session, email=email, password_hash=hashed)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail="an account with this email already exists") from None
    return user


def tokens_for(state: AppState, user_id: str) -> TokenOut:
    cfg = state.tokens
    return TokenOut(access_token=create_token(cfg, subject=user_id, type="access"),
                    refresh_token=create_token(cfg, subject=user_id, type="refresh"),
                    expires_in=int(cfg.access_ttl.total_seconds()))


async def login(state: AppState, session: AsyncSession, *, email: str, password: str, client: str) -> TokenOut:
    """Tokens for a correct email + password; the same 401 for every failure; 429 when throttled."""
    key = f"{email.strip().lower()}|{client}"
    wait = state.throttle.retry_after(key)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail="too many failed logins: try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = await db.get_user_by_email(session, email=email) if len(email) <= 320 else None
    if user is None or not user.is_active or not user.password_hash:
        ok = await run_in_threadpool(check_password_unknown_user, password)
    else:
        ok = await run_in_threadpool(verify_password, password, user.password_hash)
    if not ok:
        state.throttle.failed(key)
        raise unauthorized(LOGIN_FAILED)
    state.throttle.succeeded(key)
    return tokens_for(state, user.id)


async def refresh(state: AppState, session: AsyncSession, *, refresh_token: str) -> TokenOut:
    try:
        user_id = decode_token(state.tokens, refresh_token, expected_type="refresh")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    user = await db.get_user(session, user_id=user_id)
    if user is None or not user.is_active:
        raise unauthorized()
    return tokens_for(state, user.id)
