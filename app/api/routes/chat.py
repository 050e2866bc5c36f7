from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from app.api import conversations, idempotency, webhooks
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.routes.preview import publish_preview
from app.api.schemas import JOB_LOCATION, ChatAccepted, ChatIn, Message

router = APIRouter(prefix="/chat", tags=["chat"])


@router.post(
    "",
    operation_id="create_chat_job",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChatAccepted,
    responses={
        202: {"headers": JOB_LOCATION, "description": "queued: follow the job at `Location`"},
        404: {"model": Message, "description": "a file or the thread does not exist (or is not yours)"},
        409: {"model": Message, "description": "the thread already has a job queued or running"},
        429: {"model": Message, "description": "you have the most jobs queued or running you may"},
        **idempotency.RESPONSES,
    },
)
async def chat(
    body: ChatIn,
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    request: Request,
    idempotency_key: idempotency.KeyHeader = None,
    preview: bool = Query(
        False,
        description="with `file_ids` (a recording's first turn): also render the plan on the loudest 15 s "
        "and publish it as a `preview` event on the job's events (a file id to play, with `match_gain_db` for "
        "equal loudness) before the result",
    ),
) -> JSONResponse:
    """Start a turn: returns at once with the job id; follow `GET /api/v1/jobs/{job_id}/events`.

    The job's result says what the turn was (`kind`): `process` ran steps; `answer`, `clarify` and `none`
    ran nothing and carry `answer` (with measured numbers), `findings`, `checks` and `suggested_steps`;
    send "do it" on the same thread to run the suggestion. With `preview=true` a `preview` event comes
    first: listen, then wait for the result or cancel the job and change course."""

    async def create() -> ChatAccepted:
        accepted = await conversations.start_turn(
            state,
            session,
            owner_id=user.id,
            message=body.message,
            file_ids=body.file_ids,
            thread_id=body.thread_id,
        )
        if body.callback_url:
            await webhooks.add_callback(
                session, owner_id=user.id, job_id=accepted.job_id, url=body.callback_url
            )
        if preview and body.file_ids:  # a recording's first turn (a follow-up's plan needs its thread)
            publish_preview(
                state,
                job_id=accepted.job_id,
                owner_id=user.id,
                message=body.message,
                file_id=body.file_ids[0],
            )
        return accepted

    if body.callback_url:
        webhooks.check_url(state.settings, body.callback_url)

    return await idempotency.run_once(
        state,
        owner_id=user.id,
        scope="POST /chat",
        key=idempotency_key,
        request_hash=idempotency.fingerprint(body.model_dump_json()),
        create=create,
        status_code=status.HTTP_202_ACCEPTED,
        location=lambda out: str(request.app.url_path_for("get_job", job_id=out.job_id)),
    )
