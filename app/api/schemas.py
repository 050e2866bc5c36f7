"""Request and response models (the OpenAPI schema app developers code against)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

#: a timestamp that always carries its zone (SQLite hands back naive UTC datetimes)
UTCDateTime = Annotated[datetime, AfterValidator(lambda d: d.replace(tzinfo=UTC) if d.tzinfo is None else d)]
#: a route's documented responses (`APIRouter.get(..., responses=...)`)
Responses = dict[int | str, dict[str, Any]]
#: the header of every 202: where the job is (`GET` it, or follow its `/events`)
JOB_LOCATION = {"Location": {"description": "the job: /api/v1/jobs/{job_id}", "schema": {"type": "string"}}}
ID_PATTERN = r"^[0-9a-f]{32}$"
#: a callback or webhook URL: http(s), a host, no spaces (https only in production: `app.api.webhooks.check_url`)
URL_PATTERN = r"^https?://[^/\s]+\S*$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$"


class JobStatus(StrEnum):
    """The one job-status enum of the schema (a job, a chat turn, an enhancement, the job list filter)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FileId = Field(
    pattern=ID_PATTERN,
    description="a file id (32 hex characters)",
    examples=["3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"],
)


#: control characters (C0 but tab, newline, return; DEL; C1) and lone surrogates: no text field takes them
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: the same plus tab, newline and return: for one-line fields (emails, passwords, names, tokens)
_CONTROL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _refuse(pattern: re.Pattern[str], value: str) -> str:
    m = pattern.search(value)
    if m is not None:
        raise ValueError(f"control character U+{ord(m.group()):04X} at position {m.start()} is not allowed")
    return value


def check_text(value: str) -> str:
    """`value` unless it holds a control character (tab, newline and return are text) or a lone surrogate."""
    return _refuse(_CONTROL, value)


def check_line(value: str) -> str:
    """`value` unless it holds any control character (tab and newline included) or a lone surrogate."""
    return _refuse(_CONTROL_LINE, value)


#: free text in a request (messages, comments): every text field of every request model is `Text` or `Line`
Text = Annotated[str, AfterValidator(check_text)]
#: one line of text in a request (emails, passwords, ids, tokens, names)
Line = Annotated[str, AfterValidator(check_line)]


class RequestIn(BaseModel):
    """Base of every request body: unknown fields refused, NaN/inf refused, text fields `Text` or `Line`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Message(BaseModel):
    detail: str = Field(examples=["file '3f1c…' not found"])


class ValidationMessage(BaseModel):
    """Every 422: a one-line `detail`, plus the field errors when the request did not match its schema."""

    detail: str = Field(examples=["body.rating: Input should be less than or equal to 5"])
    errors: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------ auth


class RegisterIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ana@example.com", "password": "correct horse battery staple"}]
        },
    )
    email: Line = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: Line = Field(min_length=8, max_length=128, description="8–128 characters")


class UserOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "9b2f0c3d4e5f60718293a4b5c6d7e8f9",
                    "email": "ana@example.com",
                    "created_at": "2025-01-01T12:00:00Z",
                }
            ]
        },
    )
    id: str
    email: str
    created_at: UTCDateTime


class TokenOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOi…",
                    "refresh_token": "eyJhbGciOi…",
                    "token_type": "bearer",
                    "expires_in": 1800,
                }
            ]
        }
    )
    access_token: str
    refresh_token: str | None = Field(
        None, description="single use (rotation); none for the client-credentials grant (ask again instead)"
    )
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime, seconds")
    scope: str | None = Field(
        None, description="client-credentials grant: the key's scopes the token carries"
    )


#: every token response: tokens are never stored by caches (RFC 6749 5.1)
NO_STORE = {
    "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
    "Pragma": {"description": "no-cache", "schema": {"type": "string"}},
}


#: what an API key may do: read (GET, HEAD), write (every other method)
Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")


class ApiKeyIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "render farm", "scopes": ["read"], "expires_in_days": 90}]},
    )
    name: Line = Field("", max_length=100, description="what it is for (shown in the list)")
    scopes: list[Scope] = Field(
        default_factory=lambda: list(SCOPES),
        min_length=1,
        max_length=2,
        description="read: GET/HEAD; write: everything else (POST, DELETE, …)",
    )
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="none: until revoked")


class ApiKeyOut(BaseModel):
    id: str = Field(description="the lookup id (also inside the key)")
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    scopes: list[Scope]
    created_at: UTCDateTime
    expires_at: UTCDateTime | None = None
    last_used_at: UTCDateTime | None = Field(None, description="to the minute")
    revoked_at: UTCDateTime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(
        description="the key (`mp_live_…`): shown this once, stored only as a hash. Send it as "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>`"
    )


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


class RefreshIn(RequestIn):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Line = Field(min_length=1, max_length=4096)


# ------------------------------------------------------------------ files


class Finding(BaseModel):
    """One diagnosis finding (ARCHITECTURE.md: the fixed problem vocabulary)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "problem": "true_peak",
                    "severity": 0.6,
                    "evidence": "true peak +1.0 dBTP, over the −1 dBTP ceiling",
                }
            ]
        },
    )
    problem: str = Field(
        description="noise, hum, clipping, bandlimited, reverb, sibilance, muddy, boomy, harsh, "
        "dull, thin, over_compressed, mono_compatibility, true_peak or loudness"
    )
    severity: float = Field(description="0–1")
    evidence: str = Field("", description="plain words quoting the measured number and unit")


