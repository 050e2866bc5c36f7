"""Does memory learn what people like? And how fast does it recommend?

    .venv/bin/python bench/memory.py [--quick] [--postgres URL]

1. Learning. Two simulated listeners with hidden, opposite tastes rate results on real
   recordings (../shared/fixtures music, speech, vocals: 10 s excerpts; synthetic variety
   when the folder is absent):
     - "bright": bright, wide, loud (eq bright +3 dB, warm 0, width 1.5, −9 LUFS, compress 0.7)
     - "warm":   warm, narrow, dynamic (eq bright −2.5 dB, warm +3 dB, width 0.7, −18 LUFS, compress 0.15)
   Each round a listener gets a training excerpt; mixpilot recommends; the applied settings are
   the recommendation plus exploration (people ask for variations); the listener rates 1–5 by
   how close the applied settings are to their taste (plus rating noise); the turn and the rating
   are stored through the MemoryAgent (SQL + Chroma), as the product does. Three rating modes, each
   in a store of its own (`--ratings`, default all): overall + aspect ratings (tone from the eq
   settings, width, loudness from LUFS and compression, each by the same rule on that aspect's
   settings: the feedback form's aspects); overall + a comment in plain words on the setting
   furthest off ("too bright", "more width"; none when all are close or the rating is a 5), which
   memory reads as the follow-up request it would be (`comment_directions`); overall only.
   After 0, 5, 10, 20, 50
   ratings we print the normalised distance of the recommendation for *held-out* excerpts from
   each listener's taste. Goal: −60 % by 20 ratings; both listeners get different
   recommendations for the same track.
2. Latency. The store is filled to 10,000 vectors (jittered copies of the real embeddings, 200
   other users, rated configurations), then recommend() is timed on held-out excerpts
   (embedding cached, recommendation not cached). Goal: p95 < 50 ms.

Timings on a shared 2-core machine are noisy; run twice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.memory_agent import MemoryAgent, open_memory
from memory import db
from memory import features as F
from memory.cache import MemoryCache
from memory.storage import LocalAudioStore as AudioStore
from tools.audio import Audio, load

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
# (tool, param, neutral, scale for the distance, exploration sd)
PARAMS = [
    ("eq", "bright_db", 0.0, 6.0, 2.0),
    ("eq", "warm_db", 0.0, 6.0, 2.0),
    ("stereo_width", "width", 1.0, 1.0, 0.3),
    ("master", "target_lufs", -14.0, 12.0, 4.0),
    ("compress", "amount", 0.5, 1.0, 0.25),
]
BOUNDS = {
    "bright_db": (-12, 12),
    "warm_db": (-12, 12),
    "width": (0, 2),
    "target_lufs": (-30, -6),
    "amount": (0, 1),
}
LISTENERS = {"bright": np.array([3.0, 0.0, 1.5, -9.0, 0.7]), "warm": np.array([-2.5, 3.0, 0.7, -18.0, 0.15])}
SCALES = np.array([p[3] for p in PARAMS])
NEUTRAL = np.array([p[2] for p in PARAMS])
EXPLORE = np.array([p[4] for p in PARAMS])
CHECKPOINTS = (0, 5, 10, 20, 50)


def excerpts(seconds: float = 10.0, limit: int = 24) -> list[tuple[str, Audio]]:
    out: list[tuple[str, Audio]] = []
    if FIXTURES.is_dir():
        files = [
            p
            for sub in ("music", "speech", "vocals")
            for p in sorted((FIXTURES / sub).glob("*"))
            if p.suffix.lower() in (".flac", ".wav")
        ]
        for p in files:
            try:
                a = load(p, max_duration_s=None)
            except Exception:
                continue
            n = int(seconds * a.sample_rate)
            starts = [0] if a.frames <= 2 * n else [a.frames // 4, a.frames // 2]
            for s in starts:
                seg = a.samples[:, s : s + n]
                if seg.shape[1] >= a.sample_rate:
                    out.append(
                        (
                            f"{p.parent.name}/{p.stem[:24]}@{s / a.sample_rate:.0f}s",
                            Audio(samples=np.ascontiguousarray(seg), sample_rate=a.sample_rate),
                        )
                    )
        if out:
            rng = np.random.default_rng(0)
            rng.shuffle(out)
            return out[:limit]
    print(f"(no fixtures at {FIXTURES}: synthetic variety)")
    from scipy.signal import lfilter

    rng = np.random.default_rng(0)
    for i in range(limit):
        sr = 44100
        n = int(seconds * sr)
        tilt = rng.uniform(-0.95, 0.95)
        mid = lfilter([1.0], [1.0, -tilt], rng.standard_normal(n))
        side = rng.uniform(0, 0.6) * lfilter([1.0], [1.0, -tilt], rng.standard_normal(n))
        env = 0.2 + 0.8 * (np.arange(n) % int(sr * rng.uniform(0.25, 0.6)) < sr // 12)
        x = np.stack([mid + side, mid - side]) * env
        x = 0.1 * x / np.std(x)
        out.append((f"synthetic-{i}", Audio(samples=x.astype(np.float32), sample_rate=sr)))
    return out


def as_vector(rec: dict | None) -> np.ndarray:
    v = NEUTRAL.copy()
    for i, (tool, name, *_rest) in enumerate(PARAMS):
        val = ((rec or {}).get("params") or {}).get(tool, {}).get(name)
        if isinstance(val, (int, float)):
            v[i] = float(val)
    return v


def as_outcomes(v: np.ndarray) -> list[dict]:
    steps: dict[str, dict] = {}
    for (tool, name, *_rest), val in zip(PARAMS, v, strict=True):
        lo, hi = BOUNDS[name]
        steps.setdefault(tool, {})[name] = round(float(np.clip(val, lo, hi)), 3)
    return [{"tool": t, "params": p, "status": "applied"} for t, p in steps.items()]


def distance(v: np.ndarray, taste: np.ndarray, scales: np.ndarray = SCALES) -> float:
    return float(np.sqrt(np.mean(((v - taste) / scales) ** 2)))


RATING_NOISE = 0.4
RATING_MODEL = (
    f"rating = clip(round(5 − 4·d/0.7 + N(0, {RATING_NOISE}²)), 1, 5), d = distance of the *applied*"
    " settings from the hidden taste: 5 at the taste, ~3 at d 0.35, 1 beyond d 0.7"
)


def rating(v: np.ndarray, taste: np.ndarray, rng: np.random.Generator, idx: list[int] | None = None) -> int:
    """The simulated listener: integer 1–5, falls linearly with distance, Gaussian noise before rounding.

    `idx`: an aspect rating, the same rule on the distance over that aspect's settings only."""
    d = distance(v[idx], taste[idx], SCALES[idx]) if idx is not None else distance(v, taste)
    return int(np.clip(round(5.0 - 4.0 * d / 0.7 + rng.normal(0, RATING_NOISE)), 1, 5))


