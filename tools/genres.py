"""Genres: the one place that knows which genres exist, their presets and the words for them.

NOTE for agents/contract.py (being derived from the tool registry): build the genre type from
here, ``tools.genres.Genre`` (a ``Literal``) or ``tools.genres.GENRES`` (its values); the
`genre_preset` tool's ``GenrePresetParams.genre`` already uses ``Genre``.

- `GENRES` / `Genre`: the genre ids (``tools/presets/<genre>.toml`` exists for each).
- `load_preset(genre)`: the typed preset read from that TOML (package data, through
  importlib.resources): tonal targets, compression, width, typical loudness and ``recommend``,
  what memory suggests for the genre before any rating (see the [R] note in the TOML files).
- `genre_loudness(genre)`: the genre's typical master loudness (the preset's, within `master`'s
  bounds). The planner masters "in a pop style" to the streaming reference and keeps this louder
  figure for "loud", "club", "for CD" or a number (issue 20); quieter genres keep their own.
- `GENRE_WORDS`: (regex, genre) pairs, the words people use for each genre (aliases included:
  "trap" → hip_hop, "neo-soul" → rnb, ...). The semantic planner parses with them;
  `SPEECH_WORDS` are the spoken-word formats ("podcast", "voice-over", "audiobook"), which the
  planner reads as platforms or speech cues, and which name the ``speech`` preset elsewhere.
- `genre_in(text)`: the genre a text names (first match, longest first), speech words included.

Tools layer: no imports from agents, app or memory; no tool module imported here.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Literal, get_args

Genre = Literal[
    "pop",
    "rock",
    "hip_hop",
    "edm",
    "rnb",
    "jazz",
    "classical",
    "acoustic",
    "lofi",
    "metal",
    "country",
    "speech",
]
GENRES: tuple[str, ...] = get_args(Genre)

#: `master`'s target_lufs bounds (tools/master.py MasterParams): a genre loudness is kept inside them
_MASTER_LUFS = (-30.0, -6.0)

#: words → genre, in the planner's precedence (longer matches win, then this order). Each pattern is
#: matched between word boundaries. ("chamber" alone is a reverb in the vocabulary: "chamber music".)
GENRE_WORDS: tuple[tuple[str, str], ...] = (
    (
        r"hip[- ]?hop|rap|trap|drill|boom[- ]?bap|grime|g-?funk|phonk|mumble rap|reggaeton|dancehall|reggae|dembow",
        "hip_hop",
    ),
    (
        r"edm|electronic(?! drums| kit)|house|techno|dubstep|dance( music)?|trance|drum (and|n|&) bass|dnb|d&b|future bass|"
        r"electro|synthwave|garage|jungle|hardstyle|big room|amapiano|ambient|idm|trip[- ]hop|downtempo",
        "edm",
    ),
    (r"r ?& ?b|rnb|r'n'b|r and b|rhythm and blues|neo-?soul|soul|motown|funk|gospel|disco", "rnb"),
    (r"jazz|swing|bebop|big band|fusion", "jazz"),
    (
        r"classical(?! guitar)|orchestra(l)?|cinematic|film score|soundtrack|symphon\w*|string quartet|chamber music|opera|"
        r"choral|baroque",
        "classical",
    ),
    (
        r"acoustic(?! guitar| piano| bass| drums| treatment| panel)|folk|singer[- ]songwriter|unplugged|bluegrass",
        "acoustic",
    ),
    (r"lo-?fi|chill ?hop|lo fi|bedroom pop", "lofi"),
    (r"metal|death metal|death|thrash|metalcore|djent|doom|black metal|hardcore", "metal"),
    (r"country|americana|nashville|honky[- ]tonk", "country"),
    (r"rock|indie|alternative|alt-rock|punk|grunge|shoegaze|emo|blues|britpop", "rock"),
    (
        r"pop(?! filter| out| more| through)|k-?pop|j-?pop|synth-?pop|dance-?pop|top ?40|mainstream|afrobeats?|"
        r"latin pop|hyperpop",
        "pop",
    ),
)
#: spoken-word formats: the ``speech`` preset (the planner reads them as platforms / speech cues)
SPEECH_WORDS: tuple[tuple[str, str], ...] = (
    (r"podcasts?|podcasting|voice[- ]?overs?|audiobooks?|audio ?books?", "speech"),
)


@dataclass(frozen=True, kw_only=True)
class GenrePreset:
    """One ``tools/presets/<genre>.toml`` (its comments give the sources of the figures)."""

    name: str
    title: str
    tilt_db_per_octave: float
    low_end_db: float
    compression: float
    width: float
    bass_mono_hz: float
    loudness_lufs: float
    #: {tool: {param: value}}: memory's recommendation before any rating (contract param names)
    recommend: dict[str, dict[str, float]] = field(default_factory=dict)


@cache
def load_preset(genre: str) -> GenrePreset:
    """The preset of `genre`; ValueError (naming the known genres) for an unknown one."""
    if genre not in GENRES:
        raise ValueError(f"no genre preset '{genre}'; known genres: {', '.join(GENRES)}")
    try:
        data = tomllib.loads(resources.files("tools").joinpath("presets", f"{genre}.toml").read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"genre preset '{genre}' has no data file tools/presets/{genre}.toml") from exc
    if data.get("name") != genre:
        raise ValueError(f"tools/presets/{genre}.toml names itself '{data.get('name')}'")
    rec = {
        tool: {k: float(v) for k, v in params.items()}
        for tool, params in (data.get("recommend") or {}).items()
    }
    return GenrePreset(
        name=genre,
        title=str(data["title"]),
        tilt_db_per_octave=float(data["tilt_db_per_octave"]),
        low_end_db=float(data["low_end_db"]),
        compression=float(data["compression"]),
        width=float(data["width"]),
        bass_mono_hz=float(data["bass_mono_hz"]),
        loudness_lufs=float(data["loudness_lufs"]),
        recommend=rec,
    )


def genre_loudness(genre: str) -> float:
    """The master target for "in a <genre> style": the preset's typical loudness, inside `master`'s bounds."""
    lo, hi = _MASTER_LUFS
    return max(lo, min(hi, load_preset(genre).loudness_lufs))


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((g, re.compile(rf"\b(?:{p})\b", re.IGNORECASE)) for p, g in GENRE_WORDS + SPEECH_WORDS)


def genre_in(text: str | None) -> str | None:
    """The genre `text` names ("make it sound like trap" → hip_hop, "for a podcast" → speech), or None.

    The earliest word in the text wins; at the same place the longer one, then `GENRE_WORDS` order.
    """
    best: tuple[int, int, int, str] | None = None
    for order, (genre, rx) in enumerate(_compiled()):
        m = rx.search(text or "")
        if m is not None:
            key = (m.start(), -(m.end() - m.start()), order, genre)
            best = key if best is None or key < best else best
    return None if best is None else best[3]
