"""Benchmark `restore` (routed by diagnosis) per degradation family, against the Op-GAN alone.

    .venv/bin/python bench/restore.py [--split tune|heldout|all] [--seconds 4] [--per-set 0]
                                      [--severity 0.5] [--families noise,clipping,...] [--json out.json]

Clips: real recordings from ../shared/fixtures never used to train the Op-GAN (see
models/train_opgan.py EVAL_GLOBS): LibriSpeech speech, the music excerpts and the EBU SQAM
instruments, each cut to ``--seconds`` from its middle, mono, 16 kHz (the Op-GAN's rate),
peak 0.5. Within each set the even-numbered clips are the **tuning** split (the routing
table in tools/restore.py was chosen on it) and the odd-numbered ones the **held-out**
split (checked once, not tuned on).

Families (models/degrade.py at ``--severity``, seeded): noise = white, pink, brown and real
noise (recordings held out of training) at 10 dB SNR for severity 0.5; clipping (at 37.5 %
of the peak); lowpass = 3.8 kHz and 5.3 kHz low-pass; phone = 300-3400 Hz; plus hum and
reverb (outside the goal) and clean.

Columns: mean SI-SDR change (dB) against the degraded input for
- ``router``: restore with ``refine="never"`` (diagnosis → specialised tools only),
- ``opgan``: the Op-GAN generator alone (``mode="opgan"``, the old blind restore),
- ``router+opgan``: the router's output refined by the Op-GAN after any repair (``refine="always"``),
- ``restore``: what restore ships (refinement only for the problems in REFINE_AFTER),
- ``told``: the router told the family's problem (``problems=[...]``), i.e. with a perfect
  detector (clean/hum/reverb: the same as router when the detector is right).
Clean: SI-SDR (dB) of restore's output against its input (goal ≥ 30 dB). Goal on the four
families noise, clipping, lowpass, phone: mean change ≥ +3 dB, none below −0.5 dB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.degrade import NoiseBank, apply_family  # noqa: E402
from models.train_opgan import EVAL_NOISES  # noqa: E402
from tools.audio import Audio, load, resample  # noqa: E402
from tools.metrics import si_sdr  # noqa: E402
from tools.registry import get_tool  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
SR = 16000
GOAL_FAMILIES = ("noise", "clipping", "lowpass", "phone")
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("white_noise", "pink_noise", "brown_noise", "real_noise"),
    "clipping": ("clipping",),
    "lowpass": ("lowpass_8k", "lowpass_11k"),
    "phone": ("phone",),
    "hum": ("hum",),
    "reverb": ("reverb",),
    "clean": (),
}
#: the problem a perfect detector would report for each family
PROBLEM = {
    "noise": "noise",
    "clipping": "clipping",
    "lowpass": "bandlimited",
    "phone": "bandlimited",
    "hum": "hum",
    "reverb": "reverb",
}
VARIANTS = ("router", "opgan", "router+opgan", "restore", "told")


def eval_clips(seconds: float, per_set: int, split: str = "all") -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, mono 16 kHz excerpt) for the evaluation clips of ``split`` (tune: even, heldout: odd)."""
    sets = (
        ("speech", "speech/librispeech_*"),
        ("music", "music/*.flac"),
        ("music", "instruments/a[0-9]*.flac"),
    )
    out = []
    for kind, g in sets:
        paths = sorted(FIXTURES.glob(g))
        if split == "tune":
            paths = paths[0::2]
        elif split == "heldout":
            paths = paths[1::2]
        if per_set:
            paths = paths[:per_set]
        for p in paths:
            a = load(p).mono()
            x = a.samples[0] if a.sample_rate == SR else resample(a.samples, a.sample_rate, SR)[0]
            n = int(seconds * SR)
            i = max(0, x.size // 2 - n // 2)
            x = x[i : i + n]
            x = x / (np.max(np.abs(x)) + 1e-9) * 0.5
            out.append((kind, str(p.relative_to(FIXTURES)), x.astype(np.float32)))
    return out


def measure(x: np.ndarray, y: np.ndarray, family: str, restore) -> dict:
    """SI-SDR change of each variant on one degraded clip (clean: output vs input)."""
    a = Audio(y, SR)
    routed = restore(a, {"refine": "never"})
    r = routed.audio.samples[0]
    ran = bool(routed.report["steps"])
    ref = restore(a, {"refine": "always"}).audio.samples[0] if ran else r
    op = restore(a, {"mode": "opgan"}).audio.samples[0]
    # what restore ships: the same chain, refined only when its rule says so
    shipped = restore(a).audio.samples[0] if ran else r
    row = {
        "found": [f["problem"] for f in routed.report["found"]],
        "ran": [s["tool"] for s in routed.report["steps"]],
        "measurements": {f["problem"]: f["measurements"] for f in routed.report["found"]},
        "speech_probability": routed.report.get("speech_probability"),
    }
    if family == "clean":
        row.update(
            {
                v: si_sdr(o, x)
                for v, o in (("router", r), ("opgan", op), ("router+opgan", ref), ("restore", shipped))
            }
        )
        row["told"] = row["router"]
        return row
    told = restore(a, {"problems": [PROBLEM[family]], "refine": "never"}).audio.samples[0]
    base = si_sdr(y, x)
    row.update(
        {
            "degraded": base,
            "router": si_sdr(r, x) - base,
            "opgan": si_sdr(op, x) - base,
            "router+opgan": si_sdr(ref, x) - base,
            "restore": si_sdr(shipped, x) - base,
            "told": si_sdr(told, x) - base,
        }
    )
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "heldout", "all"), default="heldout")
    ap.add_argument("--seconds", type=float, default=4.0, help="excerpt length per clip")
    ap.add_argument("--per-set", type=int, default=0, help="clips per set (0 = all)")
    ap.add_argument("--severity", type=float, default=0.5, help="degradation severity 0..1")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = ap.parse_args(argv)
    from app.settings import Settings
    from models.weights import use_sources

    use_sources(
        Settings().weight_sources()
    )  # MIXPILOT_OPGAN_WEIGHTS and the model folders, as the CLI reads them
    if not FIXTURES.is_dir():
        print(f"evaluation clips not found at {FIXTURES}; nothing to measure")
        return 0
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        ap.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    bank = NoiseBank([p for p in sorted((FIXTURES / "noise").glob("*")) if p.name in EVAL_NOISES], SR)
    restore = get_tool("restore")
    clips = eval_clips(args.seconds, args.per_set, args.split)
    print(
        f"{args.split} split: {len(clips)} clips, {args.seconds:g} s each, mono {SR} Hz, severity {args.severity:g}"
    )
    rows = []
    t0 = time.perf_counter()
    for fam in families:
        for si, sub in enumerate(FAMILIES[fam] or ("clean",)):
            for ci, (kind, name, x) in enumerate(clips):
                rng = np.random.default_rng(1000 * si + 7 * ci + 1)
                y = x if fam == "clean" else apply_family(x, SR, sub, rng, bank, severity=args.severity)
                row = measure(x, y, fam, restore)
                row.update(family=fam, degradation=sub, kind=kind, clip=name)
                rows.append(row)
        print(f"  {fam} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    def mean(sel: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in sel]))

    print(f"\nSI-SDR change vs the degraded input, dB (mean over clips; {args.split} split)")
    print(f"{'family':<10}{'n':>4}{'degraded':>10}" + "".join(f"{v:>14}" for v in VARIANTS) + "  detected")
    table: dict[str, dict[str, float]] = {}
    for fam in families:
        sel = [r for r in rows if r["family"] == fam]
        if fam == "clean":
            continue
        table[fam] = {v: mean(sel, v) for v in VARIANTS}
        hit = np.mean([PROBLEM[fam] in r["found"] for r in sel])
        print(
            f"{fam:<10}{len(sel):>4}{mean(sel, 'degraded'):>10.2f}"
            + "".join(f"{table[fam][v]:>+14.2f}" for v in VARIANTS)
            + f"  {hit:.0%}"
        )
    goal = [f for f in GOAL_FAMILIES if f in table]
    if goal:
        print(f"\nover {', '.join(goal)} (goal: mean ≥ +3 dB, no family below −0.5 dB):")
        for v in VARIANTS:
            vals = [table[f][v] for f in goal]
            ok = np.mean(vals) >= 3.0 and min(vals) >= -0.5
            print(
                f"  {v:<13} mean {np.mean(vals):+.2f} dB, worst {min(vals):+.2f} dB  {'meets' if ok else 'misses'}"
            )
    clean = [r for r in rows if r["family"] == "clean"]
    if clean:
        clean_db = np.array([r["restore"] for r in clean])
        print(
            f"\nclean ({len(clean)} clips): restore output vs input SI-SDR min {clean_db.min():.1f} dB, "
            f"median {np.median(clean_db):.1f} dB; ≥ 30 dB on {np.sum(clean_db >= 30)}/{len(clean_db)} (goal: all)"
        )
        for r in clean:
            if r["restore"] < 30:
                print(f"  {r['clip']}: {r['restore']:.1f} dB; found {r['found']}, ran {r['ran']}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"split": args.split, "severity": args.severity, "rows": rows, "table": table},
                indent=1,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
