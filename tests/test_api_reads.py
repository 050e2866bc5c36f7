"""app.api.reads: the token user, job and file reads inline on SQLite and batched straight through
asyncpg on PostgreSQL; the same rows as a session, each owner's own only.

The PostgreSQL tests use the real server (`tests.services.pg_url`: skipped when it is not
reachable, a failure under CI=true)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import update

pytest.importorskip("fastapi")

from app.api.reads import PG_APPLICATION_NAME, Reads, inline_url, pg_connect_args
from memory import db, migrate
from tests.services import pg_url  # noqa: F401 - (fixture)


def cols(row) -> dict:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


async def seed(sessions, tag: str = "") -> dict[str, str]:
    async with sessions() as s:
        alice = await db.create_user(s, email=f"alice{tag}@example.com", password_hash="x")
        bob = await db.create_user(s, email=f"bob{tag}@example.com", password_hash="x")
        await db.add_audio_file(
            s,
            owner_id=alice.id,
            audio_id="a" * 32,
            duration_s=8.0,
            sample_rate=44100,
            channels=2,
            format="flac",
            original_filename="song.flac",
            size_bytes=123,
        )
        job = await db.create_job(s, owner_id=alice.id, request="master this", audio_id="a" * 32)
        await db.update_job(
            s,
            owner_id=alice.id,
            job_id=job.id,
            status="succeeded",
            progress=1.0,
            plan={"steps": [{"tool": "eq", "params": {"gain_db": 1.5}}]},
            result={"file_id": "b" * 32, "metrics": {"lufs": -14.0}},
        )
        await s.commit()
        return {"alice": alice.id, "bob": bob.id, "job": job.id, "file": "a" * 32}


@pytest.fixture()
def sqlite_db(tmp_path):
    url = db.default_database_url(tmp_path)
    migrate.upgrade(url)
    return url


def test_inline_url_only_for_sqlite_files(tmp_path):
    assert inline_url(f"sqlite+aiosqlite:///{tmp_path}/x.sqlite") == f"sqlite+pysqlite:///{tmp_path}/x.sqlite"
    assert inline_url(f"sqlite:///{tmp_path}/x.sqlite") == f"sqlite+pysqlite:///{tmp_path}/x.sqlite"
    assert inline_url("sqlite+aiosqlite://") is None
    assert inline_url("sqlite+aiosqlite:///:memory:") is None
    assert inline_url("postgresql://postgres@127.0.0.1:5432/test") is None
    assert pg_connect_args(f"sqlite:///{tmp_path}/x.sqlite") is None
    assert (
        pg_connect_args("postgresql+psycopg://postgres@127.0.0.1:5432/test") is None
    )  # not asyncpg: sessions
    args = pg_connect_args("postgresql://u:p%40ss@db.example:6543/mix?prepared_statement_cache_size=10")
    assert (args["host"], args["port"], args["user"], args["password"], args["database"]) == (
        "db.example",
        6543,
        "u",
        "p@ss",
        "mix",
    )
    assert "prepared_statement_cache_size" not in args  # SQLAlchemy's option, not asyncpg's
    assert args["server_settings"]["application_name"] == PG_APPLICATION_NAME


def test_inline_reads_match_the_session_see_each_commit_and_keep_owners_apart(sqlite_db):
    async def main() -> None:
        engine = db.make_engine(sqlite_db)
        sessions = db.make_sessionmaker(engine)
        ids = await seed(sessions)
        reads = Reads(sqlite_db, sessions)
        try:
            job = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            f = await reads.audio_file(owner_id=ids["alice"], file_id=ids["file"])
            user = await reads.user(ids["alice"])
            assert reads.inline_reads == 3  # no session was needed
            async with sessions() as s:  # the very same values (types, JSON, datetimes) as the ORM session
                assert cols(job) == cols(await db.get_job(s, owner_id=ids["alice"], job_id=ids["job"]))
                assert cols(f) == cols(
                    await db.get_audio_file(s, owner_id=ids["alice"], audio_id=ids["file"])
                )
                assert cols(user) == cols(await db.get_user(s, user_id=ids["alice"]))
            assert job.plan["steps"][0]["params"]["gain_db"] == 1.5 and job.result["metrics"]["lufs"] == -14.0
            # another owner's ids find nothing (the routes answer 404)
            assert await reads.job(owner_id=ids["bob"], job_id=ids["job"]) is None
            assert await reads.audio_file(owner_id=ids["bob"], file_id=ids["file"]) is None
            assert await reads.user("nobody") is None
            # no snapshot is held between reads: a commit elsewhere shows at once
            async with sessions() as s:
                await db.update_job(
                    s, owner_id=ids["alice"], job_id=ids["job"], status="failed", error="boom"
                )
                await s.commit()
            again = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            assert (again.status, again.error) == ("failed", "boom")
            # the inline connection cannot write
            with pytest.raises(Exception, match="readonly|read-only|query_only|attempt to write"):
                reads._connection().exec_driver_sql("DELETE FROM jobs")
        finally:
            reads.close()
            await engine.dispose()

    asyncio.run(main())


def test_a_locked_database_falls_back_to_the_session(tmp_path, sqlite_db):
    """Inline reads never wait (busy timeout 0): on a lock the session (which waits) answers."""

    async def main() -> None:
        engine = db.make_engine(sqlite_db)
        sessions = db.make_sessionmaker(engine)
        ids = await seed(sessions)
        await engine.dispose()
        path = sqlite_db.split("///", 1)[1]
        con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        con.execute("PRAGMA journal_mode=DELETE")  # WAL readers would not even see the lock
        engine = db.make_engine(sqlite_db)
        sessions = db.make_sessionmaker(engine)
        reads = Reads(sqlite_db, sessions)
        try:
            con.execute("BEGIN EXCLUSIVE")
            threading.Timer(0.5, con.execute, args=("COMMIT",)).start()
            job = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            assert job is not None and job.status == "succeeded"
            assert reads.inline_reads == 0  # answered by the session (which waited for the lock), not inline
            assert (await reads.job(owner_id=ids["alice"], job_id=ids["job"])) is not None
            assert reads.inline_reads == 1  # the lock gone, inline again
        finally:
            reads.close()
            await engine.dispose()
            con.close()

    asyncio.run(main())


def test_served_app_freezes_start_up_objects_and_caches_verified_tokens_only_until_expiry(tmp_path):
    """`mixpilot serve`'s app: start-up objects frozen out of the collector's reach (undone at shutdown);
    a token verified once is recognised by its exact bytes, and still refused once expired."""
    import gc
    import time
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from app.api.security import create_token
    from tests.apiclient import make_settings, register

    assert gc.get_freeze_count() == 0
    app = create_app(make_settings(tmp_path, job_runner="thread"), freeze_gc=True)
    with TestClient(app) as api:
        assert gc.get_freeze_count() > 0
        h = register(api)
        me = api.get("/api/v1/auth/me", headers=h)
        assert me.status_code == 200
        state = app.state.mp
        token = h["Authorization"].split()[1]
        assert state.verified[token][0] == me.json()["id"]
        assert state.reads.inline_reads > 0  # the user row was read inline (SQLite)
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        short = create_token(state.tokens, subject=me.json()["id"], type="access", ttl=timedelta(seconds=1))
        assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {short}"}).status_code == 200
        assert short in state.verified
        time.sleep(6.5)  # past its expiry and the 5 s leeway decode_claims allows
        r = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {short}"})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert gc.get_freeze_count() == 0


# ---------------------------------------------------------------------------------- PostgreSQL


def _unique() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def test_postgres_reads_match_the_session_batch_and_keep_owners_apart(pg_url):  # noqa: F811
    """Concurrent reads share statements, and each gets its own owner's row: bob owns a file with
    the same id as alice's (same audio), and both read it in the same batch."""
    migrate.upgrade(pg_url)

    async def main() -> None:
        engine = db.make_engine(pg_url)
        sessions = db.make_sessionmaker(engine)
        ids = await seed(sessions, tag=_unique())
        async with sessions() as s:
            carol = await db.create_user(s, email=f"carol{_unique()}@example.com", password_hash="x")
            await db.add_audio_file(
                s,
                owner_id=ids["bob"],
                audio_id=ids["file"],
                duration_s=3.0,
                sample_rate=48000,
                channels=1,
                format="wav",
                original_filename="bobs.wav",
                size_bytes=7,
            )
            bob_job = await db.create_job(s, owner_id=ids["bob"], request="bob's", audio_id=ids["file"])
            await s.commit()
        reads = Reads(pg_url, sessions)
        assert reads.pg is not None and reads.url is None
        try:
            job = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            f = await reads.audio_file(owner_id=ids["alice"], file_id=ids["file"])
            user = await reads.user(ids["alice"])
            assert (reads.pg_reads, reads.inline_reads) == (3, 0)  # no session was needed
            async with sessions() as s:  # the very same values (types, JSON, datetimes) as the ORM session
                assert cols(job) == cols(await db.get_job(s, owner_id=ids["alice"], job_id=ids["job"]))
                assert cols(f) == cols(
                    await db.get_audio_file(s, owner_id=ids["alice"], audio_id=ids["file"])
                )
                assert cols(user) == cols(await db.get_user(s, user_id=ids["alice"]))
            assert job.plan["steps"][0]["params"]["gain_db"] == 1.5 and job.result["metrics"]["lufs"] == -14.0

            # one wave of concurrent reads by three users: few statements, each read its own answer
            before = (reads.pg_reads, reads.pg_statements)
            asks = []
            for _ in range(5):
                asks += [
                    ("file", ids["alice"], ids["file"], "song.flac"),
                    ("file", ids["bob"], ids["file"], "bobs.wav"),
                    ("file", carol.id, ids["file"], None),
                    ("job", ids["alice"], ids["job"], "master this"),
                    ("job", ids["bob"], ids["job"], None),
                    ("job", ids["bob"], bob_job.id, "bob's"),
                    ("job", ids["alice"], bob_job.id, None),
                    ("job", carol.id, ids["job"], None),
                    ("user", None, ids["bob"], "bob"),
                    ("user", None, "0" * 32, None),
                ]

            def ask(kind, owner, ident):
                if kind == "file":
                    return reads.audio_file(owner_id=owner, file_id=ident)
                if kind == "job":
                    return reads.job(owner_id=owner, job_id=ident)
                return reads.user(ident)

            got = await asyncio.gather(*(ask(k, o, i) for k, o, i, _ in asks))
            for (kind, owner, ident, want), row in zip(asks, got, strict=True):
                if want is None:
                    assert row is None, (kind, owner, ident, cols(row))
                    continue
                assert row is not None, (kind, owner, ident)
                if kind == "file":
                    assert (row.owner_id, row.original_filename) == (owner, want)
                elif kind == "job":
                    assert (row.id, row.owner_id, row.request) == (ident, owner, want)
                else:
                    assert row.id == ident and row.email.startswith(want)
            assert reads.pg_reads - before[0] == len(asks)
            assert reads.pg_statements - before[1] <= 3  # one per kind: the reads of one pass were batched
            assert len({id(r) for r in got if r is not None}) == len(
                [r for r in got if r is not None]
            )  # own copies

            # no snapshot is held between reads: a commit elsewhere shows at once (a deactivation too)
            async with sessions() as s:
                await db.update_job(
                    s, owner_id=ids["alice"], job_id=ids["job"], status="failed", error="boom"
                )
                await s.execute(update(db.User).where(db.User.id == ids["alice"]).values(is_active=False))
                await s.commit()
            again = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            assert (again.status, again.error) == ("failed", "boom")
            assert (await reads.user(ids["alice"])).is_active is False

            # the server drops the read connections: the next reads still answer (a new connection,
            # or the session path for a read that met the dead one)
            import asyncpg

            from tests.services import _dsn

            admin = await asyncpg.connect(_dsn(pg_url))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND datname = current_database()",
                    PG_APPLICATION_NAME,
                )
            finally:
                await admin.close()
            assert killed >= 1
            for _ in range(2):
                row = await reads.audio_file(owner_id=ids["bob"], file_id=ids["file"])
                assert (row.owner_id, row.original_filename) == (ids["bob"], "bobs.wav")
                assert await reads.audio_file(owner_id=carol.id, file_id=ids["file"]) is None
        finally:
            await reads.aclose()
            await engine.dispose()

    asyncio.run(main())


