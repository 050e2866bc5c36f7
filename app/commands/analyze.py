"""`mixpilot analyze FILE [--json]`: loudness, peaks, noise, tone and stereo facts of a recording."""

from __future__ import annotations

import argparse
import json

UNITS = {"_lufs": "LUFS", "_dbtp": "dBTP", "_dbfs": "dBFS", "_db": "dB", "_lu": "LU", "_hz": "Hz", "_s": "s"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="measure a recording (loudness, true peak, noise, tone, stereo)")
    p.add_argument("file", help="audio file (WAV, FLAC, OGG, MP3, AIFF; M4A with ffmpeg)")
    p.add_argument("--json", action="store_true", help="print one flat JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.console import Progress, fmt_value, max_duration_s, print_table
    from tools.analysis import analyze
    from tools.audio import load

    with Progress(f"analysing {args.file}", quiet=args.quiet or args.json) as progress:
        audio = load(args.file, max_duration_s=max_duration_s())
        progress(0.3, "analysing")
        result = analyze(audio).to_dict()
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0
    rows = []
    for key, value in result.items():
        unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), "")
        label = key
        for suffix in UNITS:
            if key.endswith(suffix):
                label = key[: -len(suffix)]
                break
        rows.append((label.replace("_", " "), f"{fmt_value(value)} {unit}".strip()))
    print_table(rows, title=args.file)
    return 0
