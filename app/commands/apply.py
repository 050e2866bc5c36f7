"""`mixpilot apply FILE --tool NAME [--param k=v ...] -o OUT`: run one tool on a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.errors import CliError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="run one tool on a file and write the result")
    p.add_argument("file", help="input audio file")
    p.add_argument("--tool", "-t", required=True, help="canonical tool name (see `mixpilot tools`)")
    p.add_argument("--param", "-p", action="append", metavar="KEY=VALUE", help="tool parameter (repeatable)")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        metavar="NAME=FILE",
        help="second input a tool needs, e.g. voice=vocal.wav or reference=ref.flac",
    )
    p.add_argument("-o", "--output", required=True, help="output file")
    add_output_args(p)
    p.add_argument("--json", action="store_true", help="print the tool's report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format", choices=["wav", "flac", "mp3"], help="output format (default: from the extension)"
    )
    p.add_argument("--bit-depth", type=int, choices=[16, 24, 32], help="WAV 16/24/32 (float), FLAC 16/24")
    p.add_argument("--mp3-bitrate", type=int, default=320, help="MP3 bitrate in kbps (default 320)")


def output_plan(args: argparse.Namespace) -> tuple[Path, str, int | None]:
    """Check the output path and format before any work is done."""
    from tools.audio import MP3_BITRATES_KBPS, WRITE_FORMATS

    out = Path(args.output)
    fmt = (args.format or out.suffix.lstrip(".")).lower()
    if fmt not in WRITE_FORMATS:
        raise CliError(f"cannot write '{out.name}': use a .wav, .flac or .mp3 name or --format")
    depth = args.bit_depth
    if fmt == "mp3":
        if args.mp3_bitrate not in MP3_BITRATES_KBPS:
            raise CliError(f"--mp3-bitrate {args.mp3_bitrate}: choose one of {MP3_BITRATES_KBPS}")
    elif depth is not None and depth not in WRITE_FORMATS[fmt]:
        raise CliError(f"--bit-depth {depth} is not available for {fmt.upper()}: choose {WRITE_FORMATS[fmt]}")
    if not out.parent.exists():
        raise CliError(f"{out.parent}: output folder does not exist")
    if out.exists() and out.is_dir():
        raise CliError(f"{out}: is a folder")
    return out, fmt, depth


def run(args: argparse.Namespace) -> int:
    from app.console import Progress, fmt_value, max_duration_s, parse_kv, print_table
    from tools.audio import load, save
    from tools.registry import ToolContext, default_registry

    out, fmt, depth = output_plan(args)
    reg = default_registry()
    spec = reg[args.tool]
    params = spec.parse_params(parse_kv(args.param))
    ok, why = spec.availability()
    if not ok:
        raise CliError(f"{spec.name} is unavailable here: {why}")
    inputs = {}
    for name, path in parse_kv(args.input, "--input").items():
        inputs[name] = load(str(path), max_duration_s=max_duration_s(), require_signal=True)
    missing = [k for k in spec.needs_inputs if k not in inputs]
    if missing:
        raise CliError(f"{spec.name} needs --input {missing[0]}=FILE")

    with Progress(f"{spec.name}", quiet=args.quiet) as progress:
        audio = load(args.file, max_duration_s=max_duration_s(), require_signal=True)
        result = spec(audio, params, ToolContext(inputs=inputs, progress=progress))
        progress(0.99, "writing")
        save(result.audio, out, format=fmt, bit_depth=depth, mp3_bitrate_kbps=args.mp3_bitrate)

    if args.json:
        print(
            json.dumps(
                {
                    "tool": spec.name,
                    "params": params.model_dump(mode="json"),
                    "output": str(out),
                    "report": result.report,
                    "warnings": result.warnings,
                },
                default=str,
            )
        )
    else:
        rows = [(k.replace("_", " "), fmt_value(v)) for k, v in result.report.items()]
        rows.append(("output", str(out)))
        print_table(rows, title=f"{spec.name}")
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0
