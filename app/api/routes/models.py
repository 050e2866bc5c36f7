"""`GET /api/v1/models`: the neural models this server can use and whether they are installed.

Read-only: pulling weights is an operator's action on the server (`mixpilot models pull NAME`).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SettingsDep
from app.api.schemas import ModelOut

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", operation_id="list_models", response_model=list[ModelOut])
async def list_models(user: CurrentUser, settings: SettingsDep) -> list[ModelOut]:
    """Each model: the tool it serves, what it enables, size, licence, source, installed or not, and the
    operator command that installs it. Without a model its tool runs a fallback or is unavailable."""

    def states() -> list[ModelOut]:
        return [
            ModelOut(
                name=s.name,
                tool=s.card.tool,
                installed=s.installed,
                enables=s.card.enables,
                gain=s.card.gain,
                size_mb=s.card.size_mb,
                licence=s.card.licence,
                source=s.card.source,
                default=s.card.default,
                install=f"mixpilot models pull {s.name}",
            )
            for s in settings.weight_sources().list_models()
            if s.card is not None
        ]

    return await run_in_threadpool(states)
