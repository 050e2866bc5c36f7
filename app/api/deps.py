"""Annotated dependencies: `SessionDep`, `CurrentUser`, `ServiceDep`, `StateDep`, `SettingsDep`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.security import TokenError, decode_token
from app.api.state import AppState
from app.settings import Settings
from memory import db

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_state(request: Request) -> AppState:
    return request.app.state.mp


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_service(state: StateDep) -> Any:
    return state.service


ServiceDep = Annotated[Any, Depends(get_service)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def unauthorized(detail: str = "could not validate credentials") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def get_current_user(state: StateDep, session: SessionDep, token: TokenDep) -> db.User:
    if not token:
        raise unauthorized("not authenticated: send 'Authorization: Bearer <access token>'")
    try:
        user_id = decode_token(state.tokens, token, expected_type="access")
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    user = await db.get_user(session, user_id=user_id)
    if user is None or not user.is_active:
        raise unauthorized()
    return user


CurrentUser = Annotated[db.User, Depends(get_current_user)]


def not_found(what: str, ident: str) -> HTTPException:
    """The one answer for "does not exist" and "belongs to someone else"."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} '{ident}' not found")
