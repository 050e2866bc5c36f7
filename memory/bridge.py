"""The one sync → async bridge: sync code (the graph, the Gradio handlers, Alembic) runs coroutines.

The SQL layer is SQLAlchemy async (asyncpg / aiosqlite): an async engine and its pool must live
on one event loop. `LoopThread` owns one event loop on one daemon thread; `run(coro, timeout)`
submits a coroutine to it from any other thread and waits for the result (exceptions re-raised
in the caller). A long-lived one serves the MemoryAgent's engine; `run_sync` runs one coroutine
on a short-lived one, which also works from inside a running loop's thread (a Gradio handler,
Playwright's sync API), where ``asyncio.run`` refuses. `call` runs a blocking function that
starts its own loop (Alembic's env.py calls ``asyncio.run``) on a thread that runs none.

    with LoopThread(name="mixpilot-memory") as loop:
        engine = loop.run(make_engine_async())
        rows = loop.run(query(engine), timeout=10)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread", "call_off_loop", "run_sync"]


class LoopThread:
    """One event loop running on one daemon thread; `run` submits a coroutine and waits for it."""

    def __init__(self, *, name: str = "mixpilot-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """The coroutine's result (or its exception), run on this loop; TimeoutError after `timeout` s
        (the coroutine is then cancelled). RuntimeError when closed or called from the loop's own thread."""
        if self._closed or not self.loop.is_running():
            coro.close()
            raise RuntimeError(f"{self.thread.name}: the event loop is closed")
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError(
                f"{self.thread.name}: run() from the loop's own thread would wait for itself; await it"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"{self.thread.name}: no result in {timeout} s") from None

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """``fn(*args)`` on a worker thread of this loop (one that runs no event loop of its own)."""
        return self.run(asyncio.to_thread(fn, *args), timeout)

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it, join the thread, close the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.loop.is_running():
            try:  # cleaned up on the loop's own thread: close() may be called inside another running loop
                asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
            except Exception:  # closing: a task that will not stop leaves with the daemon thread
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if (
            not self.loop.is_running()
        ):  # else a coroutine blocks the loop: the daemon thread ends with the process
            self.loop.close()

    async def _shutdown(self) -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run one coroutine to completion from sync code, even inside a running event loop's thread."""
    with LoopThread(name="mixpilot-sync") as lt:
        return lt.run(coro, timeout)


def call_off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` here, or, when this thread runs an event loop (so ``fn`` could not start its own), on a
    `LoopThread` worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with LoopThread(name="mixpilot-sync") as lt:
        return lt.call(fn)
