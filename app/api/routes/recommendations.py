from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import learning
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import ID_PATTERN, Line, Message, RecommendationsOut, Text

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


@router.get(
    "",
    operation_id="get_recommendations",
    response_model=RecommendationsOut,
    responses={
        404: {"model": Message, "description": "no such file (or not yours)"},
        503: {"model": Message, "description": "memory is not configured"},
    },
)
async def recommend(
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    file_id: Annotated[Line, Query(pattern=ID_PATTERN)],
    request: Annotated[Text, Query(max_length=1000, description="what you plan to ask")] = "",
) -> RecommendationsOut:
    """Settings learned from your (and similar) rated results for this recording, or a genre preset."""
    return await learning.recommend(state, session, owner_id=user.id, file_id=file_id, request=request)
