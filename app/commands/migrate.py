"""`mixpilot migrate [--revision REV | --downgrade REV] [--status]`: bring the database schema up to date."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the database tables (Alembic migrations)")
    p.add_argument("--revision", default="head", help="upgrade to this revision (default: head)")
    p.add_argument("--downgrade", metavar="REV", help="downgrade to REV instead ('base' removes every table)")
    p.add_argument("--status", action="store_true", help="only print the current and the latest revision")
    p.set_defaults(func=run)


def database_url(settings) -> str:
    from memory.db import default_database_url

    if settings.database_url:
        return settings.database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return default_database_url(settings.data_dir)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from memory import migrate

    url = database_url(Settings())
    before, head = migrate.current_revision(url), migrate.head_revision()
    if args.status:
        print(f"database: {_safe(url)}\ncurrent revision: {before or '(empty)'}\nlatest revision: {head}")
        return 0 if before == head else 1
    if args.downgrade:
        migrate.downgrade(url, args.downgrade)
    else:
        migrate.upgrade(url, args.revision)
    after = migrate.current_revision(url)
    if before == after:
        print(f"database {_safe(url)} is already at revision {after or '(empty)'}")
    else:
        print(f"database {_safe(url)}: {before or '(empty)'} → {after or '(empty)'}")
    return 0
