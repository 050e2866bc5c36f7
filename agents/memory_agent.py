"""MemoryAgent: remembers what was applied, learns from ratings, recommends settings.

- `record_turn` (after a process/adjust turn): stores the configuration actually applied
  (``mixing_configurations``) and the input's audio embedding (``audio_feature_vectors`` in
  SQL, then Chroma); returns the configuration id, which is the *turn id* feedback names.
- `feedback`: stores the rating (1–5, aspects, comment, liked) in SQL and folds it into the
  configuration's score. Needs neither Chroma nor Redis.
- `recommend` (the graph's recall node, before planning): finds similar inputs whose
  configurations were rated, and returns a configuration for the parameters the request
  leaves open: ``{"params": {tool: {param: value}}, "genre", "evidence", "confidence"}``.

Recommendation, per parameter: where the ratings say the listener's taste is (`_ideal_point`: an
ideal-point model, rating falling linearly with the distance of the applied settings from a
preferred point, fitted per pool of similar rated inputs; aspect ratings — tone, width, loudness —
fit the settings they speak about on their own, `_fits`). Own ratings first: the user's own
estimate, shrunk towards everyone else's with a pseudo-weight ``OWN_K``, which is itself shrunk
towards the genre preset with a pseudo-weight ``PRIOR_WEIGHT`` (evidence counted as Σ similarity ×
trust, so a few similar, well-rated own ratings outweigh the crowd). Without neighbours the genre
preset is returned (None when no genre is known: request words, the neighbours' genres, or
"speech" for speech).

Sync facade, async inside: the graph runs synchronously while the SQL layer is SQLAlchemy
async (asyncpg / aiosqlite). The agent owns one background thread running one event loop;
every database call is a coroutine submitted to that loop (`_Loop.run`), so the async engine
and its pool always live on the same loop, whatever thread (graph, API worker) calls in.
Chroma and the cache are called directly from the caller's thread.

Durability: the SQL rows are committed first (vector row with ``indexed = False``), then the
vector goes to Chroma and the row is marked indexed. A crash or a Chroma outage in between
leaves ``indexed = False``; `repair` (run at every start) re-inserts those vectors.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from memory import db
from memory import features as F
from memory.cache import cache_key, get_json, set_json
from tools.genres import GENRES, genre_in, load_preset

log = logging.getLogger("mixpilot.memory")
T = TypeVar("T")

PRIOR_WEIGHT = 1.0
DEFAULT_WEIGHT = 0.1
OWN_K = 0.5
RATING_TOP = 5.0
PEAK_PRIOR = 0.3  # rating² per frame unit² away from the best-rated settings (see _cone_peak)
CD_SWEEPS, CD_STEP = 4, 0.1
#: a comment's direction ("too bright": the taste is below what was played), per rating, in rating²
#: per frame unit the peak sits on the wrong side (see _cone_peak); DIR_MARGIN: how far past it
DIR_WEIGHT, DIR_MARGIN = 4.0, 0.5
OWN_SIM_FLOOR = 0.5
K_GLOBAL, K_OWN = 64, 24
EMBED_TTL_S = 7 * 24 * 3600
REC_TTL_S = 300
#: tools whose settings are learned (cleaning tools follow the request, not taste)
LEARNED_TOOLS = ("eq", "compress", "stereo_width", "reverb", "delay", "sidechain", "saturation", "de_ess",
                 "dynamic_eq", "genre_preset", "master", "mix")
#: genre presets: what memory recommends for a genre before any similar recording is rated (the
#: ``recommend`` table of tools/presets/<genre>.toml; contract param names). Its master target is
#: the streaming playback level (pop −14 LUFS), not the genre's typical master loudness that "in a
#: pop style" masters to (pop −9, `tools.genres.genre_loudness`): a default nobody asked to make loud.
GENRE_PRESETS: dict[str, dict[str, dict[str, float]]] = {g: load_preset(g).recommend for g in GENRES}
_LABELS = {("stereo_width", "width"): ("width", "{:.2g}"), ("master", "target_lufs"): ("loudness", "{:.0f} LUFS"),
           ("eq", "bright_db"): ("brightness", "{:+.1f} dB"), ("eq", "warm_db"): ("warmth", "{:+.1f} dB"),
           ("eq", "air_db"): ("air", "{:+.1f} dB"), ("compress", "amount"): ("compression", "{:.2g}"),
           ("reverb", "amount"): ("reverb", "{:.2g}")}


class _Loop:
    """One event loop on one daemon thread; `run` submits a coroutine and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mixpilot-memory", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


def genre_from_request(request: str) -> str | None:
    """The genre a request names ("like hip hop" → hip_hop, "for a podcast" → speech), or None."""
    return genre_in(request)


def rating_weight(score: float) -> float:
    """5 → 1, 4 → 0.22, 3 → 0.05, 2 → 0.01, 1 → 0.002: the best-rated settings dominate the mean."""
    return float(math.exp(1.5 * (float(score) - 5.0)))


