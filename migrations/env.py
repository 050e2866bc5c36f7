"""Alembic environment for mixpilot (async engines: asyncpg for Postgres, aiosqlite for SQLite).

The database URL comes from, in order: the ``url`` attribute set by `memory.migrate` (what
``mixpilot migrate`` uses), ``MIXPILOT_DATABASE_URL``, ``sqlalchemy.url`` in alembic.ini when it
is not the placeholder, and finally the SQLite file in the data dir (``MIXPILOT_DATA_DIR``).
A caller may also pass an open sync connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from memory.db import Base, default_database_url, make_engine, normalize_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("url") or os.environ.get("MIXPILOT_DATABASE_URL")
    if not url:
        ini = config.get_main_option("sqlalchemy.url") or ""
        url = ini if ini and "driver://" not in ini else ""
    if not url:
        from app.settings import Settings

        data_dir = Settings().data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        url = default_database_url(data_dir)
    return normalize_url(url)


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
