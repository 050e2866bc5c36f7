from __future__ import annotations

from fastapi import APIRouter

from app.api import webhooks as svc
from app.api.deps import CurrentUser, StateDep
from app.api.schemas import WebhookSecretOut

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("/secret", operation_id="get_webhook_secret", response_model=WebhookSecretOut)
async def webhook_secret(user: CurrentUser, state: StateDep) -> WebhookSecretOut:
    """Your signing secret for job callbacks (`callback_url` on POST /chat): verify each delivery's
    `webhook-signature` = `v1,` + base64 HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the
    base64-decoded part after `whsec_`, and refuse timestamps older than a few minutes."""
    return WebhookSecretOut(secret=svc.secret_for(state.tokens.secret, user.id))
