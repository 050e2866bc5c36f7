"""Reading requests as people type them: misspellings and chat shorthand.

`correct(text)` returns the text with misspelt production words put right ("denosie" → "denoise",
"brigther" → "brighter"), shorthand expanded ("4 spotify" → "for spotify", "-14lufs" → "-14 lufs"),
notes saying what was read ("read 'mster' as 'master'"), and the words too far from anything to be
sure of (the planner asks back rather than dropping them).

The lexicon is derived from the vocabulary itself: every regex of `agents.semantic.vocabulary`, the
question words and the intents' example phrases are expanded (exrex) into the words they accept. A
token is only corrected when it is not a word the vocabulary knows and not a common English word
(a whole word of the bundled embedder's 30k WordPiece vocabulary: "bass" is not "bas", "hall" is not
"all", "mix" is not "max"), and when one lexicon word is clearly nearest (rapidfuzz optimal string
alignment distance, at most 1 edit for words of up to 5 letters, 2 above).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

#: chat shorthand → what it stands for (whole tokens)
SHORTHAND = {
    "u": "you",
    "ur": "your",
    "n": "and",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "ty": "thanks",
    "r": "are",
    "w": "with",
    "b4": "before",
    "abit": "a bit",
    "alil": "a little",
    "lil": "little",
    "tho": "though",
    "rn": "right now",
    "vox": "vocals",
    "vocs": "vocals",
    "eq'd": "eq",
    "pod": "podcast",
    "govt": "government",
    "yt": "youtube",
    "hf": "high frequencies",
    "lows": "low end",
    "highs": "high end",
    "mids": "mids",
    "dont": "don't",
    "cant": "can't",
    "im": "i'm",
    "its": "it's",
    "thats": "that's",
    "wanna": "want to",
    "gonna": "going to",
}
_UNITS = r"(lufs|lu|dbtp|dbfs|db|hz|khz|ms|s|%)"


try:  # the `agent` extra; without it, shorthand is still read but spelling is taken as typed
    import exrex  # noqa: F401
    import rapidfuzz  # noqa: F401

    _CAN_CORRECT = True
except ImportError:
    _CAN_CORRECT = False


@dataclass
class Reading:
    text: str
    notes: list[str] = field(default_factory=list)
    unsure: list[str] = field(default_factory=list)


def _sources() -> Iterator[str]:
    from agents.semantic import followup as F
    from agents.semantic import parse as P
    from agents.semantic import questions as Q
    from agents.semantic import vocabulary as V

    def walk(v: Any) -> Iterator[str]:
        if isinstance(v, str):
            yield v
        elif isinstance(v, re.Pattern):
            yield v.pattern
        elif isinstance(v, dict):
            for x in v.values():
                yield from walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                yield from walk(x)
        elif hasattr(v, "patterns"):
            yield from walk(v.patterns)

    for mod in (V, Q, P, F):
        for name, value in vars(mod).items():
            if name.isupper():
                yield from walk(value)
    try:
        from tools.genres import GENRE_WORDS  # the genre module's words and aliases

        yield from walk(GENRE_WORDS)
    except Exception:  # the genre module is optional here
        pass


def _examples() -> Iterator[str]:
    try:
        from agents.semantic.intents import INTENTS
    except Exception:
        return
    for intent in INTENTS:
        yield from intent.examples


def _alternatives(rx: str) -> list[str]:
    """Top-level alternatives of a regex (exrex enumerates each one; a few at a time stay cheap)."""
    out, depth, cur, i = [], 0, "", 0
    while i < len(rx):
        ch = rx[i]
        if ch == "\\" and i + 1 < len(rx):
            cur += rx[i : i + 2]
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "|" and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return out


_WILDCARDS = re.compile(
    r"(?:\\[wWsSdD]|\.|\[\^[^\]]*\]|\[[^\]]*[a-z0-9]-[a-z0-9][^\]]*\])(?:[*+?]|\{\d*,?\d*\})?\??"
)


@lru_cache(maxsize=1)
def lexicon() -> frozenset[str]:
    """Every word the vocabulary accepts (see the module docstring)."""
    return _lexicon()[0]


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(all words, stems: words cut short by a wildcard in their pattern, e.g. "sibilan" of "sibilan\\w*")."""
    import exrex

    words: set[str] = set()
    stems: set[str] = set()
    for src in _sources():
        if not re.search(r"[a-z]{3}", src):
            continue
        for alt in _alternatives(src):
            # wildcards and character classes would enumerate junk ("reverbq"): the literal words stay
            cut = _WILDCARDS.search(alt) is not None
            alt = _WILDCARDS.sub("", alt)
            try:
                generated = list(itertools.islice(exrex.generate(alt, limit=8), 200))
            except Exception:  # lookarounds exrex cannot enumerate: keep the literal runs
                generated = re.findall(r"[a-z]{3,}", alt)
            for g in generated:
                found = [
                    w
                    for w in re.findall(r"[a-z][a-z'\-]*[a-z]", g.lower())
                    if len(w) >= 3 and not re.search(r"(.)\1\1|\d", w)
                ]
                words.update(found)
                if cut:
                    stems.update(found)
    full: set[str] = set()
    for ex in _examples():
        full.update(w for w in re.findall(r"[a-z][a-z'\-]*[a-z]", ex.lower()) if len(w) >= 3)
    words |= full
    stems = {w for w in stems - full if not _common(w)}
    return frozenset(words), frozenset(stems)


