from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status

from app.api import accounts
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import Line, Message, RefreshIn, RegisterIn, Responses, TokenOut, UserOut

router = APIRouter(prefix="/auth", tags=["auth"])
UNAUTH: Responses = {401: {"model": Message, "description": "missing, expired, forged or wrong-type token"}}


@router.post(
    "/register",
    operation_id="register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={409: {"model": Message, "description": "email already registered"}},
)
async def register(body: RegisterIn, state: StateDep, session: SessionDep) -> UserOut:
    """Create an account: email + password of 8–128 characters that is not a common or leaked password, nor
    the email, nor one character repeated or a run (NIST SP 800-63B; 422 says which). No composition rules."""
    return UserOut.model_validate(
        await accounts.register(state, session, email=body.email, password=body.password)
    )


@router.post(
    "/token",
    operation_id="create_token",
    response_model=TokenOut,
    responses={
        401: {"model": Message, "description": "incorrect email or password"},
        429: {"model": Message, "description": "too many failed logins (see Retry-After)"},
    },
)
async def token(
    username: Annotated[Line, Form(max_length=320)],
    password: Annotated[Line, Form(max_length=1024)],
    request: Request,
    state: StateDep,
    session: SessionDep,
    grant_type: Annotated[Line | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    """OAuth2 password flow: form fields `username` (the email) and `password` → access + refresh tokens.
    (Other OAuth2 fields, `scope`, `client_id`, `client_secret`, are accepted and ignored.)"""
    client = accounts.request_client(state, request)
    return await accounts.login(state, session, email=username, password=password, client=client)


@router.post("/refresh", operation_id="refresh_token", response_model=TokenOut, responses=UNAUTH)
async def refresh(body: RefreshIn, state: StateDep, session: SessionDep) -> TokenOut:
    """A new token pair for a valid refresh token. Each refresh token works once (rotation); using a
    spent one again revokes all of the user's refresh tokens (sign in again)."""
    return await accounts.refresh(state, session, refresh_token=body.refresh_token)


@router.post("/logout", operation_id="logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTH)
async def logout(body: RefreshIn, state: StateDep, session: SessionDep) -> None:
    """Revoke this refresh token (sign out of this device); the access token lapses at its expiry."""
    await accounts.logout(state, session, refresh_token=body.refresh_token)


@router.get("/me", operation_id="get_me", response_model=UserOut, responses=UNAUTH)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
