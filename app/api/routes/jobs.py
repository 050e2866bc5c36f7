from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from sse_starlette.sse import EventSourceResponse

from app.api import conversations, reads
from app.api.deps import CurrentUser, SessionDep, StateDep, StreamUser
from app.api.schemas import ID_PATTERN, JobList, JobOut, JobStatus, Message, Responses, StreamTokenOut
from memory.db import JOB_STATUSES

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="job id")]
NOT_FOUND: Responses = {404: {"model": Message, "description": "no such job (or not yours)"}}
CONFLICT: Responses = {409: {"model": Message, "description": "not possible in the job's current state"}}
#: an event id: a sequence number (in-process) or a Redis stream id
EVENT_ID_PATTERN = r"^[0-9]{1,20}(-[0-9]{1,20})?$"
TOO_MANY: Responses = {
    429: {"model": Message, "description": "you have the most jobs queued or running you may"}
}


@router.get(
    "",
    operation_id="list_jobs",
    response_model=JobList,
    dependencies=[Depends(reads.known_query)],
    responses={400: {"model": Message, "description": "an unknown query parameter, or a bad cursor"}},
)
async def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query(description="only jobs in this state")] = None,
    thread_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="only this thread's jobs")] = None,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
) -> JobList:
    """Your jobs, newest first, a page at a time: follow `next_cursor`."""
    from memory import db

    where = [db.Job.owner_id == user.id]
    if status is not None:
        where.append(db.Job.status == status.value)
    if thread_id is not None:
        where.append(db.Job.thread_id == thread_id)
    got = await reads.page(
        session,
        db.Job,
        where=where,
        limit=limit,
        cursor=cursor,
        filters={"status": status.value if status else None, "thread_id": thread_id},
    )
    return JobList(
        items=[conversations.job_out(j) for j in got.items], next_cursor=got.next_cursor, total=got.total
    )


@router.get("/{job_id}", operation_id="get_job", response_model=JobOut, responses=NOT_FOUND)
async def get_job(job_id: JobIdPath, user: CurrentUser, state: StateDep) -> JobOut:
    """State, progress (0–1), plan, result (file_id, metrics, explanation, applied, warnings) and error."""
    return conversations.job_out(await conversations.read_job(state, owner_id=user.id, job_id=job_id))


@router.post(
    "/{job_id}/stream-token",
    operation_id="create_stream_token",
    response_model=StreamTokenOut,
    responses=NOT_FOUND,
)
async def create_stream_token(
    job_id: JobIdPath, user: CurrentUser, state: StateDep, response: Response
) -> StreamTokenOut:
    """A short-lived token for this job's event stream, to pass as `?token=`: a browser's `EventSource`
    cannot send an Authorization header. It opens that one stream only, for a few minutes."""
    from app.api.security import STREAM_TOKEN_TTL, create_token

    await conversations.read_job(state, owner_id=user.id, job_id=job_id)
    token = create_token(
        state.tokens, subject=user.id, type="stream", ttl=STREAM_TOKEN_TTL, extra={"job": job_id}
    )
    response.headers["Cache-Control"] = "no-store"
    return StreamTokenOut(
        token=token,
        expires_in=int(STREAM_TOKEN_TTL.total_seconds()),
        url=f"/api/v1/jobs/{job_id}/events?token={token}",
    )


@router.get(
    "/{job_id}/events",
    operation_id="stream_job_events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": (
                        'event: status\ndata: {"status": "running", "progress": 0.1}\n\n'
                        'id: 3\nevent: step_started\ndata: {"event": "step_started", "index": 0, "total": 3, "tool": "eq"}\n\n'
                        'event: end\ndata: {"status": "succeeded"}\n\n'
                    ),
                }
            },
            "description": "Server-Sent Events: status, stage, plan, step_started, step_progress, step_finished, "
            "done, heartbeat, then end",
        },
        **NOT_FOUND,
    },
)
async def job_events(
    job_id: JobIdPath,
    user: StreamUser,
    state: StateDep,
    last_event_id: Annotated[
        str | None, Header(pattern=EVENT_ID_PATTERN, description="resume after this event (its `id:` line)")
    ] = None,
):
    """Live progress as Server-Sent Events; the stream ends after the job does (event `end`).

    Progress events carry an `id:` line; a client that lost the connection reconnects with
    `Last-Event-ID` (browsers' `EventSource` does so by itself) and gets a fresh `status` snapshot, then the
    events after that id only. Snapshots, heartbeats and `end` carry no id."""
    await conversations.read_job(state, owner_id=user.id, job_id=job_id)
    events = conversations.job_events(state, owner_id=user.id, job_id=job_id, after=last_event_id)

    async def stream():
        async for item in events:
            out = {"event": item["event"], "data": json.dumps(item["data"], default=str)}
            if item.get("id"):
                out["id"] = item["id"]
            yield out

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


@router.post(
    "/{job_id}/cancel", operation_id="cancel_job", response_model=JobOut, responses={**NOT_FOUND, **CONFLICT}
)
async def cancel_job(job_id: JobIdPath, user: CurrentUser, state: StateDep, session: SessionDep) -> JobOut:
    """Cancel a queued or running job: a running one stops within about a second (its process is ended
    if it does not stop by itself)."""
    return await conversations.cancel(state, session, owner_id=user.id, job_id=job_id)


@router.post(
    "/{job_id}/retry",
    operation_id="retry_job",
    response_model=JobOut,
    responses={**NOT_FOUND, **CONFLICT, **TOO_MANY},
)
async def retry_job(job_id: JobIdPath, user: CurrentUser, state: StateDep, session: SessionDep) -> JobOut:
    """Queue a failed or cancelled job again. (A job whose worker crashed or restarted is retried by itself,
    up to a limit; after that it is failed with the reason and can be retried here.)"""
    return await conversations.retry(state, session, owner_id=user.id, job_id=job_id)


__all__ = ["router", "JOB_STATUSES"]
