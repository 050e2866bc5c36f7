"""memory/bridge.py: the one sync → async bridge."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from memory.bridge import LoopThread, call_off_loop, run_sync


async def _add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def test_run_returns_results_and_raises_the_coroutines_errors():
    with LoopThread() as lt:
        assert lt.run(_add(2, 3)) == 5

        async def boom() -> None:
            raise KeyError("no turn")

        with pytest.raises(KeyError, match="no turn"):
            lt.run(boom())
        assert lt.run(_add(1, 1)) == 2  # the loop survives a failed coroutine


def test_every_call_runs_on_the_same_loop_from_any_thread():
    async def which() -> tuple[asyncio.AbstractEventLoop, str]:
        return asyncio.get_running_loop(), threading.current_thread().name

    with LoopThread(name="mixpilot-test") as lt:
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            seen = list(ex.map(lambda _: lt.run(which()), range(32)))
        assert {loop for loop, _ in seen} == {lt.loop}
        assert {name for _, name in seen} == {"mixpilot-test"}


def test_timeout_cancels_the_coroutine():
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with LoopThread() as lt:
        with pytest.raises(TimeoutError):
            lt.run(slow(), timeout=0.05)
        assert cancelled.wait(2)
        assert lt.run(_add(1, 2), timeout=2) == 3


def test_run_from_the_loops_own_thread_is_refused_not_deadlocked():
    with LoopThread() as lt:

        async def reenter() -> int:
            return lt.run(_add(1, 1))

        with pytest.raises(RuntimeError, match="own thread"):
            lt.run(reenter(), timeout=2)


def test_close_stops_the_thread_cancels_pending_work_and_is_idempotent():
    lt = LoopThread()
    cancelled = threading.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def start() -> None:
        asyncio.get_running_loop().create_task(background())

    lt.run(start())
    lt.close()
    assert cancelled.is_set()
    assert not lt.thread.is_alive() and lt.loop.is_closed()
    lt.close()
    with pytest.raises(RuntimeError, match="closed"):
        lt.run(_add(1, 1))


def test_run_sync_works_inside_a_running_loop():
    async def handler() -> int:  # e.g. a Gradio handler calling sync code that needs the database
        return run_sync(_add(20, 22))

    assert asyncio.run(handler()) == 42
    assert run_sync(_add(1, 2)) == 3


def test_call_off_loop_lets_a_function_start_its_own_loop():
    def alembic_like() -> int:  # Alembic's env.py calls asyncio.run
        return asyncio.run(_add(4, 5))

    assert call_off_loop(alembic_like) == 9

    async def inside() -> int:
        return call_off_loop(alembic_like)

    assert asyncio.run(inside()) == 9
