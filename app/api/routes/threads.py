from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.api import conversations, deletion, reads
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import ID_PATTERN, Message, ThreadList, ThreadOut, ThreadSummary
from memory import db

router = APIRouter(prefix="/threads", tags=["threads"])


@router.get(
    "",
    operation_id="list_threads",
    response_model=ThreadList,
    dependencies=[Depends(reads.known_query)],
    responses={400: {"model": Message, "description": "an unknown query parameter, or a bad cursor"}},
)
async def list_threads(
    user: CurrentUser,
    session: SessionDep,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
) -> ThreadList:
    """Your conversations, newest first (by when they started), a page at a time: follow `next_cursor`."""
    got = await reads.page(
        session,
        db.Conversation,
        where=[db.Conversation.owner_id == user.id],
        limit=limit,
        cursor=cursor,
        filters={},
    )
    return ThreadList(
        items=[ThreadSummary.model_validate(c, from_attributes=True) for c in got.items],
        next_cursor=got.next_cursor,
        total=got.total,
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
