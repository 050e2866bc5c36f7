"""Reading a request: normalising, clauses, vocabulary matches, negation, scope, intensity,
numbers with units, keys and scales. Pure functions over strings; no planning here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agents.semantic import vocabulary as V

# ------------------------------------------------------------------ normalising


_REPL = [
    ("\u2212", "-"),
    ("\u2013", "-"),
    ("\u2014", " - "),
    ("\u2019", "'"),
    ("\u2018", "'"),
    ("\u201c", '"'),
    ("\u201d", '"'),
    ("w/o", "without"),
    ("w/", "with "),
    ("\u266f", "#"),
    ("\u266d", "b"),
]


def normalize(text: str) -> str:
    t = (text or "").strip().lower()
    for a, b in _REPL:
        t = t.replace(a, b)
    t = re.sub(r"(\d)\s*-\s*(?=\d)", r"\1 to ", t)
    t = re.sub(r"\b(?:minus|negative)\s+(?=\d)", "-", t)
    t = re.sub(r"\s+", " ", t)
    return t


# ------------------------------------------------------------------ compiled patterns


def _c(p: str) -> re.Pattern[str]:
    return re.compile(p)


def _alt(patterns: tuple[str, ...] | list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@lru_cache(maxsize=1)
def _compiled() -> dict[str, Any]:
    terms = [(t, _c(rf"\b(?:{_alt(t.patterns)})\b")) for t in V.TERMS]
    genres = [(g, _c(rf"\b(?:{p})\b")) for p, g in V.GENRES]
    platforms = [(pl, _c(rf"\b(?:{pl[0]})\b")) for pl in V.PLATFORMS]
    intensity = [(lvl, _c(rf"\b(?:{p})\b")) for p, lvl in V.INTENSITY]
    scopes = [(tgt, _c(rf"\b(?:{p})\b")) for p, tgt in V.SCOPES]
    return {
        "terms": terms,
        "genres": genres,
        "platforms": platforms,
        "intensity": intensity,
        "scopes": scopes,
        "speech": _c(rf"\b(?:{V.SPEECH_WORDS})\b"),
        "repair": _c(rf"\b(?:{V.REPAIR_WORDS})\b"),
        "weak_repair": _c(rf"\b(?:{V.WEAK_REPAIR_WORDS})\b"),
        "improve": _c(rf"\b(?:{V.IMPROVE_WORDS})\b"),
        "mixdown": _c(rf"\b(?:{V.MIXDOWN_WORDS})\b"),
        "audio": _c(rf"\b(?:{V.AUDIO_WORDS})\b"),
        "only": _c(V.SCOPE_ONLY),
        "unsupported": [(_c(rf"\b(?:{p})"), what) for p, what in V.UNSUPPORTED],
        "info": _c(V.INFO_QUESTION),
    }


SPLIT = re.compile(
    r"\s*(?:[,;!?:]+(?=\s|$)|(?<!\d)\.(?!\d)|\s-\s|\b(?:and then|and also|then|after that|afterwards|afterward|"
    r"finally|lastly|also|plus|but|and|while|as well as|followed by|"
    r"and now|now)\b)\s*"
)
NEG = re.compile(
    r"\b(?:don'?t|do not|dont|doesn'?t|does not|no|not|never|without|avoid|skip|minus|except|nor|leave out|"
    r"stay away from|hold off on|forget about|rather than|instead of|none|nothing|zero|shouldn'?t|mustn'?t|"
    r"apart from|other than)\b"
)
NEG_EXCEPT = re.compile(
    r"\b(?:no more than|not (?:\w+ ){0,2}enough|no longer|not only|not just|no matter|nothing else|"
    r"(?:no|without) (?:\w+ )?(?:noise|hiss|hum|buzz|mud|boom|harshness|sibilance|clipping|distortion|echo|"
    r"reverb|room)\b(?= (?:at all|please|left))|doesn'?t have enough|isn'?t (?:\w+ )?enough)"
)
LEAVE = re.compile(
    r"\b(?:leave|keep)\b(?P<what>(?: \S+){1,4}?) (?:alone|as is|as it is|untouched|unchanged|the same|intact|"
    r"unprocessed|natural|clean)\b|\b(?:don'?t|do not|dont|never) (?:touch|change|process|alter|mess with|"
    r"affect|modify)\b(?P<what2>(?: \S+){1,4})"
)
QUESTION = re.compile(
    r"^(?:hey,? |hi,? |so,? |ok,? )?(?:what(?:'s| is| are| was)?|who|when|where|why|which|how (?:do|does|did|can|should|much|"
    r"many|long|old|is|are|was)|tell me (?:about|a|an|the|why|how|what|who)|explain|write|compose|set (?:an? |the )?"
    r"(?:alarm|timer|reminder)|remind|recommend|suggest (?:a|some)|is it|are you|do you|can you (?:write|tell|explain|"
    r"recommend|suggest|sing|play|teach|help me (?:write|learn|find))|play me|sing|teach me|translate|order|book|"
    r"call|text|email|send|is (?:this|it|that)(?: \w+)? (?:any )?(?:good|ok|okay|bad|fine)|does (?:this|it) sound (?:good|ok|bad))\b"
)
KEEP_DRY = re.compile(
    r"\b(?:keep (?:it|this|them|the \w+) dry|no (?:effects|fx)|dry (?:vocals|voice) only)\b"
)
KEEP_DYNAMIC = re.compile(
    r"\b(?:keep (?:the |its |it )?dynamic(?:s)?|preserve (?:the )?dynamics|dynamic master|"
    r"don'?t squash|don'?t crush|not squashed)\b"
)
#: "take some low mids out", "pull the harsh stuff out": what sits between the verb and "out" is taken away
TAKE_OUT = re.compile(
    r"\b(?:take|pull|get|scoop|suck|carve|cut|roll|dial)\s+(?:[\w'-]+\s+){1,4}?(?:out|off)\b"
)
LESS = re.compile(
    r"\b(?:less|reduce|reducing|lower|lowering|cut|cutting|tame|taming|decrease|tone down|remove|"
    r"removing|get rid of|kill|eliminate|too|too much|not so|fewer|turn down|pull back|back off|"
    r"dial back|take out|take away|strip|fix|fixing|minimi[sz]e|drop|lose|ditch|soften)\b"
)
MORE = re.compile(
    r"\b(?:more|add|adding|boost|increase|extra|some|bump|push|enhance|bring out|bring up|turn up|"
    r"lift|raise|give it|needs?|want)\b"
)
SCOPE_NEG_FILLER = {
    "the",
    "my",
    "on",
    "to",
    "any",
    "of",
    "with",
    "touch",
    "touching",
    "process",
    "processing",
    "change",
    "changing",
    "affect",
    "affecting",
    "alter",
    "mess",
    "messing",
    "apply",
    "add",
    "anything",
    "it",
    "onto",
    "in",
    "for",
    "do",
    "that",
    "this",
    "want",
    "i",
    "please",
}
OWN_OBJECT = re.compile(r"\b(?:it|this|the|everything|mix|track|song|master|whole|all)\b")
DESCRIBE = re.compile(
    r"\b(?:has|have|there'?s|there is|there are|it'?s got|got|full of|so much|drenched in|"
    r"swimming in|covered in|loads of|tons of)\b"
)
ADD_VERB = re.compile(r"\b(?:add|give|put|apply|want|need|more|boost|increase|make)\b")
PRONOUN_CARRY = re.compile(r"\b(?:them|they|those|their)\b")

STOP = set(
    [
        "a",
        "an",
        "the",
        "it",
        "this",
        "that",
        "these",
        "those",
        "is",
        "are",
        "was",
        "be",
        "been",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "by",
        "with",
        "and",
        "or",
        "my",
        "our",
        "your",
        "its",
        "their",
        "me",
        "i",
        "we",
        "you",
        "please",
        "can",
        "could",
        "would",
        "will",
        "should",
        "do",
        "does",
        "make",
        "makes",
        "making",
        "get",
        "give",
        "let",
        "us",
        "some",
        "any",
        "just",
        "really",
        "very",
        "so",
        "also",
        "then",
        "now",
        "too",
        "thing",
        "things",
        "kind",
        "sort",
        "like",
        "want",
        "wanted",
        "need",
        "needs",
        "bit",
        "little",
        "more",
        "less",
        "lot",
        "much",
        "track",
        "song",
        "file",
        "recording",
        "audio",
        "sound",
        "sounds",
        "sounding",
        "mix",
        "stuff",
        "one",
        "here",
        "there",
        "it's",
        "i'm",
        "what",
        "how",
        "can't",
        "cant",
        "don't",
        "dont",
        "into",
        "up",
        "down",
        "out",
        "over",
        "all",
        "everything",
        "something",
        "anything",
        "hey",
        "hi",
        "hello",
        "thanks",
        "thank",
        "okay",
        "ok",
        "yes",
        "yeah",
        "sure",
        "maybe",
        "bit",
        "touch",
        "them",
        "they",
        "him",
        "her",
        "his",
        "she",
        "he",
        "using",
        "use",
        "via",
        "remove",
        "fix",
        "add",
        "apply",
        "put",
        "take",
        "turn",
        "help",
        "try",
        "feel",
        "look",
        "able",
        "possible",
        "go",
        "going",
        "got",
        "have",
        "has",
        "had",
        "did",
        "done",
        "doing",
        "wanna",
        "gonna",
        "tweak",
        "change",
        "adjust",
        "improve",
        "work",
        "working",
        "whole",
        "overall",
        "part",
        "parts",
        "little",
        "tiny",
    ]
)

NUM = r"([+-]?\d+(?:\.\d+)?)"
NUMBERS: list[tuple[str, re.Pattern[str]]] = [
    ("lufs", re.compile(NUM + r"\s*(?:lufs|lkfs|lu)\b")),
    ("dbtp", re.compile(NUM + r"\s*(?:db ?tp|dbtp|db true[- ]?peak)\b")),
    (
        "dbtp",
        re.compile(
            r"\b(?:true[- ]?peak|tp|ceiling|peaks?)(?: ceiling| limit| max(?:imum)?)?(?: of| at| to| around|"
            r" below| under| no higher than| =|:)?\s*" + NUM + r"(?:\s*(?:dbfs|db))?\b"
        ),
    ),
    ("ratio", re.compile(NUM + r"\s*(?::|to)\s*1\b")),
    ("hz", re.compile(NUM + r"\s*(k|khz|hz)\b")),
    ("db", re.compile(NUM + r"\s*(?:db|decibels?)\b")),
    ("pct", re.compile(NUM + r"\s*(?:%|percent|per cent)")),
    ("ms", re.compile(NUM + r"\s*(?:ms|msec|milliseconds?)\b")),
    ("s", re.compile(NUM + r"\s*(?:s|sec|secs|seconds?)\b")),
]
BARE_LUFS = re.compile(r"(?<![\w.])(-\d+(?:\.\d+)?)(?![\w.%]|\s*(?:db|hz|k|ms|%|lu))")
KEY = re.compile(
    r"\b(?:key of |in the key of |to |in |into )?([a-g])(#| sharp|b| flat)?\s*(major|minor|maj|min)\b"
)
KEY_OF = re.compile(r"\b(?:key of|key to|key:)\s*([a-g])(#| sharp|b| flat)?\b(?:\s*(major|minor|maj|min))?")
CHROMATIC = re.compile(r"\bchromatic\b")


@dataclass
class Number:
    value: float
    unit: str
    start: int
    end: int


@dataclass
class Match:
    kind: str  # "term" | "genre" | "platform"
    obj: Any
    start: int
    end: int
    text: str
    negated: bool = False
    neg_cue: str = ""  # the word that negated it ("no", "not", "without", ...)
    modifier: str | None = None  # "less" | "more" | None


@dataclass
class Clause:
    text: str
    start: int
    end: int
    matches: list[Match] = field(default_factory=list)
    scope: str | None = None
    scope_negated: bool = False
    level: str | None = None
    numbers: list[Number] = field(default_factory=list)
    negated_at: int | None = None  # offset in clause text where negation starts
    neg_cue: str = ""
    negated_end: int = 10**9  # negation runs from negated_at to here (clause end unless "instead of X")
    prev_scope: str | None = None  # the scope of the clauses before (for "de-ess it")
    content: list[str] = field(default_factory=list)  # words no vocabulary entry explained


@dataclass
class Parsed:
    text: str
    clauses: list[Clause]
    speech: bool
    only: bool
    repair: bool
    improve: bool
    mixdown: bool
    audio_words: bool
    keep_dry: bool
    keep_dynamic: bool
    question: bool
    info_question: bool
    unsupported: list[str]
    key: tuple[str, str] | None
    forbidden_targets: set[str]


def split_clauses(text: str) -> list[tuple[int, int, str]]:
    """(start, end, the separator before it) for each clause."""
    spans = []
    pos = 0
    sep = ""
    for m in SPLIT.finditer(text):
        if m.start() > pos:
            spans.append((pos, m.start(), sep))
            sep = ""
        sep = (sep + " " + m.group(0).strip()).strip()
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text), sep))
    return [(a, b, s) for a, b, s in spans if text[a:b].strip()]


def _find_matches(text: str) -> list[Match]:
    comp = _compiled()
    cands: list[Match] = []
    for term, rx in comp["terms"]:
        for m in rx.finditer(text):
            cands.append(Match("term", term, m.start(), m.end(), m.group(0)))
    for genre, rx in comp["genres"]:
        for m in rx.finditer(text):
            cands.append(Match("genre", genre, m.start(), m.end(), m.group(0)))
    for pl, rx in comp["platforms"]:
        for m in rx.finditer(text):
            cands.append(Match("platform", pl, m.start(), m.end(), m.group(0)))
    # longest first, then earlier vocabulary order (stable sort keeps it)
    cands.sort(key=lambda c: -(c.end - c.start))
    taken: list[Match] = []
    for c in cands:
        if any(c.start < t.end and t.start < c.end for t in taken):
            continue
        taken.append(c)
    taken.sort(key=lambda c: c.start)
    return taken


def _numbers(text: str) -> list[Number]:
    found: list[Number] = []
    used: list[tuple[int, int]] = []
    for unit, rx in NUMBERS:
        for m in rx.finditer(text):
            if any(m.start() < b and a < m.end() for a, b in used):
                continue
            v = float(m.group(1))
            if unit == "hz" and m.group(2) in ("k", "khz"):
                v *= 1000.0
            found.append(Number(v, unit, m.start(), m.end()))
            used.append((m.start(), m.end()))
    found.sort(key=lambda n: n.start)
    return found


def _key(text: str) -> tuple[str, str] | None:
    m = KEY.search(text)
    scale = None
    if m:
        note, acc, sc = m.group(1), m.group(2), m.group(3)
        scale = "major" if sc.startswith("maj") else "minor"
    else:
        m = KEY_OF.search(text)
        if not m:
            return ("C", "chromatic") if CHROMATIC.search(text) else None
        note, acc, sc = m.group(1), m.group(2), m.group(3)
        scale = "minor" if sc and sc.startswith("min") else "major"
    acc = (acc or "").strip()
    acc = {"sharp": "#", "flat": "b"}.get(acc, acc)
    return note.upper() + acc, scale


#: words that may stand beside a part's name in a clause that only says where ("but just on the vocals, please")
SCOPE_ONLY_FILLER = frozenset(
    [
        "only",
        "just",
        "but",
        "on",
        "to",
        "the",
        "for",
        "please",
        "apply",
        "it",
        "do",
        "that",
        "this",
        "them",
        "those",
        "my",
        "our",
        "in",
        "of",
        "part",
        "parts",
        "track",
    ]
)


def _only_names_a_part(ctext: str, comp: dict[str, Any]) -> bool:
    rest = ctext
    for _, rx in comp["scopes"]:
        rest = rx.sub(" ", rest)
    return all(w in SCOPE_ONLY_FILLER for w in re.findall(r"[a-z']+", rest))


def parse(request: str, *, speech_hint: bool = False) -> Parsed:
    text = normalize(request)
    comp = _compiled()
    matches = _find_matches(text)
    numbers = _numbers(text)
    clauses: list[Clause] = []
    forbidden_targets: set[str] = set()

    # "leave the vocals alone", "don't touch the drums": forbidden targets
    leave_spans: list[tuple[int, int]] = []
    for lv in LEAVE.finditer(text):
        what = lv.group("what") or lv.group("what2") or ""
        start = lv.start("what") if lv.group("what") else lv.start("what2")
        leave_spans.append((start, start + len(what)))
        for tgt, rx in comp["scopes"]:
            if rx.search(what):
                forbidden_targets.add(tgt)

    prev_scope: str | None = None
    prev_negated = False
    prev_less = False
    for a, b, sep in split_clauses(text):
        ctext = text[a:b]
        cl = Clause(ctext, a, b)
        exc = [(x.start(), x.end()) for x in NEG_EXCEPT.finditer(ctext)]
        for nm in NEG.finditer(ctext):
            if any(s <= nm.start() < e for s, e in exc):
                continue
            cl.negated_at = nm.start()
            cl.neg_cue = nm.group(0)
            if cl.neg_cue in ("except", "minus"):  # "everything except the vocals should be brighter"
                after = list(re.finditer(r"\S+", ctext[nm.end() :]))[:2]
                cl.negated_end = nm.end() + (after[-1].end() if after else 0)
            elif cl.neg_cue in ("instead of", "rather than"):  # "instead of reverb use delay"
                stop = re.search(r"\b(?:use|add|try|go with|do|apply|with|give)\b", ctext[nm.end() :])
                cl.negated_end = nm.end() + stop.start() if stop else len(ctext)
            break
        # a bare noun after a negated clause ("no reverb and delay") inherits the negation
        if (
            cl.negated_at is None
            and prev_negated
            and len(ctext.split()) <= 2
            and not MORE.search(ctext)
            and not comp["only"].search(ctext)
        ):
            cl.negated_at = 0
        for tgt, rx in comp["scopes"]:
            sm = rx.search(ctext)
            if sm:
                cl.scope = tgt
                # "don't touch the vocals", "not on the vocals", "except the drums": the scope is ruled out;
                # "remove the sibilance without dulling the vocal" keeps it
                if cl.negated_at is not None and sm.start() >= cl.negated_at:
                    between = ctext[cl.negated_at : sm.start()].split()[1:]
                    cl.scope_negated = all(w in SCOPE_NEG_FILLER for w in between)
                break
        cl.prev_scope = prev_scope
        if (
            cl.scope is None
            and prev_scope
            and (
                PRONOUN_CARRY.search(ctext)
                or (sep in ("and", "and also", "plus", ",") and not OWN_OBJECT.search(ctext))
            )
        ):
            cl.scope = prev_scope
        for lvl, rx in comp["intensity"]:
            if rx.search(ctext):
                cl.level = lvl
                break
        cl.numbers = [n for n in numbers if a <= n.start < b]
        cl.matches = [m for m in matches if a <= m.start < b]
        last_end = a
        lead = ctext[: cl.matches[0].start - a].strip() if cl.matches else ctext
        inherit_less = (
            prev_less
            and sep in ("and", ",", "and also", "plus")
            and lead in ("", "the", "some", "any", "all")
            and cl.matches
            and cl.negated_at is None
        )
        for m in cl.matches:
            rel = m.start - a
            m.negated = (cl.negated_at is not None and cl.negated_at <= rel < cl.negated_end) or any(
                s <= m.start < e for s, e in leave_spans
            )
            m.neg_cue = cl.neg_cue if m.negated else ""
            before = text[max(last_end, m.start - 28) : m.start]
            lm = list(LESS.finditer(before))
            mm = list(MORE.finditer(before))
            dm = list(DESCRIBE.finditer(before))
            if lm and (not mm or lm[-1].start() > mm[-1].start()):
                m.modifier = "less"
            elif mm and not (dm and dm[-1].start() > mm[-1].start()):
                m.modifier = "more"
            elif dm and not ADD_VERB.search(ctext):
                m.modifier = "less"  # a description of what is there, not an ask for more
            if any(t.start() <= m.start - a and m.end - a <= t.end() for t in TAKE_OUT.finditer(ctext)):
                m.modifier = "less"  # "take some low mids out", "pull the harshness out"
            if (
                inherit_less
                and m is cl.matches[0]
                and m.modifier is None
                and not LESS.match(m.text)
                and not MORE.match(m.text)
            ):
                m.modifier = "less"  # "remove the noise and reverb"
            last_end = m.end
        # words nothing explained → candidates for nearest-intent matching
        covered = ctext
        for m in sorted(cl.matches, key=lambda m: -m.start):
            covered = covered[: m.start - a] + " " + covered[m.end - a :]
        for rx in (
            comp["repair"],
            comp["weak_repair"],
            comp["improve"],
            comp["mixdown"],
            comp["only"],
            NEG,
            LEAVE,
            KEY,
            KEY_OF,
            *(r for _, r in comp["scopes"]),
            *(r for _, r in comp["intensity"]),
            comp["speech"],
        ):
            covered = rx.sub(" ", covered)
        words = re.findall(r"[a-z][a-z'\-]+", covered)
        cl.content = [w for w in words if w not in STOP and len(w) > 2]
        if cl.scope_negated and cl.scope:
            forbidden_targets.add(cl.scope)
        # "make it brighter, only the vocals", "add reverb but just on the vocals": a clause that only names
        # a part scopes the clause before it (when that one named none)
        if (
            cl.scope
            and not cl.scope_negated
            and not cl.matches
            and clauses
            and clauses[-1].matches
            and clauses[-1].scope is None
            and _only_names_a_part(ctext, comp)
        ):
            clauses[-1].scope = cl.scope
        clauses.append(cl)
        prev_scope = cl.scope if cl.scope and not cl.scope_negated else prev_scope
        prev_negated = cl.negated_at is not None
        prev_less = bool(cl.matches) and cl.matches[-1].modifier == "less"

    return Parsed(
        text=text,
        clauses=clauses,
        speech=speech_hint or bool(comp["speech"].search(text)),
        only=bool(comp["only"].search(text)),
        repair=bool(comp["repair"].search(text))
        or (bool(comp["weak_repair"].search(text)) and not any(m.kind == "term" for m in matches)),
        improve=bool(comp["improve"].search(text)),
        mixdown=bool(comp["mixdown"].search(text)),
        audio_words=bool(comp["audio"].search(text)) or bool(matches) or bool(numbers),
        keep_dry=bool(KEEP_DRY.search(text)),
        keep_dynamic=bool(KEEP_DYNAMIC.search(text)),
        question=bool(QUESTION.search(text)),
        info_question=bool(comp["info"].search(text)),
        unsupported=[what for rx, what in comp["unsupported"] if rx.search(text)],
        key=_key(text),
        forbidden_targets=forbidden_targets,
    )


def bare_lufs(text: str) -> float | None:
    """A bare negative number that reads as a loudness target ("master to -12")."""
    for m in BARE_LUFS.finditer(text):
        v = float(m.group(1))
        if -30.0 <= v <= -5.0:
            return v
    return None