#: the aspect ratings the listener gives with `--ratings aspects` (feedback's aspect names → settings)
ASPECTS = {"tone": [0, 1], "width": [2], "loudness": [3, 4]}


#: `--ratings comments`: the words a listener uses for the setting furthest from their taste
#: (index → (comment when the played value is above the taste, when below))
COMMENTS = {
    0: ("too bright", "too dull"),
    1: ("too warm", "too thin"),
    2: ("too wide", "more width"),
    3: ("too loud", "too quiet"),
    4: ("too compressed", "more compression"),
}
COMMENT_MIN = 0.15  # a setting less far off than this (in the listener's scale) is not worth a word


def comment(v: np.ndarray, taste: np.ndarray, stars: int) -> str | None:
    """The simulated listener's comment with an overall rating below 5: what is most off, in plain
    words ("too bright"); nothing when everything is close (or the rating is a 5)."""
    off = (v - taste) / SCALES
    j = int(np.argmax(np.abs(off)))
    if stars >= 5 or abs(off[j]) < COMMENT_MIN:
        return None
    return COMMENTS[j][0 if off[j] > 0 else 1]


def clipped(v: np.ndarray) -> np.ndarray:
    return np.array([np.clip(x, *BOUNDS[p[1]]) for p, x in zip(PARAMS, v, strict=True)])


