"""`mixpilot worker [--burst]`: run API jobs from Redis (arq); any number, on any machine."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker", help="run queued API jobs (needs MIXPILOT_REDIS_URL; shares database and data dir)"
    )
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from app.jobs import make_worker
    except ImportError as exc:
        from app.errors import CliError

        raise CliError(f"the worker needs its extra: pip install -e '.[api]' ({exc})") from None
    import logging

    from app.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    make_worker(Settings(), burst=args.burst).run()
    # running jobs were handed back at shutdown; a job thread that did not stop must not hold the exit
    import os
    import sys
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
