"""Feedback and recommendations (the memory agent, `Mixpilot.feedback` / `memory.recommend`)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import not_found
from app.api.files import analysis_of, owned_file
from app.api.schemas import FeedbackIn, FeedbackOut, RecommendationOut, RecommendationsOut
from app.api.state import AppState
from memory import db


def _memory(state: AppState) -> Any:
    memory = getattr(state.service, "memory", None)
    if memory is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="memory is not configured on this server: feedback and recommendations are off",
        )
    return memory


async def rate(state: AppState, session: AsyncSession, *, owner_id: str, body: FeedbackIn) -> FeedbackOut:
    """Store a rating for one of the user's turns (by job, result file or turn id); 404 for anything else."""
    memory = _memory(state)
    if body.job_id:
        job = await db.get_job(session, owner_id=owner_id, job_id=body.job_id)
        if job is None:
            raise not_found("job", body.job_id)
        if not job.turn_id:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=(
                    f"job '{body.job_id}' has nothing to rate ({job.status}; only finished jobs that changed the "
                    "audio can be rated)"
                ),
            )
        ref = job.turn_id
    else:
        ref = body.ref
    found = await run_in_threadpool(lambda: memory.find_turn(user_id=owner_id, ref=ref))
    if found is None:
        raise not_found("turn", body.ref)
    try:
        understood = await run_in_threadpool(
            lambda: state.service.feedback(
                found["id"],
                rating=body.rating,
                aspects=body.aspects or None,
                comment=body.comment,
                liked=body.liked,
                user_id=owner_id,
            )
        )
    except KeyError:
        raise not_found("turn", body.ref) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return FeedbackOut(ok=True, turn_id=found["id"], understood=list(understood or []))


async def recommend(
    state: AppState, session: AsyncSession, *, owner_id: str, file_id: str, request: str
) -> RecommendationsOut:
    memory = _memory(state)
    await owned_file(session, owner_id=owner_id, file_id=file_id)

    def work() -> dict[str, Any] | None:
        analysis = analysis_of(state, file_id)
        return memory.recommend(analysis=analysis, request=request, user_id=owner_id, audio_id=file_id)

    rec = await run_in_threadpool(work)
    return RecommendationsOut(file_id=file_id, recommendation=RecommendationOut(**rec) if rec else None)
