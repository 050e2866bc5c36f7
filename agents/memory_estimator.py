"""Memory's estimator: a recommended configuration from rated similar turns. Pure: no I/O.

Per parameter, where the ratings say the listener's taste is (`ideal_point`: an ideal-point
model, rating falling linearly with the distance of the applied settings from a preferred point,
fitted per pool of similar rated inputs; aspect ratings — tone, width, loudness — fit the settings
they speak about on their own, `fits`). Own ratings first: the user's own estimate, shrunk towards
everyone else's with a pseudo-weight ``OWN_K``, which is itself shrunk towards the genre preset
with a pseudo-weight ``PRIOR_WEIGHT`` (evidence counted as Σ similarity × trust, so a few similar,
well-rated own ratings outweigh the crowd). Without neighbours the genre preset is returned (None
when no genre is known: request words, the neighbours' genres, or "speech" for speech).

Settings are read in the tools' own terms (`agents.contract`: defaults and bounds from each tool's
params model); genre priors come from the genre module (`genre_prior`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

import numpy as np

from agents import contract
from tools.genres import GENRES, load_preset

PRIOR_WEIGHT = 1.0
DEFAULT_WEIGHT = 0.1
OWN_K = 0.5
RATING_TOP = 5.0
PEAK_PRIOR = 0.3  # rating² per frame unit² away from the best-rated settings (see cone_peak)
CD_SWEEPS, CD_STEP = 4, 0.1
#: a comment's direction ("too bright": the taste is below what was played), per rating, in rating²
#: per frame unit the peak sits on the wrong side (see cone_peak); DIR_MARGIN: how far past it
DIR_WEIGHT, DIR_MARGIN = 4.0, 0.5
#: the hard rule over it (respect_comments): how far past a commented value, as a share of the setting's range
COMMENT_MARGIN = 0.02
OWN_SIM_FLOOR = 0.5
#: tools whose settings are learned (cleaning tools follow the request, not taste)
LEARNED_TOOLS = (
    "eq",
    "compress",
    "stereo_width",
    "reverb",
    "delay",
    "sidechain",
    "saturation",
    "de_ess",
    "dynamic_eq",
    "genre_preset",
    "master",
    "mix",
)
#: which settings each aspect rating speaks about (tools whose numeric params it covers); the
#: aspects without a clear mapping (vocal clarity, balance) count only through the overall rating
ASPECT_TOOLS: dict[str, tuple[str, ...]] = {
    "tone": ("eq",),
    "width": ("stereo_width",),
    "loudness": ("master", "compress"),
}
MIN_ASPECT_RATINGS = 3
#: how the evidence line names a setting: (tool, param) → (words, format)
LABELS = {
    ("stereo_width", "width"): ("width", "{:.2g}"),
    ("master", "target_lufs"): ("loudness", "{:.0f} LUFS"),
    ("eq", "bright_db"): ("brightness", "{:+.1f} dB"),
    ("eq", "warm_db"): ("warmth", "{:+.1f} dB"),
    ("eq", "air_db"): ("air", "{:+.1f} dB"),
    ("compress", "amount"): ("compression", "{:.2g}"),
    ("reverb", "amount"): ("reverb", "{:.2g}"),
}


@dataclass(frozen=True, kw_only=True)
class Neighbour:
    """A rated turn on an input similar to the one at hand."""

    similarity: float
    own: bool  #: rated by the person asking
    score: float  #: mean overall rating, 1–5
    params: dict[str, dict[str, Any]]  #: {tool: {param: value}} applied in that turn
    genre: str | None = None
    aspects: dict[str, float] = field(default_factory=dict)  #: mean aspect ratings (tone, width, loudness, …)
    #: what the owner's comments said: (tool, param) → +1 / −1 ("too bright": bright_db → −1)
    dirs: dict[tuple[str, str], int] = field(default_factory=dict)
    same_type: bool = True  #: same content type (speech / music) as the input

    @property
    def weight(self) -> float:
        """similarity × rating weight: how much this turn counts in means and votes."""
        return self.similarity * rating_weight(self.score)


def genre_prior(genre: str | None) -> dict[str, dict[str, float]]:
    """What memory recommends for `genre` before any rating: the preset's ``recommend`` table
    (tools/presets/<genre>.toml, [R]). Its master target is the streaming playback level (pop
    −14 LUFS), not the genre's typical master loudness (pop −9, `tools.genres.genre_loudness`),
    which only "loud", "club", "for CD" or a number asks for: a default nobody asked to make loud. {} for no or an unknown genre."""
    if genre not in GENRES:
        return {}
    return {tool: dict(params) for tool, params in load_preset(genre).recommend.items()}


def rating_weight(score: float) -> float:
    """5 → 1, 4 → 0.22, 3 → 0.05, 2 → 0.01, 1 → 0.002: the best-rated settings dominate the mean."""
    return float(math.exp(1.5 * (float(score) - 5.0)))


def _numeric(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@functools.lru_cache(maxsize=512)
def param_range(tool: str, name: str) -> tuple[Any, float | None, float | None]:
    """(default, lower bound, upper bound) of a tool's parameter (`agents.contract`);
    (None, None, None) for an unknown one."""
    try:
        default = contract.default(tool, name)
    except KeyError:
        return None, None, None
    lo, hi = contract.bounds(tool, name)
    return default, lo, hi


def cone_peak(
    z: np.ndarray, r: np.ndarray, w: np.ndarray, centre: np.ndarray, dirs: np.ndarray | None = None
) -> np.ndarray:
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
            d = np.sqrt(
                rest[None, :] + (z[None, :, j] - axis[:, None]) ** 2 + 0.05**2
            )  # candidates × ratings
            dc = d - (d @ w)[:, None]
            b = np.maximum(-((dc * rc) @ w) / ((dc * dc) @ w + 1e-12), 0.0)
            e = -(b[:, None] * dc) - rc  # prediction − rating, c solved in closed form: c − b·d − r
            pred = r + e
            e = np.where((lo1 & (pred < 1.0)) | (hi5 & (pred > RATING_TOP)), 0.0, e)
            others = ((t - centre) ** 2).sum() - (t[j] - centre[j]) ** 2
            cost = (e * e) @ w * n + PEAK_PRIOR * (others + (axis - centre[j]) ** 2)
            if dirs is not None and dirs[:, j].any():
                said = dirs[:, j] != 0
                wrong = np.maximum(
                    dirs[said, j][None, :] * (z[said, j][None, :] - axis[:, None]) + DIR_MARGIN, 0.0
                )
                cost = cost + DIR_WEIGHT * n * (wrong @ w[said])
            best = float(axis[int(np.argmin(cost))])
            moved |= abs(best - t[j]) > 1e-9
            t[j] = best
        if not moved:
            break
    return t


def ideal_point(
    hits: list[Neighbour],
    keys: list[tuple[str, str]] | None = None,
    score: Callable[[Neighbour], float] | None = None,
) -> dict[tuple[str, str], tuple[float, float]]:
    """{(tool, param): (value, evidence)}: where one pool of ratings says the listener's taste is.

    An ideal-point ("unfolding") model: the rating falls with the distance of the applied
    settings from a preferred point (`cone_peak`), in a fixed frame per setting (centred on the
    planner's default, a quarter of the contract range as the unit), with similarity as weight.
    Ratings count relative to each other: settings rated above the rest pull the peak towards
    themselves, settings rated below push it away, so a run of 2s and 3s still points somewhere.
    With fewer than 3 ratings, or ratings that do not differ, the answer is the rating-weighted
    mean of the settings (a single 5 is what to do again).

    `score(hit)` picks the rating (overall by default; an aspect rating for `fits`' groups).
    Evidence: Σ similarity × how far the fit can be trusted — as much as the ratings vary (the
    slope is identified) or, when they do not, as high as they are (five 5s identify the value;
    one 1 identifies nothing to aim for, and the caller shrinks it away).
    """
    score = score or (lambda h: h.score)
    keys = learned_keys(hits) if keys is None else keys
    if not hits or not keys:
        return {}
    sim = np.array([h.similarity for h in hits], dtype=np.float64)
    r = np.array([score(h) for h in hits], dtype=np.float64)
    x = np.array(
        [
            [
                float(h.params.get(t, {}).get(n, np.nan)) if _numeric(h.params.get(t, {}).get(n)) else np.nan
                for t, n in keys
            ]
            for h in hits
        ],
        dtype=np.float64,
    )
    present = ~np.isnan(x)
    den = sim.sum()
    if den <= 0:
        return {}
    w_m = sim * np.exp(1.5 * (r - r.max()))  # the best-rated settings: the answer without a fit
    m = np.array(
        [
            np.average(x[present[:, j], j], weights=w_m[present[:, j]])
            if present[:, j].any() and w_m[present[:, j]].sum() > 0
            else 0.0
            for j in range(len(keys))
        ]
    )
    x = np.where(present, x, m)  # a setting a turn did not use says nothing about it
    centre, scale, lo, hi = (np.empty(len(keys)) for _ in range(4))
    for j, (t, n) in enumerate(keys):
        default, c_lo, c_hi = param_range(t, n)
        centre[j] = float(default) if _numeric(default) else m[j]
        spread = float(np.sqrt(np.average((x[:, j] - m[j]) ** 2, weights=sim)))
        if c_lo is not None and c_hi is not None and c_hi > c_lo:
            scale[j], lo[j], hi[j] = (c_hi - c_lo) / 4.0, c_lo, c_hi
        else:
            scale[j], lo[j], hi[j] = max(spread, 1e-3), -np.inf, np.inf
    r_mu = float(sim @ r / den)
    var_r = float(sim @ (r - r_mu) ** 2 / den)
    value = m
    dirs = np.array([[float(h.dirs.get(key, 0)) for key in keys] for h in hits])
    said = bool(dirs.any())
    if len(hits) >= 3 and (var_r > 1e-9 or said):
        z = (x - centre) / scale
        value = np.clip(
            centre + cone_peak(z, r, sim, (m - centre) / scale, dirs if said else None) * scale, lo, hi
        )
    trust = max((r_mu - 1.0) / (RATING_TOP - 1.0), var_r / (var_r + 0.25))
    evid = [float(sim[present[:, j]].sum()) * trust for j in range(len(keys))]
    return {k: (float(v), e) for k, v, e in zip(keys, value, evid, strict=True)}


def fits(hits: list[Neighbour]) -> dict[tuple[str, str], tuple[float, float]]:
    """One pool's ideal point: from the overall ratings, and per aspect where aspects were rated.

    An aspect rating (tone, width, loudness) speaks about fewer settings than the overall one,
    so where a pool has at least ``MIN_ASPECT_RATINGS`` of an aspect, that aspect's settings are
    fitted on it alone (a 1–2-dimensional problem instead of one in every setting at once).
    """
    keys = learned_keys(hits)
    by_aspect: dict[tuple[str, str], tuple[float, float]] = {}
    for aspect, tools in ASPECT_TOOLS.items():
        rated = [h for h in hits if _numeric(h.aspects.get(aspect))]
        mine = [k for k in keys if k[0] in tools]
        if len(rated) >= MIN_ASPECT_RATINGS and mine:

            def aspect_score(h: Neighbour, a: str = aspect) -> float:
                return float(h.aspects[a])

            by_aspect.update(ideal_point(rated, mine, score=aspect_score))
    if all(k in by_aspect for k in keys):  # the aspects cover every setting: no joint fit needed
        return by_aspect
    return {**ideal_point(hits, keys), **by_aspect}


def learned_keys(hits: list[Neighbour]) -> list[tuple[str, str]]:
    """The (tool, param) of every numeric learned setting some hit used, sorted."""
    return sorted(
        {
            (t, n)
            for h in hits
            for t, ps in h.params.items()
            if t in LEARNED_TOOLS
            for n, v in ps.items()
            if _numeric(v)
        }
    )


def estimate(
    hits: list[Neighbour],
    tool: str,
    name: str,
    prior: Any,
    pools: tuple[dict[tuple[str, str], tuple[float, float]], ...],
) -> Any:
    """One parameter: own ratings first, shrunk towards everyone's, shrunk towards the preset.

    Each pool's value is from `fits` (what the ratings point to, relative to that pool's mean
    rating); how far it pulls against the next level is its evidence.
    """
    own_mu, own_n = pools[0].get((tool, name), (None, 0.0))
    oth_mu, oth_n = pools[1].get((tool, name), (None, 0.0))
    if own_mu is None and oth_mu is None:
        votes: dict[Any, float] = {}
        for h in hits:
            v = h.params.get(tool, {}).get(name)
            if isinstance(v, (str, bool)):
                votes[v] = votes.get(v, 0.0) + h.weight * (1.0 if h.own else 0.25)
        return max(votes, key=lambda v: votes[v]) if votes else prior
    default, lo, hi = param_range(tool, name)
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
    if value is None:  # not reached: one of the pools has a value
        return prior
    value = min(hi, value) if hi is not None else value
    value = max(lo, value) if lo is not None else value
    value = respect_comments(hits, tool, name, float(value), lo, hi)
    ints = all(isinstance(h.params.get(tool, {}).get(name, 0), int) for h in hits) and not isinstance(
        prior, float
    )
    return int(round(value)) if ints else round(float(value), 3)


def respect_comments(
    hits: list[Neighbour], tool: str, name: str, value: float, lo: float | None, hi: float | None
) -> float:
    """Memory never moves a setting against the person's own comments (issue 20).

    `cone_peak` weighs comments softly, against the ratings; this is the hard rule on top: after "too
    bright" on a version played at +1 dB, nothing at or above +1 dB is recommended, whatever the ratings
    say (by ``COMMENT_MARGIN`` of the setting's range below it); after "too dull" at −2 dB nothing at or
    below it. Comments that contradict each other (too bright at −1, too dull at +2) leave the value as is.
    """
    said = [
        (float(v), h.dirs[(tool, name)])
        for h in hits
        if h.own and h.dirs.get((tool, name)) and _numeric(v := h.params.get(tool, {}).get(name))
    ]
    if not said:
        return value
    margin = COMMENT_MARGIN * (hi - lo) if lo is not None and hi is not None else 0.0
    below = [v for v, d in said if d < 0]  # "too much": the taste is below these
    above = [v for v, d in said if d > 0]  # "too little": above these
    upper = min(below) - margin if below else math.inf
    lower = max(above) + margin if above else -math.inf
    if lower > upper:  # contradictory comments: no side to keep to
        return value
    value = min(max(value, lower), upper)
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value


def recommend_from(hits: list[Neighbour], *, genre: str | None, ctype: str) -> dict[str, Any] | None:
    """``{"params", "genre", "source", "evidence", "confidence"}`` for the parameters the neighbours
    (or, without any, the genre preset) speak about; None without neighbours or a genre."""
    hits = [h for h in hits if h.weight > 1e-9]
    own_w = sum(h.weight for h in hits if h.own)
    total = sum(h.weight for h in hits)

    if genre is None and hits:  # weighted vote of the neighbours' genres
        votes: dict[str, float] = {}
        for h in hits:
            if h.genre:
                votes[h.genre] = votes.get(h.genre, 0.0) + h.weight
        if votes and max(votes.values()) >= 0.5 * total:
            genre = max(votes, key=lambda g: votes[g])
    if genre is None and ctype == "speech":
        genre = "speech"
    preset = genre_prior(genre)
    if not hits:
        if not preset:
            return None
        return {
            "params": {t: dict(p) for t, p in preset.items()},
            "genre": genre,
            "source": "genre_preset",
            "evidence": f"no similar rated recordings yet: {genre} preset",
            "confidence": 0.1,
        }

    # per pool: where the ratings say the taste is; per param: own, shrunk to others', shrunk to the preset
    # A person's taste (bright, wide, loud) carries across their tracks far more than anyone
    # else's does: their own ratings count at least OWN_SIM_FLOOR whatever the track (half
    # that for the other content type, speech vs music).
    own_hits = [
        replace(h, similarity=max(h.similarity, OWN_SIM_FLOOR * (1.0 if h.same_type else 0.5)))
        for h in hits
        if h.own
    ]
    pools = (fits(own_hits), fits([h for h in hits if not h.own]))
    params: dict[str, dict[str, Any]] = {}
    tools = {t for h in hits for t in h.params if t in LEARNED_TOOLS} | set(preset)
    for tool in sorted(tools):
        users = [h for h in hits if tool in h.params]
        share = sum(h.weight for h in users) / total
        if tool not in preset and share < 0.25:
            continue
        names = {n for h in users for n in h.params[tool]} | set(preset.get(tool, {}))
        values: dict[str, Any] = {}
        for name in sorted(names):
            value = estimate(users, tool, name, preset.get(tool, {}).get(name), pools)
            if value is not None:
                values[name] = value
        if values:
            params[tool] = values
    if genre and "genre_preset" in params:
        params["genre_preset"]["genre"] = genre

    n_ev = sum(h.similarity for h in hits)
    confidence = min(0.95, (n_ev / (n_ev + 2.0)) * min(1.0, 0.5 + max(h.score for h in hits) / 10.0))
    return {
        "params": params,
        "genre": genre,
        "source": "memory",
        "evidence": evidence(hits, params, own_w > 0),
        "confidence": round(confidence, 3),
    }


def evidence(hits: list[Neighbour], params: dict[str, dict[str, Any]], own: bool) -> str:
    """One line for the reply: how many similar recordings who rated how, and the most salient setting."""
    pool = [h for h in hits if h.own == own and h.similarity >= 0.05]
    good = [h for h in pool if h.score >= 3.5] or pool
    who = "you" if own else "others"
    lo = int(math.floor(min(h.score for h in good))) if good else 0
    hi = int(math.ceil(max(h.score for h in good))) if good else 0
    rated = f"{lo}–{hi}" if lo != hi else f"{lo}"
    # the most salient learned setting: farthest from neutral relative to its range
    neutral = {
        ("stereo_width", "width"): (1.0, 0.5),
        ("master", "target_lufs"): (-14.0, 4.0),
        ("eq", "bright_db"): (0.0, 3.0),
        ("eq", "warm_db"): (0.0, 3.0),
        ("eq", "air_db"): (0.0, 3.0),
        ("compress", "amount"): (0.5, 0.3),
        ("reverb", "amount"): (0.25, 0.25),
    }
    best, best_dev = None, -1.0
    for (tool, name), (mid, span) in neutral.items():
        v = params.get(tool, {}).get(name)
        if isinstance(v, (int, float)) and abs(v - mid) / span > best_dev:
            best, best_dev = (tool, name, v), abs(v - mid) / span
    n = len(good)
    what = "similar recording" if n == 1 else "similar recordings"
    if best is None:
        return f"{n} {what} {who} rated {rated}"
    label, fmt = LABELS[(best[0], best[1])]
    tool, name, value = best
    played = [float(v) for h in good if _numeric(v := h.params.get(tool, {}).get(name))]
    # "used" where they did; the fitted peak can lie beyond everything played ("point to")
    verb = "used" if played and min(played) - 1e-6 <= value <= max(played) + 1e-6 else "point to"
    text = f"{n} {what} {who} rated {rated} {verb} {label} {fmt.format(value)}"
    said = [h.dirs[(tool, name)] for h in pool if h.dirs.get((tool, name))]
    if said:
        way = "higher" if sum(said) > 0 else "lower"
        text += f"; your comments on {len(said)} of them asked for {way} {label}"
    return text
