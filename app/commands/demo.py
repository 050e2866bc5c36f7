"""`mixpilot demo`: process the bundled example recording end to end and write the result."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example_song.flac"
DEMO_REQUEST = "clean and master this in a pop style"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="process the bundled example song and write the result")
    p.add_argument("-o", "--output", default="out/demo_master.wav", help="output file (default out/demo_master.wav)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.console import Progress, fmt_value, print_table
    from tools.analysis import analyze
    from tools.audio import load, save
    from tools.registry import ToolContext, default_registry

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    reg = default_registry()
    audio = load(EXAMPLE)
    before = analyze(audio).to_dict()
    chain = [("eq", {"presence_db": 1.5, "mud_db": -1.5}), ("master", {"target_lufs": -14.0, "true_peak_dbtp": -1.0})]
    done, skipped = [], []
    with Progress("demo", quiet=args.quiet) as progress:
        for i, (name, params) in enumerate(chain):
            spec = reg[name]
            ok, why = spec.availability()
            if not ok:
                skipped.append(f"{name} ({why})")
                continue
            progress(i / len(chain), f"{name}")
            audio = spec(audio, params, ToolContext()).audio
            done.append(name)
        save(audio, out, bit_depth=24)
    after = analyze(audio).to_dict()
    keys = ["integrated_lufs", "true_peak_dbtp", "lra_lu", "spectral_centroid_hz"]
    rows = [(k, f"{fmt_value(before[k])} → {fmt_value(after[k])}") for k in keys]
    rows.append(("steps run", ", ".join(done) or "none"))
    if skipped:
        rows.append(("skipped", "; ".join(skipped)))
    rows.append(("written", str(out)))
    print_table(rows, title=f"mixpilot demo: {EXAMPLE.name}")
    return 0
