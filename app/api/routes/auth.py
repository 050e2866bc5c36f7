from __future__ import annotations

import base64
from typing import Annotated, Literal
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status

from app.api import accounts, deletion
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.keys import SignedInUser
from app.api.schemas import NO_STORE, Line, Message, RefreshIn, RegisterIn, Responses, TokenOut, UserOut

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


GrantType = Literal["password", "refresh_token", "client_credentials"]


def _no_store(response: Response) -> None:
    """Token responses are never cached (RFC 6749 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _basic_client(request: Request) -> tuple[str | None, str | None]:
    """(client_id, client_secret) from ``Authorization: Basic`` (RFC 6749 2.3.1), or (None, None)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail="Authorization: malformed Basic credentials"
        ) from None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id) or None, unquote_plus(secret) or None


def _need(grant: str, **fields: str | None) -> None:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"grant_type={grant} needs {' and '.join(missing)}",
        )


@router.post(
    "/token",
    operation_id="create_token",
    response_model=TokenOut,
    responses={
        200: {"headers": NO_STORE, "description": "tokens (never cached)"},
        400: {
            "model": Message,
            "description": "a field the grant needs is missing, or a scope the key lacks",
        },
        401: {"model": Message, "description": "incorrect email or password, or a bad refresh token or key"},
        429: {"model": Message, "description": "too many failed logins (see Retry-After)"},
    },
)
async def token(
    request: Request,
    response: Response,
    state: StateDep,
    session: SessionDep,
    grant_type: Annotated[
        GrantType | None, Form(description="password (the default), refresh_token or client_credentials")
    ] = None,
    username: Annotated[Line | None, Form(max_length=320, description="password grant: the email")] = None,
    password: Annotated[Line | None, Form(max_length=1024, description="password grant")] = None,
    refresh_token: Annotated[Line | None, Form(max_length=4096, description="refresh_token grant")] = None,
    scope: Annotated[
        Line | None, Form(max_length=200, description="client_credentials: 'read', 'write' or both")
    ] = None,
    client_id: Annotated[
        Line | None, Form(max_length=200, description="client_credentials: the key's id")
    ] = None,
    client_secret: Annotated[
        Line | None, Form(max_length=200, description="client_credentials: the API key (or use HTTP Basic)")
    ] = None,
) -> TokenOut:
    """The OAuth2 token endpoint (RFC 6749), form-encoded:

    - `grant_type=password` (the default): `username` (the email) and `password` → access + refresh tokens.
    - `grant_type=refresh_token`: `refresh_token` → a new pair (each refresh token works once; using a spent
      one again revokes all of the user's refresh tokens).
    - `grant_type=client_credentials`: an API key as `client_secret` (or HTTP Basic `client_id:client_secret`)
      → an access token for the key's owner with the key's scopes (optionally fewer: `scope`); no refresh
      token, and revoking the key ends it.
    """
    _no_store(response)
    if grant_type == "refresh_token":
        _need("refresh_token", refresh_token=refresh_token)
        return await accounts.refresh(state, session, refresh_token=refresh_token or "")
    if grant_type == "client_credentials":
        basic_id, basic_secret = _basic_client(request)
        secret = client_secret or basic_secret
        _need("client_credentials", client_secret=secret)
        return await accounts.client_credentials(
            state, client_secret=secret or "", client_id=client_id or basic_id, scope=scope
        )
    _need("password", username=username, password=password)
    client = accounts.request_client(state, request)
    return await accounts.login(state, session, email=username or "", password=password or "", client=client)


@router.post(
    "/refresh",
    operation_id="refresh_token",
    response_model=TokenOut,
    deprecated=True,
    responses={**UNAUTH, 200: {"headers": NO_STORE, "description": "tokens (never cached)"}},
)
async def refresh(body: RefreshIn, response: Response, state: StateDep, session: SessionDep) -> TokenOut:
    """Deprecated: use `POST /auth/token` with `grant_type=refresh_token` (what OAuth2 libraries send).
    A new token pair for a valid refresh token. Each refresh token works once (rotation); using a
    spent one again revokes all of the user's refresh tokens (sign in again)."""
    _no_store(response)
    return await accounts.refresh(state, session, refresh_token=body.refresh_token)


@router.post("/logout", operation_id="logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTH)
async def logout(body: RefreshIn, state: StateDep, session: SessionDep) -> None:
    """Revoke this refresh token (sign out of this device); the access token lapses at its expiry."""
    await accounts.logout(state, session, refresh_token=body.refresh_token)


@router.get("/me", operation_id="get_me", response_model=UserOut, responses=UNAUTH)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.delete(
    "/me",
    operation_id="delete_account",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **UNAUTH,
        403: {"model": Message, "description": "made with an API key: sign in with the password"},
        409: {"model": Message, "description": "a job is queued or running: cancel it first"},
        422: {"model": Message, "description": "`confirm` is not the account's email"},
    },
)
async def delete_account(
    user: SignedInUser,
    state: StateDep,
    session: SessionDep,
    confirm: Annotated[
        Line, Query(max_length=320, description="the account's email: a deletion cannot be undone")
    ],
) -> None:
    """Delete your account and everything derived from it: files (stored audio and renditions), threads and
    their history, jobs and callbacks, ratings and learned settings with their feature vectors, API keys,
    refresh tokens and stored idempotent responses. Audio another account also uploaded stays theirs.
    Your tokens and keys stop working at once. `confirm` must be the account's email (nothing can bring
    the account back). Refused (409) while a job of yours is queued or running."""
    if confirm.strip().lower() != user.email.lower():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="confirm: pass the account's email as `confirm` to delete it (it cannot be undone)",
        )
    await deletion.delete_account(state, session, owner_id=user.id)
