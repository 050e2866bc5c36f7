"""Run and check the Alembic migrations in ``migrations/`` from code (``mixpilot migrate``).

`upgrade` / `downgrade` change the schema; `current_revision` and `head_revision` say where a
database and the code stand; `check_schema_current` is what a surface calls at start-up: it
raises `SchemaOutOfDate` (whose message says to run ``mixpilot migrate``) on a database that
is behind (or ahead of) this code. Every function takes the database URL; the sync ones are
safe to call from inside a running event loop (`memory.bridge` then runs them on a worker thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.bridge import call_off_loop, run_sync
from memory.db import make_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


class SchemaOutOfDate(ValueError):
    """The database schema is not the one this code expects (a ValueError: surfaces print it as one line)."""


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = normalize_url(url)
    cfg.attributes["configure_logger"] = False
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    cfg = alembic_config("sqlite://")
    return ScriptDirectory.from_config(cfg).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    call_off_loop(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    call_off_loop(lambda: command.downgrade(alembic_config(url), revision))


async def current_revision_async(engine: AsyncEngine) -> str | None:
    def _read(sync_conn: Any) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


def current_revision(url: str) -> str | None:
    async def _go() -> str | None:
        engine = make_engine(url, poolclass=pool.NullPool)
        try:
            return await current_revision_async(engine)
        finally:
            await engine.dispose()

    return run_sync(_go())


def _verdict(current: str | None, head: str | None) -> None:
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate("the database has no mixpilot tables yet: run `mixpilot migrate` first")
    raise SchemaOutOfDate(
        f"the database schema is at revision {current} but this mixpilot needs {head}: run `mixpilot migrate`"
        " (back up the database first)"
    )


async def check_schema_current_async(engine: AsyncEngine) -> None:
    """Raise `SchemaOutOfDate` unless the database is at the head revision (for async start-up code)."""
    _verdict(await current_revision_async(engine), head_revision())


def check_schema_current(url: str) -> None:
    """Raise `SchemaOutOfDate` unless the database at `url` is at the head revision."""
    _verdict(current_revision(url), head_revision())


async def table_names(engine: AsyncEngine) -> set[str]:
    from sqlalchemy import inspect

    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
