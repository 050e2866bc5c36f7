"""The hot point reads (the token's user, an API key, a job, a file): one statement each, no ORM session;
and the lists: keyset pages (`page`) and query-parameter checking (`known_query`).

SQLite: aiosqlite runs every statement on a thread of its own and hands each step back to the
event loop; one ORM lookup is several such hops, each a GIL handover that queues behind the
request loop (1–2 ms apiece under load: most of a job read's latency at 50 concurrent clients). A
primary-key lookup in SQLite takes tens of microseconds, less than one hop. So on a SQLite
database these reads run on the event loop's thread itself, on one read-only (``query_only``),
autocommit connection: every read sees the latest commit, WAL readers do not wait for writers,
and a busy timeout of 0 means a lock that does get in the way answers at once; that read then
takes the ordinary async path.

PostgreSQL: an ORM session read is four round trips to the server (the pool's pre-ping
``SELECT 1``, ``BEGIN``, the query, ``ROLLBACK``), each a socket write and a server wake-up that
on a loaded machine queues behind everything else; and the engine's pool (5 + 10 overflow)
queues 50 concurrent clients, opening and closing overflow connections as it goes. Measured: 2x
the CPU per read of SQLite and a p99 of several hundred ms at 50 clients while jobs run. Here the
reads go straight to asyncpg instead, on a small pool of their own, and the reads of one kind
that start in the same event-loop pass share one statement (`_Batcher`): under load the loop
takes in a wave of requests at a time, so 50 clients cost a few round trips per wave, not 50.
Each statement is autocommit and prepared (asyncpg caches it per connection), so every read sees
the latest commit; the pool's reset query on release is skipped, as nothing here changes session
state. A connection error sends the reads of that statement to the session path (whose pool pings
and reconnects); asyncpg drops the broken connection.

Other databases take the session path. Either way the same rows come back: transient ORM objects,
owner in the WHERE clause (another user's id finds nothing).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import HTTPException, Query, Request, status
from sqlalchemy import JSON, bindparam, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from memory import db

log = logging.getLogger("mixpilot.api.reads")

#: connections of the Postgres read pool (opened on demand, closed after 5 min idle): one batch
#: statement serves a whole wave of requests, so a few connections serve 50 concurrent clients
PG_POOL_SIZE = 4
PG_APPLICATION_NAME = "mixpilot-api-reads"


def _by(model: Any, *keys: str) -> Any:
    table = model.__table__
    return select(table).where(*(table.c[k] == bindparam(k) for k in keys))


_JOB = _by(db.Job, "id", "owner_id")
_FILE = _by(db.AudioFile, "id", "owner_id")
_USER = _by(db.User, "id")
_API_KEY = _by(db.ApiKey, "id")


class _PgQuery:
    """One kind of point read as a batch statement for asyncpg: the rows of `model` whose key
    columns equal any of the given key tuples (pairwise, owner included), in one round trip."""

    def __init__(self, model: Any, *keys: str) -> None:
        from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

        quote = pg_asyncpg.dialect().identifier_preparer.quote
        table = model.__table__
        cols = table.columns
        self.keys = keys
        self.sql = (
            f"SELECT {', '.join('t.' + quote(c.name) for c in cols)} FROM {quote(table.name)} AS t "
            f"JOIN unnest({', '.join(f'${i}::varchar[]' for i in range(1, len(keys) + 1))}) "
            f"AS k({', '.join(quote(k) for k in keys)}) "
            f"ON {' AND '.join(f't.{quote(k)} = k.{quote(k)}' for k in keys)}"
        )
        self.model = model
        self.names = {c.name: c.key for c in cols}
        self.json = frozenset(c.name for c in cols if isinstance(c.type, JSON))

    def row(self, rec: Any) -> Any:
        """An asyncpg record as a transient model (JSON columns decoded, as the ORM's asyncpg dialect does)."""
        values = {}
        for name, value in rec.items():
            if name in self.json and isinstance(value, str):
                value = json.loads(value)
            values[self.names[name]] = value
        return self.model(**values)


class _Fallback(Exception):
    """The batch statement failed (connection trouble): ask the session instead."""


class _Batcher:
    """Reads of one kind that arrive in the same event-loop pass share one statement.

    Under load the loop takes in a wave of requests at once (50 clients: up to 50 reads started
    before any answer is read); sent one by one they need as many connections (or queue for them)
    and as many server wake-ups. Here the first read of a pass schedules the flush (``call_soon``:
    after the other requests of that pass have started theirs) and each read waits for its own
    key's row. Keys are matched exactly, pairwise (id *and* owner), so a read only ever gets the
    row it asked for."""

    MAX_KEYS = 500  # per statement

    def __init__(self, reads: Reads, query: _PgQuery) -> None:
        self.reads, self.query = reads, query
        self.waiting: dict[tuple[str, ...], list[asyncio.Future]] = {}
        self.flushes: set[asyncio.Task] = set()

    async def read(self, key: tuple[str, ...]) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._flush)
        self.waiting.setdefault(key, []).append(fut)
        return await fut

    def _flush(self) -> None:
        batch, self.waiting = self.waiting, {}
        items = list(batch.items())
        for i in range(0, len(items), self.MAX_KEYS):
            task = asyncio.get_running_loop().create_task(self._run(dict(items[i : i + self.MAX_KEYS])))
            self.flushes.add(task)
            task.add_done_callback(self.flushes.discard)

    async def _run(self, batch: dict[tuple[str, ...], list[asyncio.Future]]) -> None:
        import asyncpg

        try:
            pool = await self.reads._pg_pool()
            recs = await pool.fetch(self.query.sql, *(list(col) for col in zip(*batch, strict=True)))
            self.reads.pg_statements += 1
        except Exception as exc:  # any failure: the session path answers (or fails) instead
            # connection trouble is expected now and then (a server restart, a connection the server
            # dropped: asyncpg may then report an InternalClientError before it notices the close)
            expected = isinstance(
                exc,
                (
                    OSError,
                    asyncio.TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    asyncpg.exceptions.InternalClientError,
                ),
            )
            log.log(
                logging.DEBUG if expected else logging.WARNING,
                "direct read fell back to the session (%s: %s)",
                type(exc).__name__,
                exc,
            )
            for futs in batch.values():
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(_Fallback(str(exc)))
            return
        except BaseException:  # cancelled (shutdown): so are the reads waiting for it
            for futs in batch.values():
                for fut in futs:
                    fut.cancel()
            raise
        found = {tuple(rec[k] for k in self.query.keys): rec for rec in recs}
        for key, futs in batch.items():
            rec = found.get(key)
            for fut in futs:
                if not fut.done():
                    fut.set_result(rec)


