from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import JSONResponse

from app.api import reads
from app.api import webhooks as svc
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.problems import Problem
from app.api.schemas import (
    ID_PATTERN,
    Responses,
    WebhookCreated,
    WebhookDeliveryList,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookSecretOut,
)
from memory import db

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
WebhookIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="webhook id")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "no such webhook (or not yours)"}}
LIST: Responses = {400: {"model": Problem, "description": "an unknown query parameter, or a bad cursor"}}


@router.get("/secret", operation_id="get_webhook_secret", response_model=WebhookSecretOut)
async def webhook_secret(user: CurrentUser, state: StateDep) -> WebhookSecretOut:
    """Your signing secret for job callbacks (`callback_url` on POST /chat): verify each delivery's
    `webhook-signature` = `v1,` + base64 HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the
    base64-decoded part after `whsec_`, and refuse timestamps older than a few minutes."""
    return WebhookSecretOut(secret=svc.secret_for(state.tokens.secret, user.id))


@router.post(
    "",
    operation_id="create_webhook",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses={
        201: {
            "headers": {"Location": {"description": "the webhook", "schema": {"type": "string"}}},
            "description": "registered: keep `secret`, it is shown only now",
        },
        409: {"model": Problem, "description": "you have the most webhooks you may (`too_many_webhooks`)"},
    },
)
async def create_webhook(
    body: WebhookIn, user: CurrentUser, state: StateDep, session: SessionDep, request: Request
) -> JSONResponse:
    """Register an endpoint: every job of your account that ends with one of `events` (after now) is POSTed
    to `url`, signed with this endpoint's own secret (Standard Webhooks, as for `callback_url`) and retried
    with backoff until it answers 2xx. `GET /api/v1/webhooks/{id}/deliveries` shows each attempt."""
    out = await svc.create_endpoint(state, session, owner_id=user.id, body=body)
    where = str(request.app.url_path_for("get_webhook", webhook_id=out.id))
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Location": where})


@router.get(
    "",
    operation_id="list_webhooks",
    response_model=WebhookList,
    responses=LIST,
    dependencies=[Depends(reads.known_query)],
)
async def list_webhooks(
    user: CurrentUser,
    session: SessionDep,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
) -> WebhookList:
    """Your registered webhooks, newest first (their secrets are not shown again)."""
    page = await reads.page(
        session,
        db.WebhookEndpoint,
        where=[db.WebhookEndpoint.owner_id == user.id],
        limit=limit,
        cursor=cursor,
        filters={},
    )
    return WebhookList(
        items=[svc.endpoint_out(r) for r in page.items], next_cursor=page.next_cursor, total=page.total
    )


@router.get("/{webhook_id}", operation_id="get_webhook", response_model=WebhookOut, responses=NOT_FOUND)
async def get_webhook(webhook_id: WebhookIdPath, user: CurrentUser, session: SessionDep) -> WebhookOut:
    return svc.endpoint_out(await svc.owned_endpoint(session, owner_id=user.id, webhook_id=webhook_id))


@router.delete(
    "/{webhook_id}",
    operation_id="delete_webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
async def delete_webhook(webhook_id: WebhookIdPath, user: CurrentUser, session: SessionDep) -> Response:
    """Unregister: nothing more is sent to it; its delivery log goes with it."""
    await svc.delete_endpoint(session, owner_id=user.id, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=WebhookDeliveryList,
    responses={**NOT_FOUND, **LIST},
    dependencies=[Depends(reads.known_query)],
)
async def list_webhook_deliveries(
    webhook_id: WebhookIdPath,
    user: CurrentUser,
    session: SessionDep,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
) -> WebhookDeliveryList:
    """The delivery log, newest first: each event sent to this webhook, its state, and every attempt
    (the receiver's status code or the error, when, how long)."""
    await svc.owned_endpoint(session, owner_id=user.id, webhook_id=webhook_id)
    page = await reads.page(
        session,
        db.WebhookDelivery,
        where=[db.WebhookDelivery.owner_id == user.id, db.WebhookDelivery.endpoint_id == webhook_id],
        limit=limit,
        cursor=cursor,
        filters={"webhook": webhook_id},
    )
    return WebhookDeliveryList(
        items=await svc.delivery_outs(session, list(page.items)),
        next_cursor=page.next_cursor,
        total=page.total,
    )
