"""SQL schema (SQLAlchemy 2, async) and keyword-only data functions.

Postgres through asyncpg when ``MIXPILOT_DATABASE_URL`` says so
(``postgresql+asyncpg://user@host:5432/db``); SQLite through aiosqlite in the data dir by
default (`default_database_url`). The schema is created by the Alembic migrations in
``migrations/`` (`memory.migrate`), never by ``create_all`` in production code.

Ownership: every row that belongs to a person carries ``owner_id`` and every data function
that reads or changes such rows takes ``owner_id`` and filters by it, so one user never sees
another's rows. Functions that search across owners on purpose (the recommender's
"everyone's ratings" pass) say so in their name (``*_any_owner``) and return only
non-identifying facts.

Ids are 32-character hex strings (uuid4 hex); an audio file's id is its `AudioStore`
content hash, so ``audio_files`` is keyed by (owner, hash): two people who upload the same
recording each own their own row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: the owner used by single-user surfaces (CLI, local UI) when nobody is logged in
LOCAL_USER_ID = "local"
LOCAL_USER_EMAIL = "local@mixpilot.invalid"

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
CONFIG_TYPES = ("manual", "genre_preset", "reference_match", "learned")
#: aspect ratings stored in their own columns (1–5); other aspects go to ``feedback.aspects``
ASPECTS = ("vocal_clarity", "balance", "width", "tone", "loudness")


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (its result is a `CursorResult`; `AsyncSession.execute` is typed as `Result`)."""
    return cast("CursorResult[Any]", result).rowcount


def default_database_url(data_dir: str | Path) -> str:
    """SQLite file in the data dir (the one-command default)."""
    path = Path(data_dir).expanduser().resolve() / "mixpilot.sqlite"
    return f"sqlite+aiosqlite:///{path}"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite://`` URLs and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`; SQLite gets foreign keys on and a busy timeout."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------------------------- models


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def _ts(**kw: Any) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, **kw)


def _owner() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = _ts()


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the LangGraph thread id
    owner_id: Mapped[str] = _owner()
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts(onupdate=utcnow)


class AudioFile(Base):
    __tablename__ = "audio_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # AudioStore content hash
    owner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    format: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float, nullable=False)
    sample_rate: Mapped[int] = mapped_column(Integer, nullable=False)
    channels: Mapped[int] = mapped_column(Integer, nullable=False)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    #: bytes the version takes in the audio store (compressed); None for rows from before it was recorded
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: the last download of this file by its owner: a downloaded result is kept by retention (`memory.retention`)
    downloaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _ts()


