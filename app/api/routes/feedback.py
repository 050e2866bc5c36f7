from __future__ import annotations

from fastapi import APIRouter, status

from app.api import learning
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import FeedbackIn, FeedbackOut, Message

router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.post(
    "",
    operation_id="create_feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackOut,
    responses={
        404: {"model": Message, "description": "no such job, file or turn (or not yours)"},
        409: {"model": Message, "description": "the job has nothing to rate"},
        503: {"model": Message, "description": "memory is not configured"},
    },
)
async def rate(body: FeedbackIn, user: CurrentUser, state: StateDep, session: SessionDep) -> FeedbackOut:
    """Rate a result 1–5 (optional aspects 1–5, comment, liked); it tunes future recommendations."""
    return await learning.rate(state, session, owner_id=user.id, body=body)