def applied_params(outcomes: list[dict[str, Any]], plan: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """{tool: params} of the steps that were actually applied (else the plan's steps)."""
    out: dict[str, dict[str, Any]] = {}
    steps = [o for o in outcomes or [] if o.get("status") in ("applied", "trimmed")]
    if not outcomes:
        steps = list((plan or {}).get("steps") or [])
    for s in steps:
        params = {k: v for k, v in dict(s.get("params") or {}).items() if isinstance(v, (int, float, str, bool))}
        out.setdefault(s["tool"], {}).update(params)
    return out


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@functools.lru_cache(maxsize=1024)
def _comment_directions(comment: str, frozen: str) -> tuple[tuple[str, str, int], ...]:
    from agents.plan import Plan, Step
    from agents.semantic.followup import apply_followup, parse_followup

    played = json.loads(frozen)
    # the words' direction is read on neutral settings (the contract defaults): a follow-up may set
    # a value outright ("too wide" → width 0.75), which from a narrow 0.5 would read as "wider"
    params = {t: {n: _neutral(t, n, v) for n, v in ps.items()} for t, ps in played.items()}
    try:
        fu = parse_followup(comment)
        if fu is not None and fu.kind in ("adjust", "repeat_with_changes"):
            before = Plan(steps=[Step(tool=t, params=p) for t, p in params.items()])
            after = {st.tool: st.params for st in apply_followup(before, fu).steps}
        else:  # not worded as a change ("wider", "needs warmth"): what the words ask for as a request
            after = _asked(comment)
    except Exception:  # noqa: BLE001 - a comment we cannot read says nothing
        return ()
    out = []
    for tool, ps in params.items():
        for name, v in ps.items():
            w = after.get(tool, {}).get(name)
            if _numeric(v) and _numeric(w) and abs(float(w) - float(v)) > 1e-9:
                out.append((tool, name, 1 if float(w) > float(v) else -1))
    return tuple(out)


def _neutral(tool: str, name: str, played: Any) -> Any:
    default = _contract(tool, name)[0]
    return float(default) if _numeric(default) else played


def _asked(text: str) -> dict[str, dict[str, Any]]:
    """The settings a request's vocabulary terms ask for ("wider" → stereo_width width 1.3; "less
    bright" → the term's inverse), merged; repairs and tools without settings add nothing."""
    from agents.semantic.parse import parse

    out: dict[str, dict[str, Any]] = {}
    for clause in parse(text).clauses:
        for m in clause.matches:
            if m.kind != "term":
                continue
            steps = m.obj.inverse if (m.negated or m.modifier == "less") else m.obj.steps
            for tool, ps in steps or ():
                out.setdefault(tool, {}).update(ps)
    return out


def comment_directions(comment: str | None, params: dict[str, dict[str, Any]]) -> dict[tuple[str, str], int]:
    """What a feedback comment says about the settings that were played: (tool, param) → +1 / −1.

    The comment is read as the follow-up request it would be in the chat ("too bright" → the
    eq's bright_db lower, "a bit quiet" → master target_lufs higher): whatever that follow-up
    would change among the settings played, and which way (read from their neutral values, so
    a follow-up that sets a value outright still gives its direction). Praise or an unreadable
    comment: {}.
    """
    if not comment or not comment.strip():
        return {}
    learned = {t: {n: v for n, v in ps.items() if _numeric(v)} for t, ps in params.items()
               if t in LEARNED_TOOLS and isinstance(ps, dict)}
    learned = {t: ps for t, ps in learned.items() if ps}
    if not learned:
        return {}
    return {(t, n): d for t, n, d in _comment_directions(comment.strip()[:500], json.dumps(learned, sort_keys=True))}


#: which settings each aspect rating speaks about (tools whose numeric params it covers); the
#: aspects without a clear mapping (vocal clarity, balance) count only through the overall rating
ASPECT_TOOLS: dict[str, tuple[str, ...]] = {"tone": ("eq",), "width": ("stereo_width",),
                                            "loudness": ("master", "compress")}
MIN_ASPECT_RATINGS = 3


def _cone_peak(z: np.ndarray, r: np.ndarray, w: np.ndarray, centre: np.ndarray,
               dirs: np.ndarray | None = None) -> np.ndarray:
    """Peak t of ``r ≈ c − b·‖z − t‖`` (b ≥ 0): ratings fall linearly with the distance from the ideal point.

    Fitted by coordinate descent on a 0.1-step grid per setting (the tried range ± 0.5, in the
    frame's units), with c and b solved in closed form for each candidate. The rating scale is
    bounded: a 1 only says "1 or worse" and a 5 "5 or better", so a prediction beyond the end
    of the scale costs nothing there. ``PEAK_PRIOR`` × ‖t − centre‖² keeps the peak near the
    best-rated settings where the ratings are flat (no evidence to go anywhere else).
    `dirs` (ratings × settings, +1 / −1 / 0): what comments said ("too bright": the peak is below
    the bright_db played); a peak on the wrong side of one, or within ``DIR_MARGIN`` of it, costs
    ``DIR_WEIGHT`` per frame unit (weighted as its rating).
    """
    n, k = z.shape
    w = w / w.sum()
    t = centre.copy()
    rc = r - float(w @ r)
    lo1, hi5 = r <= 1.0, r >= RATING_TOP
    for _ in range(CD_SWEEPS):
        moved = False
        for j in range(k):
            axis = np.arange(z[:, j].min() - 0.5, z[:, j].max() + 0.5 + 1e-9, CD_STEP)
            rest = ((z - t) ** 2).sum(1) - (z[:, j] - t[j]) ** 2  # the other settings' share, per rating
            d = np.sqrt(rest[None, :] + (z[None, :, j] - axis[:, None]) ** 2 + 0.05 ** 2)  # candidates × ratings
            dc = d - (d @ w)[:, None]
            b = np.maximum(-((dc * rc) @ w) / ((dc * dc) @ w + 1e-12), 0.0)
            e = -(b[:, None] * dc) - rc  # prediction − rating, c solved in closed form: c − b·d − r
            pred = r + e
            e = np.where((lo1 & (pred < 1.0)) | (hi5 & (pred > RATING_TOP)), 0.0, e)
            others = ((t - centre) ** 2).sum() - (t[j] - centre[j]) ** 2
            cost = (e * e) @ w * n + PEAK_PRIOR * (others + (axis - centre[j]) ** 2)
            if dirs is not None and dirs[:, j].any():
                said = dirs[:, j] != 0
                wrong = np.maximum(dirs[said, j][None, :] * (z[said, j][None, :] - axis[:, None]) + DIR_MARGIN, 0.0)
                cost = cost + DIR_WEIGHT * n * (wrong @ w[said])
            best = float(axis[int(np.argmin(cost))])
            moved |= abs(best - t[j]) > 1e-9
            t[j] = best
        if not moved:
            break
    return t


def _ideal_point(hits: list[dict[str, Any]], keys: list[tuple[str, str]] | None = None,
                 score: Any = None) -> dict[tuple[str, str], tuple[float, float]]:
    """{(tool, param): (value, evidence)}: where one pool of ratings says the listener's taste is.

    An ideal-point ("unfolding") model: the rating falls with the distance of the applied
    settings from a preferred point (`_cone_peak`), in a fixed frame per setting (centred on the
    planner's default, a quarter of the contract range as the unit), with similarity as weight.
    Ratings count relative to each other: settings rated above the rest pull the peak towards
    themselves, settings rated below push it away, so a run of 2s and 3s still points somewhere.
    With fewer than 3 ratings, or ratings that do not differ, the answer is the rating-weighted
    mean of the settings (a single 5 is what to do again).

    `score(hit)` picks the rating (overall by default; an aspect rating for `_fits`' groups).
    Evidence: Σ similarity × how far the fit can be trusted — as much as the ratings vary (the
    slope is identified) or, when they do not, as high as they are (five 5s identify the value;
    one 1 identifies nothing to aim for, and the caller shrinks it away).
    """
    score = score or (lambda h: h["score"])
    keys = _learned_keys(hits) if keys is None else keys
    if not hits or not keys:
        return {}
    sim = np.array([h["similarity"] for h in hits], dtype=np.float64)
    r = np.array([score(h) for h in hits], dtype=np.float64)
    x = np.array([[float(h["params"].get(t, {}).get(n, np.nan)) if _numeric(h["params"].get(t, {}).get(n))
                   else np.nan for t, n in keys] for h in hits], dtype=np.float64)
    present = ~np.isnan(x)
    den = sim.sum()
    if den <= 0:
        return {}
    w_m = sim * np.exp(1.5 * (r - r.max()))  # the best-rated settings: the answer without a fit
    m = np.array([np.average(x[present[:, j], j], weights=w_m[present[:, j]])
                  if present[:, j].any() and w_m[present[:, j]].sum() > 0 else 0.0 for j in range(len(keys))])
    x = np.where(present, x, m)  # a setting a turn did not use says nothing about it
    centre, scale, lo, hi = (np.empty(len(keys)) for _ in range(4))
    for j, (t, n) in enumerate(keys):
        default, c_lo, c_hi = _contract(t, n)
        centre[j] = float(default) if _numeric(default) else m[j]
        spread = float(np.sqrt(np.average((x[:, j] - m[j]) ** 2, weights=sim)))
        ok = c_lo is not None and c_hi is not None and c_hi > c_lo
        scale[j] = (c_hi - c_lo) / 4.0 if ok else max(spread, 1e-3)
        lo[j], hi[j] = (c_lo, c_hi) if ok else (-np.inf, np.inf)
    r_mu = float(sim @ r / den)
    var_r = float(sim @ (r - r_mu) ** 2 / den)
    value = m
    dirs = np.array([[float((h.get("dirs") or {}).get(key, 0)) for key in keys] for h in hits])
    said = bool(dirs.any())
    if len(hits) >= 3 and (var_r > 1e-9 or said):
        z = (x - centre) / scale
        value = np.clip(centre + _cone_peak(z, r, sim, (m - centre) / scale, dirs if said else None) * scale, lo, hi)
    trust = max((r_mu - 1.0) / (RATING_TOP - 1.0), var_r / (var_r + 0.25))
    evid = [float(sim[present[:, j]].sum()) * trust for j in range(len(keys))]
    return {k: (float(v), e) for k, v, e in zip(keys, value, evid, strict=True)}


def _fits(hits: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """One pool's ideal point: from the overall ratings, and per aspect where aspects were rated.

    An aspect rating (tone, width, loudness) speaks about fewer settings than the overall one,
    so where a pool has at least ``MIN_ASPECT_RATINGS`` of an aspect, that aspect's settings are
    fitted on it alone (a 1–2-dimensional problem instead of one in every setting at once).
    """
    keys = _learned_keys(hits)
    by_aspect: dict[tuple[str, str], tuple[float, float]] = {}
    for aspect, tools in ASPECT_TOOLS.items():
        rated = [h for h in hits if _numeric((h.get("aspects") or {}).get(aspect))]
        mine = [k for k in keys if k[0] in tools]
        if len(rated) >= MIN_ASPECT_RATINGS and mine:
            by_aspect.update(_ideal_point(rated, mine, score=lambda h, a=aspect: float(h["aspects"][a])))
    if all(k in by_aspect for k in keys):  # the aspects cover every setting: no joint fit needed
        return by_aspect
    return {**_ideal_point(hits, keys), **by_aspect}


def _learned_keys(hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (tool, param) of every numeric learned setting some hit used, sorted."""
    return sorted({(t, n) for h in hits for t, ps in h["params"].items() if t in LEARNED_TOOLS
                   for n, v in ps.items() if _numeric(v)})


@functools.lru_cache(maxsize=512)
def _contract(tool: str, name: str) -> tuple[Any, float | None, float | None]:
    """(contract default, lower bound, upper bound) of a planner parameter; (None, None, None) if unknown."""
    from agents.contract import CONTRACT

    field = getattr(CONTRACT.get(tool), "model_fields", {}).get(name)
    if field is None:
        return None, None, None
    lo = next((float(m.ge) for m in field.metadata if getattr(m, "ge", None) is not None), None)
    hi = next((float(m.le) for m in field.metadata if getattr(m, "le", None) is not None), None)
    return field.default, lo, hi


def _estimate(hits: list[dict[str, Any]], tool: str, name: str, prior: Any,
              fits: tuple[dict[tuple[str, str], tuple[float, float]], ...]) -> Any:
    """One parameter: own ratings first, shrunk towards everyone's, shrunk towards the preset.

    Each pool's value is `_fit` (what the ratings point to, relative to that pool's mean
    rating); how far it pulls against the next level is its evidence.
    """
    own_mu, own_n = fits[0].get((tool, name), (None, 0.0))
    oth_mu, oth_n = fits[1].get((tool, name), (None, 0.0))
    if own_mu is None and oth_mu is None:
        votes: dict[Any, float] = {}
        for h in hits:
            v = h["params"].get(tool, {}).get(name)
            if isinstance(v, (str, bool)):
                votes[v] = votes.get(v, 0.0) + h["w"] * (1.0 if h["own"] else 0.25)
        return max(votes, key=votes.get) if votes else prior
    default, lo, hi = _contract(tool, name)
    k_prior = PRIOR_WEIGHT
    if prior is None and _numeric(default):
        # no genre preset: what the planner does without memory, as a weak prior (it has no opinion,
        # but it beats repeating settings that were only ever rated 1, which carry no evidence)
        prior, k_prior = float(default), DEFAULT_WEIGHT
    base = oth_mu
    if _numeric(prior):
        base = prior if oth_mu is None else (oth_n * oth_mu + k_prior * prior) / (oth_n + k_prior)
    if own_mu is None:
        value = base
    elif base is None:
        value = own_mu
    else:
        k_base = OWN_K if oth_mu is not None else k_prior  # a bare default pulls only as much as it weighs
        value = (own_n * own_mu + k_base * base) / (own_n + k_base)
    value = min(hi, value) if hi is not None else value
    value = max(lo, value) if lo is not None else value
    ints = all(isinstance(h["params"].get(tool, {}).get(name, 0), int) for h in hits) and not isinstance(prior, float)
    return int(round(value)) if ints else round(float(value), 3)


class MemoryAgent:
    """See the module docstring. Build with `open_memory`; close at shutdown."""

    def __init__(self, *, database_url: str, vectors: Any = None, cache: Any = None, store: Any = None,
                 repair: bool = True) -> None:
        self.database_url = db.normalize_url(database_url)
        self.vectors, self.cache, self.store = vectors, cache, store
        self._loop = _Loop()
        self._engine = None
        self._sessions = None
        self._gen = 0

        async def _init() -> None:
            self._engine = db.make_engine(self.database_url)
            self._sessions = db.make_sessionmaker(self._engine)

        self._loop.run(_init())
        if repair:
            try:
                self.repair()
            except Exception as exc:  # noqa: BLE001 - Chroma down at start: try again next start
                log.warning("memory repair failed (%s); will retry on next start", exc)

    def close(self) -> None:
        if self._engine is not None:
            try:
                self._loop.run(self._engine.dispose(), timeout=10)
            except Exception:  # noqa: BLE001
                pass
            self._engine = None
        self._loop.close()

    def __enter__(self) -> MemoryAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ embeddings

    def _vector(self, *, audio_id: str | None, audio: Any = None, analysis: dict[str, Any] | None) -> np.ndarray | None:
        key = cache_key("emb", F.FEATURE_VERSION, audio_id) if audio_id else None
        if key:
            cached = get_json(self.cache, key)
            if isinstance(cached, list) and len(cached) == F.DIMENSION:
                return np.asarray(cached, dtype=np.float32)
        if audio is None and audio_id and self.store is not None:
            try:
                audio = self.store.get(audio_id)
            except KeyError:
                audio = None
        if audio is None:
            return None
        vec = F.embed(audio, analysis or None)
        if key:
            set_json(self.cache, key, [float(v) for v in vec], EMBED_TTL_S)
        return vec

    def _generation(self) -> int:
        got = get_json(self.cache, "memgen")
        return int(got) if isinstance(got, int) else self._gen

    def _bump_generation(self) -> None:
        self._gen = self._generation() + 1
        try:
            set_json(self.cache, "memgen", self._gen, None)
        except Exception:  # noqa: BLE001 - caches never fail a request
            pass

    # ------------------------------------------------------------------ record and feedback

    def record_turn(self, *, user_id: str | None, thread_id: str | None, audio_id: str | None, audio: Any,
                    analysis: dict[str, Any] | None, plan: dict[str, Any] | None, outcomes: list[dict[str, Any]],
                    result_id: str | None, request: str | None = None, job_id: str | None = None,
                    inputs: dict[str, str] | None = None) -> str:
        """Store the configuration applied in one turn and the input's vector; returns the turn id.

        A turn that matched a reference (``inputs["reference"]``, an audio id in the store) also
        stores that reference's analysis and long-term band spectrum in ``reference_tracks``
        (once per owner and recording)."""
        owner = user_id or db.LOCAL_USER_ID
        params = applied_params(outcomes, plan)
        genre = (params.get("genre_preset") or {}).get("genre") or genre_from_request(request or "")
        ctype = F.content_type(analysis)
        if genre is None and ctype == "speech":
            genre = "speech"
        kind = ("reference_match" if "reference_match" in params else "genre_preset" if "genre_preset" in params
                else "learned" if (plan or {}).get("source") == "memory" else "manual")
        vec = self._vector(audio_id=audio_id, audio=audio, analysis=analysis)
        reference = self._reference(owner, (inputs or {}).get("reference")) if "reference_match" in params else None

        async def _store() -> tuple[str, str | None]:
            async with self._sessions() as s, s.begin():
                await db.ensure_user(s, user_id=owner)
                if thread_id:
                    try:
                        async with s.begin_nested():
                            await db.ensure_conversation(s, owner_id=owner, thread_id=thread_id)
                    except PermissionError:
                        pass
                cfg = await db.add_configuration(s, owner_id=owner, params=params, thread_id=thread_id,
                                                 audio_id=audio_id, result_id=result_id, genre=genre, type=kind,
                                                 request=request, plan=plan)
                vid = None
                if vec is not None:
                    row = await db.add_feature_vector(s, owner_id=owner, vector=vec.tolist(),
                                                      feature_version=F.FEATURE_VERSION, audio_id=audio_id,
                                                      configuration_id=cfg.id, content_type=ctype,
                                                      feature_type=F.FEATURE_TYPE)
                    vid = row.id
                if job_id:
                    await db.update_job(s, owner_id=owner, job_id=job_id, turn_id=cfg.id)
                if reference is not None:
                    await db.add_reference_track(s, owner_id=owner, **reference, genre=genre)
                return cfg.id, vid

        config_id, vector_id = self._loop.run(_store())
        if vector_id is not None:
            self._index([(vector_id, vec, {"owner_id": owner, "configuration_id": config_id, "audio_id": audio_id,
                                           "content_type": ctype, "feature_version": F.FEATURE_VERSION})])
        self._bump_generation()
        return config_id

    def _reference(self, owner: str, ref_id: str | None) -> dict[str, Any] | None:
        """{audio_id, name, analysis, spectrum} of a reference not yet stored for this owner, else None."""
        if not ref_id or self.store is None:
            return None

        async def _known() -> bool:
            async with self._sessions() as s:
                return any(r.audio_id == ref_id for r in await db.list_reference_tracks(s, owner_id=owner))

        try:
            if self._loop.run(_known()):
                return None
            ref = self.store.get(ref_id)
        except KeyError:
            return None
        from tools.analysis import analyze

        an = analyze(ref).to_dict()
        raw = F.raw_features(ref, an)
        spectrum = [raw.get(name) for name in F.FEATURE_NAMES[:F.N_BANDS]]
        an = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in an.items()}  # JSON-safe
        return {"audio_id": ref_id, "name": None, "analysis": an,
                "spectrum": [None if v is None or not math.isfinite(v) else round(float(v), 2) for v in spectrum]}

    def _index(self, items: list[tuple[str, Any, dict[str, Any]]]) -> bool:
        """Chroma insert, then mark the SQL rows indexed. False (and rows left for `repair`) on failure."""
        if self.vectors is None or not items:
            return False
        from memory.vectors import VectorItem

        try:
            self.vectors.add([VectorItem(id=i, vector=v, metadata=m) for i, v, m in items])
        except Exception as exc:  # noqa: BLE001 - vector store down: SQL has it, repair re-inserts
            log.warning("vector store unavailable (%s); %d vector(s) will be indexed on repair", exc, len(items))
            return False

        async def _mark() -> None:
            async with self._sessions() as s, s.begin():
                await db.mark_indexed(s, vector_ids=[i for i, _, _ in items])

        self._loop.run(_mark())
        return True

    def repair(self) -> int:
        """Index every vector committed to SQL but missing from Chroma; returns how many."""
        if self.vectors is None:
            return 0

        async def _todo() -> list[tuple[str, list[float], dict[str, Any]]]:
            async with self._sessions() as s:
                rows = await db.unindexed_vectors_any_owner(s, limit=100_000)
                return [(r.id, r.vector, {"owner_id": r.owner_id, "configuration_id": r.configuration_id,
                                          "audio_id": r.audio_id, "content_type": r.content_type,
                                          "feature_version": r.feature_version})
                        for r in rows if r.feature_version == F.FEATURE_VERSION]

        todo = self._loop.run(_todo())
        done = 0
        for start in range(0, len(todo), 1000):
            if self._index(todo[start:start + 1000]):
                done += len(todo[start:start + 1000])
        if done:
            log.info("memory repair: indexed %d vector(s)", done)
        return done

    def feedback(self, *, user_id: str | None, turn_id: str, rating: int, aspects: dict[str, int] | None = None,
                 comment: str | None = None, liked: bool | None = None, job_id: str | None = None) -> list[str]:
        """Store a rating for a turn (its id, a job id, or the result/input audio id).

        Returns what the comment was understood to ask of the settings played ("lower
        brightness"), for the reply; [] without a comment, or one that asks nothing of them.
        """
        owner = user_id or db.LOCAL_USER_ID

        async def _store() -> dict[str, dict[str, Any]]:
            async with self._sessions() as s, s.begin():
                cfg = await db.find_configuration(s, owner_id=owner, ref=turn_id)
                if cfg is None:
                    raise KeyError(f"no turn '{turn_id}' to rate (rate a turn id, job id or result audio id)")
                await db.add_feedback(s, owner_id=owner, config_id=cfg.id, rating=rating, aspects=aspects,
                                      comment=comment, liked=liked, job_id=job_id)
                return dict(cfg.params or {})

        params = self._loop.run(_store())
        self._bump_generation()
        return [f"{'higher' if d > 0 else 'lower'} {_LABELS.get(k, (f'{k[0]} {k[1]}',))[0]}"
                for k, d in sorted(comment_directions(comment, params).items())]

    def find_turn(self, *, user_id: str | None, ref: str) -> dict[str, Any] | None:
        """The turn (configuration) `ref` names for this user, as a dict, or None."""
        owner = user_id or db.LOCAL_USER_ID

        async def _find() -> dict[str, Any] | None:
            async with self._sessions() as s:
                cfg = await db.find_configuration(s, owner_id=owner, ref=ref)
                if cfg is None:
                    return None
                return {"id": cfg.id, "audio_id": cfg.audio_id, "result_id": cfg.result_id, "genre": cfg.genre,
                        "params": cfg.params, "score": cfg.score, "rating_count": cfg.rating_count}

        return self._loop.run(_find())

    def references(self, *, user_id: str | None) -> list[dict[str, Any]]:
        """This user's stored reference tracks (oldest first): {id, audio_id, genre, analysis, spectrum}."""
        owner = user_id or db.LOCAL_USER_ID

        async def _list() -> list[dict[str, Any]]:
            async with self._sessions() as s:
                return [{"id": r.id, "audio_id": r.audio_id, "genre": r.genre, "analysis": r.analysis,
                         "spectrum": r.spectrum} for r in await db.list_reference_tracks(s, owner_id=owner)]

        return self._loop.run(_list())

    def recent_turns(self, *, user_id: str | None, limit: int = 50) -> list[dict[str, Any]]:
        owner = user_id or db.LOCAL_USER_ID

        async def _list() -> list[dict[str, Any]]:
            from sqlalchemy import select

            async with self._sessions() as s:
                stmt = (select(db.MixingConfiguration.id, db.MixingConfiguration.audio_id,
                               db.MixingConfiguration.result_id)
                        .where(db.MixingConfiguration.owner_id == owner)
                        .order_by(db.MixingConfiguration.created_at.desc()).limit(limit))
                return [{"id": r.id, "audio_id": r.audio_id, "result_id": r.result_id}
                        for r in (await s.execute(stmt)).all()]

        return self._loop.run(_list())

    # ------------------------------------------------------------------ recommend

    def recommend(self, *, analysis: dict[str, Any], request: str, user_id: str | None, audio_id: str | None,
                  audio: Any = None, genre: str | None = None) -> dict[str, Any] | None:
        """A configuration for the parameters the request leaves open (see module docstring), or None."""
        owner = user_id or db.LOCAL_USER_ID
        genre = genre or genre_from_request(request)
        ctype = F.content_type(analysis)
        rkey = cache_key("rec", owner, audio_id, genre, ctype, self._generation()) if audio_id else None
        if rkey:
            cached = get_json(self.cache, rkey)
            if isinstance(cached, dict):
                return cached or None
        vec = self._vector(audio_id=audio_id, audio=audio, analysis=analysis)
        hits = self._neighbours(vec, owner=owner, ctype=ctype) if vec is not None else []
        rec = self._aggregate(hits, owner=owner, genre=genre, ctype=ctype)
        if rkey:
            set_json(self.cache, rkey, rec or {}, REC_TTL_S)
        return rec

    def _neighbours(self, vec: np.ndarray, *, owner: str, ctype: str) -> list[dict[str, Any]]:
        if self.vectors is None:
            return []
        try:
            hits = self.vectors.query(vec, k=K_GLOBAL, content_type=ctype)
            # the user's own ratings of any content type: taste (bright, wide, loud) carries across
            seen = {h.id for h in hits}
            hits += [h for h in self.vectors.query(vec, k=K_OWN, owner_id=owner) if h.id not in seen]
        except Exception as exc:  # noqa: BLE001 - no vector store: recommend from the genre preset only
            log.warning("vector search unavailable (%s)", exc)
            return []
        cfg_ids = [h.metadata.get("configuration_id") for h in hits if h.metadata.get("configuration_id")]

        async def _load() -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
            async with self._sessions() as s:
                configs = await db.configurations_by_ids_any_owner(s, ids=cfg_ids)
                mine = [c for c, v in configs.items() if v["owner_id"] == owner and v["rating_count"]]
                return configs, await db.feedback_comments(s, owner_id=owner, config_ids=mine)

        configs, comments = self._loop.run(_load())
        out = []
        for h in hits:
            cfg = configs.get(h.metadata.get("configuration_id") or "")
            if cfg is None or not cfg["rating_count"] or cfg["score"] is None:
                continue
            out.append({"similarity": F.similarity_from_sq_distance(h.distance), "own": cfg["owner_id"] == owner,
                        "score": float(cfg["score"]), "params": cfg["params"], "genre": cfg["genre"],
                        "aspects": cfg.get("aspects") or {},
                        # the owner's own comments only ("too bright"): directions for _cone_peak
                        "dirs": self._directions(comments.get(h.metadata.get("configuration_id") or "", []),
                                                 cfg["params"]),
                        "same_type": h.metadata.get("content_type", ctype) == ctype})
        return out

    @staticmethod
    def _directions(comments: list[str], params: dict[str, dict[str, Any]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for c in comments:  # a later comment on the same turn wins
            out.update(comment_directions(c, params))
        return out

    def _aggregate(self, hits: list[dict[str, Any]], *, owner: str, genre: str | None,
                   ctype: str) -> dict[str, Any] | None:
        for h in hits:
            h["w"] = h["similarity"] * rating_weight(h["score"])
        hits = [h for h in hits if h["w"] > 1e-9]
        own_w = sum(h["w"] for h in hits if h["own"])
        total = sum(h["w"] for h in hits)

        if genre is None and hits:  # weighted vote of the neighbours' genres
            votes: dict[str, float] = {}
            for h in hits:
                if h["genre"]:
                    votes[h["genre"]] = votes.get(h["genre"], 0.0) + h["w"]
            if votes and max(votes.values()) >= 0.5 * total:
                genre = max(votes, key=votes.get)
        if genre is None and ctype == "speech":
            genre = "speech"
        preset = GENRE_PRESETS.get(genre or "", {})
        if not hits:
            if not preset:
                return None
            return {"params": {t: dict(p) for t, p in preset.items()}, "genre": genre, "source": "genre_preset",
                    "evidence": f"no similar rated recordings yet: {genre} preset", "confidence": 0.1}

        # per pool: where the ratings say the taste is; per param: own, shrunk to others', shrunk to the preset
        # A person's taste (bright, wide, loud) carries across their tracks far more than anyone
        # else's does: their own ratings count at least OWN_SIM_FLOOR whatever the track (half
        # that for the other content type, speech vs music).
        own_hits = [{**h, "similarity": max(h["similarity"], OWN_SIM_FLOOR * (1.0 if h.get("same_type", True) else 0.5))}
                    for h in hits if h["own"]]
        fits = (_fits(own_hits), _fits([h for h in hits if not h["own"]]))
        params: dict[str, dict[str, Any]] = {}
        tools = {t for h in hits for t in h["params"] if t in LEARNED_TOOLS} | set(preset)
        for tool in sorted(tools):
            users = [h for h in hits if tool in h["params"]]
            share = sum(h["w"] for h in users) / total
            if tool not in preset and share < 0.25:
                continue
            names = {n for h in users for n in h["params"][tool]} | set(preset.get(tool, {}))
            values: dict[str, Any] = {}
            for name in sorted(names):
                value = _estimate(users, tool, name, preset.get(tool, {}).get(name), fits)
                if value is not None:
                    values[name] = value
            if values:
                params[tool] = values
        if genre and "genre_preset" in params:
            params["genre_preset"]["genre"] = genre

        n_ev = sum(h["similarity"] for h in hits)
        confidence = min(0.95, (n_ev / (n_ev + 2.0)) * min(1.0, 0.5 + max(h["score"] for h in hits) / 10.0))
        return {"params": params, "genre": genre, "source": "memory",
                "evidence": self._evidence(hits, params, own_w > 0),
                "confidence": round(confidence, 3)}

    @staticmethod
    def _evidence(hits: list[dict[str, Any]], params: dict[str, dict[str, Any]], own: bool) -> str:
        pool = [h for h in hits if h["own"] == own and h["similarity"] >= 0.05]
        good = [h for h in pool if h["score"] >= 3.5] or pool
        who = "you" if own else "others"
        lo = int(math.floor(min(h["score"] for h in good))) if good else 0
        hi = int(math.ceil(max(h["score"] for h in good))) if good else 0
        rated = f"{lo}–{hi}" if lo != hi else f"{lo}"
        # the most salient learned setting: farthest from neutral relative to its range
        neutral = {("stereo_width", "width"): (1.0, 0.5), ("master", "target_lufs"): (-14.0, 4.0),
                   ("eq", "bright_db"): (0.0, 3.0), ("eq", "warm_db"): (0.0, 3.0), ("eq", "air_db"): (0.0, 3.0),
                   ("compress", "amount"): (0.5, 0.3), ("reverb", "amount"): (0.25, 0.25)}
        best, best_dev = None, -1.0
        for (tool, name), (mid, span) in neutral.items():
            v = params.get(tool, {}).get(name)
            if isinstance(v, (int, float)) and abs(v - mid) / span > best_dev:
                best, best_dev = (tool, name, v), abs(v - mid) / span
        n = len(good)
        what = "similar recording" if n == 1 else "similar recordings"
        if best is None:
            return f"{n} {what} {who} rated {rated}"
        label, fmt = _LABELS[(best[0], best[1])]
        tool, name, value = best
        played = [float(v) for h in good if _numeric(v := h["params"].get(tool, {}).get(name))]
        # "used" where they did; the fitted peak can lie beyond everything played ("point to")
        verb = "used" if played and min(played) - 1e-6 <= value <= max(played) + 1e-6 else "point to"
        text = f"{n} {what} {who} rated {rated} {verb} {label} {fmt.format(value)}"
        said = [h["dirs"][(tool, name)] for h in pool if (h.get("dirs") or {}).get((tool, name))]
        if said:
            way = "higher" if sum(said) > 0 else "lower"
            text += f"; your comments on {len(said)} of them asked for {way} {label}"
        return text


def open_memory(*, data_dir: str | Path, database_url: str | None = None, chroma_url: str | None = None,
                cache: Any = None, store: Any = None, migrate_empty: bool = True) -> MemoryAgent:
    """Build the agent from settings values.

    Database: `database_url`, else SQLite in the data dir. An *empty* database is migrated
    to head here (the one-command default just works); a database that is behind raises
    `memory.migrate.SchemaOutOfDate` ("run `mixpilot migrate`"). Vectors: Chroma server at
    `chroma_url`, else a PersistentClient in ``data_dir/chroma``.
    """
    from memory import migrate
    from memory.vectors import VectorStore

    data_dir = Path(data_dir)
    url = database_url or db.default_database_url(data_dir)
    if migrate_empty and migrate.current_revision(url) is None:
        migrate.upgrade(url)
    migrate.check_schema_current(url)
    vectors = None
    try:
        vectors = VectorStore(feature_version=F.FEATURE_VERSION, url=chroma_url,
                              path=None if chroma_url else data_dir / "chroma")
    except Exception as exc:  # noqa: BLE001 - Chroma server down: run without similarity search, repair later
        log.warning("vector store unavailable (%s); recommendations fall back to genre presets", exc)
    return MemoryAgent(database_url=url, vectors=vectors, cache=cache, store=store)
