"""`mixpilot feedback JOB_OR_FILE --rating N [--aspect k=v ...] [--comment TEXT] [--liked|--disliked]`.

JOB_OR_FILE names the turn to rate: a turn id (printed by ``process --json`` as ``turn_id``),
a job id, an audio version id, or a file — the input you processed or the output you got
(an exported output is matched to the stored result it came from, within dither).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ASPECT_HELP = "aspect rating 1–5: vocal_clarity, balance, width, tone, loudness (repeatable)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="rate a result (1–5) so mixpilot learns what you like")
    p.add_argument(
        "target", metavar="JOB_OR_FILE", help="turn id, job id, audio id, or the input/output file"
    )
    p.add_argument(
        "--rating", "-r", type=int, required=True, choices=range(1, 6), metavar="N", help="overall 1–5"
    )
    p.add_argument("--aspect", "-a", action="append", metavar="NAME=N", help=ASPECT_HELP)
    p.add_argument(
        "--comment",
        "-m",
        help='free text; words like "too bright" or "a bit quiet" steer the settings'
        " recommended for similar audio next time",
    )
    liked = p.add_mutually_exclusive_group()
    liked.add_argument("--liked", dest="liked", action="store_const", const=True, default=None)
    liked.add_argument("--disliked", dest="liked", action="store_const", const=False)
    p.add_argument("--json", action="store_true", help="print what was stored as JSON")
    p.set_defaults(func=run)


def parse_aspects(items: list[str] | None) -> dict[str, int]:
    from app.errors import CliError

    out: dict[str, int] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--aspect wants NAME=N (e.g. width=4), not '{item}'")
        try:
            n = int(value)
        except ValueError:
            raise CliError(f"--aspect {name}: rating must be a whole number 1–5, not '{value}'") from None
        if not 1 <= n <= 5:
            raise CliError(f"--aspect {name}: rating must be 1–5, not {n}")
        out[name.strip().lower().replace(" ", "_").replace("-", "_")] = n
    return out


def resolve_turn(svc, target: str, *, user_id: str | None = None) -> str:
    """The turn id `target` names (see module docstring)."""
    import numpy as np

    from app.errors import CliError
    from memory.storage import audio_id
    from tools.audio import load

    memory = svc.memory
    if not Path(target).is_file():
        found = memory.find_turn(user_id=user_id, ref=target)
        if found is None:
            raise CliError(f"no processed result or job '{target}' to rate")
        return found["id"]
    audio = load(target, max_duration_s=None)
    found = memory.find_turn(user_id=user_id, ref=audio_id(audio))
    if found is not None:
        return found["id"]
    # an exported output: compare with the stored results of recent turns (dither/bit depth differ)
    for turn in memory.recent_turns(user_id=user_id, limit=200):
        rid = turn.get("result_id")
        if not rid or not svc.store.exists(rid):
            continue
        stored = svc.store.get(rid)
        if stored.sample_rate != audio.sample_rate or stored.samples.shape != audio.samples.shape:
            continue
        if float(np.max(np.abs(stored.samples - audio.samples))) < 2e-3:
            return turn["id"]
    raise CliError(
        f"'{target}' is not a result or input mixpilot processed here; rate it by turn id or job id"
    )


def run(args: argparse.Namespace) -> int:
    from app.errors import CliError
    from app.runtime import open_service
    from app.settings import Settings

    aspects = parse_aspects(args.aspect)
    with open_service(Settings()) as svc:
        if svc.memory is None:
            raise CliError("memory is not available (see the warning above), so feedback cannot be stored")
        turn_id = resolve_turn(svc, args.target)
        understood = svc.feedback(
            turn_id, rating=args.rating, aspects=aspects or None, comment=args.comment, liked=args.liked
        )
    stored = {
        "turn_id": turn_id,
        "rating": args.rating,
        "aspects": aspects,
        "comment": args.comment,
        "liked": args.liked,
        "understood": understood or [],
    }
    if args.json:
        print(json.dumps(stored))
    else:
        print(f"thanks: rated {args.rating}/5 (turn {turn_id})")
        if understood:
            print(f"from your comment, for similar audio next time: {', '.join(understood)}")
    return 0
