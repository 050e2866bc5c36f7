"""The enhancement endpoints: option sets → a request in words → one job on the same agent.

`voice`, `mixing` and `complete` build the sentence a person would type, run it as a chat
job (same runner, same graph), wait for it (up to ``enhancement_wait_s``) and add the service's quality
metrics (`Mixpilot.quality`): DNSMOS for speech (non-intrusive), PESQ/STOI/SI-SDR when a clean
reference is given.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.conversations import start_turn, wait_for
from app.api.files import owned_file
from app.api.schemas import CompleteIn, EnhancementOut, MixingIn, VoiceIn
from app.api.state import AppState
from tools.analysis import is_speech

log = logging.getLogger("mixpilot.api.enhancement")


def voice_request(body: VoiceIn) -> str:
    o = body.options
    wants = [
        w
        for flag, w in (
            (o.denoise, "remove the background noise"),
            (o.dereverb, "remove the room echo"),
            (o.declip, "repair the clipping"),
            (o.de_ess, "tame the sibilance"),
            (o.clarity, "make the voice clearer"),
        )
        if flag
    ]
    text = "clean up this voice recording: " + (", ".join(wants) if wants else "gently")
    if o.target_lufs is not None:
        text += f", and level it to {o.target_lufs:g} LUFS"
    return text


def mixing_request(body: MixingIn) -> str:
    o = body.options
    text = "mix the vocal with the beat"
    if o.genre:
        text += f" in a {o.genre} style"
    text += {"lower": ", vocal a bit lower", "louder": ", vocal louder", "balanced": ""}[o.vocal_level]
    if o.reverb:
        text += ", add some reverb on the vocal"
    if o.target_lufs is not None:
        text += f", and master it to {o.target_lufs:g} LUFS"
    return text


def complete_request(body: CompleteIn) -> str:
    o = body.options
    parts = ["clean" if o.clean else "", "mix" if body.vocal_file_id else "", "master"]
    text = " and ".join(p for p in parts if p) + " this"
    if o.genre:
        text += f" in a {o.genre} style"
    if o.platform:
        text += f" for {o.platform}"
    if o.request:
        text += f"; {o.request.strip()}"
    return text


def quality(
    state: AppState, *, file_id: str, reference_id: str | None, source_id: str, speech: bool
) -> tuple[dict[str, Any], list[str]]:
    """The service's quality metrics of the result (DNSMOS for speech; against a reference: intrusive
    metrics, relative to the input), and warnings for metrics that could not run."""
    try:
        scores = state.service.quality(
            file_id, reference_id, degraded_id=source_id if reference_id else None, speech=speech
        )
    except Exception as exc:
        log.warning("metrics failed: %s", exc)
        return {}, [f"quality metrics unavailable: {exc}"]
    missing = [k for k, v in scores.items() if v is None]
    warnings = [f"metrics not available on this server: {', '.join(missing)}"] if missing else []
    return {k: float(v) for k, v in scores.items() if v is not None and math.isfinite(v)}, warnings


async def enhance(
    state: AppState, session: AsyncSession, *, owner_id: str, kind: str, body: VoiceIn | MixingIn | CompleteIn
) -> tuple[EnhancementOut, bool]:
    """(response, finished): finished is False when the job is still running after the wait."""
    if isinstance(body, VoiceIn):
        request, main, extra, reference = voice_request(body), body.file_id, {}, body.reference_file_id
    elif isinstance(body, MixingIn):
        request, main, extra, reference = (
            mixing_request(body),
            body.beat_file_id,
            {"voice": body.vocal_file_id},
            None,
        )
    else:
        request, main, reference = complete_request(body), body.file_id, body.reference_file_id
        extra = {"voice": body.vocal_file_id} if body.vocal_file_id else {}
    if reference:
        await owned_file(session, owner_id=owner_id, file_id=reference)
    accepted = await start_turn(
        state,
        session,
        owner_id=owner_id,
        message=request,
        file_ids=[main],
        thread_id=None,
        inputs_extra=extra,
    )
    job = await wait_for(
        state, owner_id=owner_id, job_id=accepted.job_id, timeout_s=state.settings.enhancement_wait_s
    )
    out = EnhancementOut(job_id=job.id, status=job.status, request=request, error=job.error)
    if job.status != "succeeded":
        return out, job.status in ("failed", "cancelled")
    result = job.result or {}
    out.file_id = result.get("file_id")
    out.applied = result.get("applied") or []
    out.warnings = list(result.get("warnings") or [])
    out.explanation = result.get("explanation") or ""
    after = (result.get("metrics") or {}).get("after") or {}
    out.metrics = {k: v for k, v in after.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if out.file_id:
        speech = kind == "voice" or is_speech((result.get("metrics") or {}).get("before") or {})
        scores, warns = await run_in_threadpool(
            quality, state, file_id=out.file_id, reference_id=reference, source_id=main, speech=speech
        )
        out.metrics.update(scores)
        out.warnings += warns
    if not out.applied:
        out.warnings.append(
            "nothing was applied: the recording already met the request, or every step was "
            "rolled back by the quality gate"
        )
    return out, True
