"""`mixpilot plan "REQUEST" [--audio FILE] [--thread ID] [--json]`: the plan for a request, not run.

``--json`` prints exactly the contract object of ARCHITECTURE.md (one line). ``--batch FILE``
plans one request per line (``-`` = stdin) and prints one JSON object per line, in one process.
Exit status 0 for any request; 2 for bad arguments (a missing --audio or --batch file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.errors import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show the plan for a request (tools, params, order) without running it")
    p.add_argument("request", nargs="?", help='what you want, e.g. "clean and master this in a pop style"')
    p.add_argument("--audio", "-a", metavar="FILE", help="recording to analyse first: its facts fill the plan's gaps")
    p.add_argument("--thread", metavar="ID",
                   help="conversation id: follow-ups ('a bit louder') are planned against its last plan")
    p.add_argument("--batch", metavar="FILE", help="plan one request per line of FILE ('-' = stdin); JSON lines out")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    p.add_argument("--all-tools", action="store_true",
                   help="plan with every canonical tool, even those not available on this machine")
    p.set_defaults(func=run)


def _analysis(path: str | None) -> dict | None:
    if not path:
        return None
    f = Path(path)
    if not f.is_file():
        raise CliError(f"--audio: no such file '{path}'")
    from app.console import max_duration_s
    from tools.analysis import analyze
    from tools.audio import load

    return analyze(load(str(f), max_duration_s=max_duration_s())).to_dict()


def _settings():
    try:
        from app.settings import Settings

        return Settings()
    except Exception:  # settings trouble must not stop offline planning
        return None


def _thread(thread_id: str, settings) -> tuple[dict | None, dict | None, str | None]:
    """The thread's last plan and the analysis of its current version (for follow-ups)."""
    from app.runtime import open_service
    from tools.analysis import analyze

    if settings is None:
        return None, None, f"thread '{thread_id}': settings unavailable; planned on its own"
    with open_service(settings, with_memory=False) as svc:
        ctx = svc.thread_context(thread_id)
        if ctx is None:
            return None, None, f"no conversation with thread id '{thread_id}' yet; planned on its own"
        current = analyze(svc.audio(ctx["current_id"])).to_dict() if ctx["current_id"] else None
        return ctx["previous_plan"], current, None


def _human(plan) -> str:
    lines = [f"plan ({plan.source}):" if plan.steps else f"no steps ({plan.source})"]
    for i, s in enumerate(plan.steps, 1):
        params = " ".join(f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in s.params.items())
        target = "" if s.target == "mix" else f" [{s.target}]"
        lines.append(f"  {i}. {s.tool}{target} {params}".rstrip() + (f" — {s.reason}" if s.reason else ""))
    for n in plan.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.batch is None and args.request is None:
        raise CliError('say what you want: mixpilot plan "REQUEST" (or --batch FILE)')
    if args.batch is not None and args.request is not None:
        raise CliError("give either a REQUEST or --batch FILE, not both")
    if args.batch not in (None, "-") and not Path(args.batch).is_file():
        raise CliError(f"--batch: no such file '{args.batch}'")
    analysis = _analysis(args.audio)

    from agents.planner import make_plan

    settings = _settings()
    previous, thread_note = None, None
    if args.thread:
        previous, current_analysis, thread_note = _thread(args.thread, settings)
        analysis = analysis or current_analysis

    def plan_one(request: str):
        plan = make_plan(request, analysis=analysis, settings=settings, previous=previous,
                         allow_unavailable=args.all_tools)
        if thread_note:
            plan.add_note(thread_note)
        return plan

    if args.batch is not None:
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")
        try:
            for line in stream:
                print(json.dumps(plan_one(line.rstrip("\r\n")).to_json(), allow_nan=False), flush=True)
        finally:
            if stream is not sys.stdin:
                stream.close()
        return 0
    plan = plan_one(args.request)
    if args.json:
        print(json.dumps(plan.to_json(), allow_nan=False))
    else:
        print(_human(plan))
    return 0
