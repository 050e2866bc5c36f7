"""The production vocabulary as data: words people use → tool + params (shared/VOCABULARY.md).

Each `Term` has regex patterns (matched on lower-cased text, word-bounded), a `kind` and the
steps it means:

- ``problem``: names something wrong ("muddy", "hiss", "harsh"). Always means "fix it", even
  when negated ("no hiss", "less mud", "too harsh").
- ``effect``: names a quality to add ("brighter", "wide", "reverb"). Negated → not added;
  with less/too/reduce → its ``inverse`` (or nothing, with a note).
- ``tool``: names a process ("compression", "de-esser", "autotune"). Negated → the tool is
  forbidden for the whole plan.

Params are the base amounts; the planner scales them by intensity words and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tools.genres import GENRE_WORDS

Kind = Literal["problem", "effect", "tool"]
StepSpec = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Term:
    key: str
    patterns: tuple[str, ...]
    kind: Kind
    steps: tuple[StepSpec, ...]
    reason: str
    inverse: tuple[StepSpec, ...] | None = None  # what "less X" / "too X" means; None = just leave it out
    forbids: tuple[str, ...] = ()  # tools a negated mention forbids (tool kind: its own tools by default)
    voice: bool = False  # naturally acts on a voice (target vocals/speech when one is named)
    target: str | None = None  # always acts on this target ("vocals": a voice in a mix)
    note: str = ""  # said when the term is used


def T(
    key: str, patterns: str | tuple[str, ...], kind: Kind, steps: list[StepSpec], reason: str, **kw: Any
) -> Term:
    pats = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    inv = kw.pop("inverse", None)
    return Term(key, pats, kind, tuple(steps), reason, tuple(inv) if inv is not None else None, **kw)


#: a stem named on its own, up to the end of its clause ("the vocals", "the bass line please", "my vocal stem")
_STEM_ALONE = (
    r"(?:just |only )?(?:the |my )?(?:lead )?(?:vocals?|voices?|drums?|bass(?: ?line)?)(?: stems?| tracks?| parts?)?"
    r"(?=\s*(?:please|pls|only|alone|on (?:its|their) own|by (?:itself|themselves))?\s*(?:[.,;!?]|\band\b|\bthen\b|$))"
)
EQ_GENTLE = {"mud_db": -1.5, "presence_db": 1.0, "air_db": 1.0}
SPEECH_EQ = {"low_cut_hz": 80.0, "mud_db": -2.0, "presence_db": 2.5}

TERMS: list[Term] = [
    # ---------------------------------------------------------------- repair
    T(
        "noise_reduction",
        (
            r"de-?nois\w*",
            r"noise[- ]?(reduction|removal|suppression|gate|gating|cancell?ation)",
            r"noise ?reducer",
        ),
        "tool",
        [("denoise", {})],
        "reduce the noise",
    ),
    T(
        "noise",
        (
            r"nois(e|es|y|ier)",
            r"hiss(es|y|ing)?",
            r"hum(s|ming)?",
            r"buzz(es|ing|y)?",
            r"static",
            r"background (sound|chatter|sounds)",
            r"(fan|traffic|wind|ac|air ?con\w*|room|street|crowd) noise",
            r"pops and clicks",
            r"clicks?",
            r"crackl\w*",
            r"(mains|ground|electrical) hum",
            r"\bhvac\b",
            r"air conditioner",
            r"fridge",
            r"computer fan",
        ),
        "problem",
        [("denoise", {})],
        "remove the noise",
    ),
    T(
        "declip",
        (
            r"de-?clip\w*",
            r"clip(ped|ping|s)?",
            r"distort(ed|ion|s|ing)?",
            r"overdriven",
            r"overloaded",
            r"crunchy peaks",
            r"peaks? (are )?(squared|flat[- ]topped)",
            r"too hot when recorded",
            r"recorded too hot",
            r"red ?lin(ed|ing)",
        ),
        "problem",
        [("declip", {})],
        "repair the clipped peaks",
    ),
    T(
        "dereverb_tool",
        (r"de-?reverb\w*", r"reverb remov\w*"),
        "tool",
        [("dereverb", {})],
        "reduce the room sound",
    ),
    T(
        "roomy",
        (
            r"echo(ey|y|ish)",
            r"roomy",
            r"reverberant",
            r"room sound",
            r"room tone",
            r"bathroom",
            r"tiled room",
            r"empty room",
            r"sounds? like (it'?s |it was )?(recorded )?in a (bathroom|gym|hall|church|cave|tunnel|"
            r"warehouse|stairwell|kitchen|big room|empty room)",
            r"dry (it|this|that|the \w+|\w+)? ?up",
            r"(drier|dryer)",
            r"too much room",
            r"take (the )?(room|echo|reverb)( sound)? out",
            r"(less|remove|reduce|kill) (the )?room( sound| echo| tone)?",
            r"distant",
            r"(it|this|room|voice|vocals?|recording) echoes",
            r"echoing",
            r"far away",
            r"cavernous",
            r"boomy room",
            r"(sound|feel|be) closer",
            r"closer to the mic",
            r"less distant",
            r"close[- ]mic(ed|'d)?",
        ),
        "problem",
        [("dereverb", {})],
        "reduce the room reverberation",
    ),
    T(
        "restore",
        (
            r"restor(e|ation|ing)",
            r"old recording",
            r"damaged",
            r"degraded",
            r"low[- ]quality recording",
            r"bring (it|this) back to life",
            r"vintage recording",
            r"cassette",
            r"vinyl rip",
            r"tape hiss",
        ),
        "problem",
        [("restore", {})],
        "restore the degraded recording",
    ),
    T(
        "telephone",
        (
            r"(make|give|turn) (it|this|the \w+)( sound)? (like|into) (a |an )?(old |cheap )?(tele)?phone( call)?",
            r"(make|give|turn) (it|this|the \w+)( sound)? (like|into|as if) (it'?s |they'?re |they are |it is )?"
            r"(coming )?(through|from|on) (a |an |the )?(old |cheap )?(tele)?(phone|radio|walkie[- ]talkie|megaphone|"
            r"speaker|intercom)",
            r"(tele)?phone effect",
            r"radio effect",
            r"megaphone( effect)?",
            r"walkie[- ]talkie effect",
            r"band-?pass( filter)?",
        ),
        "effect",
        [("eq", {"low_cut_hz": 300.0, "high_cut_hz": 3500.0, "presence_db": 3.0})],
        "telephone/radio effect: band-limit to 300 Hz–3.5 kHz",
    ),
    T(
        "bandwidth",
        (
            r"bandwidth( extension)?",
            r"band-?limited",
            r"phone[- ]?(call|quality|recording|line)",
            r"telephone",
            r"(low[- ]?(bit ?rate|quality)|bad|compressed) mp3",
            r"mp3 (quality|artifacts)",
            r"missing (the )?(highs|high end|top end|treble)",
            r"no (high end|top end|highs)",
            r"(cut|chopped) off (highs|high end|top)",
            r"sounds? like (a|an old) (phone|radio|walkie)",
            r"zoom call",
            r"voip",
            r"lo-?res",
        ),
        "problem",
        [("bandwidth_extension", {})],
        "restore the missing high frequencies",
    ),
    # ---------------------------------------------------------------- separation and voice
    T(
        "separate",
        (
            r"separat\w*",
            r"split (it |this |the \w+ )?(in)?to (stems|tracks|parts)",
            r"stems?",
            r"isolate (the )?(vocals?|voice|drums|bass|instruments?)",
            r"extract (the )?(vocals?|voice|drums|bass)",
            r"acapella",
            r"a cappella",
            r"karaoke",
            r"(remove|take out|strip) (the )?vocals",
            r"instrumental version",
            r"(make|give me|get|create|render|bounce|export) (me )?(an? |the )?instrumental",
            r"backing track",
            r"minus one",
            r"(remove|take out|strip|mute|get rid of) (the )?drums",
            r"drumless",
            r"unmix",
            # "give me the vocals", "pull out the vocal track", "just the bass please": a stem asked for
            # on its own (the clause ends there; "give me the vocals louder" is no separation)
            rf"(?:give me|get me|pull out|solo|bounce|export|i (?:just |only )?(?:want|need)) {_STEM_ALONE}",
            rf"^(?:please )?(?:just|only) {_STEM_ALONE}",
        ),
        "tool",
        [("separate", {})],
        "split into stems",
    ),
    T(
        "vocoder",
        (
            r"vocoder\w*",
            r"re-?synthes\w*",
            r"neural (voice|vocoder)",
            r"robotic (voice|artifacts)",
            r"(enhance|improve|upgrade) (the )?(voice|speech) quality",
            r"studio[- ]quality voice",
        ),
        "tool",
        [("vocoder_enhance", {})],
        "re-synthesise the voice through a neural vocoder",
        voice=True,
    ),
    T(
        "pitch",
        (
            r"auto-?tun\w*",
            r"pitch[- ]?(correct\w*|fix\w*|tun\w*)",
            r"(?<!fine[- ])(?<!fine)\b(re)?tun(e|ed|es|ing)\b",
            r"in tune",
            r"out of tune",
            r"off[- ]?key",
            r"off[- ]pitch",
            r"pitchy",
            r"flat notes",
            r"sharp notes",
            r"sings? (flat|sharp)",
            r"tuning",
            r"melodyne",
            r"correct the pitch",
            r"fix the pitch",
            r"t-?pain",
        ),
        "tool",
        [("pitch_correct", {})],
        "tune the voice",
        voice=True,
    ),
    # ---------------------------------------------------------------- tone
    T(
        "eq_tool",
        (r"\beq\b", r"\beqs\b", r"\beq'?d\b", r"equali[sz]\w*"),
        "tool",
        [("eq", {})],
        "balance the tone with EQ",
    ),
    T(
        "bright",
        (
            r"bright(er|en|ness|ening)?",
            r"crisp(er|y|ier|ness)?",
            r"sparkl\w*",
            r"shimmer\w*",
            r"shin(e|y|ier)",
            r"more (treble|highs|high end|top end|top)",
            r"(boost|lift|raise|add|increase) (the |some )?"
            r"(treble|highs|high end|top end|high frequencies|top)",
            r"trebl(e|ier)",
            r"zing",
            r"sizzle",
            r"brilliance",
            r"snappier top",
        ),
        "effect",
        [("eq", {"bright_db": 3.0})],
        "lift the 3–8 kHz presence and treble",
        inverse=[("eq", {"bright_db": -3.0})],
    ),
    T(
        "darker",
        (
            r"dark(er|en)",
            r"mellow(er)?",
            r"smooth(er)? (top|highs|high end)",
            r"less (treble|highs|high end|"
            r"top end|bright)",
            r"(cut|reduce|lower|tame|roll off) (the |some )?(treble|highs|high end|top end|"
            r"high frequencies)",
            r"too much (treble|high end|top end)",
            r"softer highs",
        ),
        "effect",
        [("eq", {"bright_db": -3.0})],
        "soften the treble",
        inverse=[("eq", {"bright_db": 3.0})],
    ),
    T(
        "dull",
        (
            r"dull",
            r"muffled",
            r"\bdark\b",
            r"lifeless top",
            r"no sparkle",
            r"lack(s|ing)? (sparkle|highs|clarity "
            r"up top|brightness)",
            r"blanket",
            r"under ?water",
            r"veiled",
            r"closed[- ]in",
        ),
        "problem",
        [("eq", {"bright_db": 3.0, "air_db": 2.0})],
        "lift the dull top end",
    ),
    T(
        "warm",
        (
            r"warm(er|th|ing)?",
            r"low[- ]mids?",
            r"full(er|ness)",
            r"full[- ]bodied",
            r"cozy|cosy",
            r"rich(er|ness)?",
            r"round(er)?",
            r"lush",
        ),
        "effect",
        [("eq", {"warm_db": 3.0})],
        "add warmth around 100–300 Hz",
        inverse=[("eq", {"warm_db": -3.0})],
    ),
    T(
        "clear",
        (
            r"clear(er)?",
            r"clarity",
            r"intelligib\w*",
            r"articulate",
            r"defin(ed|ition)",
            r"understandable",
            r"hard to understand",
            r"can'?t understand",
        ),
        "effect",
        [("eq", {"presence_db": 2.5, "mud_db": -2.0})],
        "more 2–4 kHz presence, less 200–500 Hz",
    ),
    T(
        "presence",
        (
            r"presen(ce|t)",
            r"bite",
            r"bitey",
            r"more edge",
            r"definition in the mids",
            r"up ?front",
            r"forward",
            r"cut through",
            r"in your face",
            r"intimate",
            r"make (it|them|this|the \w+) pop",
            r"pop(s)? (out|more|through)",
            r"stand out",
            r"jump out",
        ),
        "effect",
        [("eq", {"presence_db": 3.0})],
        "lift the 2–4 kHz presence",
        inverse=[("eq", {"presence_db": -3.0})],
    ),
    T(
        "air",
        (
            r"air(y|ier|iness)?",
            r"sheen",
            r"gloss(y|ier)?",
            r"open(ness)?",
            r"breath(y|ier)?",
            r"silk(y|ier)",
            r"(10|12|16) ?k(hz)? shelf",
        ),
        "effect",
        [("eq", {"air_db": 3.0})],
        "a 10–16 kHz air shelf",
        inverse=[("eq", {"air_db": -3.0})],
    ),
    T(
        "muddy",
        (
            r"mud(dy|diness|dier)?",
            r"cloudy",
            r"congested",
            r"murky",
            r"woolly low[- ]mids",
            r"200 ?hz buildup",
            r"messy low end",
            r"muffled mids",
        ),
        "problem",
        [("eq", {"mud_db": -3.0})],
        "cut the 200–500 Hz mud",
    ),
    T(
        "boomy",
        (
            r"boom(y|iness|ing)?",
            r"bass(y|ier)",
            r"wooll?y",
            r"bloated",
            r"too much bass",
            r"bass[- ]heavy",
            r"overpowering bass",
            r"(less|reduce|cut|lower|tame|turn down|cut down) (the |some )?(bass|low end|lows|sub|sub[- ]?bass|"
            r"bottom end)",
            r"flabby",
            r"rumbl(e|y|ing)",
            r"(the )?(bass|low end|lows|sub|kick|808s?) (is|are) (way |much |a bit )?too (loud|much|strong|heavy|big|"
            r"boomy|prominent)",
            r"(bass|low end|lows|sub) (is|are) overpowering",
            r"low end",
        ),
        "problem",
        [("eq", {"boom_db": -3.0, "low_cut_hz": 30.0})],
        "cut the 80–200 Hz boom",
    ),
    T(
        "boxy",
        (r"box(y|iness)", r"honk(y|iness)?", r"nasal(ly)?", r"cardboard", r"tubby", r"in a box", r"cupped"),
        "problem",
        [("eq", {"box_db": -3.0})],
        "cut the 400 Hz–1.2 kHz boxiness",
    ),
    T(
        "harsh",
        (
            r"harsh(ness)?",
            r"pierc(ing|es)",
            r"shrill",
            r"brittle",
            r"ear[- ]?fatigu\w*",
            r"fatiguing",
            r"(?<!a )(?<!c )sharp(?! notes)",
            r"edg(y|iness)",
            r"abrasive",
            r"grating",
            r"tinny highs",
            r"hurts? (my|the) ears",
            r"painful",
            r"ice[- ]?pick",
            r"screech\w*",
            r"spiky highs",
            r"smooth(er|en)?( (it|this|the \w+))?( out)?(?! the (volume|levels?|dynamics))",
            r"(tame|soften|calm( down)?|smooth( out)?) (the )?(cymbals|hi-?hats?|crash|ride|sizzle)",
        ),
        "problem",
        [("dynamic_eq", {"target": "harsh"})],
        "tame the harsh 2–5 kHz range",
        voice=False,
    ),
    T(
        "resonance",
        (r"resonan(ce|ces|t)", r"ring(ing|s|y)", r"whistl\w*", r"feedback tone"),
        "problem",
        [("dynamic_eq", {"target": "resonance"})],
        "tame resonances",
    ),
    T(
        "sibilant",
        (
            r"sibilan\w*",
            r"ess(y|iness)",
            r"\besses\b",
            r"s sounds",
            r"s'?s are",
            r"hissy s",
            r"lisp\w*",
            r"sharp s",
            r"spitty",
            r"whistling s",
        ),
        "problem",
        [("de_ess", {})],
        "reduce the sibilance",
        voice=True,
    ),
    T(
        "de_ess_tool",
        (r"de-?ess(er|ing)?", r"dee?ss(er|ing)?"),
        "tool",
        [("de_ess", {})],
        "reduce the sibilance",
        voice=True,
    ),
    T(
        "thin",
        (
            r"thin(ner)?",
            r"tinny",
            r"weak (low end|bottom|bass)",
            r"(bass|low end|bottom|lows|kick)( is| are|'s)? (a bit |too |really |very |so |kind of )?"
            r"(weak|wimpy|anemic|lacking|missing|gone|not there)",
            r"no (low end|bass|bottom|body)",
            r"lack(s|ing)? (body|bass|low end|weight|bottom)",
            r"small[- ]sounding",
            r"weedy",
            r"(recorded )?in a tin can",
        ),
        "problem",
        [("eq", {"warm_db": 3.0, "boom_db": 1.5})],
        "add body below 300 Hz",
    ),
    T(
        "heavy",
        (
            r"heav(y|ier)(?! (reverb|compression|compressor|delay|saturation|auto-?tune|de-?ess\w*|noise|limiting|"
            r"eq|distortion|echo|verb|comp|processing|hand))",
            r"fat(ter)?",
            r"thick(er)?",
            r"beef(y|ier)?",
            r"body",
            r"weight",
            r"chunk(y|ier)",
            r"bassier",
            r"more (bass|low end|lows|sub|sub[- ]?bass|bottom|bottom end|low frequencies)",
            r"(boost|lift|add|increase|pump up|bring up) (the |some )?(bass|low end|lows|sub|sub[- ]?bass|"
            r"bottom end)",
            r"bass boost",
            r"phat",
        ),
        "effect",
        [("eq", {"boom_db": 2.5, "warm_db": 2.0})],
        "more low end",
        inverse=[("eq", {"boom_db": -3.0})],
    ),
    T(
        "mids",
        (r"more (mids|midrange|mid-range|middle)", r"scooped", r"hollow"),
        "effect",
        [("eq", {"box_db": 2.0, "presence_db": 1.5})],
        "more midrange",
    ),
    T(
        "low_cut",
        (
            r"low[- ]?cut",
            r"high[- ]?pass",
            r"\bhpf\b",
            r"roll[- ]?off (the )?(lows|low end|bottom)",
            r"(cut|remove|filter) (everything )?below",
        ),
        "tool",
        [("eq", {"low_cut_hz": 80.0})],
        "high-pass to clear sub rumble",
    ),
    T(
        "high_cut",
        (r"high[- ]?cut", r"low[- ]?pass", r"\blpf\b", r"(cut|remove|filter) (everything )?above"),
        "tool",
        [("eq", {"high_cut_hz": 16000.0})],
        "low-pass the top end",
    ),
    # ---------------------------------------------------------------- dynamics
    T(
        "compress_tool",
        (
            r"compress(ion|or|ed|ing)?",
            r"\bcomp\b",
            r"\bcomps\b",
            r"multiband",
            r"bus comp\w*",
            r"threshold",
            r"ratio",
            r"(fast|slow|quick|short|long)(er)? (attack|release)",
            r"attack( time)?",
            r"release( time)?",
            r"knee",
            r"make-?up gain",
        ),
        "tool",
        [("compress", {})],
        "control the dynamics",
        inverse=[],
        note="compression cannot be fully undone; I will not add more",
    ),
    T(
        "overcompressed",
        (
            r"squash(ed)?",
            r"over-?compressed",
            r"lifeless",
            r"crushed",
            r"no dynamics",
            r"flat dynamics",
            r"pumping",
        ),
        "problem",
        [],
        "keep compression off",
        forbids=("compress",),
        note="over-compression cannot be fully undone; I will leave compression off and keep the master gentle",
    ),
    T(
        "punch",
        (
            r"punch(y|ier|iness)?",
            r"hit(s)? (harder|hard)",
            r"impact(ful)?",
            r"snap(py|pier)?",
            r"slam(ming)? drums",
            r"knock(s)?",
            r"transients?",
            r"tight(er|en)?",
            r"energ(y|etic)",
            r"excit(ing|ement)",
            r"livel(y|ier|iness)",
            r"more life",
            r"groov(e|ier)",
            r"bounce|bouncier",
            r"crack(y|ier)?",
            r"hard[- ]hitting",
            r"smack(s|ier)?",
            r"thump(y|ier)?",
            r"(drums?|kick|snare|beat)( is| are|'s)? (sound(s|ing)? )?(a bit |too |really |so |kind of )?"
            r"(weak|flat|lifeless|limp|soft|wimpy)",
        ),
        "effect",
        [("compress", {"amount": 0.5, "ratio": 4.0, "attack_ms": 30.0, "release_ms": 120.0})],
        "punch: compression with a slow-enough attack to keep transients",
    ),
    T(
        "glue",
        (
            r"glue(d|y)?",
            r"cohesi(ve|on)",
            r"\bgel\b",
            r"sit together",
            r"hold together",
            r"bus compression",
            r"polished dynamics",
        ),
        "effect",
        [("compress", {"amount": 0.35, "ratio": 2.0, "attack_ms": 30.0, "release_ms": 200.0})],
        "glue: gentle 2:1 bus compression",
    ),
    T(
        "even",
        (
            r"even(s)? (it |them |everything |things |the levels? |the volume |the dynamics )?out",
            r"even(ed)? out",
            r"level (it |things )?out",
            r"inconsistent (volume|levels?|loudness)",
            r"volume (jumps|changes|swings)",
            r"(levels?|volume|loudness) (keeps? )?(jump(s|ing)?|swing(s|ing)?|bounc(es|ing)|go(es|ing)? up and down)"
            r"( around| all over| up and down)?",
            r"(levels?|volume|loudness) (is |are )?all over the place",
            r"(some parts|quiet parts) (are )?too quiet",
            r"too dynamic",
            r"uneven",
            r"consistent",
            r"smooth (out )?(the )?(volume|levels?|dynamics)",
            r"control (the )?dynamics",
            r"dynamic range",
            r"tame the peaks",
            r"(loud|quiet) (and|&) (quiet|loud)",
        ),
        "problem",
        [("compress", {"amount": 0.6})],
        "even out the levels",
    ),
    T(
        "saturation",
        (
            r"saturat\w*",
            r"vinyl (sound|vibe|feel|warmth|crackle)",
            r"(sound|feel) like (a )?vinyl( record)?",
            r"harmonics?",
            r"tape",
            r"tube",
            r"valve",
            r"analog(ue)?",
            r"less (digital|sterile|clinical|cold)",
            r"grit(ty|tier)?",
            r"drive",
            r"crunch(y|ier)?",
            r"dirt(y|ier)",
            r"overdrive",
            r"excit(er|e)",
            r"vintage",
        ),
        "tool",
        [("saturation", {})],
        "add harmonic warmth",
    ),
    # ---------------------------------------------------------------- space
    T(
        "reverb",
        (
            r"reverb(s|eration)?",
            r"pre-?delay",
            r"(too|very|so|really|bone) dry",
            r"sounds? (very |so |too )?dry",
            r"live (feel|sound|room|vibe)",
            r"sound live",
            r"like (a |it'?s )?live (show|concert|performance|recording|room)",
            r"\bverb\b",
            r"ambien(ce|t)",
            r"space",
            r"(concert )?hall",
            r"plate",
            r"church",
            r"cathedral",
            r"chamber",
            r"room (reverb|ambience)",
            r"wet(ter)?",
            r"spring reverb",
            r"in a (big |small )?room",
            r"add (a little |a bit of |some |more )?room",
            r"stadium",
            r"arena",
            r"cave",
            r"depth",
            r"dreamy",
            r"ethereal",
            r"wash(y)?",
        ),
        "effect",
        [("reverb", {})],
        "add space",
        inverse=[("dereverb", {})],
    ),
    T(
        "delay",
        (r"delay(s|ed)?", r"echo(es)?", r"slap[- ]?back", r"ping[- ]?pong", r"repeats", r"dub echo"),
        "effect",
        [("delay", {})],
        "add echo",
        inverse=[("dereverb", {})],
    ),
    T(
        "wide",
        (
            r"wid(e|er|en|ening|th)",
            r"stereo (image|field|spread|enhanc\w*)",
            r"spread",
            r"immersive",
            r"expansive",
            r"spacious",
            r"3d",
            r"big(ger)?",
            r"huge",
            r"epic",
            r"panoramic",
            r"more stereo",
        ),
        "effect",
        [("stereo_width", {"width": 1.3})],
        "widen the stereo image, bass kept mono",
        inverse=[("stereo_width", {"width": 0.75})],
    ),
    T(
        "bass_mono",
        (
            r"(keep|make) the (bass|low end|lows|sub)( in)? mono",
            r"mono (bass|low end|lows|sub)",
            r"bass (in )?mono",
            r"mono[- ]?below",
        ),
        "effect",
        [("stereo_width", {"bass_mono_hz": 150.0})],
        "keep the low end mono",
    ),
    T(
        "narrow",
        (
            r"narrow(er)?",
            r"mono[- ]?(compatib\w*|safe)",
            r"less wide",
            r"too wide",
        ),
        "effect",
        [("stereo_width", {"width": 0.75, "bass_mono_hz": 150.0})],
        "narrow the stereo image, mono-safe",
        inverse=[("stereo_width", {"width": 1.3})],
    ),
    T(
        "phase",
        (r"phasey", r"phase (issues?|problems?|cancell?ation)", r"out of phase", r"falls apart in mono"),
        "problem",
        [("stereo_width", {"width": 0.75, "bass_mono_hz": 150.0})],
        "mono-safe: narrower image, bass in mono",
    ),
    T(
        "plosive",
        (
            r"plosives?",
            r"[pb][- ]?pops?",
            r"popping [pb]'?s",
            r"pops on (the |my )?[pb]'?s",
            r"(mic|microphone) (thumps?|pops?)",
            r"breath (blasts?|thumps?)",
        ),
        "problem",
        [("eq", {"low_cut_hz": 100.0})],
        "cut the plosive thumps below 100 Hz",
        voice=True,
    ),
    T(
        "mono",
        (r"\bmono\b", r"make it mono", r"sum to mono", r"collapse to mono"),
        "effect",
        [("stereo_width", {"width": 0.0})],
        "fold to mono",
        inverse=[("stereo_width", {"width": 1.3})],
    ),
    # ---------------------------------------------------------------- mix / sidechain / reference
    T(
        "mix_tool",
        (
            r"(mix|blend|combine|put|sit|lay|place|merge)( the| my)? (vocals?|voice|singing|vox|rap|verse)"
            r" (with|into|on ?top of|over|onto|on|against|and)( the| my)? (beat|music|instrumental|track|"
            r"backing( track)?|song)",
            r"combine (the )?(two|both) tracks",
            r"vocal (and|&) (music|beat|"
            r"instrumental)",
            r"(music|beat|instrumental) (and|&) (the )?vocals?",
            r"mix (the )?stems",
            r"(vocals?|voice)( \d+(\.\d+)? ?db)? (above|over|louder than|on top of|below|under|quieter than) "
            r"the (instrumental|music|beat|track|backing)",
            r"mix (the|my) (vocals?|voice)",
        ),
        "tool",
        [("mix", {})],
        "combine the vocal and music tracks",
    ),
    T(
        "vocal_up",
        (
            r"(vocals?|voice|singer|lyrics|words) (is |are )?(buried|too quiet|too low|lost|drowned( out)?|"
            r"hard to hear|getting lost|too far back)",
            r"(bring|turn|push|pull) (up|out|forward) the (vocals?|voice)",
            r"(bring|turn|push|pull) the (vocals?|voice) (up|out|forward)",
            r"can'?t hear the (vocals?|voice|"
            r"singer|lyrics|words)",
            r"vocals? (louder|up front|forward|on top)",
            r"louder vocals?",
            r"(vocals?|voice) (to )?sit (better|well|nicely|on top)( in the mix)?",
        ),
        "problem",
        [("eq", {"presence_db": 3.0}), ("compress", {"amount": 0.4})],
        "bring the vocal forward: presence lift and steadier level",
        target="vocals",
    ),
    T(
        "vocal_down",
        (
            r"(vocals?|voice|singer) (is |are )?(way |much |a bit )?too (loud|upfront|forward|hot|present|"
            r"prominent)",
            r"(turn|bring|pull) (down )?the (vocals?|voice)( down| back)",
            r"quieter vocals?",
            r"vocals? (down|back) (a bit|a little|in the mix)?",
            r"(vocals?|voice) sits? too (high|far forward)",
        ),
        "problem",
        [("eq", {"presence_db": -3.0})],
        "pull the vocal back: less presence",
        target="vocals",
    ),
    T(
        "sidechain",
        (
            r"side-?chain\w*",
            r"duck(ing|ed|s)?",
            r"(lower|reduce|turn down|quieten|dip) (the )?"
            r"(background )?music",
            r"(background )?music (is )?(too loud|drowns|covers|masks)",
            r"music (down|lower|quieter|softer|dips?) (when|while|under|"
            r"whenever)",
            r"(under|beneath) the (voice|vocals?|speech|narration|talking)",
            r"(voice|speech|narration) over (the )?music",
            r"make room for the (voice|vocals?)",
        ),
        "tool",
        [("sidechain", {})],
        "duck the music under the voice",
    ),
    T(
        "reference",
        (
            r"reference( track| song| mix)?",
            r"match (the )?(sound|tone|loudness|vibe|eq|balance|master) (of|to)",
            r"(sound|make it sound) like (this|that|the|my) (track|song|reference|record|other)",
            r"like the (reference|other track|attached)",
            r"same (sound|vibe|tone) as",
        ),
        "tool",
        [("reference_match", {})],
        "match the reference track",
    ),
    # ---------------------------------------------------------------- loudness
    T(
        "master_tool",
        (
            r"master(ing|ed|s)?",
            r"finali[sz](e|ed|ing)",
            r"limit(er|ing)?",
            r"loudness normali[sz]\w*",
            r"loudness( target| standard| level| spec\w*)?",
            r"normali[sz](e|ation|ed)",
            r"release[- ]ready",
            r"ready (for|to) (release|distribution|upload|"
            r"publish)",
            r"distribution",
            r"streaming",
            r"export",
            r"final (version|mix|touches)",
        ),
        "tool",
        [("master", {})],
        "final loudness and true-peak ceiling",
    ),
    T(
        "louder",
        (
            r"loud(er)?",
            r"radio[- ]?ready",
            r"competitive(ly)?",
            r"hott?(er)?(?! when)",
            r"commercial",
            r"turn (it|this) up",
            r"more volume",
            r"volume up",
            r"boost (the )?(volume|level|gain)",
            r"(increase|raise) (the )?(volume|level|gain)",
            r"in[- ]your[- ]face loud",
            r"club[- ]ready",
        ),
        "effect",
        [("master", {"target_lufs": -10.0})],
        "louder master",
        inverse=[("master", {"target_lufs": -18.0})],
    ),
    T(
        "quieter",
        (
            r"quiet(er)?",
            r"soft(er)?",
            r"turn (it|this) down",
            r"less loud",
            r"too loud",
            r"lower (the )?"
            r"(volume|level|gain)",
            r"reduce (the )?(volume|level|gain)",
            r"volume down",
        ),
        "effect",
        [("master", {"target_lufs": -18.0})],
        "quieter master",
        inverse=[("master", {"target_lufs": -10.0})],
    ),
    T(
        "max_loud",
        (
            r"as loud as possible",
            r"max(imum|imise|imize)? (loudness|volume)",
            r"slam(med)? (it|the master)",
            r"loudness war",
            r"crank (it|this)",
        ),
        "effect",
        [("master", {"target_lufs": -8.0, "glue": 0.4})],
        "as loud as is safe",
    ),
]

# ---------------------------------------------------------------- what a separation keeps
#: (regex, separate's ``keep``): "extract the vocals" keeps the vocal stem, "karaoke" the mix without it.
#: First match wins; no match keeps the mix (the stems ride along: "separate the stems").
_STEM_WORDS = {
    "vocals": r"(?:lead )?(?:vocals?|voices?|singing|singer|vox)",
    "drums": r"(?:drums?|percussion|beat)",
    "bass": r"(?:bass(?:line| line| guitar)?)",
}
SEPARATE_KEEP: list[tuple[str, str]] = [
    (r"karaoke|instrumental|backing track|minus one|sing[- ]?along", "no_vocals"),
    (r"a ?capp?ella|vocals? only|only the vocals?|just the vocals?|dry vocals? stem", "vocals"),
    *[
        (
            rf"(?:remove|take out|strip|mute|drop|get rid of|without|cut out|no) (?:the |my |all )?{w}",
            f"no_{k}",
        )
        for k, w in _STEM_WORDS.items()
    ],
    *[(rf"{k[:-1] if k.endswith('s') else k}[- ]?less", f"no_{k}") for k in ("drums", "vocals")],
    *[
        (
            rf"(?:extract|isolate|solo|pull out|get|give me|keep|export|bounce|i (?:just |only )?(?:want|need)) "
            rf"(?:the |just the |only the |me the |my )?"
            rf"{w}(?: stem| track| part)?",
            k,
        )
        for k, w in _STEM_WORDS.items()
    ],
    *[(rf"(?:just|only) (?:the )?{w}", k) for k, w in _STEM_WORDS.items()],
]

# ---------------------------------------------------------------- platforms → master params
# (pattern, platform enum or None, target LUFS, true peak dBTP, strong: always implies a master step)
PLATFORMS: list[tuple[str, str | None, float, float, bool]] = [
    (r"spotify", "spotify", -14.0, -1.0, True),
    (r"apple podcasts?", "podcast", -16.0, -1.0, True),
    (r"apple ?music|itunes", "apple_music", -16.0, -1.0, True),
    (r"netflix|hulu|disney\+?|prime video|streaming tv|film mix|movie mix", None, -27.0, -2.0, True),
    (r"\bcds?\b|compact disc", None, -9.0, -0.3, True),
    (r"bandcamp|vinyl", None, -14.0, -1.0, True),
    (r"you ?tube|yt\b", "youtube", -14.0, -1.0, True),
    (r"amazon( music)?", "amazon", -14.0, -2.0, True),
    (r"tidal", "tidal", -14.0, -1.0, True),
    (r"soundcloud", None, -14.0, -1.0, True),
    (r"deezer", None, -15.0, -1.0, True),
    (r"tik ?tok|instagram|reels|social media", None, -14.0, -1.0, True),
    (
        r"ebu( r-?128)?|r-?128|broadcast|tv|television|radio broadcast|atsc|a/85",
        "broadcast",
        -23.0,
        -1.0,
        True,
    ),
    (r"acx|audible|audiobooks?|audio ?books?", "audiobook", -20.0, -3.0, True),
    (r"clubs?|dj sets?|dance ?floor|festival", "club", -9.0, -1.0, True),
    (r"podcasts?|podcasting", "podcast", -16.0, -1.0, False),
    (r"streaming( services?| platforms?)?", None, -14.0, -1.0, True),
]
#: the streaming reference loudness (LUFS): where Spotify, YouTube, Tidal and Amazon play (the "streaming" row)
STREAMING_LUFS: float = next(lufs for pat, _, lufs, _, _ in PLATFORMS if pat.startswith("streaming"))
#: the spoken-word reference loudness (LUFS): the podcast row
SPOKEN_LUFS: float = next(lufs for pat, _, lufs, _, _ in PLATFORMS if pat.startswith("podcasts?"))

# ---------------------------------------------------------------- genres (words → genre_preset enum)
#: (regex, genre): one table for the planner, the tool and memory (tools/genres.py)
GENRES: list[tuple[str, str]] = list(GENRE_WORDS)

# ---------------------------------------------------------------- intensity words → level
# level: touch 0.25, bit 0.4, gentle 0.3 ("transparent", "natural"), lot 0.85, max 0.95
INTENSITY: list[tuple[str, str]] = [
    (
        r"a (tiny|little|wee) (bit|touch)|a touch|a hint|a smidge|a tad|ever so slightly|barely|tiny bit|very slightly|"
        r"just a little",
        "touch",
    ),
    (r"a (little )?bit|slightly|a little|somewhat|mild(ly)?|light(ly)?|a small amount", "bit"),
    (r"half|halfway|50 ?%? (intensity|strength|amount)", "half"),
    (
        r"subtle|subtly|gentl(e|y)|transparent(ly)?|natural(ly)?|soft ?touch|careful(ly)?|light[- ]?handed|musical",
        "gentle",
    ),
    (
        r"a lot|much|way more|very|really|heav(y|ily)|strong(ly|er)?|hard(?![- ]hitting)|serious(ly)?|lots|massive(ly)?|"
        r"significantly|considerably|tons|super|extremely|aggressive(ly)?|drastic(ally)?",
        "lot",
    ),
    (r"as much as possible|maximum|max|all the way|fully|completely|totally|entirely|extreme", "max"),
]
#: dB a "louder" / "quieter" moves the loudness by intensity word ("" = none said)
LOUDNESS_STEP_DB = {"": 2.0, "touch": 0.5, "bit": 1.0, "gentle": 1.0, "half": 2.0, "lot": 3.0, "max": 4.0}
LEVEL_AMOUNT = {"touch": 0.25, "bit": 0.4, "gentle": 0.3, "half": 0.5, "lot": 0.85, "max": 0.95}
LEVEL_FACTOR = {"touch": 0.5, "bit": 0.7, "gentle": 0.6, "half": 0.5, "lot": 1.7, "max": 2.2}

# ---------------------------------------------------------------- scope words → target
SCOPES: list[tuple[str, str]] = [
    (
        r"vocals?|vox|voice(s)?|singer|singing|lead vocal|lead|rapper|rap vocals?|verses?|narrat(or|ion)|host|speaker|"
        r"dialog(ue)?|talking|speech",
        "vocals",
    ),
    (r"drums?|kick|snare|hi-?hats?|percussion|cymbals|toms|drum bus|beat", "drums"),
    (
        r"bass ?(guitar|line|track|stem|part|player)|bassline|808s?|"
        + "|".join(
            f"(?<={v} )the bass(?! (end|frequencies|response|boost))"
            for v in (
                "compress",
                "saturate",
                "distort",
                "tighten",
                "widen",
                "isolate",
                "separate",
                "eq",
                "process",
                "de-noise",
                "denoise",
                "clean",
                "mono",
                "on",
                "to",
                "for",
            )
        ),
        "bass",
    ),
    (r"guitars?|pianos?|keys|synths?|strings|horns|pads?", "other"),
]

# ---------------------------------------------------------------- speech context
SPEECH_WORDS = (
    r"podcast\w*|speech|spoken|voice[- ]?over|vo\b|narrat\w*|audiobook\w*|interview\w*|dialog(ue)?|"
    r"lecture|sermon|webinar|meeting|zoom|voice ?memo|vlog|talk(ing)? head|talk show|announcer|"
    r"presentation|conference call|my voice|audio ?book|speaking|spoken word|voice ?note|radio show|"
    r"audio drama|lesson|tutorial|course"
)

# generic asks filled from the analysis
REPAIR_WORDS = (
    r"(?<!keep it )(?<!keep this )(?<!keep things )clean(ed|ing)?( it| this| that| them| the \w+)?( up)?|clean-?up|tidy|salvage|rescue|cleaner|"
    r"(?:make|get) (?:it|this|the \w+) (?:usable|listenable|intelligible)"
)
#: "fix it" is a generic ask only when nothing more specific was said
WEAK_REPAIR_WORDS = r"fix(ed)?( it| this| that| up)?|repair|sort (it|this) out"
IMPROVE_WORDS = (
    r"enhance|improve|better|polish(ed)?|professional|pro(?:fessional)?[- ]?(sounding|quality)?|"
    r"studio[- ]quality|sound (good|great|nice|amazing|awesome)|sweeten|make (it|this) shine|finish(ed)?|"
    r"broadcast[- ]quality|podcast[- ]ready|ready for (a |the )?(podcast|show)|upgrade|"
    r"do (your|its) (thing|magic)|work (your|its) magic|fix the sound|optimi[sz]e|touch up|amateur(ish)?|"
    r"bedroom recording|demo quality|home-?made|cheap[- ]sounding|low[- ]budget|less like a demo|"
    r"release quality|radio quality|pro sound"
)
MIXDOWN_WORDS = r"mix (it|this|the (track|song))|mixdown|mix and master|mixing"

# words that make a request about audio even when nothing specific is asked
AUDIO_WORDS = (
    r"audio|sound(s|ing)?|song|track|mix|recording|record|file|music|vocals?|voice|podcast|beat|stems?|"
    r"master|loud|quiet|volume|bass|treble|guitar|drums?|piano|mic|microphone|tone|eq|levels?|"
    r"instrumental|album|ep\b|single|demo|clip|take|wav|mp3|flac|speech|dialog(ue)?|noise|style|genre|vibe|preset|"
    r"lyrics|chorus|verse|singer|band|studio|producer|engineer"
)

SCOPE_ONLY = r"\b(only|just|solely|nothing (else|but)|merely)\b"

# asks mixpilot cannot do (generation, editing, tempo/timing, transposition, file conversion): a note, no step
UNSUPPORTED: list[tuple[str, str]] = [
    (
        r"(make|create|generate|produce|compose|write|program) (me )?(a |an |some |the )?(new )?(beat|song|track|loop|"
        r"melody|lyrics|drum (loop|pattern|track)|music|new instrumental|bassline|chords?|hook|verse|chorus)"
        # the thing made is the end of the ask ("make a beat", "write me a song about rain"); "make the chorus
        # wider" changes what is there
        r"(?=\s*(?:$|[.,;!?]|\b(?:for|about|with|in|that|like|please|from)\b))",
        "generate music or lyrics",
    ),
    (r"transcrib\w*|write (down|out) the lyrics", "transcribe"),
    (
        r"convert (it |this |the \w+ )?(to|into) (an? )?(mp3|wav|flac|ogg|m4a|aac)",
        "convert files (export with `mixpilot process ... -o out.mp3`)",
    ),
    (
        r"(cut|trim|chop|crop|remove|delete) (off |out )?(all )?(the )?(first|last|beginning|end|start|intro|outro|"
        r"silences?|pauses|gaps|dead air)",
        "edit or trim audio",
    ),
    (
        r"(speed|slow) (it |this |the \w+ )?(up|down)|tempo|\bbpm\b|time[- ]?stretch|(fix|tighten) the timing|"
        r"quantiz\w*",
        "change tempo or timing",
    ),
    (r"\bsing\b|\bsings? (it|the|a|for)", "sing or perform"),
    (r"\bplay (me )?(some|a|the|my|this|that|it|music)\b", "play music"),
    (
        r"(change|shift|transpose|move) (the |it to |it )?(key|pitch)( of the (song|track))? (to|up|down|by|into)|"
        r"transpose|pitch (it |this )?(up|down) (by )?(a |an |\d)",
        "transpose the key (tuning a voice to a key works)",
    ),
    (r"fade[- ]?(in|out)|crossfade", "add fades"),
    (r"reverse (it|this|the audio)|play (it )?backwards", "reverse audio"),
    (
        r"(add|put) (a |some )?(drums|bass|guitar|piano|strings|instruments?|harmon(y|ies)|backing vocals) (to|on|under)",
        "add new instruments or parts",
    ),
]
INFO_QUESTION = (
    r"^(?:can you |could you |please )?(?:explain|what(?:'s| is| are| does| do) (?:the difference|the point|"
    r"the purpose|\w+ (?:do|does|mean))|how does|why (?:does|do|is|are)|what(?:'s| is| are) (?:a |an )?"
    r"(?:compression|compressor|eq|equali[sz]ation|reverb|mastering|limiter|limiting|lufs|true peak|"
    r"de-?essing|sidechain(?:ing)?|saturation|dynamic range))"
)
