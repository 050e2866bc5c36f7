"""Benchmark: recall and false alarms of `tools.diagnose.diagnose` on a labelled set.

    .venv/bin/python bench/diagnose.py [--quick] [--verbose]

The labelled set is built from ../shared/fixtures (skipped with a message when absent):

* CLEAN: every recording in music/, instruments/, speech/, vocals/ and the clean halves of
  speech_pairs/ (vbdemand, babble, dfn, noizeus). Any repair finding (noise, hum, clipping,
  bandlimited, reverb) on one of them is a false alarm; tonal findings are counted apart.
* DEGRADED copies of the clean recordings (8 s from the middle, seeded per file): noise (white,
  pink, brown, real noise from fixtures/noise/) at 5, 10 and 20 dB SNR; hard clipping at 70, 50,
  30 and 15 % of the peak; low-pass at 4, 6 and 8 kHz (where that is under 0.7 x Nyquist); the
  8 kHz phone band (down to 8 kHz, 300-3400 Hz band-pass, back up); 50 and 60 Hz hum with
  harmonics 30, 20 and 10 dB under the signal; reverb on speech (exponentially decaying noise
  impulse response, RT60 0.4, 0.8 and 1.5 s, tail 6 dB under / level with the direct sound).
* REAL noisy recordings: the noisy halves of speech_pairs/ (a sample of NOIZEUS), for recall only.

Files are split into a tuning half and a check half by a hash of the source file name (every
degraded copy stays in its source's half); both are reported. `--quick` keeps one severity per
degradation and every third source.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.degrade import NoiseBank, add_noise, band_limit, clip, coloured_noise, hum, reverb  # noqa: E402
from tools.audio import Audio, load, resample  # noqa: E402
from tools.diagnose import REPAIR_PROBLEMS, diagnose  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
CLEAN_DIRS = ("music", "instruments", "speech", "vocals")
PAIR_SETS = ("vbdemand", "babble", "dfn", "noizeus")
GOAL_RECALL = 0.9
GOAL_FALSE_ALARM = 0.1


def half_of(source: str) -> str:
    return "tune" if int(hashlib.md5(source.encode()).hexdigest(), 16) % 2 == 0 else "check"


def clean_files() -> list[Path]:
    out: list[Path] = []
    for d in CLEAN_DIRS:
        out += sorted(p for p in (FIXTURES / d).glob("*") if p.suffix in (".flac", ".wav"))
    for s in PAIR_SETS:
        out += sorted((FIXTURES / "speech_pairs" / s / "clean").glob("*.wav"))
    return out


def real_noisy_files() -> list[Path]:
    out: list[Path] = []
    for s in ("vbdemand", "babble", "dfn"):
        out += sorted((FIXTURES / "speech_pairs" / s / "noisy").glob("*.wav"))
    noizeus = sorted((FIXTURES / "speech_pairs" / "noizeus" / "noisy").glob("*/*.wav"))
    out += noizeus[::8]
    return out


def middle(a: Audio, seconds: float = 8.0) -> np.ndarray:
    """Mono float64 excerpt of `seconds` from the middle of `a`."""
    x = a.mono().samples[0].astype(np.float64)
    n = int(seconds * a.sample_rate)
    if x.size > n:
        s = (x.size - n) // 2
        x = x[s : s + n]
    return x


def phone(x: np.ndarray, sr: int) -> np.ndarray:
    y = resample(x[None, :].astype(np.float32), sr, 8000)[0]
    y = band_limit(y, 8000, 300.0, 3400.0, order=6)
    return resample(y[None, :], 8000, sr)[0][: x.size]


def degradations(
    x: np.ndarray, sr: int, speech: bool, seed: int, bank: NoiseBank | None, quick: bool
) -> list[tuple[str, str, np.ndarray]]:
    """(label, family, signal) for one clean excerpt."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str, np.ndarray]] = []
    snrs = (10.0,) if quick else (5.0, 10.0, 20.0)
    for kind in ("white", "pink", "brown", "real"):
        for snr in snrs:
            if kind == "real":
                nz = bank.sample(x.size, rng) if bank is not None else coloured_noise(x.size, "pink", rng)
            elif kind == "brown":  # 1/f^2 from 20 Hz up: raw 1/f^2 puts ~97 % of its power under 1 Hz
                nz = band_limit(coloured_noise(x.size, kind, rng), sr, 20.0, None, order=4)
            else:
                nz = coloured_noise(x.size, kind, rng)
            out.append(("noise", f"noise_{kind}_{snr:.0f}dB", add_noise(x, nz, snr)))
    # raw 1/f^2 (mostly infrasonic drift): reported apart, not in the noise recall
    out.append(("rumble", "brown_raw_10dB", add_noise(x, coloured_noise(x.size, "brown", rng), 10.0)))
    for level in (0.3,) if quick else (0.7, 0.5, 0.3, 0.15):
        out.append(("clipping", f"clip_{level:.2f}", clip(x, level)))
    for cut in (4000.0,) if quick else (4000.0, 6000.0, 8000.0):
        if cut < 0.7 * sr / 2:
            out.append(("bandlimited", f"lowpass_{cut / 1000:.0f}k", band_limit(x, sr, None, cut)))
    if 0.7 * sr / 2 > 3400.0:
        out.append(("bandlimited", "phone_8k", phone(x, sr)))
    for mains in (50.0, 60.0):
        for snr in (20.0,) if quick else (30.0, 20.0, 10.0):
            out.append(
                ("hum", f"hum_{mains:.0f}_{snr:.0f}dB", add_noise(x, hum(x.size, sr, mains, rng), snr))
            )
    if speech:
        for rt in (0.8,) if quick else (0.4, 0.8, 1.5):
            for wet in (-6.0,) if quick else (-6.0, 0.0):
                out.append(("reverb", f"reverb_{rt:.1f}s_{wet:.0f}dB", reverb(x, sr, rt, wet, rng)))
    return out


