"""A stand-in service for job-runner tests: its turns sleep, spin, or crash as their request says.

Importable by spawned job processes (`ProcessRunner(service_factory=fake_service)`). Requests:

- ``sleep S``: S seconds, with a progress event every 50 ms (stops at once on cancel or hand-back);
- ``spin S``: S seconds without any progress event (only killing its process stops it sooner);
- ``chatter S``: S seconds of progress events back to back (the event channel always mid-write);
- ``crash-once PATH``: the first run (no file at PATH yet) creates it and kills its process; later runs finish;
- ``crash``: every run kills its process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class FakeService:
    def turn(self, request: str, *, thread_id: str | None = None, on_event: Any = None, **_: Any) -> Any:
        words = request.split()
        kind = words[0]
        if kind == "crash" or (kind == "crash-once" and not Path(words[1]).exists()):
            if kind == "crash-once":
                Path(words[1]).write_text("crashed once")
            os._exit(3)
        seconds = float(words[1]) if kind in ("sleep", "spin", "chatter") else 0.05
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if kind != "spin" and on_event is not None:
                left = max(end - time.monotonic(), 0.0)
                on_event(
                    {
                        "event": "step_progress",
                        "index": 0,
                        "total": 1,
                        "tool": "fake",
                        "fraction": 1.0 - left / max(seconds, 1e-9),
                    }
                )
            if kind != "chatter":
                time.sleep(0.05 if kind != "spin" else 0.01)
        return SimpleNamespace(
            output_id=None,
            kind="none",
            thread_id=thread_id,
            turn_id=None,
            explanation="done",
            plan=None,
            steps=[],
            metrics_before={},
            metrics_after={},
            notes=[],
            answer=None,
            findings=[],
            suggested_steps=[],
            checks=None,
        )

    def close(self) -> None:
        pass


def fake_service(settings: Any = None) -> FakeService:
    return FakeService()
