"""`mixpilot serve [--host H] [--port P]`: the HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="run the HTTP API (docs at /docs; jobs in-process, or on `mixpilot worker`)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument(
        "--in-process-jobs",
        action="store_true",
        help="run jobs in this process even when MIXPILOT_REDIS_URL is set",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from app.api.main import create_app
    except ImportError as exc:
        from app.errors import CliError

        raise CliError(f"the API needs its extra: pip install -e '.[api]' ({exc})") from None
    from app.settings import Settings

    app = create_app(Settings(), in_process_jobs=args.in_process_jobs or None, freeze_gc=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, proxy_headers=False)
    return 0
