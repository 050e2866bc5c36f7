"""Chat turns as jobs, job views, cancel/retry, thread history: the logic behind chat/jobs/threads routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import not_found
from app.api.files import owned_file
from app.api.schemas import ChatAccepted, JobOut, ThreadOut
from app.api.state import AppState
from app.jobs import TERMINAL, jsonable
from memory import db


async def start_turn(
    state: AppState,
    session: AsyncSession,
    *,
    owner_id: str,
    message: str,
    file_ids: list[str],
    thread_id: str | None,
    inputs_extra: dict[str, str] | None = None,
) -> ChatAccepted:
    """Check ownership of every id and the user's job limit, create the job (queued) and hand it to the runner."""
    await check_job_limit(state, session, owner_id=owner_id)
    for fid in [*file_ids, *(inputs_extra or {}).values()]:
        await owned_file(session, owner_id=owner_id, file_id=fid)
    if thread_id:
        conv = await db.get_conversation(session, owner_id=owner_id, thread_id=thread_id)
        if conv is None:
            raise not_found("thread", thread_id)
        busy = (
            await session.execute(
                select(db.Job.id)
                .where(
                    db.Job.owner_id == owner_id,
                    db.Job.thread_id == thread_id,
                    db.Job.status.in_(("queued", "running")),
                )
                .limit(1)
            )
        ).scalar_one_or_none()
        if busy:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"thread '{thread_id}' is busy with job '{busy}': wait for it or cancel it",
            )
    else:
        if not file_ids:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail="a new conversation needs a file: give file_ids (upload with POST /api/v1/files)",
            )
        thread_id = db.new_id()
        await db.ensure_conversation(session, owner_id=owner_id, thread_id=thread_id, title=message[:200])
    inputs = dict(inputs_extra or {})
    if len(file_ids) > 1:
        inputs["voice"] = file_ids[1]
    job = await db.create_job(
        session,
        owner_id=owner_id,
        request=message,
        audio_id=file_ids[0] if file_ids else None,
        thread_id=thread_id,
        inputs=inputs,
    )
    if state.runner.tracks_queued:
        job.heartbeat_at = db.utcnow()  # locally queued: the sweeper watches it
    await session.commit()
    await state.runner.submit(job.id)
    return ChatAccepted(job_id=job.id, thread_id=thread_id, status="queued")


async def check_job_limit(state: AppState, session: AsyncSession, *, owner_id: str) -> None:
    """429 when the user already has `max_queued_jobs` jobs queued or running."""
    limit = state.settings.max_queued_jobs
    active = await db.count_active_jobs(session, owner_id=owner_id)
    if active >= limit:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": "5"},
            detail=f"you have {active} jobs queued or running, the limit is {limit}: wait for "
            "one to finish (GET /api/v1/jobs) or cancel one",
        )
    from memory.retention import quota_refusal  # a full quota: no job could store its result (507)

    used = await db.stored_bytes(session, owner_id=owner_id)
    refusal = quota_refusal(used=used, adding=1, quota=int(state.settings.user_quota_bytes))
    if refusal is not None:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, detail=refusal)


def job_out(job: db.Job) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status,
        progress=min(max(job.progress or 0.0, 0.0), 1.0),
        message=job.message,
        thread_id=job.thread_id,
        request=job.request or "",
        plan=job.plan,
        result=job.result,
        error=job.error,
        attempts=job.attempts or 0,
        retryable=job.status in ("failed", "cancelled"),
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


