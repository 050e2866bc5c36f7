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
    p.add_argument(
        "--audio", "-a", metavar="FILE", help="recording to analyse first: its facts fill the plan's gaps"
    )
    p.add_argument(
        "--thread",
        metavar="NAME",
        help="conversation name, created on first use: the same NAME continues it (follow-ups, "
        "questions about what was done, 'ok, fix it' plans what was suggested)",
    )
    p.add_argument(
        "--batch", metavar="FILE", help="plan one request per line of FILE ('-' = stdin); JSON lines out"
    )
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    p.add_argument(
        "--all-tools",
        action="store_true",
        help="plan with every canonical tool, even those not available on this machine",
    )
    p.set_defaults(func=run)


def _listen(path: str | None) -> tuple[dict | None, dict | None]:
    """(analysis, diagnosis) of the --audio file, or (None, None) without one."""
    if not path:
        return None, None
    f = Path(path)
    if not f.is_file():
        raise CliError(f"--audio: no such file '{path}'")
    from app.console import max_duration_s
    from tools.analysis import analyze
    from tools.audio import load
    from tools.diagnose import diagnose

    audio = load(str(f), max_duration_s=max_duration_s())
    analysis = analyze(audio)
    return analysis.to_dict(), diagnose(audio, analysis).to_dict()


def _settings():
    try:
        from app.settings import Settings

        return Settings()
    except Exception:  # settings trouble must not stop offline planning
        return None


def _on_thread(args: argparse.Namespace, settings) -> dict:
    """Plan ``args.request`` as a turn of the conversation ``args.thread`` (created on first use): the
    thread keeps the recording, the history and what was suggested, so a later "ok, fix it" on the
    same thread plans the suggestion. Nothing runs: the turn is plan-only."""
    from app.runtime import open_service

    if settings is None:
        raise CliError("--thread: settings unavailable (check the MIXPILOT_* environment)")
    with open_service(settings, with_memory=False) as svc:
        audio_id = svc.import_audio(args.audio) if args.audio else None
        note = None
        ctx = svc.thread_context(args.thread)
        if audio_id is None and not (ctx or {}).get("current_id"):
            note = (
                f"no conversation '{args.thread}' yet: started a new thread; attach a recording with --audio"
                if ctx is None
                else f"thread '{args.thread}' has no recording yet: attach one with --audio"
            )
        result = svc.turn(args.request, thread_id=args.thread, audio_id=audio_id, plan_only=True)
    out = _contract(result.plan)
    if note:
        out["notes"].append(note)
    return out


def _contract(plan: dict) -> dict:
    from agents.plan import Plan

    return Plan.model_validate(plan).to_json()


def _human(plan) -> str:
    if plan.kind != "process":
        lines = [plan.answer or ""]
        if plan.checks:
            lines.append(f"  {plan.checks['platform']}: {'ready' if plan.checks['ready'] else 'not ready'}")
        for s in plan.suggested_steps:
            lines.append(f"  suggested: {s.tool} " + " ".join(f"{k}={v}" for k, v in s.params.items()))
        for f in plan.findings:
            lines.append(f"  found: {f.get('problem')} ({f.get('severity')}): {f.get('evidence')}")
        return "\n".join(lines)
    lines = [f"plan ({plan.source}):" if plan.steps else f"no steps ({plan.source})"]
    for i, s in enumerate(plan.steps, 1):
        params = " ".join(
            f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in s.params.items()
        )
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
    if args.thread and args.batch is not None:
        raise CliError("--thread plans one request at a time; drop --batch")
    if args.audio and not Path(args.audio).is_file():
        raise CliError(f"--audio: no such file '{args.audio}'")
    settings = _settings()
    if args.thread:
        out = _on_thread(args, settings)
        print(json.dumps(out, allow_nan=False) if args.json else _human(_plan_of(out)))
        return 0
    analysis, diagnosis = _listen(args.audio)

    from agents.planner import make_plan

    def plan_one(request: str):
        return make_plan(
            request,
            analysis=analysis,
            diagnosis=diagnosis,
            settings=settings,
            allow_unavailable=args.all_tools,
        )

    if args.batch is not None:
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")  # noqa: SIM115 - closed below unless stdin
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


def _plan_of(out: dict):
    from agents.plan import Plan

    return Plan.model_validate(out)