def explore_sd(n: int, mode: str) -> np.ndarray:
    """How far the settings played in round n stray from the recommendation (the simulated session's
    variations, not the recommendation's: evaluation uses the pure recommendation)."""
    return EXPLORE if mode == "fixed" else EXPLORE / np.sqrt(1.0 + n / 10.0)


class NoRecCache(MemoryCache):
    """Caches embeddings but never recommendations (so latency measures the real work)."""

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        if not key.startswith("rec:"):
            super().set(key, value, ttl_s)


def learning(
    m: MemoryAgent,
    train,
    test,
    analyses,
    rounds: int,
    seed: int = 1,
    explore: str = "fixed",
    aspects: bool = False,
    comments: bool = False,
) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    tag = "a" if aspects else ("c" if comments else "o")
    users = {name: f"listener-{name}-{tag}-{db.new_id()[:6]}" for name in LISTENERS}
    curves: dict[str, list[float]] = {name: [] for name in LISTENERS}

    def evaluate(name: str) -> float:
        d = []
        for aid, _audio in test:
            rec = m.recommend(
                analysis=analyses[aid], request="master this", user_id=users[name], audio_id=aid
            )
            d.append(distance(as_vector(rec), LISTENERS[name]))
        return float(np.mean(d))

    for n in range(rounds + 1):
        if n in CHECKPOINTS:
            for name in LISTENERS:
                curves[name].append(evaluate(name))
        if n == rounds:
            break
        for name, taste in LISTENERS.items():
            aid, audio = train[rng.integers(len(train))]
            rec = m.recommend(
                analysis=analyses[aid], request="master this", user_id=users[name], audio_id=aid
            )
            # exploration lives here, in the simulated session (a person asking for variations), not in
            # recommend(): what a real user gets, and what `evaluate` scores, is the pure recommendation
            applied = clipped(as_vector(rec) + rng.normal(0, 1, len(PARAMS)) * explore_sd(n, explore))
            turn = m.record_turn(
                user_id=users[name],
                thread_id=None,
                audio_id=aid,
                audio=audio,
                analysis=analyses[aid],
                plan={"steps": [], "source": "semantic"},
                outcomes=as_outcomes(applied),
                result_id=aid,
                request="master this",
            )
            given = {a: rating(applied, taste, rng, idx) for a, idx in ASPECTS.items()} if aspects else None
            stars = rating(applied, taste, rng)
            m.feedback(
                user_id=users[name],
                turn_id=turn,
                rating=stars,
                aspects=given,
                comment=comment(applied, taste, stars) if comments else None,
            )
    # the same track, both listeners
    aid = test[0][0]
    recs = {
        name: as_vector(
            m.recommend(analysis=analyses[aid], request="master this", user_id=users[name], audio_id=aid)
        )
        for name in LISTENERS
    }
    curves["_same_track"] = [distance(recs["bright"], recs["warm"])]
    curves["_recs"] = recs  # type: ignore[assignment]
    return curves


