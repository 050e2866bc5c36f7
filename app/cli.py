"""`mixpilot` command line. Each sub-command lives in `app/commands/<name>.py` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``. Heavy modules are imported inside
``run`` only, so `mixpilot --help` stays fast and never imports torch."""

from __future__ import annotations

import argparse
import importlib
import sys

from app.errors import CliError

# order = order in --help
COMMANDS = [
    "analyze",
    "diagnose",
    "tools",
    "models",
    "apply",
    "plan",
    "process",
    "chat",
    "demo",
    "migrate",
    "feedback",
    "recommend",
    "ui",
    "serve",
    "worker",
    "gc",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixpilot",
        description="Conversational audio production assistant: plan, run, measure and explain audio tool chains.",
    )
    parser.add_argument("--version", action="version", version=f"mixpilot {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"app.commands.{name}").add_parser(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mixpilot")
    except Exception:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from tools.audio import AudioError

    try:
        return int(args.func(args) or 0)
    except (CliError, AudioError, ValueError, FileNotFoundError, PermissionError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mixpilot: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixpilot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a tool failure is still a one-liner, not a traceback
        from tools.registry import ToolError

        if isinstance(exc, ToolError):
            print(f"mixpilot: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