def as_audio(y: np.ndarray, sr: int) -> Audio:
    y = np.asarray(y, dtype=np.float64)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:  # keep degraded copies inside full scale (clipping copies are already under their source)
        y = y * (0.99 / peak)
    return Audio(y.astype(np.float32), sr)


def items(quick: bool) -> Iterator[tuple[str, str, str | None, str, str, Audio]]:
    """(half, group, label, family, name, audio) for every file of the labelled set."""
    noise_paths = sorted(p for p in (FIXTURES / "noise").glob("*") if p.suffix in (".wav", ".flac"))
    bank_cache: dict[int, NoiseBank] = {}
    for i, path in enumerate(clean_files()):
        a = load(path)
        half = half_of(path.name)
        rel = str(path.relative_to(FIXTURES))
        yield half, "clean", None, rel.split("/")[0], rel, a
        if quick and i % 3:
            continue
        sr = a.sample_rate
        x = middle(a)
        if np.max(np.abs(x)) == 0:
            continue
        speech = rel.split("/")[0] in ("speech", "speech_pairs")  # reverb goes on speech only
        if sr not in bank_cache:
            bank_cache[sr] = NoiseBank(noise_paths, sr)
        seed = int(hashlib.md5(path.name.encode()).hexdigest()[:8], 16)
        for label, family, y in degradations(x, sr, speech, seed, bank_cache[sr], quick):
            yield half, "degraded", label, family, f"{rel} {family}", as_audio(y, sr)
    for path in real_noisy_files():
        rel = str(path.relative_to(FIXTURES))
        yield half_of(path.name), "real", "noise", rel.split("/")[1], rel, load(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one severity per degradation, every third source")
    ap.add_argument("--verbose", action="store_true", help="print every miss and false alarm")
    args = ap.parse_args()
    if not FIXTURES.is_dir():
        print(f"skipped: real recordings not found at {FIXTURES}")
        return
    t0 = time.perf_counter()
    rows: list[
        tuple[str, str, str | None, str, list[str], str]
    ] = []  # half, group, label, family, problems, name
    times: list[float] = []
    for half, group, label, family, name, audio in items(args.quick):
        t = time.perf_counter()
        d = diagnose(audio)
        times.append(time.perf_counter() - t)
        rows.append((half, group, label, family, [f.problem for f in d.findings], name))

    for half in ("tune", "check"):
        sel = [r for r in rows if r[0] == half]
        print(f"\n=== {half} half ({len(sel)} files)")
        # recall per problem and per family
        per: dict[str, list[bool]] = defaultdict(list)
        fam: dict[str, list[bool]] = defaultdict(list)
        for _, group, label, family, probs, name in sel:
            if group != "degraded" or label is None:
                continue
            hit = (label if label != "rumble" else "noise") in probs
            per[label].append(hit)
            fam[family.rsplit("_", 1)[0] if label in ("noise", "hum", "rumble") else family].append(hit)
            if not hit and args.verbose:
                print(f"  miss {label:12s} {name}: {probs}")
        for label in (*REPAIR_PROBLEMS, "rumble"):
            v = per.get(label, [])
            if v:
                r = float(np.mean(v))
                goal = (
                    "no goal (infrasonic)"
                    if label == "rumble"
                    else f"goal >= {GOAL_RECALL}: {'MET' if r >= GOAL_RECALL else 'NOT MET'}"
                )
                print(f"  recall {label:12s} {r:5.2f}  ({sum(v)}/{len(v)})  {goal}")
        print("  by degradation: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in sorted(fam.items())))
        real = [label in probs for _, group, label, _, probs, _ in sel if group == "real"]
        if real:
            print(f"  real noisy recordings with `noise`: {np.mean(real):.2f} ({sum(real)}/{len(real)})")
        cl = [r for r in sel if r[1] == "clean"]
        fa = [r for r in cl if any(p in REPAIR_PROBLEMS for p in r[4])]
        rate = len(fa) / max(len(cl), 1)
        print(
            f"  false alarms on clean: {rate:.2f} ({len(fa)}/{len(cl)})  goal <= {GOAL_FALSE_ALARM}: "
            f"{'MET' if rate <= GOAL_FALSE_ALARM else 'NOT MET'}"
        )
        for r in fa:
            print(f"    {r[5]}: {[p for p in r[4] if p in REPAIR_PROBLEMS]}")
        tonal: dict[str, int] = defaultdict(int)
        for r in cl:
            for p in r[4]:
                if p not in REPAIR_PROBLEMS:
                    tonal[p] += 1
        print(
            "  other findings on clean files: "
            + (", ".join(f"{k} {v}/{len(cl)}" for k, v in sorted(tonal.items())) or "none")
        )
    print(
        f"\n{len(rows)} diagnoses, median {np.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
        f"total {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
