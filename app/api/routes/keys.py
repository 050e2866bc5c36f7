from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.api import keys, reads
from app.api.deps import SessionDep, StateDep
from app.api.keys import SignedInUser
from app.api.schemas import ID_PATTERN, NO_STORE, ApiKeyCreated, ApiKeyIn, ApiKeyList, Message, Responses

router = APIRouter(prefix="/keys", tags=["keys"])
FORBIDDEN: Responses = {
    403: {"model": Message, "description": "made with an API key: sign in with a password"}
}


@router.post(
    "",
    operation_id="create_api_key",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={
        201: {"headers": NO_STORE, "description": "the key, shown this once"},
        **FORBIDDEN,
        409: {"model": Message, "description": "you hold the most keys you may"},
    },
)
async def create_api_key(
    body: ApiKeyIn, user: SignedInUser, state: StateDep, session: SessionDep, response: Response
) -> ApiKeyCreated:
    """A key for a server of yours: `key` is in this answer only (it is stored as a hash); keep it secret.
    Scopes: `read` (GET, HEAD) and `write` (POST, DELETE, …). Send it as `Authorization: Bearer <key>` or
    `X-API-Key: <key>`, or trade it for an access token (`grant_type=client_credentials`)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return await keys.create(state, session, owner_id=user.id, body=body)


@router.get(
    "",
    operation_id="list_api_keys",
    response_model=ApiKeyList,
    dependencies=[Depends(reads.known_query)],
    responses={
        **FORBIDDEN,
        400: {"model": Message, "description": "an unknown query parameter, or a bad cursor"},
    },
)
async def list_api_keys(
    user: SignedInUser,
    session: SessionDep,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
    include_revoked: Annotated[bool, Query(description="list revoked keys too")] = False,
) -> ApiKeyList:
    """Your API keys, newest first (never the keys themselves: their prefix, scopes and dates)."""
    got = await keys.list_keys(
        session, owner_id=user.id, limit=limit, cursor=cursor, include_revoked=include_revoked
    )
    return ApiKeyList(
        items=[keys.key_out(r) for r in got.items], next_cursor=got.next_cursor, total=got.total
    )


@router.delete(
    "/{key_id}",
    operation_id="revoke_api_key",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**FORBIDDEN, 404: {"model": Message, "description": "no such key (or not yours)"}},
)
async def revoke_api_key(
    key_id: Annotated[str, Path(pattern=ID_PATTERN, description="the key's id")],
    user: SignedInUser,
    session: SessionDep,
) -> None:
    """Revoke a key: the next request made with it (or with a token issued for it) gets 401."""
    await keys.revoke(session, owner_id=user.id, key_id=key_id)
