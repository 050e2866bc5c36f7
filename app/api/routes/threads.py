from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.api import conversations, deletion
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import ID_PATTERN, Message, ThreadList, ThreadOut
from memory import db

router = APIRouter(prefix="/threads", tags=["threads"])


@router.get("", operation_id="list_threads", response_model=ThreadList)
async def list_threads(
    user: CurrentUser, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> ThreadList:
    rows = await db.list_conversations(session, owner_id=user.id, limit=limit)
    return ThreadList(
        items=[
            {
                "id": c.id,
                "title": c.title,
                "created_at": c.created_at.isoformat(),
                "updated_at": c.updated_at.isoformat(),
            }
            for c in rows
        ]
    )


@router.get(
    "/{thread_id}",
    operation_id="get_thread",
    response_model=ThreadOut,
    responses={404: {"model": Message, "description": "no such thread (or not yours)"}},
)
async def get_thread(
    thread_id: Annotated[str, Path(pattern=ID_PATTERN)],
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
) -> ThreadOut:
    """The conversation's turns: request, plan, outcomes, result file id, explanation, metrics."""
    return await conversations.thread_view(state, session, owner_id=user.id, thread_id=thread_id)


@router.delete(
    "/{thread_id}",
    operation_id="delete_thread",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: {"model": Message, "description": "no such thread (or not yours)"},
        409: {"model": Message, "description": "a job of the thread is queued or running: cancel it first"},
    },
)
async def delete_thread(
    thread_id: Annotated[str, Path(pattern=ID_PATTERN)],
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
) -> None:
    """Delete the conversation and what derives from it: its jobs, turns, ratings and learned settings, their
    feature vectors, its history, and the result files its jobs produced. The uploads it worked on stay."""
    await deletion.delete_thread(state, session, owner_id=user.id, thread_id=thread_id)