class Diagnosis(BaseModel):
    """`mixpilot diagnose --json`: the findings and the measurements behind them (keys carry units)."""

    model_config = ConfigDict(extra="allow")
    findings: list[Finding] = Field(default_factory=list)
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "integrated_lufs, true_peak_dbtp, lra_lu, plr_db, noise_floor_dbfs, bandwidth_hz, stereo_correlation, ..."
        ),
    )


class FileOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f",
                    "filename": "song.flac",
                    "format": "flac",
                    "duration_s": 8.0,
                    "sample_rate": 44100,
                    "channels": 2,
                    "size_bytes": 812345,
                    "created_at": "2025-01-01T12:00:00Z",
                    "deduplicated": False,
                }
            ]
        }
    )
    id: str
    filename: str | None = None
    format: str | None = None
    duration_s: float
    sample_rate: int
    channels: int
    size_bytes: int | None = None
    created_at: UTCDateTime
    deduplicated: bool = Field(False, description="true when you had uploaded the same audio before")
    analysis: dict[str, Any] | None = Field(None, description="loudness, peaks, spectrum, content (GET only)")
    diagnosis: Diagnosis | None = Field(
        None, description="what is wrong (or not), with the measurements (GET with diagnosis=true)"
    )


class FileList(BaseModel):
    items: list[FileOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


# ------------------------------------------------------------------ chat and jobs


class ChatIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "master this for Spotify", "file_ids": ["3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"]},
                {"message": "is it ready for Spotify?", "file_ids": ["3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"]},
                {"message": "do it", "file_ids": [], "thread_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"},
                {"message": "a bit louder", "file_ids": [], "thread_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"},
            ]
        },
    )
    message: Text = Field(
        min_length=1,
        max_length=4000,
        description=(
            "what you want, or a question about the audio, in words; a question is answered without changing "
            "anything (result kind `answer`) and may suggest steps, which a confirming message on the same "
            'thread ("do it", "yes", "go ahead") runs'
        ),
    )
    file_ids: list[Line] = Field(
        default_factory=list,
        max_length=2,
        description=(
            "first: the recording to work on (a song, or a beat); second, optional: a vocal to mix onto it. "
            "Leave empty to continue on the thread's current version."
        ),
    )
    thread_id: Line | None = Field(None, pattern=ID_PATTERN, description="continue this conversation")
    callback_url: Line | None = Field(
        None,
        max_length=2048,
        pattern=URL_PATTERN,
        examples=["https://example.com/hooks/mixpilot"],
        description="POSTed the job (`job.succeeded`, `job.failed`, `job.cancelled`) once it ends, signed "
        "as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`; the secret: "
        "GET /api/v1/webhooks/secret); retried with backoff until it answers 2xx",
    )

    @model_validator(mode="after")
    def _ids(self) -> ChatIn:
        import re

        for fid in self.file_ids:
            if not re.fullmatch(ID_PATTERN, fid):
                raise ValueError(f"file id '{fid[:40]}' is not a file id (32 hex characters)")
        return self


class ChatAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
                    "thread_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f",
                    "status": "queued",
                }
            ]
        }
    )
    job_id: str
    thread_id: str
    status: JobStatus = JobStatus.queued


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="whsec_…: verify `webhook-signature` with it (Standard Webhooks)")


#: what a webhook can be sent for: a job of the account ended
WebhookEvent = Literal["job.succeeded", "job.failed", "job.cancelled"]


class WebhookIn(RequestIn):
    url: Line = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        examples=["https://example.com/hooks/mixpilot"],
        description="POSTed each event, signed as Standard Webhooks; https:// in production",
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(get_args(WebhookEvent)),
        min_length=1,
        max_length=3,
        description="the events to send (default all)",
    )
    description: Line = Field("", max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[WebhookEvent]
    description: str
    created_at: UTCDateTime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="whsec_…: this endpoint's signing secret, shown only now: verify `webhook-signature` with it"
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


class WebhookAttemptOut(BaseModel):
    attempt: int = Field(description="1 for the first POST, then one per retry")
    status_code: int | None = Field(description="what the receiver answered; null when it did not answer")
    error: str | None = Field(description="why the attempt did not count as delivered (null: a 2xx)")
    started_at: UTCDateTime
    duration_ms: float


class WebhookDeliveryOut(BaseModel):
    id: str = Field(description="the message: `webhook-id` is `msg_` + this id, the same on every retry")
    event: WebhookEvent
    job_id: str
    state: Literal["pending", "delivered", "failed"]
    next_attempt_at: UTCDateTime | None = Field(description="when the next retry is due (pending only)")
    delivered_at: UTCDateTime | None
    created_at: UTCDateTime
    attempts: list[WebhookAttemptOut] = Field(description="every POST so far, oldest first")


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


class PlatformCheck(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "platform": "spotify",
                    "ready": False,
                    "reasons": ["true peak +1.0 dBTP is over the −1 dBTP ceiling"],
                }
            ]
        },
    )
    platform: str | None = Field(
        None,
        description="spotify, apple_music, youtube, podcast, audiobook (ACX), "
        "broadcast, …; None: the general streaming target",
    )
    ready: bool
    reasons: list[str] = Field(
        default_factory=list, description="why not (or what was checked), with numbers"
    )


class JobResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    file_id: str | None = Field(None, description="the new version (download it)")
    kind: str | None = Field(
        None,
        description=(
            "process (steps ran), adjust, undo, reset, answer (a question about the audio: nothing ran), "
            "clarify (mixpilot asks back) or none (nothing to do; `answer` says why)"
        ),
    )
    turn_id: str | None = Field(None, description="what feedback rates")
    explanation: str = ""
    answer: str | None = Field(
        None, description="the reply of an answer, clarify or none turn, with measured numbers"
    )
    findings: list[Finding] = Field(default_factory=list, description="what the diagnosis found")
    suggested_steps: list[dict[str, Any]] = Field(
        default_factory=list,
        description=('the plan a confirming next turn on the thread ("yes", "do it", "go ahead") runs'),
    )
    checks: PlatformCheck | None = Field(
        None, description="a platform check, when the message asked about one"
    )
    metrics: dict[str, Any] = Field(default_factory=dict, description="{before, after} analysis")
    applied: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    plan: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class JobOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
                    "status": "succeeded",
                    "progress": 1.0,
                    "message": "done",
                    "thread_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f",
                    "request": "master this for Spotify",
                    "plan": {"steps": [{"tool": "master", "params": {"target_lufs": -14.0}}]},
                    "result": {
                        "file_id": "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
                        "explanation": "Mastered to −14 LUFS …",
                        "metrics": {"after": {"integrated_lufs": -14.0}},
                    },
                    "error": None,
                    "attempts": 1,
                    "retryable": False,
                    "created_at": "2025-01-01T12:00:00Z",
                    "updated_at": "2025-01-01T12:00:09Z",
                }
            ]
        }
    )
    id: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    message: str | None = None
    thread_id: str | None = None
    request: str = ""
    plan: dict[str, Any] | None = None
    result: JobResult | None = None
    error: str | None = None
    attempts: int = 0
    retryable: bool = Field(False, description="failed or cancelled: POST …/retry runs it again")
    created_at: UTCDateTime
    updated_at: UTCDateTime


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