def test_postgres_reads_fall_back_to_the_session_when_the_server_cannot_be_reached(pg_url):  # noqa: F811
    from sqlalchemy.engine import make_url

    migrate.upgrade(pg_url)
    closed_port = make_url(pg_url).set(port=1).render_as_string(hide_password=False)

    async def main() -> None:
        engine = db.make_engine(pg_url)
        sessions = db.make_sessionmaker(engine)
        ids = await seed(sessions, tag=_unique())
        reads = Reads(closed_port, sessions)  # the direct path cannot connect; the sessions can
        try:
            job = await reads.job(owner_id=ids["alice"], job_id=ids["job"])
            assert job is not None and job.owner_id == ids["alice"]
            assert await reads.job(owner_id=ids["bob"], job_id=ids["job"]) is None
            assert (
                await reads.audio_file(owner_id=ids["alice"], file_id=ids["file"])
            ).original_filename == "song.flac"
            assert (await reads.user(ids["bob"])).id == ids["bob"]
            assert reads.pg_reads == 0  # every answer came from the session
        finally:
            await reads.aclose()
            await engine.dispose()

    asyncio.run(main())


def test_served_app_on_postgres_reads_directly_answers_404_across_owners_and_drops_deactivated_users(
    tmp_path,
    pg_url,  # noqa: F811 - the pg_url fixture imported above
):
    """The app on PostgreSQL: /auth/me, /jobs/{id} and /files/{id} through the direct reads; the same
    upload by two users is two files with one id, each user sees their own; a third gets 404; an
    account deactivated in the database is refused within auth_cache_s."""
    import time

    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings, register, upload

    app = create_app(make_settings(tmp_path, database_url=pg_url, job_runner="thread", auth_cache_s=0.5))
    with TestClient(app) as api:
        state = app.state.mp
        a, b, c = register(api), register(api), register(api)
        fa, fb = upload(api, a, name="alices.flac"), upload(api, b, name="bobs.flac")
        assert fa["id"] == fb["id"]  # the same audio: one id, one row per owner
        me_a = api.get("/api/v1/auth/me", headers=a).json()

        async def add_job() -> str:
            engine = db.make_engine(pg_url)
            try:
                async with db.make_sessionmaker(engine)() as s:
                    job = await db.create_job(
                        s, owner_id=me_a["id"], request="alice's job", audio_id=fa["id"]
                    )
                    await s.commit()
                    return job.id
            finally:
                await engine.dispose()

        job_id = asyncio.run(add_job())
        before = state.reads.pg_reads
        assert (
            api.get(f"/api/v1/files/{fa['id']}?analysis=false", headers=a).json()["filename"] == "alices.flac"
        )
        assert (
            api.get(f"/api/v1/files/{fa['id']}?analysis=false", headers=b).json()["filename"] == "bobs.flac"
        )
        assert api.get(f"/api/v1/files/{fa['id']}?analysis=false", headers=c).status_code == 404
        r = api.get(f"/api/v1/jobs/{job_id}", headers=a)
        assert r.status_code == 200 and r.json()["request"] == "alice's job"
        for h in (b, c):
            r = api.get(f"/api/v1/jobs/{job_id}", headers=h)
            assert r.status_code == 404 and job_id in r.json()["detail"]
        assert state.reads.pg_reads - before >= 6 and state.reads.inline_reads == 0

        async def deactivate(user_id: str) -> None:
            engine = db.make_engine(pg_url)
            try:
                async with db.make_sessionmaker(engine)() as s:
                    await s.execute(update(db.User).where(db.User.id == user_id).values(is_active=False))
                    await s.commit()
            finally:
                await engine.dispose()

        asyncio.run(deactivate(me_a["id"]))
        time.sleep(0.7)  # past auth_cache_s
        assert api.get("/api/v1/auth/me", headers=a).status_code == 401
        assert api.get(f"/api/v1/jobs/{job_id}", headers=a).status_code == 401
        assert api.get("/api/v1/auth/me", headers=b).status_code == 200
