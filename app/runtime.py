"""Build the service from settings (once per process) — the one place clients are created."""

from __future__ import annotations

from agents.service import Mixpilot
from app.settings import Settings
from memory.storage import AudioStore, LocalAudioStore


def build_llm(settings: Settings):
    """A LangChain chat model when MIXPILOT_LLM_MODEL is set, else None (offline semantic planner).
    Built by `agents.llm_planner.build_chat_model`, the one place that knows the LLM settings."""
    if not settings.llm_model:
        return None
    from agents.llm_planner import build_chat_model

    return build_chat_model(settings)


def use_weights(settings: Settings) -> None:
    """Install the settings' model-weight sources (models dir, mirror, named folders, upstream caches)
    as the ones the tools resolve weights through; every surface calls it before a tool runs."""
    from models.weights import use_sources

    use_sources(settings.weight_sources())


def open_service(settings: Settings | None = None, *, with_memory: bool = True) -> Mixpilot:
    """The service; `with_memory=False` skips the SQL/Chroma memory (read-only uses like planning)."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    use_weights(settings)
    llm = None
    try:
        llm = build_llm(settings)
    except Exception as exc:  # a broken LLM config falls back to the offline planner
        import sys

        print(f"mixpilot: LLM planner not available ({exc}); using the offline planner", file=sys.stderr)
    store = open_store(settings)  # one store (and its decoded-audio cache) for the service and memory
    cache, memory = build_memory(settings, store=store) if with_memory else (None, None)
    return Mixpilot(
        data_dir=settings.data_dir,
        llm=llm,
        max_duration_s=settings.max_duration_s,
        memory=memory,
        cache=cache,
        threads_url=settings.database_url,
        store=store,
    )


def open_store(settings: Settings) -> AudioStore:
    """The audio store the settings name: S3-compatible object storage for ``MIXPILOT_STORAGE_URL=s3://...``
    (a bounded disk cache of it in the data dir; `StorageError` when the bucket cannot be used), else the
    data dir itself (versions in ``audio/``, blobs such as download renditions beside it)."""
    if settings.storage_url:
        from memory.objectstore import open_s3_store

        return open_s3_store(
            settings.storage_url,
            endpoint_url=settings.storage_endpoint_url,
            region=settings.storage_region,
            access_key_id=settings.storage_access_key_id,
            secret_access_key=(
                settings.storage_secret_access_key.get_secret_value()
                if settings.storage_secret_access_key
                else None
            ),
            allow_http=settings.storage_allow_http,
            cache_dir=settings.data_dir / "cache" / "storage",
            cache_bytes=int(settings.storage_cache_mb * 1024 * 1024),
        )
    return LocalAudioStore(
        settings.audio_dir, blob_root=settings.data_dir, write_behind=settings.storage_write_behind
    )


def build_memory(settings: Settings, *, store=None):
    """(cache, MemoryAgent) from settings: Redis or in-process cache; SQL + Chroma memory.

    The cache always exists. Memory needs the `memory` extra; a database that is behind stops
    start-up (SchemaOutOfDate: "run `mixpilot migrate`"); any other memory failure runs the
    service without memory (no recommendations, no feedback), with a warning.
    """
    import sys

    from memory.cache import make_cache

    cache = make_cache(settings.redis_url)
    try:
        from agents.memory_agent import open_memory
    except ImportError as exc:
        print(f"mixpilot: memory off ({exc}); install mixpilot[memory]", file=sys.stderr)
        return cache, None
    from memory.migrate import SchemaOutOfDate

    try:
        memory = open_memory(
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            chroma_url=settings.chroma_url,
            cache=cache,
            store=store if store is not None else open_store(settings),
        )
    except SchemaOutOfDate:
        raise
    except Exception as exc:  # e.g. database unreachable
        print(f"mixpilot: memory off ({exc})", file=sys.stderr)
        return cache, None
    return cache, memory


def database_url(settings: Settings) -> str:
    """The SQL database: ``MIXPILOT_DATABASE_URL``, else a SQLite file in the data dir."""
    from memory.db import default_database_url

    if settings.database_url:
        return settings.database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return default_database_url(settings.data_dir)


async def open_database(settings: Settings):
    """(engine, sessionmaker) for the API, its job processes and arq workers; an empty database is
    migrated, one that is behind is refused."""
    import asyncio

    from memory import migrate
    from memory.db import make_engine, make_sessionmaker

    url = database_url(settings)
    loop = asyncio.get_running_loop()
    if await loop.run_in_executor(None, migrate.current_revision, url) is None:
        await loop.run_in_executor(None, migrate.upgrade, url)
    engine = make_engine(url)
    try:
        await migrate.check_schema_current_async(engine)
    except Exception:
        await engine.dispose()
        raise
    return engine, make_sessionmaker(engine)
