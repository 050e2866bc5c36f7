"""DELETE of files, threads and the account, with everything derived from them: the logic behind those routes.

- A file: its row, the ratings and learned configurations of turns on it or producing it (and their
  feedback and feature vectors, in SQL and in Chroma), its download renditions once no account has a row
  for the same audio, and the stored audio once nothing references it either.
- A thread: its conversation row, its jobs (and their callbacks), its turns' configurations, feedback and
  vectors, the LangGraph checkpoints, the result files its jobs produced (as above), and every version
  the thread reached (its timeline, each turn's source and result) that nothing else references.
- The account: every row of every table that has an ``owner_id`` (found from the models, so a table added
  later is not forgotten), the user row, the Chroma vectors, every thread's checkpoints, the stored audio
  and renditions nothing else references, and the API's cached sign-ins of the user.

"References" are retention's (`memory.retention`, what `mixpilot gc` keeps): a row of any account, a
conversation thread (its original, timeline, inputs, each turn's source and result), a reference track, the
inputs of a job queued or running. So a file deleted while a thread still works on its audio loses its row
only; the audio goes when the thread does (or with gc once nothing reaches it).

Refused (409) while a job that uses the file, runs on the thread or belongs to the account is queued or
running: cancel it first. Uploads the thread worked on are the user's files and stay.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import not_found
from app.api.files import owned_file, remove_renditions
from app.api.state import AppState
from memory import db, retention

log = logging.getLogger("mixpilot.api.deletion")
ACTIVE = ("queued", "running")


async def delete_file(state: AppState, session: AsyncSession, *, owner_id: str, file_id: str) -> None:
    await owned_file(session, owner_id=owner_id, file_id=file_id)
    busy = (
        await session.execute(
            select(db.Job.id)
            .where(db.Job.owner_id == owner_id, db.Job.status.in_(ACTIVE), db.Job.audio_id == file_id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if busy is None:  # a second input (a vocal, a reference) is in the job's inputs
        for job_id, inputs in (
            await session.execute(
                select(db.Job.id, db.Job.inputs).where(db.Job.owner_id == owner_id, db.Job.status.in_(ACTIVE))
            )
        ).all():
            if file_id in (inputs or {}).values():
                busy = job_id
                break
    if busy is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"file '{file_id}' is used by job '{busy}', which is still queued or running: "
            "wait for it or cancel it",
        )
    configs = select(db.MixingConfiguration.id).where(
        db.MixingConfiguration.owner_id == owner_id,
        or_(db.MixingConfiguration.audio_id == file_id, db.MixingConfiguration.result_id == file_id),
    )
    vectors = await _vector_ids(
        session,
        owner_id,
        or_(db.AudioFeatureVector.audio_id == file_id, db.AudioFeatureVector.configuration_id.in_(configs)),
    )
    await _delete_derived(session, owner_id, configs, vectors)
    await session.execute(
        delete(db.AudioFile).where(db.AudioFile.owner_id == owner_id, db.AudioFile.id == file_id)
    )
    await session.commit()
    await _forget(state, session, vectors=vectors, audio_ids=[file_id])


async def delete_thread(state: AppState, session: AsyncSession, *, owner_id: str, thread_id: str) -> None:
    conv = await db.get_conversation(session, owner_id=owner_id, thread_id=thread_id)
    if conv is None:
        raise not_found("thread", thread_id)
    jobs = (
        (
            await session.execute(
                select(db.Job).where(db.Job.owner_id == owner_id, db.Job.thread_id == thread_id)
            )
        )
        .scalars()
        .all()
    )
    busy = [j.id for j in jobs if j.status in ACTIVE]
    if busy:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"thread '{thread_id}' has job '{busy[0]}' queued or running: wait for it or cancel it",
        )
    results = {
        str(j.result["file_id"]) for j in jobs if isinstance(j.result, dict) and j.result.get("file_id")
    }
    inputs = {j.audio_id for j in jobs} | {v for j in jobs for v in (j.inputs or {}).values()}
    results -= inputs  # an upload the thread worked on stays the user's
    configs = select(db.MixingConfiguration.id).where(
        db.MixingConfiguration.owner_id == owner_id, db.MixingConfiguration.thread_id == thread_id
    )
    vectors = await _vector_ids(
        session,
        owner_id,
        or_(db.AudioFeatureVector.configuration_id.in_(configs), db.AudioFeatureVector.audio_id.in_(results)),
    )
    await _delete_derived(session, owner_id, configs, vectors)
    await session.execute(delete(db.Job).where(db.Job.owner_id == owner_id, db.Job.thread_id == thread_id))
    if results:
        await session.execute(
            delete(db.AudioFile).where(db.AudioFile.owner_id == owner_id, db.AudioFile.id.in_(results))
        )
    await session.execute(
        delete(db.Conversation).where(db.Conversation.owner_id == owner_id, db.Conversation.id == thread_id)
    )
    await session.commit()
    reached = await run_in_threadpool(state.service.thread_versions, thread_id)
    await run_in_threadpool(_delete_checkpoints, state.service, thread_id)
    await _forget(state, session, vectors=vectors, audio_ids=sorted(results | reached))


async def delete_account(state: AppState, session: AsyncSession, *, owner_id: str) -> None:
    busy = (
        await session.execute(
            select(db.Job.id).where(db.Job.owner_id == owner_id, db.Job.status.in_(ACTIVE)).limit(1)
        )
    ).scalar_one_or_none()
    if busy is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"job '{busy}' is still queued or running: wait for it or cancel it, then delete the account",
        )
    threads = list(
        (await session.execute(select(db.Conversation.id).where(db.Conversation.owner_id == owner_id)))
        .scalars()
        .all()
    )
    audio = list(
        (await session.execute(select(db.AudioFile.id).where(db.AudioFile.owner_id == owner_id)))
        .scalars()
        .all()
    )
    vectors = await _vector_ids(session, owner_id, db.AudioFeatureVector.owner_id == owner_id)
    # dependents first (feedback before configurations, callbacks before jobs, …), the user last
    for table in reversed(db.Base.metadata.sorted_tables):
        if "owner_id" in table.c:
            await session.execute(delete(table).where(table.c.owner_id == owner_id))
    await session.execute(delete(db.User).where(db.User.id == owner_id))
    await session.commit()
    state.users.pop(owner_id, None)
    for token, (user_id, _exp) in list(state.verified.items()):
        if user_id == owner_id:
            state.verified.pop(token, None)
    reached: set[str] = set()
    for thread_id in threads:
        reached |= await run_in_threadpool(state.service.thread_versions, thread_id)
        await run_in_threadpool(_delete_checkpoints, state.service, thread_id)
    await _forget(state, session, vectors=vectors, audio_ids=sorted(set(audio) | reached))
    log.info(
        "account %s deleted: %d threads, %d files, %d vectors",
        owner_id,
        len(threads),
        len(audio),
        len(vectors),
    )


async def _vector_ids(session: AsyncSession, owner_id: str, where: Any) -> list[str]:
    return list(
        (
            await session.execute(
                select(db.AudioFeatureVector.id).where(db.AudioFeatureVector.owner_id == owner_id, where)
            )
        )
        .scalars()
        .all()
    )


async def _delete_derived(session: AsyncSession, owner_id: str, configs: Any, vectors: list[str]) -> None:
    """Feature vectors, then configurations (their feedback goes with them: ON DELETE CASCADE)."""
    if vectors:
        await session.execute(delete(db.AudioFeatureVector).where(db.AudioFeatureVector.id.in_(vectors)))
    ids = list((await session.execute(configs)).scalars().all())
    if ids:
        await session.execute(delete(db.Feedback).where(db.Feedback.configuration_id.in_(ids)))
        await session.execute(
            delete(db.MixingConfiguration).where(
                db.MixingConfiguration.owner_id == owner_id, db.MixingConfiguration.id.in_(ids)
            )
        )


async def _forget(
    state: AppState, session: AsyncSession, *, vectors: list[str], audio_ids: list[str]
) -> None:
    """After the commit: the Chroma vectors; the renditions of audio no account has a row for any more; and
    that audio itself unless something else references it (retention's references: a thread, a reference
    track, a queued or running job's inputs, whoever owns them)."""
    unheld = []
    for audio_id in audio_ids:
        held = (
            await session.execute(
                select(func.count()).select_from(db.AudioFile).where(db.AudioFile.id == audio_id)
            )
        ).scalar_one()
        if not held:
            unheld.append(audio_id)
    kept: set[str] = set()
    if unheld:
        kept = await retention.held_by_rows(session, unheld)
        kept |= await run_in_threadpool(state.service.referenced_versions, unheld)
    orphans = [a for a in unheld if a not in kept]

    def work() -> None:
        memory = getattr(state.service, "memory", None)
        index = getattr(memory, "vectors", None)
        if vectors and index is not None:
            try:
                index.delete(vectors)
            except Exception as exc:  # the SQL rows are gone; a later repair cannot bring them back
                log.warning("could not delete %d vectors from the index (%s)", len(vectors), exc)
        for audio_id in unheld:  # served only through a file row: none is left
            remove_renditions(state, audio_id)
        for audio_id in orphans:
            state.service.store.remove(audio_id)

    await run_in_threadpool(work)


def _delete_checkpoints(service: Any, thread_id: str) -> None:
    saver = getattr(service, "checkpointer", None)
    if saver is not None and hasattr(saver, "delete_thread"):
        saver.delete_thread(thread_id)