class RetentionMark(Base):
    """A stored version `mixpilot gc` found unreferenced, and since when (`memory.retention`): it is removed
    once unreferenced for ``retention_days``; the mark goes as soon as something references it again."""

    __tablename__ = "retention_marks"

    audio_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    unreferenced_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued','running','succeeded','failed','cancelled')", name="ck_jobs_status"
        ),
        Index("ix_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    thread_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)  # the latest progress line
    request: Mapped[str] = mapped_column(Text, nullable=False, default="")
    audio_id: Mapped[str | None] = mapped_column(String(32))  # input version
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # further named inputs by audio id
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    turn_id: Mapped[str | None] = mapped_column(String(64))  # the mixing configuration feedback refers to
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts(onupdate=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MixingConfiguration(Base):
    """The configuration actually applied in one turn (a "turn id" is this row's id)."""

    __tablename__ = "mixing_configurations"
    __table_args__ = (
        CheckConstraint(
            "type IN ('manual','genre_preset','reference_match','learned')", name="ck_mixcfg_type"
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    thread_id: Mapped[str | None] = mapped_column(String(64), index=True)
    audio_id: Mapped[str | None] = mapped_column(String(32), index=True)  # input
    result_id: Mapped[str | None] = mapped_column(String(32), index=True)  # output
    name: Mapped[str | None] = mapped_column(String(200))
    genre: Mapped[str | None] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    request: Mapped[str | None] = mapped_column(Text)
    eq: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    compression: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stereo_width: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reverb: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    delay: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sidechain: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False, default=dict
    )  # {tool: {param: value}}
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage_count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    rating_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rating_sum: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    score: Mapped[float | None] = mapped_column(Float)  # mean rating 1–5, None until rated
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts(onupdate=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    configuration_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("mixing_configurations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    job_id: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer, nullable=False)
    vocal_clarity: Mapped[int | None] = mapped_column(Integer)
    balance: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    tone: Mapped[int | None] = mapped_column(Integer)
    loudness: Mapped[int | None] = mapped_column(Integer)
    aspects: Mapped[dict[str, Any] | None] = mapped_column(
        JSON
    )  # every aspect given, incl. non-standard ones
    comment: Mapped[str | None] = mapped_column(Text)
    liked: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = _ts()


class RefreshToken(Base):
    """One issued refresh token (by its JWT ``jti``): single use (rotation), revocable (logout, reuse)."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = _owner()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _ts()


class IdempotencyKey(Base):
    """A creating POST sent with an ``Idempotency-Key``: the request's fingerprint and, once it is done, the
    response to replay (``status_code`` None while the first request is still running)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("owner_id", "scope", "key", name="uq_idempotency_keys_owner_scope_key"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    scope: Mapped[str] = mapped_column(String(64), nullable=False)  # "POST /chat"
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)  # SHA-256 of the request
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = _ts()


class JobCallback(Base):
    """A job's ``callback_url`` and its delivery: signed POST once the job ends, retried with backoff."""

    __tablename__ = "job_callbacks"
    __table_args__ = (
        CheckConstraint("state IN ('pending','delivered','failed')", name="ck_job_callbacks_state"),
        Index("ix_job_callbacks_state_next", "state", "next_at"),
    )

    job_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[str] = _owner()
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_at: Mapped[datetime] = _ts()  # not before: the job's end, then the backoff
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _ts()


class ReferenceTrack(Base):
    __tablename__ = "reference_tracks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    audio_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    genre: Mapped[str | None] = mapped_column(String(32))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    spectrum: Mapped[list[Any] | None] = mapped_column(JSON)  # long-term band levels, dB
    created_at: Mapped[datetime] = _ts()


class AudioFeatureVector(Base):
    """One embedding of one input; ``id`` is the vector's id in Chroma.

    The vector itself is kept here too, so Chroma can be rebuilt from SQL (`indexed` is False
    until the Chroma insert succeeded; `MemoryAgent.repair` finishes the job after a crash).
    """

    __tablename__ = "audio_feature_vectors"
    __table_args__ = (Index("ix_afv_unindexed", "indexed"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    audio_id: Mapped[str | None] = mapped_column(String(32), index=True)
    configuration_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("mixing_configurations.id", ondelete="CASCADE"), index=True
    )
    feature_type: Mapped[str] = mapped_column(String(32), nullable=False, default="audio")
    feature_version: Mapped[int] = mapped_column(Integer, nullable=False)
    dimension: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(16))  # speech | music
    vector: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    indexed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _ts()


class ApiKey(Base):
    """An API key for server-to-server use (`app.api.keys`): only its keyed hash is kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # the lookup id, in the key
    owner_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # HMAC-SHA256, hex
    scopes: Mapped[list[Any]] = mapped_column(JSON, nullable=False)  # ["read", "write"]
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _ts()


class WebhookEndpoint(Base):
    """A webhook registered by its owner (`app.api.webhooks`): every job of the account that ends with one
    of `events` is POSTed to `url`, signed with the endpoint's own secret (derived from `secret_salt`)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = _owner()
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    events: Mapped[list[Any]] = mapped_column(JSON, nullable=False)  # ["job.succeeded", "job.failed", ...]
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    secret_salt: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _ts()


class WebhookDelivery(Base):
    """One event of one job for one endpoint: a signed POST, retried with backoff (its attempts:
    `WebhookAttempt`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "job_id", "event", name="uq_webhook_deliveries_event"),
        CheckConstraint("state IN ('pending','delivered','failed')", name="ck_webhook_deliveries_state"),
        Index("ix_webhook_deliveries_state_next", "state", "next_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False, index=True
    )
    owner_id: Mapped[str] = _owner()
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_at: Mapped[datetime] = _ts()
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _ts()


class WebhookAttempt(Base):
    """One POST of a `WebhookDelivery`: what the receiver answered (the delivery log)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = _ts()
    duration_ms: Mapped[float] = mapped_column(Float, nullable=False)


# ---------------------------------------------------------------------------------- users


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, user_id: str | None = None
) -> User:
    user = User(id=user_id or new_id(), email=email.strip().lower(), password_hash=password_hash)
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, *, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def add_refresh_token(session: AsyncSession, *, owner_id: str, jti: str, expires_at: datetime) -> None:
    """Record an issued refresh token; drops this owner's expired ones on the way."""
    from sqlalchemy import delete

    await session.execute(
        delete(RefreshToken).where(RefreshToken.owner_id == owner_id, RefreshToken.expires_at < utcnow())
    )
    session.add(RefreshToken(jti=jti, owner_id=owner_id, expires_at=expires_at))
    await session.flush()


async def use_refresh_token(session: AsyncSession, *, owner_id: str, jti: str) -> str:
    """Spend a refresh token: "ok" (first use); "reused" (spent before: every refresh token of the
    owner is revoked, the usual answer to a stolen token); "revoked" (logged out or expired); "unknown"."""
    now = utcnow()
    spent = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.jti == jti,
            RefreshToken.owner_id == owner_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
    )
    if _rowcount(spent) == 1:
        return "ok"
    row = await session.get(RefreshToken, jti)
    if row is None or row.owner_id != owner_id:
        return "unknown"
    if row.used_at is None:  # revoked (logout, an earlier reuse) or expired: refused, nothing more
        return "revoked"
    await revoke_refresh_tokens(session, owner_id=owner_id)
    return "reused"


async def revoke_refresh_tokens(session: AsyncSession, *, owner_id: str, jti: str | None = None) -> int:
    """Revoke one refresh token (logout) or all of the owner's (`jti` None); returns how many."""
    stmt = update(RefreshToken).where(RefreshToken.owner_id == owner_id, RefreshToken.revoked_at.is_(None))
    if jti is not None:
        stmt = stmt.where(RefreshToken.jti == jti)
    return _rowcount(await session.execute(stmt.values(revoked_at=utcnow())))


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    return (
        await session.execute(select(User).where(User.email == email.strip().lower()))
    ).scalar_one_or_none()


async def ensure_user(session: AsyncSession, *, user_id: str, email: str | None = None) -> User:
    """The user with `user_id`, created (no password: cannot log in) when missing."""
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, email=(email or f"{user_id}@mixpilot.invalid").lower(), password_hash="")
        session.add(user)
        await session.flush()
    return user


# ---------------------------------------------------------------------------------- conversations and files


async def ensure_conversation(
    session: AsyncSession, *, owner_id: str, thread_id: str, title: str | None = None
) -> Conversation:
    conv = await get_conversation(session, owner_id=owner_id, thread_id=thread_id)
    if conv is None:
        if await session.get(Conversation, thread_id) is not None:
            raise PermissionError(f"conversation '{thread_id}' belongs to someone else")
        conv = Conversation(id=thread_id, owner_id=owner_id, title=title)
        session.add(conv)
        await session.flush()
    return conv


async def get_conversation(session: AsyncSession, *, owner_id: str, thread_id: str) -> Conversation | None:
    stmt = select(Conversation).where(Conversation.id == thread_id, Conversation.owner_id == owner_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_conversations(
    session: AsyncSession, *, owner_id: str, limit: int = 100
) -> Sequence[Conversation]:
    stmt = (
        select(Conversation)
        .where(Conversation.owner_id == owner_id)
        .order_by(Conversation.updated_at.desc())
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def add_audio_file(
    session: AsyncSession,
    *,
    owner_id: str,
    audio_id: str,
    duration_s: float,
    sample_rate: int,
    channels: int,
    format: str | None = None,
    original_filename: str | None = None,
    size_bytes: int | None = None,
    stored_bytes: int | None = None,
) -> AudioFile:
    """Record that `owner_id` has the audio `audio_id` (idempotent)."""
    row = await get_audio_file(session, owner_id=owner_id, audio_id=audio_id)
    if row is None:
        row = AudioFile(
            id=audio_id,
            owner_id=owner_id,
            duration_s=float(duration_s),
            sample_rate=int(sample_rate),
            channels=int(channels),
            format=format,
            original_filename=original_filename,
            size_bytes=size_bytes,
            stored_bytes=stored_bytes,
        )
        session.add(row)
        await session.flush()
    return row


async def get_audio_file(session: AsyncSession, *, owner_id: str, audio_id: str) -> AudioFile | None:
    return await session.get(AudioFile, (audio_id, owner_id))


async def list_audio_files(
    session: AsyncSession, *, owner_id: str, limit: int = 100, offset: int = 0
) -> Sequence[AudioFile]:
    stmt = (
        select(AudioFile)
        .where(AudioFile.owner_id == owner_id)
        .order_by(AudioFile.created_at.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(stmt)).scalars().all()


async def stored_samples(session: AsyncSession, *, owner_id: str) -> int:
    """Decoded samples (frames × channels) of all of the user's stored files: their audio budget in use."""
    stmt = select(
        func.coalesce(func.sum(AudioFile.duration_s * AudioFile.sample_rate * AudioFile.channels), 0.0)
    )
    return int(float((await session.execute(stmt.where(AudioFile.owner_id == owner_id))).scalar_one()))


async def stored_bytes(session: AsyncSession, *, owner_id: str) -> int:
    """Bytes the user's files take in the audio store (their quota in use, `Settings.user_quota_bytes`); a row
    from before sizes were recorded counts its decoded float32 size (what an uncompressed version takes)."""
    decoded = AudioFile.duration_s * AudioFile.sample_rate * AudioFile.channels * 4
    stmt = select(func.coalesce(func.sum(func.coalesce(AudioFile.stored_bytes, decoded)), 0))
    return int(float((await session.execute(stmt.where(AudioFile.owner_id == owner_id))).scalar_one()))


async def mark_downloaded(session: AsyncSession, *, owner_id: str, audio_id: str) -> None:
    """Note that the owner downloaded the file (retention keeps a downloaded result)."""
    await session.execute(
        update(AudioFile)
        .where(AudioFile.owner_id == owner_id, AudioFile.id == audio_id)
        .values(downloaded_at=utcnow())
    )


# ---------------------------------------------------------------------------------- jobs


async def create_job(
    session: AsyncSession,
    *,
    owner_id: str,
    request: str,
    audio_id: str | None = None,
    thread_id: str | None = None,
    inputs: dict[str, Any] | None = None,
    job_id: str | None = None,
) -> Job:
    job = Job(
        id=job_id or new_id(),
        owner_id=owner_id,
        request=request,
        audio_id=audio_id,
        thread_id=thread_id,
        inputs=inputs or {},
        status="queued",
        progress=0.0,
        attempts=0,
    )
    session.add(job)
    await session.flush()
    return job


async def count_active_jobs(session: AsyncSession, *, owner_id: str) -> int:
    """The user's jobs queued or running."""
    stmt = (
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == owner_id, Job.status.in_(("queued", "running")))
    )
    return int((await session.execute(stmt)).scalar_one())


async def get_job(session: AsyncSession, *, owner_id: str, job_id: str) -> Job | None:
    stmt = select(Job).where(Job.id == job_id, Job.owner_id == owner_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_jobs(
    session: AsyncSession, *, owner_id: str, status: str | None = None, limit: int = 100, offset: int = 0
) -> Sequence[Job]:
    stmt = select(Job).where(Job.owner_id == owner_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    stmt = stmt.order_by(Job.created_at.desc()).limit(limit).offset(offset)
    return (await session.execute(stmt)).scalars().all()


async def update_job(session: AsyncSession, *, owner_id: str, job_id: str, **values: Any) -> bool:
    """Set columns of one job (status, progress, plan, result, error, attempts, heartbeat_at, …)."""
    if "status" in values and values["status"] not in JOB_STATUSES:
        raise ValueError(f"job status must be one of {', '.join(JOB_STATUSES)}, not {values['status']!r}")
    values.setdefault("updated_at", utcnow())
    stmt = update(Job).where(Job.id == job_id, Job.owner_id == owner_id).values(**values)
    res = await session.execute(stmt)
    return (_rowcount(res) or 0) > 0


# ---------------------------------------------------------------------------------- configurations and feedback


async def add_configuration(
    session: AsyncSession,
    *,
    owner_id: str,
    params: dict[str, dict[str, Any]],
    thread_id: str | None = None,
    audio_id: str | None = None,
    result_id: str | None = None,
    genre: str | None = None,
    type: str = "manual",
    request: str | None = None,
    plan: dict[str, Any] | None = None,
    name: str | None = None,
    config_id: str | None = None,
) -> MixingConfiguration:
    if type not in CONFIG_TYPES:
        raise ValueError(f"configuration type must be one of {', '.join(CONFIG_TYPES)}, not {type!r}")
    row = MixingConfiguration(
        id=config_id or new_id(),
        owner_id=owner_id,
        thread_id=thread_id,
        audio_id=audio_id,
        result_id=result_id,
        genre=genre,
        type=type,
        request=request,
        plan=plan,
        name=name,
        params=params,
        eq=params.get("eq"),
        compression=params.get("compress"),
        stereo_width=params.get("stereo_width"),
        reverb=params.get("reverb"),
        delay=params.get("delay"),
        sidechain=params.get("sidechain"),
        usage_count=1,
        rating_count=0,
        rating_sum=0.0,
        score=None,
    )
    session.add(row)
    await session.flush()
    return row


async def get_configuration(
    session: AsyncSession, *, owner_id: str, config_id: str
) -> MixingConfiguration | None:
    stmt = select(MixingConfiguration).where(
        MixingConfiguration.id == config_id, MixingConfiguration.owner_id == owner_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def recent_configurations(session: AsyncSession, *, owner_id: str, limit: int = 50) -> Sequence[Any]:
    """This owner's latest configurations (rows of id, audio_id, result_id), newest first."""
    stmt = (
        select(MixingConfiguration.id, MixingConfiguration.audio_id, MixingConfiguration.result_id)
        .where(MixingConfiguration.owner_id == owner_id)
        .order_by(MixingConfiguration.created_at.desc())
        .limit(limit)
    )
    return (await session.execute(stmt)).all()


async def find_configuration(session: AsyncSession, *, owner_id: str, ref: str) -> MixingConfiguration | None:
    """The configuration `ref` names for this owner: its id, a job id, a result or input audio id (latest)."""
    row = await get_configuration(session, owner_id=owner_id, config_id=ref)
    if row is not None:
        return row
    job = await get_job(session, owner_id=owner_id, job_id=ref)
    if job is not None and job.turn_id:
        return await get_configuration(session, owner_id=owner_id, config_id=job.turn_id)
    for col in (MixingConfiguration.result_id, MixingConfiguration.audio_id):
        stmt = (
            select(MixingConfiguration)
            .where(MixingConfiguration.owner_id == owner_id, col == ref)
            .order_by(MixingConfiguration.created_at.desc())
            .limit(1)
        )
        row = (await session.execute(stmt)).scalar_one_or_none()
        if row is not None:
            return row
    return None


async def configurations_by_ids_any_owner(
    session: AsyncSession, *, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Recommender input across owners: id → {owner_id, params, genre, score, rating_count, aspects} (no personal data)."""
    if not ids:
        return {}
    stmt = select(
        MixingConfiguration.id,
        MixingConfiguration.owner_id,
        MixingConfiguration.params,
        MixingConfiguration.genre,
        MixingConfiguration.score,
        MixingConfiguration.rating_count,
    ).where(MixingConfiguration.id.in_(list(ids)))
    out = {
        r.id: {
            "owner_id": r.owner_id,
            "params": r.params or {},
            "genre": r.genre,
            "score": r.score,
            "rating_count": r.rating_count,
            "aspects": {},
        }
        for r in (await session.execute(stmt)).all()
    }
    if out:  # mean aspect ratings per configuration (None where an aspect was never rated)
        cols = [getattr(Feedback, a) for a in ASPECTS]
        agg = (
            select(Feedback.configuration_id, *(func.avg(c) for c in cols))
            .where(Feedback.configuration_id.in_(list(out)))
            .group_by(Feedback.configuration_id)
        )
        for row in (await session.execute(agg)).all():
            out[row[0]]["aspects"] = {
                a: float(v) for a, v in zip(ASPECTS, row[1:], strict=True) if v is not None
            }
    return out


async def feedback_comments(
    session: AsyncSession, *, owner_id: str, config_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The owner's own feedback comments on these configurations: id → comments, oldest first."""
    if not config_ids:
        return {}
    stmt = (
        select(Feedback.configuration_id, Feedback.comment)
        .where(
            Feedback.owner_id == owner_id,
            Feedback.configuration_id.in_(list(config_ids)),
            Feedback.comment.is_not(None),
        )
        .order_by(Feedback.created_at)
    )
    out: dict[str, list[str]] = {}
    for cid, comment in (await session.execute(stmt)).all():
        if comment and comment.strip():
            out.setdefault(cid, []).append(comment)
    return out


async def add_feedback(
    session: AsyncSession,
    *,
    owner_id: str,
    config_id: str,
    rating: int,
    aspects: dict[str, int] | None = None,
    comment: str | None = None,
    liked: bool | None = None,
    job_id: str | None = None,
) -> Feedback:
    """Store a rating (1–5) and fold it into the configuration's score (mean rating)."""
    rating = int(rating)
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1–5, got {rating}")
    aspects = {str(k): int(v) for k, v in (aspects or {}).items()}
    for k, v in aspects.items():
        if not 1 <= v <= 5:
            raise ValueError(f"aspect '{k}' must be rated 1–5, got {v}")
    cfg = await get_configuration(session, owner_id=owner_id, config_id=config_id)
    if cfg is None:
        raise KeyError(f"no mixing configuration '{config_id}' for this user")
    fb = Feedback(
        owner_id=owner_id,
        configuration_id=config_id,
        job_id=job_id,
        rating=rating,
        comment=comment,
        liked=liked,
        aspects=aspects or None,
        **{k: aspects.get(k) for k in ASPECTS},
    )
    session.add(fb)
    await session.execute(
        update(MixingConfiguration)
        .where(MixingConfiguration.id == config_id, MixingConfiguration.owner_id == owner_id)
        .values(
            rating_count=MixingConfiguration.rating_count + 1,
            rating_sum=MixingConfiguration.rating_sum + rating,
            score=(MixingConfiguration.rating_sum + rating) / (MixingConfiguration.rating_count + 1),
            updated_at=utcnow(),
        )
    )
    await session.flush()
    return fb


async def list_feedback(
    session: AsyncSession, *, owner_id: str, config_id: str | None = None, limit: int = 100
) -> Sequence[Feedback]:
    stmt = select(Feedback).where(Feedback.owner_id == owner_id)
    if config_id is not None:
        stmt = stmt.where(Feedback.configuration_id == config_id)
    return (await session.execute(stmt.order_by(Feedback.created_at.desc()).limit(limit))).scalars().all()


# ---------------------------------------------------------------------------------- references and vectors


async def add_reference_track(
    session: AsyncSession,
    *,
    owner_id: str,
    audio_id: str | None,
    name: str | None,
    analysis: dict[str, Any] | None,
    spectrum: list[float] | None,
    genre: str | None = None,
) -> ReferenceTrack:
    row = ReferenceTrack(
        owner_id=owner_id, audio_id=audio_id, name=name, analysis=analysis, spectrum=spectrum, genre=genre
    )
    session.add(row)
    await session.flush()
    return row


async def list_reference_tracks(session: AsyncSession, *, owner_id: str) -> Sequence[ReferenceTrack]:
    stmt = (
        select(ReferenceTrack).where(ReferenceTrack.owner_id == owner_id).order_by(ReferenceTrack.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def add_feature_vector(
    session: AsyncSession,
    *,
    owner_id: str,
    vector: Sequence[float],
    feature_version: int,
    audio_id: str | None = None,
    configuration_id: str | None = None,
    content_type: str | None = None,
    feature_type: str = "audio",
    vector_id: str | None = None,
) -> AudioFeatureVector:
    row = AudioFeatureVector(
        id=vector_id or new_id(),
        owner_id=owner_id,
        audio_id=audio_id,
        configuration_id=configuration_id,
        feature_type=feature_type,
        feature_version=int(feature_version),
        dimension=len(vector),
        content_type=content_type,
        vector=[float(v) for v in vector],
        indexed=False,
    )
    session.add(row)
    await session.flush()
    return row


async def mark_indexed(session: AsyncSession, *, vector_ids: Sequence[str]) -> None:
    if vector_ids:
        await session.execute(
            update(AudioFeatureVector).where(AudioFeatureVector.id.in_(list(vector_ids))).values(indexed=True)
        )


async def unindexed_vectors_any_owner(
    session: AsyncSession, *, limit: int = 1000
) -> Sequence[AudioFeatureVector]:
    """Vectors committed to SQL but not (yet) in Chroma — the repair pass's work list."""
    stmt = select(AudioFeatureVector).where(AudioFeatureVector.indexed.is_(False)).limit(limit)
    return (await session.execute(stmt)).scalars().all()