_PG = {
    "job": _PgQuery(db.Job, "id", "owner_id"),
    "file": _PgQuery(db.AudioFile, "id", "owner_id"),
    "user": _PgQuery(db.User, "id"),
    "api_key": _PgQuery(db.ApiKey, "id"),
}


def inline_url(url: str) -> str | None:
    """The synchronous driver's URL for a SQLite file database; None for anything else."""
    u = make_url(db.normalize_url(url))
    if (
        u.get_backend_name() != "sqlite"
        or not u.database
        or u.database == ":memory:"
        or "mode=memory" in str(u)
    ):
        return None
    return str(u.set(drivername="sqlite+pysqlite"))


def pg_connect_args(url: str) -> dict[str, Any] | None:
    """`asyncpg.connect` keyword arguments for a PostgreSQL (asyncpg) URL; None for anything else."""
    u = make_url(db.normalize_url(url))
    if u.get_backend_name() != "postgresql" or u.get_driver_name() != "asyncpg":
        return None
    _, kwargs = u.get_dialect()().create_connect_args(u)
    for sa_only in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn"):
        kwargs.pop(sa_only, None)  # SQLAlchemy's own options, not asyncpg's
    server_settings = dict(kwargs.get("server_settings") or {})
    server_settings.setdefault("application_name", PG_APPLICATION_NAME)  # pg_stat_activity tells them apart
    kwargs["server_settings"] = server_settings
    return dict(kwargs)