def fill(m: MemoryAgent, vectors: list[np.ndarray], total: int, seed: int = 2) -> float:
    """Bulk-insert rated configurations + vectors until the store holds `total` vectors."""
    from sqlalchemy import insert

    rng = np.random.default_rng(seed)
    have = m.vectors.count()
    need = max(0, total - have)
    t0 = time.perf_counter()
    owners = [f"crowd-{i}" for i in range(200)]
    for start in range(0, need, 2000):
        k = min(2000, need - start)
        cfgs, vecs, items = [], [], []
        for _ in range(k):
            cid, vid, owner = db.new_id(), db.new_id(), owners[rng.integers(len(owners))]
            taste = NEUTRAL + rng.normal(0, 1, len(PARAMS)) * SCALES * 0.3
            params = {o["tool"]: o["params"] for o in as_outcomes(taste)}
            score = float(rng.integers(1, 6))
            cfgs.append(
                {
                    "id": cid,
                    "owner_id": owner,
                    "params": params,
                    "type": "manual",
                    "usage_count": 1,
                    "rating_count": 1,
                    "rating_sum": score,
                    "score": score,
                }
            )
            v = vectors[rng.integers(len(vectors))] + rng.normal(0, 0.4, F.DIMENSION).astype(np.float32)
            vecs.append(
                {
                    "id": vid,
                    "owner_id": owner,
                    "configuration_id": cid,
                    "feature_type": "audio",
                    "feature_version": F.FEATURE_VERSION,
                    "dimension": F.DIMENSION,
                    "content_type": "music",
                    "vector": [float(x) for x in v],
                    "indexed": True,
                }
            )
            items.append(
                (
                    vid,
                    v,
                    {
                        "owner_id": owner,
                        "configuration_id": cid,
                        "content_type": "music",
                        "feature_version": F.FEATURE_VERSION,
                    },
                )
            )

        async def _bulk(cfgs=cfgs, vecs=vecs) -> None:
            async with m.repo.sessions() as s, s.begin():
                for o in {c["owner_id"] for c in cfgs}:
                    await db.ensure_user(s, user_id=o)
                await s.execute(insert(db.MixingConfiguration), cfgs)
                await s.execute(insert(db.AudioFeatureVector), vecs)

        m.repo.run(_bulk())
        from memory.vectors import VectorItem

        m.vectors.add([VectorItem(id=i, vector=v, metadata=md) for i, v, md in items])
    return time.perf_counter() - t0


