"""Annotated dependencies: `SessionDep`, `CurrentUser`, `ServiceDep`, `StateDep`, `SettingsDep`.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool,
a thread hop (and a GIL handover) per dependency per request for a one-line lookup.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.security import API_KEY_PREFIX, TokenError, decode_claims
from app.api.state import AppState
from app.settings import Settings
from memory import db

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token", refreshUrl="/api/v1/auth/token", auto_error=False
)


async def get_state(request: Request) -> AppState:
    return request.app.state.mp


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_service(state: StateDep) -> Any:
    return state.service


ServiceDep = Annotated[Any, Depends(get_service)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]
#: an API key (`app.api.keys`) in its own header; ``Authorization: Bearer mp_live_…`` works as well
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key (mp_live_…): POST /api/v1/keys makes one"
)
ApiKeyDep = Annotated[str | None, Depends(api_key_header)]


def unauthorized(detail: str = "could not validate credentials") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def get_current_user(state: StateDep, token: TokenDep, api_key: ApiKeyDep, request: Request) -> db.User:
    """The token's user; the row is cached for ``auth_cache_s`` (every read would otherwise pay a query).

    A token is verified (signature, issuer, audience, type) once; the same token string then
    only has its expiry checked (``state.verified``; access tokens are not revocable, only refresh
    tokens are recorded). The account lookup is cached, so a deactivated account loses access
    within ``auth_cache_s``. No database session is opened here: a miss reads through
    `state.reads` (`app.api.reads`).

    An API key (``X-API-Key``, or ``Bearer mp_live_…``) and a client-credentials token (it names its key,
    ``kid``) are checked against the key's row on every request, never cached: a revocation counts at once.
    """
    if api_key or (token and token.startswith(API_KEY_PREFIX)):
        from app.api import keys

        return await active_user(state, await keys.authenticate(state, request, api_key or token or ""))
    if not token:
        raise unauthorized("not authenticated: send 'Authorization: Bearer <access token>' or 'X-API-Key'")
    seen = state.verified.get(token)
    if (
        seen is not None and time.time() < seen[1]
    ):  # these exact bytes passed every check, and it is not expired
        user_id = seen[0]
    else:
        try:
            claims = decode_claims(state.tokens, token, expected_type="access")
        except TokenError as exc:
            raise unauthorized(str(exc)) from None
        user_id = claims["sub"]
        if claims.get("kid"):  # issued for an API key: checked against it every time
            from app.api import keys

            await keys.check_token_key(state, request, claims)
            return await active_user(state, user_id)
        if len(state.verified) >= 10_000:
            state.verified.clear()
        state.verified[token] = (user_id, float(claims["exp"]))
    return await active_user(state, user_id)


async def active_user(state: AppState, user_id: str) -> db.User:
    """The active account `user_id` (cached for ``auth_cache_s``); 401 when it is gone or deactivated."""
    ttl = state.settings.auth_cache_s
    now = time.monotonic()
    hit = state.users.get(user_id) if ttl > 0 else None
    if hit is not None and hit[0] > now:
        email, is_active, created_at = hit[1]
        user = db.User(
            id=user_id, email=email, is_active=is_active, created_at=created_at
        )  # a transient copy
    else:
        user = await state.reads.user(user_id)
        if user is not None and ttl > 0:
            if len(state.users) >= 10_000:
                state.users.clear()
            state.users[user_id] = (now + ttl, (user.email, user.is_active, user.created_at))
    if user is None or not user.is_active:
        raise unauthorized()
    return user


CurrentUser = Annotated[db.User, Depends(get_current_user)]


async def get_stream_user(
    job_id: str,
    state: StateDep,
    token: TokenDep,
    api_key: ApiKeyDep,
    request: Request,
    stream_token: Annotated[
        str | None,
        Query(
            alias="token",
            max_length=2048,
            description="a stream token for this job (POST /jobs/{job_id}/stream-token), for browsers' "
            "EventSource, which cannot send headers; otherwise the usual Authorization or X-API-Key",
        ),
    ] = None,
) -> db.User:
    """The user of a job's event stream: a short-lived stream token bound to that job, or the usual credentials."""
    if stream_token is None:
        return await get_current_user(state, token, api_key, request)
    try:
        claims = decode_claims(state.tokens, stream_token, expected_type="stream")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    if claims.get("job") != job_id:
        raise unauthorized("this stream token is for another job")
    return await active_user(state, claims["sub"])


StreamUser = Annotated[db.User, Depends(get_stream_user)]


def not_found(what: str, ident: str) -> HTTPException:
    """The one answer for "does not exist" and "belongs to someone else"."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} '{ident}' not found")
