"""CPU priority of job work: one function for the API's job processes, the thread runner and the arq worker.

Why: a job is CPU-bound (a whole `Mixpilot.turn`); request handling must win the CPU. Linux
schedules threads, not processes, so the priority is set per thread (``/proc/self/task``);
threads started later inherit it. The policies (``MIXPILOT_JOB_CPU_POLICY``):

- ``batch`` (default): ``SCHED_BATCH`` + niceness (``MIXPILOT_JOB_NICE``). A waking request
  thread preempts a job at once (a batch task never preempts on wake-up), and the job keeps its
  niceness' share of a busy machine (nice 10: about a tenth of a core against each normal busy task).
- ``idle``: ``SCHED_IDLE``: only CPU no normal task wants. Lowest request latency, but one busy
  normal task per core (another service, a build) starves the jobs: they never finish and their
  heartbeats go stale. Measured in README (Benchmarks); not the default for that.
- ``nice``: niceness only.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Literal

Policy = Literal["batch", "idle", "nice"]
#: scheduling classes by policy name (Linux)
_CLASSES = {"batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}
#: what `lower_cpu_priority` reports, weakest first
_APPLIED = ("none", "nice", "batch", "idle")


def lower_cpu_priority(nice: int, *, policy: Policy = "batch", whole_process: bool = True) -> str:
    """Lower the CPU priority of this process's threads (or only the calling one); returns the policy applied.

    `whole_process` (job processes): every thread in ``/proc/self/task`` — the BLAS/OpenMP threads
    started at import included — gets `policy` and the niceness; elsewhere ``os.nice`` (process-wide
    there). ``whole_process=False`` (a pool's thread initializer: the arq worker, the thread runner):
    the calling thread only, so the event loop keeps normal priority (heartbeats, Redis, requests).
    A niceness is only ever raised, never lowered.
    """
    if not whole_process:
        return _lower_threads({threading.get_native_id()}, nice, policy)
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        if nice > 0 and hasattr(os, "nice"):
            with contextlib.suppress(OSError):
                os.nice(nice)
                return "nice"
        return "none"
    applied, done = "none", set[int]()
    for _ in range(5):  # again until no new thread shows up: one may start while we go through the list
        todo = {int(t.name) for t in tasks.iterdir()} - done
        if not todo:
            break
        done |= todo
        applied = max(applied, _lower_threads(todo, nice, policy), key=_APPLIED.index)
    return applied


def _lower_threads(tids: set[int], nice: int, policy: str) -> str:
    applied = "none"
    klass = getattr(os, _CLASSES.get(policy, ""), None)
    for tid in tids:
        if klass is not None:
            try:
                os.sched_setscheduler(tid, klass, os.sched_param(0))
                applied = policy
            except OSError:  # not permitted (some containers) or the thread has exited: niceness only
                pass
        if nice > 0 and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
                applied = "nice" if applied == "none" else applied
    return applied
