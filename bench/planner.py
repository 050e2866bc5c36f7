"""Planner latency and start-up.

    .venv/bin/python bench/planner.py [--repeat 5]

Prints: accuracy on tests/data/planner_cases.yaml; median and p95 plan latency over the test
set after a warm-up (goal: p95 ≤ 30 ms), split into requests the vocabulary covers and those
that go to the sentence embedder; start-up to the first plan in a fresh process (import +
first plan, vocabulary path and embedder path) and the wall time of `mixpilot plan --json`.
Timings are wall-clock on a shared machine: expect noise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def fresh(code: str) -> tuple[float, float]:
    """(seconds reported by the child, wall seconds of the whole process)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return float(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from planner_eval import check_plan, load_cases

    from agents.planner import make_plan
    from agents.semantic import embedder
    from agents.semantic.intents import default_matcher

    matcher = default_matcher()

    data = load_cases()
    cases = data["cases"]
    # warm-up: every request once (compiles the vocabulary, loads the embedder where needed)
    ok = 0
    for c in cases:
        ok += not check_plan(make_plan(c["req"], analysis=c.get("analysis"), allow_unavailable=True), c)
    print(f"accuracy: {ok}/{len(cases)} = {ok / len(cases):.1%}")

    fast: list[float] = []
    emb: list[float] = []
    cpu: list[float] = []
    for c in cases:
        for _ in range(args.repeat):
            before = matcher.calls
            t, p = time.perf_counter(), time.process_time()
            make_plan(c["req"], analysis=c.get("analysis"), allow_unavailable=True)
            dt = (time.perf_counter() - t) * 1000
            cpu.append((time.process_time() - p) * 1000)
            (emb if matcher.calls > before else fast).append(dt)
    every = fast + emb
    print(f"plan latency over {len(cases)} requests x {args.repeat} (warm), ms:")
    for name, xs in (("all", every), ("vocabulary path", fast), ("embedder path", emb)):
        if xs:
            print(
                f"  {name:16s} n={len(xs):4d}  median {statistics.median(xs):6.2f}  p95 {pct(xs, 0.95):6.2f}  "
                f"max {max(xs):7.2f}"
            )
    print(
        f"  CPU time (less sensitive to other load): median {statistics.median(cpu):.2f}  p95 {pct(cpu, 0.95):.2f}"
    )
    print(f"  goal p95 <= 30 ms (wall): {'met' if pct(every, 0.95) <= 30 else 'NOT met'}")
    print(f"  embedder loaded in this process: {embedder._MODEL is not None}")

    t_vocab = [
        fresh(
            "import time; t=time.perf_counter(); from agents.planner import make_plan; "
            "make_plan('clean and master this in a pop style', allow_unavailable=True); "
            "print(time.perf_counter()-t)"
        )
        for _ in range(3)
    ]
    t_emb = [
        fresh(
            "import time; t=time.perf_counter(); from agents.planner import make_plan; "
            "make_plan('there is a fan running in the background', allow_unavailable=True); "
            "print(time.perf_counter()-t)"
        )
        for _ in range(3)
    ]
    mixpilot = str(Path(sys.executable).with_name("mixpilot"))
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(
            [mixpilot, "plan", "master this for Spotify", "--json"], capture_output=True, check=True
        )
        cli.append(time.perf_counter() - t)
    print("start-up to the first plan (fresh process, median of 3), s:")
    print(
        f"  vocabulary path: import+plan {statistics.median(x for x, _ in t_vocab):.3f}  "
        f"process wall {statistics.median(w for _, w in t_vocab):.3f}"
    )
    print(
        f"  embedder path:   import+load+plan {statistics.median(x for x, _ in t_emb):.3f}  "
        f"process wall {statistics.median(w for _, w in t_emb):.3f}"
    )
    print(f'  `mixpilot plan "master this for Spotify" --json` wall {statistics.median(cli):.3f}')


if __name__ == "__main__":
    main()