async def _keep_session_state(_conn: Any) -> None:
    """The pool's reset on release: nothing (the default is a round trip of RESET ALL, UNLISTEN, …,
    and these connections only ever run the three SELECTs above, outside any transaction)."""


class Reads:
    """`user`, `job`, `audio_file`: inline on SQLite, straight asyncpg on PostgreSQL (see the module
    docstring), else a session."""

    def __init__(self, url: str, sessions: Any, *, pg_pool_size: int = PG_POOL_SIZE) -> None:
        self.sessions = sessions
        self.url = inline_url(url)
        self.pg = pg_connect_args(url)
        self.pg_pool_size = pg_pool_size
        self._engine: Any = None
        self._conn: Any = None
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._batchers: dict[str, _Batcher] = {}
        self.inline_reads = 0  # how many took the inline SQLite path (tests, diagnostics)
        self.pg_reads = 0  # how many took the direct asyncpg path
        self.pg_statements = 0  # in how many statements (batches)

    # ------------------------------------------------------------------ SQLite

    def _connection(self) -> Any:
        if self._conn is None:
            if self.url is None:
                raise RuntimeError("inline reads need a SQLite URL")
            engine = create_engine(
                self.url,
                isolation_level="AUTOCOMMIT",
                connect_args={"timeout": 0, "check_same_thread": False},
            )

            @event.listens_for(engine, "connect")
            def _read_only(dbapi_conn, _record):  # pragma: no cover - trivial
                dbapi_conn.execute("PRAGMA query_only=ON")

            self._engine, self._conn = engine, engine.connect()
        return self._conn

    def _inline(self, stmt: Any, model: Any, params: dict[str, str]) -> Any:
        """The row as a transient `model`, None when there is none, or ``self`` to say "ask the session"."""
        if self.url is None:
            return self
        try:
            row = self._connection().execute(stmt, params).first()
        except DBAPIError as exc:  # locked (busy timeout 0) or unusable: the async path answers instead
            log.debug("inline read fell back to the session (%s)", exc)
            if "locked" not in str(exc) and "busy" not in str(exc):
                self.close()  # a broken connection: the next read opens a new one
            return self
        self.inline_reads += 1
        return None if row is None else model(**row._mapping)

    # ------------------------------------------------------------------ PostgreSQL

    async def _pg_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        **(self.pg or {}), min_size=0, max_size=self.pg_pool_size, reset=_keep_session_state
                    )
        return self._pool

    async def _direct(self, kind: str, params: dict[str, str]) -> Any:
        """Like `_inline`, on PostgreSQL: the row as a transient model, None, or ``self`` ("ask the session")."""
        if self.pg is None:
            return self
        batcher = self._batchers.get(kind)
        if batcher is None:
            batcher = self._batchers[kind] = _Batcher(self, _PG[kind])
        try:
            rec = await batcher.read(tuple(params[k] for k in batcher.query.keys))
        except _Fallback:
            return self  # a broken connection is terminated by the pool; the next read opens another
        self.pg_reads += 1
        return None if rec is None else batcher.query.row(rec)

    # ------------------------------------------------------------------ the reads

    async def _read(self, kind: str, stmt: Any, model: Any, params: dict[str, str], by_session: Any) -> Any:
        """Inline (SQLite), else direct (asyncpg), else `by_session(session)` through an ORM session."""
        got = self._inline(stmt, model, params)
        if got is self:
            got = await self._direct(kind, params)
        if got is not self:
            return got
        async with self.sessions() as session:
            return await by_session(session)

    async def user(self, user_id: str) -> db.User | None:
        return await self._read(
            "user", _USER, db.User, {"id": user_id}, lambda s: db.get_user(s, user_id=user_id)
        )

    async def job(self, *, owner_id: str, job_id: str) -> db.Job | None:
        return await self._read(
            "job",
            _JOB,
            db.Job,
            {"id": job_id, "owner_id": owner_id},
            lambda s: db.get_job(s, owner_id=owner_id, job_id=job_id),
        )

    async def audio_file(self, *, owner_id: str, file_id: str) -> db.AudioFile | None:
        return await self._read(
            "file",
            _FILE,
            db.AudioFile,
            {"id": file_id, "owner_id": owner_id},
            lambda s: db.get_audio_file(s, owner_id=owner_id, audio_id=file_id),
        )

    async def api_key(self, key_id: str) -> db.ApiKey | None:
        """An API key's row by its lookup id (read on every request made with the key: a revocation counts
        from the next request)."""
        return await self._read(
            "api_key", _API_KEY, db.ApiKey, {"id": key_id}, lambda s: s.get(db.ApiKey, key_id)
        )

    def close(self) -> None:
        """Close the SQLite connection (the Postgres pool needs `aclose`)."""
        conn, engine, self._conn, self._engine = self._conn, self._engine, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection
                pass
        if engine is not None:
            engine.dispose()

    async def aclose(self) -> None:
        """Close everything: the SQLite connection and the Postgres pool."""
        self.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except Exception:  # a server gone away, or a read still running: cut them
                pool.terminate()


