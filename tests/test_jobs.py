"""The job package: `make_runner(settings)` picks the runner settings ask for; every runner is a `Runner`."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading

import pytest

pytest.importorskip("sqlalchemy")

from app.jobs import (
    ArqRunner,
    JobStore,
    LocalBus,
    ProcessRunner,
    RedisBus,
    Runner,
    ThreadRunner,
    lower_cpu_priority,
    make_bus,
    make_runner,
    runner_kind,
)
from tests.apiclient import make_settings

REDIS = "redis://127.0.0.1:6379/0"  # never connected to here


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _close(runner) -> None:
    if isinstance(runner, ProcessRunner):  # never started: it opened no channel yet
        assert runner.inboxes == runner.controls == [None] * runner.n
    elif isinstance(runner, ThreadRunner):
        runner.pool.shutdown(wait=True)


@pytest.mark.parametrize(
    ("overrides", "in_process", "injected", "kind", "cls"),
    [
        ({}, False, False, "process", ProcessRunner),
        ({"job_runner": "thread"}, False, False, "thread", ThreadRunner),
        ({}, False, True, "thread", ThreadRunner),  # an injected service object runs in threads only
        ({"redis_url": REDIS}, False, False, "arq", ArqRunner),
        ({"redis_url": REDIS}, False, True, "arq", ArqRunner),
        ({"redis_url": REDIS}, True, False, "process", ProcessRunner),
        ({"redis_url": REDIS, "job_runner": "thread"}, True, False, "thread", ThreadRunner),
    ],
)
def test_make_runner_follows_settings(tmp_path, loop, overrides, in_process, injected, kind, cls):
    settings = make_settings(tmp_path, **overrides)
    assert runner_kind(settings, in_process=in_process, injected_service=injected) == kind
    runner = make_runner(
        settings,
        store=JobStore(None),
        bus=LocalBus(loop),
        service=object(),
        loop=loop,
        in_process=in_process,
        injected_service=injected,
    )
    try:
        assert type(runner) is cls and isinstance(runner, Runner)
        if kind == "arq":
            assert runner.queue_name == settings.job_queue and runner.pool is None  # nothing connected yet
        elif kind == "process":
            assert (
                runner.n == settings.job_threads
                and runner.nice == settings.job_nice
                and runner.procs == [None] * runner.n
            )
        else:
            assert runner.pool._max_workers == settings.job_threads
    finally:
        _close(runner)


def test_make_bus_goes_with_the_runner(tmp_path, loop):
    pytest.importorskip("redis")
    assert type(make_bus(make_settings(tmp_path), loop=loop)) is LocalBus
    assert type(make_bus(make_settings(tmp_path, redis_url=REDIS), loop=loop, in_process=True)) is LocalBus
    bus = make_bus(make_settings(tmp_path, redis_url=REDIS), loop=loop)
    assert type(bus) is RedisBus
    loop.run_until_complete(bus.aclose())


def test_the_thread_runner_needs_a_service(tmp_path, loop):
    with pytest.raises(ValueError, match="service="):
        make_runner(
            make_settings(tmp_path, job_runner="thread"), store=JobStore(None), bus=LocalBus(loop), loop=loop
        )


@pytest.mark.parametrize("cls", [ThreadRunner, ProcessRunner, ArqRunner])
def test_every_runner_has_the_protocol_with_the_same_sync_and_async_methods(cls):
    members = [n for n in dir(Runner) if not n.startswith("_") and callable(getattr(Runner, n))]
    assert set(members) == {"start", "submit", "cancel", "heartbeat_queued", "check", "aclose"}
    for name in members:
        want, got = getattr(Runner, name), getattr(cls, name)
        assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(want), name
        assert list(inspect.signature(got).parameters) == list(inspect.signature(want).parameters), name
    assert isinstance(cls.tracks_queued, bool)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")
def test_a_job_thread_alone_gets_batch_and_the_niceness():
    """The arq worker's and the thread runner's job threads: SCHED_BATCH + nice; the caller keeps its priority."""
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    seen = {}

    def job_thread() -> None:
        tid = threading.get_native_id()
        seen["applied"] = lower_cpu_priority(7, policy="batch", whole_process=False)
        seen["after"] = (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid))

    t = threading.Thread(target=job_thread)
    t.start()
    t.join()
    assert seen["applied"] == "batch" and seen["after"][0] == os.SCHED_BATCH and seen["after"][1] >= 7
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == before
