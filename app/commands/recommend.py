"""`mixpilot recommend FILE [--genre G] [--request TEXT] [--json]`: what memory would suggest for FILE."""

from __future__ import annotations

import argparse
import json

from tools.genres import GENRES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="settings memory recommends for a file, from similar rated results")
    p.add_argument("file", help="audio file")
    p.add_argument("--genre", "-g", choices=GENRES, help="genre (else from similar tracks)")
    p.add_argument("--request", default="", help="the request you would make (its genre words count)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import CliError
    from app.runtime import open_service
    from app.settings import Settings

    with open_service(Settings()) as svc:
        if svc.memory is None:
            raise CliError("memory is not available (see the warning above)")
        aid = svc.import_audio(args.file)
        audio = svc.audio(aid)
        rec = svc.memory.recommend(
            analysis=svc.analysis(aid),
            request=args.request,
            user_id=None,
            audio_id=aid,
            audio=audio,
            genre=args.genre,
        )
    if args.json:
        print(
            json.dumps(
                rec
                or {
                    "params": {},
                    "genre": args.genre,
                    "evidence": "nothing to recommend yet",
                    "confidence": 0.0,
                },
                allow_nan=False,
            )
        )
        return 0
    if not rec:
        print("nothing to recommend yet: rate a few results with `mixpilot feedback`, or pass --genre")
        return 0
    print(
        f"{rec['evidence']} (confidence {rec['confidence']:.2f}{', genre ' + rec['genre'] if rec['genre'] else ''})"
    )
    for tool, params in rec["params"].items():
        print(f"  {tool}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return 0
