"""SQL schema, migrations and owner isolation — on SQLite always, on real Postgres when reachable."""

from __future__ import annotations

import asyncio

import pytest

from memory import db, migrate
from tests.services import pg_url  # noqa: F401  (fixture)

TABLES = {
    "users",
    "conversations",
    "audio_files",
    "jobs",
    "mixing_configurations",
    "feedback",
    "reference_tracks",
    "audio_feature_vectors",
    "refresh_tokens",
}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return db.default_database_url(tmp_path)
    return request.getfixturevalue("pg_url")


def _tables(url: str) -> set[str]:
    async def go():
        engine = db.make_engine(url)
        try:
            return await migrate.table_names(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_migrations_up_and_down(url):
    migrate.downgrade(url, "base")
    with pytest.raises(migrate.SchemaOutOfDate, match="mixpilot migrate"):
        migrate.check_schema_current(url)
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert _tables(url) >= TABLES
    migrate.check_schema_current(url)  # no raise
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert not (TABLES & _tables(url))
    migrate.upgrade(url)  # and up again: downgrade left nothing behind
    assert _tables(url) >= TABLES


def test_models_match_migrations(url):
    """Autogenerate finds nothing to add: the migrations create exactly what the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate.upgrade(url)

    async def go():
        engine = db.make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), db.Base.metadata)
                )
        finally:
            await engine.dispose()

    diff = [d for d in asyncio.run(go()) if not (isinstance(d, tuple) and d[0] == "remove_table")]
    assert diff == []


def test_behind_database_is_refused_with_a_message(tmp_path):
    url = db.default_database_url(tmp_path)
    migrate.upgrade(url)

    async def stamp_old():
        engine = db.make_engine(url)
        from sqlalchemy import text

        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
        await engine.dispose()

    asyncio.run(stamp_old())
    with pytest.raises(migrate.SchemaOutOfDate, match=r"revision 0000 .*run `mixpilot migrate`"):
        migrate.check_schema_current(url)


def test_owner_isolation_and_feedback_score(url):
    migrate.upgrade(url)

    async def go():
        engine = db.make_engine(url)
        sm = db.make_sessionmaker(engine)
        try:
            async with sm() as s, s.begin():
                a = await db.create_user(s, email=f"a-{db.new_id()}@x.org", password_hash="h")
                b = await db.create_user(s, email=f"b-{db.new_id()}@x.org", password_hash="h")
                await db.add_audio_file(
                    s,
                    owner_id=a.id,
                    audio_id="ab" * 16,
                    duration_s=3.0,
                    sample_rate=48000,
                    channels=2,
                    format="flac",
                    original_filename="song.flac",
                )
                job = await db.create_job(s, owner_id=a.id, request="master it", audio_id="ab" * 16)
                cfg = await db.add_configuration(
                    s, owner_id=a.id, params={"stereo_width": {"width": 1.3}}, audio_id="ab" * 16, genre="pop"
                )
                await db.ensure_conversation(s, owner_id=a.id, thread_id="t-" + db.new_id())
            async with sm() as s, s.begin():
                # B sees none of A's rows, by any route
                assert await db.get_audio_file(s, owner_id=b.id, audio_id="ab" * 16) is None
                assert await db.list_audio_files(s, owner_id=b.id) == []
                assert await db.get_job(s, owner_id=b.id, job_id=job.id) is None
                assert await db.list_jobs(s, owner_id=b.id) == []
                assert not await db.update_job(s, owner_id=b.id, job_id=job.id, status="cancelled")
                assert await db.get_configuration(s, owner_id=b.id, config_id=cfg.id) is None
                assert await db.find_configuration(s, owner_id=b.id, ref=job.id) is None
                assert await db.list_conversations(s, owner_id=b.id) == []
                with pytest.raises(KeyError):
                    await db.add_feedback(s, owner_id=b.id, config_id=cfg.id, rating=1)
            async with sm() as s, s.begin():
                assert (await db.get_job(s, owner_id=a.id, job_id=job.id)).status == "queued"
                await db.add_feedback(
                    s, owner_id=a.id, config_id=cfg.id, rating=5, aspects={"width": 4, "punch": 3}
                )
                await db.add_feedback(s, owner_id=a.id, config_id=cfg.id, rating=2, liked=False)
                with pytest.raises(ValueError, match="1–5"):
                    await db.add_feedback(s, owner_id=a.id, config_id=cfg.id, rating=9)
            async with sm() as s:
                got = await db.get_configuration(s, owner_id=a.id, config_id=cfg.id)
                assert got.rating_count == 2 and got.score == pytest.approx(3.5)
                fbs = await db.list_feedback(s, owner_id=a.id, config_id=cfg.id)
                assert {f.rating for f in fbs} == {5, 2}
                assert any(f.width == 4 and f.aspects == {"width": 4, "punch": 3} for f in fbs)
                assert await db.list_feedback(s, owner_id=b.id) == []
                # the recommender's view: mean aspect ratings per configuration, only the aspects rated
                cfgs = await db.configurations_by_ids_any_owner(s, ids=[cfg.id])
                assert cfgs[cfg.id]["aspects"] == {"width": pytest.approx(4.0)}
                await db.add_feedback(
                    s, owner_id=a.id, config_id=cfg.id, rating=3, aspects={"width": 1, "tone": 5}
                )
                cfgs = await db.configurations_by_ids_any_owner(s, ids=[cfg.id])
                assert cfgs[cfg.id]["aspects"] == {"width": pytest.approx(2.5), "tone": pytest.approx(5.0)}
        finally:
            await engine.dispose()

    asyncio.run(go())
