"""`mixpilot demo`: the whole pipeline on the bundled example song, no UI: plan, run, explain, write."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example_song.flac"
DEMO_REQUEST = "clean and master this in a pop style"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="process the bundled example song and write the result")
    p.add_argument(
        "-o", "--output", default="out/demo_master.wav", help="output file (default out/demo_master.wav)"
    )
    p.add_argument("--request", default=DEMO_REQUEST, help=f'what to ask (default "{DEMO_REQUEST}")')
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.commands.process import metrics_rows, progress_printer
    from app.console import Progress, print_table
    from app.runtime import open_service
    from app.settings import Settings

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f'mixpilot demo: "{args.request}" on {EXAMPLE.name} (Slow Motion Dream, Steven M Bryant, CC BY 3.0)'
    )
    with open_service(Settings()) as svc:
        audio_id = svc.import_audio(EXAMPLE)
        with Progress("working", quiet=args.quiet) as progress:
            result = svc.turn(args.request, audio_id=audio_id, on_event=progress_printer(progress))
            if result.output_id:
                svc.export(result.output_id, out, bit_depth=24)
    print(result.explanation)
    if result.metrics_after:
        print_table(metrics_rows(result.metrics_before, result.metrics_after), title="before → after")
    print(f"written: {out}")
    return 0
