"""Denoise benchmark on the real noisy/clean speech pairs in ../shared/fixtures.

    .venv/bin/python bench/denoise.py

Per file and mean: PESQ (wb), STOI and DNSMOS OVRL for the noisy input, our `denoise`
(auto: DeepFilterNet 3, delay-compensated, strength 0.6 → 40 dB attenuation limit),
plain DFN3 (no attenuation limit) and noisereduce (non-stationary and stationary,
prop_decrease 0.6), plus each method's real-time factor on this CPU. Timings are noisy
on a shared machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import shared_fixtures_dir
from tools import deepfilter
from tools import metrics as M
from tools.audio import Audio
from tools.registry import get_tool


def methods():
    import noisereduce as nr

    den = get_tool("denoise")
    return {
        "ours": lambda x, sr: den(Audio(x, sr)).audio.samples[0],
        "dfn3_plain": lambda x, sr: deepfilter.enhance(x, sr, atten_lim_db=100.0)[0][0],
        "nr_nonstat": lambda x, sr: nr.reduce_noise(
            y=x, sr=sr, stationary=False, prop_decrease=0.6, n_jobs=1
        ),
        "nr_stat": lambda x, sr: nr.reduce_noise(y=x, sr=sr, stationary=True, prop_decrease=0.6, n_jobs=1),
    }


def main() -> int:
    root = shared_fixtures_dir() / "speech_pairs"
    files = sorted((root / "vbdemand" / "noisy").glob("*.wav")) + sorted(
        (root / "babble" / "noisy").glob("*.wav")
    )
    if not files:
        print(f"no speech pairs under {root}; nothing to benchmark")
        return 0
    ms = methods()
    names = ["noisy", *ms]
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in names}
    rtf: dict[str, list[float]] = {k: [] for k in ms}
    head = f"{'file':<22}" + "".join(f"{n:>26}" for n in names)
    print("PESQ-wb / STOI / DNSMOS-OVRL")
    print(head)
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        c, _ = sf.read(f.parent.parent / "clean" / f.name, dtype="float32")
        n = min(x.size, c.size)
        x, c = x[:n], c[:n]
        outs = {"noisy": x}
        for k, fn in ms.items():
            t = time.perf_counter()
            outs[k] = np.asarray(fn(x, sr), dtype=np.float32)[:n]
            rtf[k].append((time.perf_counter() - t) / (n / sr))
        line = f"{f.parent.parent.name + '/' + f.name:<22}"
        for k in names:
            y = outs[k]
            m = (M.pesq_wb(y, c, sr), M.stoi(y, c, sr), M.dnsmos(y, sr)["ovrl"])
            rows[k].append(m)
            line += f"{m[0]:>10.3f}{m[1]:>8.3f}{m[2]:>8.3f}"
        print(line, flush=True)
    mean = {k: np.mean(np.array(v), axis=0) for k, v in rows.items()}
    print(f"{'mean':<22}" + "".join(f"{m[0]:>10.3f}{m[1]:>8.3f}{m[2]:>8.3f}" for m in mean.values()))
    print()
    print("gain over noisy (mean):  PESQ-wb   STOI   DNSMOS-OVRL   median RTF")
    for k in ms:
        d = mean[k] - mean["noisy"]
        print(f"  {k:<20} {d[0]:+8.3f} {d[1]:+7.3f} {d[2]:+10.3f} {np.median(rtf[k]):>12.3f}")
    d = mean["ours"] - mean["noisy"]
    ok = d[0] >= 0.35 and d[2] >= 1.0 and d[1] >= 0
    print(f"\ntargets (PESQ ≥ +0.35, DNSMOS OVRL ≥ +1.0, STOI not lower): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
