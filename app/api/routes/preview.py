"""Preview: the plan rendered on the loudest excerpt first, to listen to in a moment.

``POST /preview`` answers with the rendered excerpt (a file to download) and the gain that plays it at
the unprocessed excerpt's loudness. ``POST /chat?preview=true`` with ``file_ids`` (a recording's first
turn; a follow-up's plan depends on its thread, which a preview does not touch) starts the full turn and
publishes the same object as a ``preview`` event on the job's event stream (``GET /jobs/{id}/events``)
as soon as it is rendered, normally long before the result: a client plays it, then waits for the
result or cancels the job (``POST /jobs/{id}/cancel``) and changes course.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.files import owned_file
from app.api.schemas import Message, PreviewIn, PreviewOut
from app.api.state import AppState
from memory import db

log = logging.getLogger("mixpilot.api.preview")
router = APIRouter(prefix="/preview", tags=["preview"])


async def render_preview(
    state: AppState, *, owner_id: str, message: str, file_id: str, seconds: float | None = None
) -> PreviewOut:
    """Render `message`'s plan on the loudest excerpt of `file_id` (`Mixpilot.preview`, in a worker
    thread) and record the excerpt and its rendering as the owner's files (downloadable)."""
    kwargs: dict[str, Any] = {"audio_id": file_id, "user_id": owner_id}
    if seconds is not None:
        kwargs["seconds"] = seconds
    out = await run_in_threadpool(state.service.preview, message, **kwargs)
    service = state.service
    async with state.sessions() as s, s.begin():
        for vid in (out["preview_id"], out["source_excerpt_id"]):
            audio = await run_in_threadpool(service.audio, vid)
            await db.add_audio_file(
                s,
                owner_id=owner_id,
                audio_id=vid,
                duration_s=audio.duration_s,
                sample_rate=audio.sample_rate,
                channels=audio.channels,
                format="wav",
                stored_bytes=service.store.nbytes(vid),
            )
    return PreviewOut(
        file_id=out["preview_id"],
        source_excerpt_id=out["source_excerpt_id"],
        start_s=out["start_s"],
        seconds=out["seconds"],
        plan=out["plan"],
        match_gain_db=out["match_gain_db"],
    )


def publish_preview(state: AppState, *, job_id: str, owner_id: str, message: str, file_id: str) -> None:
    """Render the preview beside the job and publish it as the job's ``preview`` event (best effort: a
    preview that fails is logged and published as ``preview_failed``; the job goes on either way)."""

    async def work() -> None:
        try:
            out = await render_preview(state, owner_id=owner_id, message=message, file_id=file_id)
        except Exception as exc:
            log.warning("preview for job %s failed: %s", job_id, exc)
            state.bus.publish(job_id, {"event": "preview_failed", "error": str(exc)[:500]})
            return
        state.bus.publish(job_id, {"event": "preview", **out.model_dump(mode="json")})

    task = asyncio.get_running_loop().create_task(work(), name=f"preview-{job_id[:8]}")
    _pending.add(task)
    task.add_done_callback(_pending.discard)


#: previews in flight (a reference keeps each task alive until it is done)
_pending: set[asyncio.Task[None]] = set()


@router.post(
    "",
    operation_id="create_preview",
    response_model=PreviewOut,
    responses={404: {"model": Message, "description": "the file does not exist (or is not yours)"}},
)
async def preview(body: PreviewIn, user: CurrentUser, state: StateDep, session: SessionDep) -> PreviewOut:
    """The plan for `message` rendered on the loudest `seconds` of the file (its loudness aimed with the
    whole file's): listen to it in a moment, then start the full turn (`POST /chat`) or change course.
    Play `file_id` with `match_gain_db` applied beside `source_excerpt_id` to compare at equal loudness."""
    await owned_file(session, owner_id=user.id, file_id=body.file_id)
    return await render_preview(
        state, owner_id=user.id, message=body.message, file_id=body.file_id, seconds=body.seconds
    )
