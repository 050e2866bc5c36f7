from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.api import enhancement as svc
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import JOB_LOCATION, CompleteIn, EnhancementOut, Message, MixingIn, VoiceIn

router = APIRouter(prefix="/enhancement", tags=["enhancement"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": EnhancementOut,
        "headers": JOB_LOCATION,
        "description": "still running after the wait: follow the job at `Location`",
    },
    404: {"model": Message, "description": "a file does not exist (or is not yours)"},
}


async def _run(kind: str, body, user, state, session, request: Request, response: Response) -> EnhancementOut:
    out, finished = await svc.enhance(state, session, owner_id=user.id, kind=kind, body=body)
    if not finished:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = str(request.app.url_path_for("get_job", job_id=out.job_id))
    return out


@router.post("/voice", operation_id="enhance_voice", response_model=EnhancementOut, responses=RESPONSES)
async def voice(
    body: VoiceIn,
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> EnhancementOut:
    """Clean up speech or a vocal (noise, room, clipping, sibilance, clarity, level); DNSMOS, PESQ/STOI with a reference."""
    return await _run("voice", body, user, state, session, request, response)


@router.post("/mixing", operation_id="enhance_mixing", response_model=EnhancementOut, responses=RESPONSES)
async def mixing(
    body: MixingIn,
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> EnhancementOut:
    """Mix a vocal onto a beat (and master it)."""
    return await _run("mixing", body, user, state, session, request, response)


@router.post("/complete", operation_id="enhance_complete", response_model=EnhancementOut, responses=RESPONSES)
async def complete(
    body: CompleteIn,
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> EnhancementOut:
    """The full pipeline: clean, (mix,) and master for a platform."""
    return await _run("complete", body, user, state, session, request, response)
