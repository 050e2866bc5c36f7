"""`mixpilot diagnose FILE [--json]`: what is wrong (or not) with a recording, and the measurements."""

from __future__ import annotations

import argparse
import json

#: facts shown in the human output (all of them are in --json)
KEY_FACTS = (
    ("integrated_lufs", "LUFS"),
    ("true_peak_dbtp", "dBTP"),
    ("lra_lu", "LU"),
    ("plr_db", "dB"),
    ("rms_dbfs", "dBFS"),
    ("noise_floor_dbfs", "dBFS"),
    ("snr_db", "dB"),
    ("bandwidth_hz", "Hz"),
    ("stereo_correlation", ""),
    ("mono_loss_db", "dB"),
    ("content", ""),
    ("duration_s", "s"),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diagnose", help="find problems in a recording (noise, hum, clipping, tone, loudness, ...)"
    )
    p.add_argument("file", help="audio file (WAV, FLAC, OGG, MP3, AIFF; M4A with ffmpeg)")
    p.add_argument("--json", action="store_true", help='print {"findings": [...], "facts": {...}}')
    p.add_argument(
        "--genre", default=None, help="genre for the tonal target of music (e.g. pop, hip hop, classical)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.console import Progress, fmt_value, max_duration_s, print_table
    from tools.audio import load
    from tools.diagnose import diagnose

    with Progress(f"diagnosing {args.file}", quiet=args.quiet or args.json) as progress:
        audio = load(args.file, max_duration_s=max_duration_s())
        progress(0.3, "diagnosing")
        result = diagnose(audio, genre=args.genre).to_dict()
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0
    findings = result["findings"]
    if findings:
        for f in findings:
            print(f"{f['problem']:<18} {f['severity']:.2f}  {f['evidence']}")
    else:
        print("no problems found")
    facts = result["facts"]
    rows = [
        (
            key.rsplit("_", 1)[0].replace("_", " ") if unit else key.replace("_", " "),
            f"{fmt_value(facts.get(key))} {unit}".strip(),
        )
        for key, unit in KEY_FACTS
    ]
    print_table(rows, title=args.file)
    return 0