# ---------------------------------------------------------------------------------- lists

#: the most items one page of a list holds (`limit`), and the default
MAX_PAGE = 200
DEFAULT_PAGE = 50


class Page:
    """One page of a list: the rows, the cursor of the next page (None on the last) and the total."""

    def __init__(self, items: list[Any], next_cursor: str | None, total: int) -> None:
        self.items, self.next_cursor, self.total = items, next_cursor, total


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fingerprint(filters: dict[str, Any]) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def encode_cursor(created_at: datetime, row_id: str, filters: dict[str, Any]) -> str:
    """Opaque to clients: the last row's (created_at, id) and which filters it was made under."""
    raw = json.dumps({"t": _utc(created_at).isoformat(), "i": row_id, "f": _fingerprint(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters: dict[str, Any]) -> tuple[datetime, str]:
    """(created_at, id) after which the next page starts; 400 for a cursor this list did not give out, or
    one given out for other filters."""
    bad = HTTPException(
        status.HTTP_400_BAD_REQUEST,
        detail="cursor: not a cursor this list gave out: pass `next_cursor` of the previous page as it is, "
        "or leave it out for the first page",
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, row_id, fp = datetime.fromisoformat(raw["t"]), str(raw["i"]), str(raw["f"])
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if len(row_id) > 64:
        raise bad
    if fp != _fingerprint(filters):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail="cursor: given out for other filters: send the same filters as for the first page, or "
            "leave the cursor out to start again",
        )
    return _utc(at), row_id


async def page(
    session: Any,
    model: Any,
    *,
    where: list[Any],
    limit: int,
    cursor: str | None,
    filters: dict[str, Any],
) -> Page:
    """The rows of `model` matching `where`, newest first (created_at, then id: a total order, so a row
    added or removed meanwhile never shifts another page), `limit` of them after `cursor`, and the total."""
    from sqlalchemy import and_, func, or_

    stmt = select(model).where(*where)
    if cursor:
        at, row_id = decode_cursor(cursor, filters)
        stmt = stmt.where(
            or_(model.created_at < at, and_(model.created_at == at, model.id < row_id)),
        )
    stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars().all())
    total = int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return Page(
        rows, encode_cursor(last.created_at, last.id, filters) if more and last is not None else None, total
    )


async def known_query(request: Request) -> None:
    """A route dependency for lists: a query parameter the route does not take is refused (400) rather than
    ignored, so `?format=flac` on a list without that filter never silently answers with everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed: set[str] = set()
    todo = [dependant]
    while todo:  # the route's own query parameters and its dependencies'
        d = todo.pop()
        allowed.update(p.alias for p in d.query_params)
        todo.extend(d.dependencies)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names = ", ".join(repr(u[:40]) for u in unknown[:5])
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"unknown query parameter{'s' if len(unknown) > 1 else ''} {names}: "
            f"{request.url.path} takes {', '.join(sorted(allowed)) or 'none'}",
        )


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"items per page (1–{MAX_PAGE})")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page (opaque); leave out for the first page",
    ),
]