def report_learning(
    m: MemoryAgent,
    train,
    test,
    analyses,
    rounds: int,
    args: argparse.Namespace,
    *,
    aspects: bool,
    comments: bool = False,
) -> bool:
    t = time.perf_counter()
    curves = learning(
        m,
        train,
        test,
        analyses,
        rounds,
        seed=args.seed,
        explore=args.explore,
        aspects=aspects,
        comments=comments,
    )
    what = "overall + aspect" if aspects else ("overall + comment" if comments else "overall")
    print(
        f"\nlearning from {what} ratings ({rounds} ratings per listener,"
        f" seed {args.seed}, {time.perf_counter() - t:.0f} s):"
    )
    print(f"  listener model: {RATING_MODEL}")
    print(
        f"  played each round: recommendation + N(0, sd) per setting, sd {args.explore}"
        f" ({', '.join(f'{p[1]} {e:g}' for p, e in zip(PARAMS, EXPLORE, strict=True))}{' at first' if args.explore == 'decay' else ''})"
    )
    cps = [c for c in CHECKPOINTS if c <= rounds]
    print("  listener  " + "".join(f"{c:>8d}" for c in cps) + "   change by 20")
    ok = True
    for name in LISTENERS:
        d = curves[name]
        drop = 1.0 - d[cps.index(20)] / d[0] if 20 in cps and d[0] > 0 else float("nan")
        ok &= drop >= 0.6
        print(f"  {name:8s}  " + "".join(f"{x:8.3f}" for x in d) + f"   {-drop * 100:+.0f} %")
    print("  (distance: RMS of (recommended − taste) / scale over eq bright/warm, width, LUFS, compression)")
    recs = curves["_recs"]
    for name, v in recs.items():
        print(
            f"  same held-out track, {name:6s} gets: "
            + ", ".join(f"{p[1]}={x:.2f}" for p, x in zip(PARAMS, v, strict=True))
        )
    apart, tastes = curves["_same_track"][0], distance(LISTENERS["bright"], LISTENERS["warm"])
    print(
        f"  distance between the two listeners' recommendations: {apart:.3f}"
        f" (their tastes are {tastes:.3f} apart; clearly different = at least half: "
        f"{'yes' if apart >= 0.5 * tastes else 'NO'})"
    )
    print(f"  goal −60 % by 20 ratings: {'met' if ok else 'NOT met'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 rounds, 2,000 vectors")
    ap.add_argument(
        "--postgres", metavar="URL", help="use this database instead of SQLite (must be migrated)"
    )
    ap.add_argument("--vectors", type=int, default=10_000)
    ap.add_argument(
        "--seed", type=int, default=1, help="listeners' rating noise, training order, exploration"
    )
    ap.add_argument(
        "--explore",
        choices=("fixed", "decay"),
        default="fixed",
        help="variations around the recommendation: sd shrinking as 1/sqrt(1 + n/10), or constant",
    )
    ap.add_argument(
        "--ratings",
        choices=("both", "all", "aspects", "comments", "overall"),
        default="all",
        help="what the listeners give: overall + aspect ratings (tone, width, loudness), overall + a"
        " comment on what is most off ('too bright'), overall only; both = aspects then overall,"
        " all = the three (default)",
    )
    args = ap.parse_args()
    rounds, total = (20, 2000) if args.quick else (50, args.vectors)

    clips = excerpts()
    tmp = Path(tempfile.mkdtemp(prefix="mixpilot-bench-"))
    store = AudioStore(tmp / "audio")
    m = open_memory(
        data_dir=tmp, database_url=args.postgres, cache=NoRecCache(max_items=100_000), store=store
    )
    try:
        from tools.analysis import analyze

        t = time.perf_counter()
        items = [(store.put(a), a) for _name, a in clips]
        analyses = {aid: analyze(a).to_dict() for aid, a in items}
        t_an = (time.perf_counter() - t) / len(items)
        t = time.perf_counter()
        embeds = {aid: m._vector(audio_id=aid, audio=a, analysis=analyses[aid]) for aid, a in items}
        t_emb = (time.perf_counter() - t) / len(items)
        train, test = items[::2][: max(1, len(items) // 2)], items[1::2][:6]
        print(
            f"{len(items)} excerpts ({len(train)} train, {len(test)} held out; {clips[0][0]}, …); "
            f"per excerpt: analysis {t_an * 1e3:.0f} ms, embedding {t_emb * 1e3:.0f} ms"
        )

        all_ok = True
        modes = {"both": ("aspects", "overall"), "all": ("aspects", "comments", "overall")}.get(
            args.ratings, (args.ratings,)
        )
        for k, mode in enumerate(modes):
            # each mode learns in a store of its own (the other mode's listeners would be "others like me")
            (tmp / f"mode-{mode}").mkdir(exist_ok=True)
            mm = (
                m
                if k == 0
                else open_memory(
                    data_dir=tmp / f"mode-{mode}", database_url=args.postgres, cache=m.cache, store=store
                )
            )
            try:
                all_ok &= report_learning(
                    mm,
                    train,
                    test,
                    analyses,
                    rounds,
                    args,
                    aspects=mode == "aspects",
                    comments=mode == "comments",
                )
            finally:
                if mm is not m:
                    mm.close()
        if len(modes) > 1:
            print(f"\ngoal −60 % by 20 ratings, every rating mode: {'met' if all_ok else 'NOT met'}")

        t_fill = fill(m, list(embeds.values()), total)
        n = m.vectors.count()
        lat = []
        user = "listener-latency"
        for _rep in range(3):
            for aid, _a in test + train:
                t = time.perf_counter()
                m.recommend(analysis=analyses[aid], request="master this", user_id=user, audio_id=aid)
                lat.append(time.perf_counter() - t)
        lat_ms = np.array(lat[len(test) + len(train) :]) * 1e3  # first pass warms Chroma's index
        print(
            f"\nlatency with {n} stored vectors (filled in {t_fill:.0f} s), {lat_ms.size} calls:"
            f" median {np.median(lat_ms):.1f} ms, p95 {np.percentile(lat_ms, 95):.1f} ms"
            f" (goal p95 < 50 ms: {'met' if np.percentile(lat_ms, 95) < 50 else 'NOT met'})"
        )
        print(
            "  (embedding cached; recommendation not cached; a new recording adds its embedding time above)"
        )
    finally:
        m.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
