"""`mixpilot chat [FILE]`: an interactive conversation about one recording.

Type requests in plain words. Commands: `open FILE`, `save FILE`, `history`, `quit`.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="interactive session: talk to mixpilot about a recording")
    p.add_argument("file", nargs="?", help="audio file to start with")
    p.add_argument("--thread", help="continue an earlier conversation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.commands.process import metrics_rows
    from app.console import print_table
    from app.runtime import open_service
    from app.settings import Settings
    from tools.audio import AudioError

    with open_service(Settings()) as svc:
        thread = args.thread or svc.new_thread_id()
        pending = svc.import_audio(args.file) if args.file else None
        current = None
        print(
            f"mixpilot chat (thread {thread}). Say what you want; `save FILE` writes the result, `quit` ends."
        )
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                print()
                break
            if not line:
                continue
            word, _, rest = line.partition(" ")
            try:
                if word in ("quit", "exit", ":q"):
                    break
                if word == "open":
                    pending = svc.import_audio(shlex.split(rest)[0])
                    print("mixpilot> loaded; what should I do with it?")
                    continue
                if word == "save":
                    if current is None:
                        print("mixpilot> nothing to save yet")
                        continue
                    path = svc.export(current, shlex.split(rest)[0])
                    print(f"mixpilot> written {path}")
                    continue
                if word == "history":
                    for i, t in enumerate(svc.history(thread), 1):
                        print(f"  {i}. {t.get('request')}  [{t.get('kind')}]")
                    continue
                result = svc.turn(line, thread_id=thread, audio_id=pending)
                pending = None
                current = result.output_id or current
                print("mixpilot> " + result.explanation.replace("\n", "\nmixpilot> "))
                if result.metrics_after:
                    print_table(metrics_rows(result.metrics_before, result.metrics_after))
            except (AudioError, ValueError, KeyError, OSError) as exc:
                print(f"mixpilot> sorry: {exc}", file=sys.stderr)
    return 0
