"""Turns that are not commands: questions about the audio, questions about the conversation, and
confirmations of a suggestion ("yes", "do it", "ok, fix it").

`read_turn(text)` returns a `Question` (what is asked: a topic, maybe a platform or a problem), a
`Confirmation`, or None (plan the request as usual). Requests phrased politely ("can you make it
brighter?") are requests, not questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.semantic import vocabulary as V


@dataclass(frozen=True)
class Question:
    topic: str  # platform | loudness | true_peak | clipping | noise | hum | mono | reverb | tone | dynamics
    #           | bandwidth | wrong | about | history | speech
    platform: tuple[str, str | None, float, float, bool] | None = None
    platform_text: str = ""
    problem: str | None = None  # for topic "tone": muddy, harsh, ...
    text: str = ""


@dataclass(frozen=True)
class Confirmation:
    text: str


def _c(rx: str) -> re.Pattern[str]:
    return re.compile(rx, re.IGNORECASE)


_FILLER = r"(?:please|pls|plz|thanks|thank you|thx|then|now|mate|man|!|\.|,)"
CONFIRM = _c(
    r"^(?:(?:yes|yeah|yep|yup|ya|sure|ok(?:ay)?|alright|all right|y)"
    r"(?:[,!. ]+|$))*(?:(?:please |and )?(?:do it|do that|do so|go ahead|go for it|sounds good|let'?s do it|"
    r"let'?s go|fix it|fix that|fix them|apply it|apply that|apply (?:the|your) (?:suggestion|fix(?:es)?|plan)|"
    r"run it|make it so|proceed|yes please|please do|(?:i )?agree|that'?s fine|do what you (?:suggest(?:ed)?|said)"
    r"|(?:go ahead and |please |then )?(?:do|fix|apply|run|remove|get rid of|sort out|take care of|clean up|"
    r"handle|go with|cut|kill) (?:it|that|this|them|those)(?: (?:up|out|then|now|for me))?"
    r"|sounds good|sounds great|let'?s (?:do|fix) (?:it|that|this)"
    r"|(?:run|apply|use) (?:the |your )?(?:suggestion|suggested (?:fix|plan|steps)))(?:[,!. ]+(?:and )?|$))*"
    rf"(?:[,!. ]*{_FILLER})*[,!. ]*$"
)
_YES = _c(
    r"\b(?:yes|yeah|yep|yup|ya|sure|ok|okay|alright|all right|y|do|go|fix|apply|run|remove|get rid|sort|"
    r"take care|clean|handle|proceed|agree|sounds|let'?s|make it so|cut|kill|that'?s fine|use)\b"
)
PURE_YES = _c(r"^(?:yes|yeah|yep|yup|ya|sure|ok(?:ay)?|alright|all right|y|please do|yes please)[!. ]*$")

# a polite request is not a question: "can you make it brighter?", "could you master it?"
_ASKS = r"(?!tell|check|see|hear|say|let me know|confirm|look|listen|analy[sz]e|measure|find out|explain)"
REQUEST_FORM = _c(
    r"^(?:hey,? |hi,? |so,? |ok,? |okay,? )?(?:(?:can|could|would|will) (?:you|u) (?:please |pls )?"
    rf"{_ASKS}|(?:please|pls) {_ASKS}|(?:is it|would it be) possible to |(?:can|could|may) (?:i|we) (?:get|have) |"
    r"how (?:do|can|should) "
    r"(?:i|we|you) (?:make|get|add|remove|fix|master|clean|reduce|boost|cut|take|bring|turn))"
)
QUESTION_FORM = _c(
    r"^(?:hey,? |hi,? |so,? |ok,? |okay,? |and |also,? |but )?(?:please |pls )?(?:is|isn'?t|does|doesn'?t|do|are|was|were|"
    r"will|would|how|how'?s|what|what'?s|whats|why|where|where'?s|which|any|has|have|did|can i|could i|should i|"
    r"may i|diagnose|inspect|evaluate|assess|review|can (?:it|this|you (?:analy[sz]e|inspect|review|listen|look|tell|"
    r"check|see|hear|say|confirm|measure|find))|could (?:it|this|you (?:tell|check|see|hear|say|"
    r"measure))|tell me|check|analy[sz]e|describe|give me(?! (?:me |an? |the |just the |only the )?(?:instrumental|karaoke|acapella|a cappella|stems?|vocals?|drums?|bass)\b)|show me|i wonder|do you (?:think|hear)|"
    r"is there|are there)\b"
)

HISTORY = _c(
    r"\b(?:what (?:did|have|has) (?:you|mixpilot|it) (?:do|done|change|changed|apply|applied|use|used)|"
    r"what (?:changed|was (?:done|changed|applied))|what'?s (?:different|changed)|what did (?:that|this) do|"
    r"why did (?:you|it)|how did you|what were the (?:steps|settings)|what settings did you|"
    r"summar(?:y|ize|ise) (?:what you did|the changes)|what did you just do|"
    r"how did (?:it|that|this|the \w+) change|what (?:tools|steps) did you|"
    r"(?:last|latest|previous) (?:thing|change|step)s? (?:you|that you) (?:did|made|applied|ran)|"
    r"what you (?:just )?(?:did|changed|applied))\b"
)

_PLATFORM_READY = _c(
    r"\b(?:ready|good enough|ok|okay|fine|meet|meets|compliant|compliance|spec|specs|requirements?|"
    r"pass|passes|acceptable|suitable|approved?|right|loud enough|too loud|too quiet|upload|release|"
    r"turn (?:it )?(?:down|up)|normali[sz]\w*|work|submit|deliver|target|standards?|accept\w*|go on|like this|"
    r"as is|as it is|handle|play|allowed|okay for|ok for|fine for|good for)\b"
)
TOPICS: list[tuple[str, re.Pattern[str]]] = [
    (
        "true_peak",
        _c(
            r"true[- ]?peak|headroom|\bpeaks?\b|peaking|\bdbtp\b|inter-?sample|encod\w*|\bmp3\b|\baac\b|"
            r"lossy|codec"
        ),
    ),
    ("clipping", _c(r"\bclip\w*|distort\w*|overload\w*|crackl\w*|overs\b")),
    ("hum", _c(r"\bhum(?:s|ming)?\b|mains|ground loop|\b[56]0 ?hz\b|\bbuzz\w*|\bdrone\w*|\bwhine\b")),
    ("noise", _c(r"\bnois\w*|\bhiss\w*|background|\bstatic\b|noise floor|\bsnr\b")),
    ("mono", _c(r"\bmono\b|phase|correlation|fold[- ]?down|collapse")),
    ("stereo", _c(r"stereo|\bwide\b|wider|width|narrow|\bimage\b|panning|spread")),
    ("reverb", _c(r"reverb\w*|\becho\w*|roomy|room sound|\bwet\b|\bdry\b")),
    (
        "loudness",
        _c(
            r"how loud|loudness|\blufs\b|how quiet|volume|too loud|too quiet|loud enough|\blevels?\b|"
            r"\bloud\b|\bquiet\b|\brms\b|\bgain\b"
        ),
    ),
    (
        "dynamics",
        _c(
            r"over-?compressed|squash\w*|dynamic range|\bcrest\b|\bplr\b|too compressed|\bdynamics\b|"
            r"compressed|\blra\b|loudness range|brickwall\w*|\bflat\b|lifeless|punchless|no punch"
        ),
    ),
    (
        "bandwidth",
        _c(
            r"bandwidth|frequency range|sample rate|band-?limited|low-?pass\w*|missing (?:the )?(?:top|highs)|"
            r"high end|top end|phone|telephone|walkie|am radio|\btinny\b"
        ),
    ),
    (
        "speech",
        _c(r"speech or music|music or speech|is (?:it|this) (?:speech|music|a song|a podcast|talking|voice)"),
    ),
    (
        "wrong",
        _c(
            r"what'?s wrong|whats wrong|anything wrong|wrong with|problems?|issues?|needs? (?:fixing|work)|"
            r"what (?:needs|should (?:i|we)|can (?:i|we|you)) (?:fix|improve|change)|what should (?:i|we) do|how can (?:i|we|it|this) "
            r"(?:be )?improv\w*|how(?:'s| is| does| do| did) .{0,40}\bsound(?:s|ing)?\b|(?:is|does) (?:it|this|my \w+) "
            r"(?:sound )?(?:any )?(?:good|ok|okay|fine|bad|right|alright|decent|professional)|feedback|critique|"
            r"review|diagnos\w*|what do you think|broken|fixable|quality"
        ),
    ),
    (
        "about",
        _c(
            r"tell me about|describe|summar\w*|what (?:do|can) you (?:hear|tell)|give me (?:the |some )?(?:stats|"
            r"numbers|facts|details|info\w*|specs)|analy[sz]\w*|overview|stats|statistics|measure\w*|"
            r"what (?:is|'s) (?:this|it) like|what kind of|tonal balance|frequenc\w*|spectrum|spectral|"
            r"building up|build-?up"
        ),
    ),
]
#: tonal question words → diagnosis problem
TONE_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("muddy", _c(r"\bmud\w*|cloudy|congested|boxy|honky")),
    ("boomy", _c(r"\bboom\w*|woolly|wooly|too much (?:low end|bass)|bass[- ]heavy")),
    ("harsh", _c(r"\bharsh\w*|piercing|shrill|strident|too bright|brittle|\bsharp\b")),
    ("sibilance", _c(r"sibil\w*|ess(?:y|es)\b|\bs'?s\b")),
    ("dull", _c(r"\bdull\w*|\bdark\b|muffled|muddled|lifeless top|no air|veiled")),
    (
        "thin",
        _c(
            r"\bthin(?:ner|nest|ness)?\b|weak low|no (?:low end|bass|body)|lacks? (?:bass|body|low end)|"
            r"enough (?:bass|low end|lows|bottom)|(?:bass|low end) (?:is |sounds? )?(?:weak|lacking|missing)"
        ),
    ),
    # "is the low end ok?", "how's the bass?": the low end's balance, either way
    ("low_end", _c(r"\blow[- ]end\b|\bbass\b|\blows\b|bottom end|\bsub[- ]?bass\b|low frequenc\w*")),
]


def find_platform(text: str) -> tuple[tuple[str, str | None, float, float, bool], str] | None:
    for pl in V.PLATFORMS:
        m = re.search(rf"\b(?:{pl[0]})\b", text, re.IGNORECASE)
        if m:
            return pl, m.group(0)
    return None


def is_question(text: str) -> bool:
    t = text.strip().lower()
    if REQUEST_FORM.search(t):  # "can you make it brighter?" is a request, unless it asks to check something
        return False
    return t.endswith("?") or bool(QUESTION_FORM.search(t))


def read_turn(text: str) -> Question | Confirmation | None:
    """What kind of turn ``text`` is (see the module docstring)."""
    t = re.sub(r"\s+", " ", (text or "").strip().lower())
    if not t:
        return None
    if CONFIRM.match(t) and _YES.search(t):
        return Confirmation(t)
    if HISTORY.search(t):
        return Question("history", text=t)
    if not is_question(t):
        return None
    found = find_platform(t)
    if found is not None and (_PLATFORM_READY.search(t) or t.endswith("?")):
        return Question("platform", platform=found[0], platform_text=found[1], text=t)
    if re.search(r"\b(?:ready|good to go|finished|done|release[- ]ready)\b", t) and not re.search(
        r"\bare you\b", t
    ):
        return Question("platform", text=t)  # "is it ready?": against the streaming target
    for problem, rx in TONE_WORDS:
        if rx.search(t):
            return Question("tone", problem=problem, text=t)
    for topic, rx in TOPICS:
        if rx.search(t):
            return Question(topic, text=t)
    if re.search(r"\bwhat (?:can|do) you do\b|\bwhat are you\b|\bhelp\b", t) and not re.search(
        r"\b(?:it|this|my)\b", t
    ):
        return None
    if re.search(V.INFO_QUESTION, t):  # "what does compression do?": about audio in general, not this file
        return None
    if re.search(rf"\b(?:{V.AUDIO_WORDS}|it|this)\b", t) and re.search(r"\b(?:it|this|my|the)\b", t):
        return Question("about", text=t)  # another question about the recording: what was measured
    return None