@lru_cache(maxsize=1)
def _english() -> frozenset[str]:
    """Common English words: the whole-word entries of the bundled sentence embedder's WordPiece
    vocabulary (all-MiniLM-L6-v2, about 22,000 words; read from disk, no download)."""
    try:
        from agents.semantic.embedder import model_dir

        with open(model_dir() / "vocab.txt", encoding="utf-8") as f:
            return frozenset(w.strip() for w in f if w.strip().isalpha())
    except Exception:  # without the embedder package only the lexicon guards
        return frozenset()


def _common(word: str) -> bool:
    """A common English word, or a contraction / hyphenation of common words ("that's", "de-ess")."""
    eng = _english()
    if word in eng:
        return True
    parts = [p for p in re.split(r"['\-]", word) if p]
    return len(parts) > 1 and all(p in eng or len(p) <= 3 for p in parts)


def _max_edits(word: str) -> int:
    return 1 if len(word) <= 5 else 2


@lru_cache(maxsize=4096)
def nearest(word: str) -> tuple[str | None, bool]:
    """(the lexicon word meant by ``word``, sure?) — None when nothing is within reach."""
    from rapidfuzz.distance import OSA

    limit = _max_edits(word)
    best: list[tuple[int, str]] = []
    for cand in lexicon():
        if abs(len(cand) - len(word)) > limit:
            continue
        d = OSA.distance(word, cand, score_cutoff=limit)
        if d <= limit:
            best.append((d, cand))
    if not best:
        return None, False
    best.sort()
    top = [c for d, c in best if d == best[0][0]]
    if len(top) == 1:
        return top[0], True
    # ties: swapped letters, then a dropped letter ("bost" → "boost", "softr" → "softer"), then an extra
    # one, then the same first letter; still tied is unsure
    stems = _lexicon()[1]
    rules = (
        lambda c: c not in stems,  # a whole word before a pattern's stem
        lambda c: sorted(c) == sorted(word),  # two letters swapped
        lambda c: _subsequence(word, c),
        lambda c: _subsequence(c, word),
        lambda c: c[0] == word[0],
    )
    for rule in rules:
        narrowed = [c for c in top if rule(c)]
        if len(narrowed) == 1:
            return narrowed[0], True
        if narrowed:
            top = narrowed
    # spelling variants of one word ("normalise" / "normalize", "compressing" / "compression") read the same
    if len({c.replace("z", "s") for c in top}) == 1 or len(os.path.commonprefix(top)) >= 6:
        return sorted(top)[0], True
    return sorted(top)[0], False


def _subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return len(long) > len(short) and all(ch in it for ch in short)


def _tokens(text: str) -> Iterable[re.Match[str]]:
    return re.finditer(r"[a-z][a-z'\-]*[a-z]|[a-z]", text)


def correct(text: str) -> Reading:
    """See the module docstring. Lower-cases nothing it does not change."""
    t = text
    # numbers glued to units, shorthand numbers: "-14lufs", "3db", "8k", "4 spotify"
    t = re.sub(rf"(?i)(\d)({_UNITS})\b", r"\1 \2", t)
    t = re.sub(r"(?i)\b(\d+(?:\.\d+)?) ?k\b(?! ?hz)", r"\1 kHz", t)
    t = re.sub(
        r"(?i)\b4 (?=(?:spotify|apple|youtube|tidal|amazon|podcasts?|radio|tiktok|the|my|a)\b)", "for ", t
    )
    t = re.sub(r"(?i)\bw/ ?(?=\w)", "with ", t)
    reading = Reading(t)
    out: list[str] = []
    pos = 0
    for m in _tokens(t.lower()):
        word = m.group(0)
        repl = None
        if word in SHORTHAND:
            repl = SHORTHAND[word]
        elif len(word) >= 4 and _CAN_CORRECT and not _common(word) and word not in lexicon():
            cand, sure = nearest(word)
            if cand is not None and sure:
                repl = cand
                reading.notes.append(f"read '{word}' as '{cand}'")
            elif cand is not None:
                reading.unsure.append(word)
        if repl is not None:
            out.append(t[pos : m.start()])
            out.append(repl)
            pos = m.end()
    out.append(t[pos:])
    reading.text = "".join(out)
    return reading
