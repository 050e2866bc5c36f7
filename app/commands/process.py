"""`mixpilot process FILE "REQUEST" -o OUT`: plan, run, explain, with before/after metrics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.commands.apply import add_output_args, output_plan

SHOWN = [
    ("integrated_lufs", "loudness", "LUFS"),
    ("true_peak_dbtp", "true peak", "dBTP"),
    ("lra_lu", "LRA", "LU"),
    ("snr_db", "SNR", "dB"),
    ("clipping_ratio", "clipping", ""),
    ("spectral_centroid_hz", "centroid", "Hz"),
    ("stereo_correlation", "correlation", ""),
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("process", help="plan and run a request on a file, explain what was done")
    p.add_argument("file", help="input audio file")
    p.add_argument("request", help='what you want, e.g. "clean and master this in a pop style"')
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        metavar="NAME=FILE",
        help="second input: voice=vocal.wav (mix, sidechain) or reference=ref.flac",
    )
    p.add_argument(
        "--thread",
        metavar="NAME",
        help="conversation name, created on first use; the same NAME continues it ('ok, fix it' runs "
        "what was suggested)",
    )
    add_output_args(p)
    p.add_argument("--json", action="store_true", help="print the turn result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def metrics_rows(before: dict, after: dict) -> list[tuple[str, str]]:
    from app.console import fmt_value

    rows = []
    for key, label, unit in SHOWN:
        if key in before or key in after:
            rows.append((label, f"{fmt_value(before.get(key))} → {fmt_value(after.get(key))} {unit}".strip()))
    return rows


def progress_printer(progress):
    """A service `on_event` that drives the CLI bar with the turn's overall fraction
    (`agents.progress.overall`: stages and steps weighted by what they cost)."""
    from agents.progress import overall

    state = {"at": 0.0}

    def on_event(e: dict) -> None:
        kind = e.get("event")
        if kind not in ("stage", "step_started", "step_progress", "step_finished"):
            return
        state["at"] = overall(e, state["at"])
        if kind == "stage":
            what = str(e["stage"])
        else:
            what = f"{e['tool']} ({e['index'] + 1}/{e['total']}) {e.get('message') or ''}".strip()
        progress(state["at"], what)

    return on_event


def _write_stems(svc, result, audio_id: str | None, out: Path, fmt: str, depth, mp3_kbps) -> dict[str, Path]:
    """ "separate the stems": the stems beside the output (``song.vocals.wav``, ...). Only when the separation
    kept the mix and was the turn's first step, so the stems are of the recording as it came in (the
    service's cache holds that separation: no second run)."""
    done = [s for s in result.steps if s.get("status") in ("applied", "trimmed")]
    if (
        not done
        or done[0].get("tool") != "separate"
        or (done[0].get("params") or {}).get("keep", "mix") != "mix"
    ):
        return {}
    if not audio_id:  # a thread's later version: `mixpilot apply FILE --tool separate` splits any file
        return {}
    written: dict[str, Path] = {}
    for name, version in svc.stems(audio_id).items():
        path = out.with_name(f"{out.stem}.{name}{out.suffix}")
        svc.export(version, path, format=fmt, bit_depth=depth, mp3_bitrate_kbps=mp3_kbps)
        written[name] = path
    return written


def run(args: argparse.Namespace) -> int:
    from app.console import Progress, parse_kv, print_table
    from app.runtime import open_service
    from app.settings import Settings

    out, fmt, depth = output_plan(args)
    with open_service(Settings()) as svc:
        audio_id: str | None = svc.import_audio(args.file)
        if args.thread:  # the same recording on a known thread continues from its current version
            ctx = svc.thread_context(args.thread)
            if ctx is not None and audio_id in (ctx.get("current_id"), ctx.get("original_id")):
                audio_id = None
        inputs = {name: svc.import_audio(str(path)) for name, path in parse_kv(args.input, "--input").items()}
        with Progress("working", quiet=args.quiet or args.json) as progress:
            result = svc.turn(
                args.request,
                thread_id=args.thread,
                audio_id=audio_id,
                inputs=inputs,
                on_event=progress_printer(progress),
            )
            wrote = bool(result.output_id) and result.kind not in ("answer", "clarify", "none")
            if wrote and result.output_id:
                svc.export(
                    result.output_id, out, format=fmt, bit_depth=depth, mp3_bitrate_kbps=args.mp3_bitrate
                )
            stems = _write_stems(svc, result, audio_id, out, fmt, depth, args.mp3_bitrate) if wrote else {}
    if args.json:
        d = result.to_dict()
        d["output"] = str(out) if wrote else None
        d["stems"] = {k: str(v) for k, v in stems.items()}
        print(json.dumps(d, default=str))
        return 0
    print(result.explanation)
    if result.metrics_after:
        print_table(metrics_rows(result.metrics_before, result.metrics_after), title="before → after")
    if wrote:
        print(f"written: {out}   (thread {result.thread_id})")
        for name, path in stems.items():
            print(f"  {name} stem: {path}")
    elif result.kind in ("answer", "clarify", "none"):
        print(
            f"nothing was written: {result.kind} turn, no audio change (thread {result.thread_id})",
            file=sys.stderr,
        )
    else:
        print("nothing was written: the request asked for no audio change", file=sys.stderr)
    return 0
