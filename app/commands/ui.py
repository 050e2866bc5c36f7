"""`mixpilot ui`: the chat UI in the browser (Gradio) on the same service as the CLI and the API."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="open the chat UI in the browser (upload, talk, listen, rate, export)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)"
    )
    p.add_argument("--port", type=int, default=None, help="port (default 7860, or the next free one)")
    p.add_argument("--open", action="store_true", help="open a browser tab")
    p.add_argument(
        "--login",
        action="store_true",
        help="ask for an email and password (the API's users); default: local single-user mode",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from app.ui.app import launch
    except ImportError as exc:
        from app.errors import CliError

        raise CliError(f"the UI needs Gradio: pip install -e '.[ui]' ({exc})") from None
    launch(host=args.host, port=args.port, open_browser=args.open, login=args.login)
    return 0