class ThreadOut(BaseModel):
    id: str
    title: str | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    turns: list[dict[str, Any]] = Field(
        description="request, kind, plan, outcomes, result file id, explanation"
    )


class ThreadSummary(BaseModel):
    id: str
    title: str | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class ThreadList(BaseModel):
    items: list[ThreadSummary]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    total: int = Field(description="items over all pages")


# ------------------------------------------------------------------ feedback and recommendations


class FeedbackIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "job_id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
                    "rating": 5,
                    "aspects": {"loudness": 4},
                    "comment": "great",
                    "liked": True,
                }
            ]
        },
    )
    job_id: Line | None = Field(None, pattern=ID_PATTERN)
    file_id: Line | None = Field(None, pattern=ID_PATTERN, description="a result file id")
    turn_id: Line | None = Field(None, pattern=ID_PATTERN)
    rating: int = Field(ge=1, le=5)
    aspects: dict[Line, int] = Field(
        default_factory=dict,
        max_length=16,
        description=("1–5 per aspect: vocal_clarity, balance, width, tone, loudness (others are kept too)"),
    )
    comment: Text | None = Field(None, max_length=2000)
    liked: bool | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> FeedbackIn:
        refs = [r for r in (self.turn_id, self.job_id, self.file_id) if r]
        if len(refs) != 1:
            raise ValueError("give exactly one of job_id, file_id or turn_id")
        for k, v in self.aspects.items():
            if not (1 <= v <= 5) or not (0 < len(k) <= 40):
                raise ValueError(f"aspect '{k[:40]}' must be rated 1–5")
        return self

    @property
    def ref(self) -> str:
        return self.turn_id or self.job_id or self.file_id or ""


class FeedbackOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "turn_id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
                    "understood": ["lower brightness"],
                }
            ]
        }
    )
    ok: bool = True
    turn_id: str | None = None
    understood: list[str] = Field(
        default_factory=list,
        description=(
            "what the comment was read as asking of the settings played (e.g. 'lower brightness'); it steers "
            "the settings recommended for similar audio"
        ),
    )


class RecommendationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "params": {"master": {"target_lufs": -14.0}, "eq": {"bright_db": 1.5}},
                    "genre": "pop",
                    "source": "memory",
                    "evidence": "3 similar recordings you rated 4–5 used width 1.2",
                    "confidence": 0.6,
                }
            ]
        }
    )
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    genre: str | None = None
    source: str | None = None
    evidence: str | None = None
    confidence: float | None = None


class RecommendationsOut(BaseModel):
    file_id: str
    recommendation: RecommendationOut | None


# ------------------------------------------------------------------ enhancement


class VoiceOptions(RequestIn):
    model_config = ConfigDict(extra="forbid")
    denoise: bool = True
    dereverb: bool = False
    declip: bool = False
    de_ess: bool = False
    clarity: bool = True
    target_lufs: float | None = Field(
        -16.0, ge=-30, le=-6, description="loudness target, None to skip levelling"
    )


class VoiceIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "file_id": "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f",
                    "options": {"denoise": True, "dereverb": True},
                }
            ]
        },
    )
    file_id: Line = FileId
    reference_file_id: Line | None = Field(
        None, pattern=ID_PATTERN, description="a clean version of the same speech: adds PESQ/STOI"
    )
    options: VoiceOptions = Field(default_factory=VoiceOptions)


class MixingOptions(RequestIn):
    model_config = ConfigDict(extra="forbid")
    genre: Line | None = Field(None, max_length=32, examples=["pop"])
    vocal_level: Literal["lower", "balanced", "louder"] = "balanced"
    reverb: bool = False
    target_lufs: float | None = Field(-14.0, ge=-30, le=-6)


class MixingIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "beat_file_id": "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f",
                    "vocal_file_id": "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
                    "options": {"genre": "hip hop"},
                }
            ]
        },
    )
    beat_file_id: Line = FileId
    vocal_file_id: Line = FileId
    options: MixingOptions = Field(default_factory=MixingOptions)


class CompleteOptions(RequestIn):
    model_config = ConfigDict(extra="forbid")
    clean: bool = True
    genre: Line | None = Field(None, max_length=32, examples=["pop"])
    platform: Literal["spotify", "apple music", "youtube", "podcast", "broadcast"] | None = "spotify"
    request: Text | None = Field(None, max_length=1000, description="anything else, in words")


class CompleteIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "file_id": "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f",
                    "options": {"genre": "pop", "platform": "spotify"},
                }
            ]
        },
    )
    file_id: Line = FileId
    vocal_file_id: Line | None = Field(None, pattern=ID_PATTERN)
    reference_file_id: Line | None = Field(None, pattern=ID_PATTERN)
    options: CompleteOptions = Field(default_factory=CompleteOptions)


class EnhancementOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
                    "status": "succeeded",
                    "file_id": "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
                    "request": "clean up this voice recording …",
                    "applied": [{"tool": "denoise", "params": {"strength": 0.7}, "status": "applied"}],
                    "metrics": {"dnsmos_ovrl": 3.4, "integrated_lufs": -16.0},
                    "warnings": [],
                    "explanation": "…",
                }
            ]
        }
    )
    job_id: str
    status: JobStatus
    file_id: str | None = None
    request: str
    applied: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "loudness and peaks after; DNSMOS (sig/bak/ovrl/p808) for speech; PESQ/STOI/SI-SDR with a reference"
        ),
    )
    warnings: list[str] = Field(default_factory=list)
    explanation: str = ""
    error: str | None = None


# ------------------------------------------------------------------ health


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    models: dict[str, bool] = Field(
        default_factory=dict, description="neural model → installed on this server (`mixpilot models list`)"
    )


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, dict[str, Any]]


# ------------------------------------------------------------------ models


class ModelOut(BaseModel):
    """A neural model (`mixpilot models list`): installed on this server or not."""

    name: str
    tool: str = Field(description="the canonical tool it serves")
    installed: bool
    enables: str
    gain: str = Field(description="what it brings over the tool's fallback")
    size_mb: float
    licence: str
    source: str
    default: bool = Field(description="pulled by `mixpilot models pull all`")
    install: str = Field(description="the operator command that installs it on the server")


# ------------------------------------------------------------------ preview


class PreviewIn(RequestIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "master this for Spotify", "file_id": "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"}
            ]
        },
    )
    message: Text = Field(
        min_length=1, max_length=4000, description="what you want, in words (as for POST /chat)"
    )
    file_id: Line = FileId
    seconds: float | None = Field(
        None, ge=3.0, le=60.0, description="length of the excerpt (the loudest part); default 15 s"
    )


class PreviewOut(BaseModel):
    """The plan rendered on the loudest excerpt, its loudness aimed with the whole file's: to listen to in a
    moment, before the full render. Play ``file_id`` with ``match_gain_db`` applied (and the source excerpt as
    it is) to compare at equal loudness."""

    file_id: str = Field(description="the rendered excerpt (download with GET /files/{file_id}/download)")
    source_excerpt_id: str = Field(description="the same excerpt of the input, unprocessed")
    start_s: float = Field(description="where the excerpt starts in the file")
    seconds: float
    plan: dict[str, Any] = Field(description="the plan made for the whole file")
    match_gain_db: float = Field(
        description="gain that plays the preview at the source excerpt's integrated loudness (fair listening)"
    )


class StreamTokenOut(BaseModel):
    """A job's event-stream token (`?token=` on its events URL), for browsers' EventSource."""

    token: str
    token_type: Literal["stream"] = "stream"
    expires_in: int = Field(description="seconds it stays valid")
    url: str = Field(description="the job's events URL with the token: give it to `new EventSource(url)`")