async def read_job(state: AppState, *, owner_id: str, job_id: str) -> db.Job:
    """`owned_job` for a read only (a transient row through `state.reads`: no session)."""
    job = await state.reads.job(owner_id=owner_id, job_id=job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


async def owned_job(session: AsyncSession, *, owner_id: str, job_id: str) -> db.Job:
    job = await db.get_job(session, owner_id=owner_id, job_id=job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


async def cancel(state: AppState, session: AsyncSession, *, owner_id: str, job_id: str) -> JobOut:
    job = await owned_job(session, owner_id=owner_id, job_id=job_id)
    if job.status in TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job '{job_id}' is already {job.status}")
    await session.execute(
        update(db.Job)
        .where(db.Job.id == job_id, db.Job.owner_id == owner_id, db.Job.status.in_(("queued", "running")))
        .values(status="cancelled", error="cancelled by request", message="cancelled", updated_at=db.utcnow())
    )
    await session.commit()
    state.runner.cancel(job_id)
    state.bus.publish(job_id, {"event": "end", "status": "cancelled"})
    await session.refresh(job)
    return job_out(job)


async def retry(state: AppState, session: AsyncSession, *, owner_id: str, job_id: str) -> JobOut:
    job = await owned_job(session, owner_id=owner_id, job_id=job_id)
    if job.status not in ("failed", "cancelled"):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"job '{job_id}' is {job.status}: only failed or cancelled jobs can be retried",
        )
    await check_job_limit(state, session, owner_id=owner_id)
    values: dict[str, Any] = dict(
        status="queued", error=None, progress=0.0, message="queued again", result=None, updated_at=db.utcnow()
    )
    values["heartbeat_at"] = db.utcnow() if state.runner.tracks_queued else None
    await session.execute(
        update(db.Job).where(db.Job.id == job_id, db.Job.owner_id == owner_id).values(**values)
    )
    await session.commit()
    await state.runner.submit(job_id, attempt=job.attempts or 0)
    await session.refresh(job)
    return job_out(job)


async def job_events(
    state: AppState, *, owner_id: str, job_id: str, wait_s: float = 1.0, after: str | None = None
) -> AsyncIterator[dict]:
    """Progress events for SSE: a status snapshot, the bus's events as they come (each with its ``id``; `after`,
    a ``Last-Event-ID``, resumes after that one), a snapshot when quiet, then ``end``."""

    async def snapshot() -> db.Job | None:
        async with state.sessions() as s:
            return await db.get_job(s, owner_id=owner_id, job_id=job_id)

    job = await snapshot()
    if job is None:
        return
    yield {"event": "status", "data": jsonable(job_out(job).model_dump(mode="json"))}
    if job.status in TERMINAL:
        if after is not None:  # a resume: the events it missed that are still kept, then the end
            replay = state.bus.subscribe(job_id, wait_s=0.05, after=after)
            try:
                for event in await anext(replay):
                    if event.get("event") != "end":
                        cursor = event.pop("_id", None)
                        yield {"event": str(event.get("event") or "message"), "data": event, "id": cursor}
            finally:
                await replay.aclose()
        yield {"event": "end", "data": {"status": job.status}}
        return
    subscription = state.bus.subscribe(job_id, wait_s=wait_s, after=after)
    try:
        async for batch in subscription:
            for event in batch:
                if event.get("event") == "end":
                    break
                cursor = event.pop("_id", None)
                yield {"event": str(event.get("event") or "message"), "data": event, "id": cursor}
            else:
                if batch:
                    continue
                job = await snapshot()  # quiet: the row is the truth (another process, a missed event)
                if job is None or job.status not in TERMINAL:
                    yield {"event": "heartbeat", "data": {"progress": job.progress if job else None}}
                    continue
            break
    finally:
        await subscription.aclose()
    job = await snapshot()
    if job is not None:
        yield {"event": "status", "data": jsonable(job_out(job).model_dump(mode="json"))}
        yield {"event": "end", "data": {"status": job.status}}


async def wait_for(state: AppState, *, owner_id: str, job_id: str, timeout_s: float) -> db.Job:
    """Poll the job row until it is terminal or `timeout_s` passes; returns the latest row."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.1
    while True:
        async with state.sessions() as s:
            job = await db.get_job(s, owner_id=owner_id, job_id=job_id)
        if job is None:
            raise not_found("job", job_id)
        if job.status in TERMINAL or loop.time() >= deadline:
            return job
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)


async def thread_view(state: AppState, session: AsyncSession, *, owner_id: str, thread_id: str) -> ThreadOut:
    conv = await db.get_conversation(session, owner_id=owner_id, thread_id=thread_id)
    if conv is None:
        raise not_found("thread", thread_id)
    turns = await run_in_threadpool(state.service.history, thread_id)
    view = [
        {
            "request": t.get("request"),
            "kind": t.get("kind"),
            "source_file_id": t.get("source_id") or None,
            "file_id": t.get("result_id") or None,
            "plan": t.get("plan"),
            "outcomes": t.get("outcomes"),
            "explanation": t.get("explanation"),
            "metrics": {"before": t.get("metrics_before"), "after": t.get("metrics_after")},
        }
        for t in turns
    ]
    return ThreadOut(
        id=conv.id,
        title=conv.title,
        created_at=conv.created_at,
        updated_at=conv.updated_at,
        turns=jsonable(view),
    )
