"""Small helpers the CLI commands share: parsing `key=value` params, progress display, tables."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def parse_kv(items: list[str] | None, what: str = "--param") -> dict[str, Any]:
    """`["a=1", "b=x", "c=[1,2]"]` → `{"a": 1, "b": "x", "c": [1, 2]}` (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{what} '{item}': expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"{what} '{item}': empty key")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            low = raw.strip().lower()
            value = {"true": True, "false": False, "none": None, "null": None}.get(low, raw)
        out[key] = value
    return out


class Progress:
    """Progress on stderr for work longer than `delay_s`; silent when quiet or not a terminal.

    Call it as ``progress(fraction, message)``; it is safe to call from any thread.
    """

    def __init__(self, label: str, *, quiet: bool = False, delay_s: float = 1.5) -> None:
        self.label = label
        self.quiet = quiet
        self.delay_s = delay_s
        self._t0 = time.monotonic()
        self._bar: Any = None  # a rich Progress while shown
        self._task = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = (0.0, label)

    def __enter__(self) -> Progress:
        if not self.quiet:
            self._timer = threading.Timer(self.delay_s, self._start)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        with self._lock:
            if self._bar is not None or self.quiet:
                return
            console = Console(stderr=True)
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            frac, msg = self._last
            self._task = self._bar.add_task(msg or self.label, total=1.0, completed=frac)

    def __call__(self, fraction: float, message: str = "") -> None:
        with self._lock:
            self._last = (fraction, message or self._last[1])
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, completed=fraction, description=message or self.label)

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


def print_table(rows: list[tuple[str, str]], title: str | None = None, file=None) -> None:
    """Two-column table (rich when available)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    Console(file=file or sys.stdout, soft_wrap=True).print(table)


def fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


@contextmanager
def nothing() -> Iterator[None]:
    yield


def max_duration_s() -> float:
    """Upload/input duration limit in seconds (MIXPILOT_MAX_DURATION_S, default 30 min)."""
    import os

    from tools.audio import DEFAULT_MAX_DURATION_S

    raw = os.environ.get("MIXPILOT_MAX_DURATION_S")
    if not raw:
        return DEFAULT_MAX_DURATION_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"MIXPILOT_MAX_DURATION_S={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError("MIXPILOT_MAX_DURATION_S must be positive")
    return value
