"""Nearest-intent matching for phrasings the vocabulary does not cover.

Each `Intent` has example phrases and the plan fragment it means. A request (or a clause of
one) is embedded with all-MiniLM-L6-v2 and compared with every example; the best intent wins
if its cosine similarity clears `ACCEPT`. Between `UNSURE` and `ACCEPT` the planner asks
instead of guessing; an out-of-scope intent ("what's the weather") winning means "not audio".
The embedder loads on the first call only, so requests the vocabulary explains never pay for it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ACCEPT = 0.55
UNSURE = 0.40
#: the example phrases' embeddings, shipped so start-up needs no batch encoding; rebuilt (and
#: rewritten when the folder is writable) whenever the examples change
VECTORS = Path(__file__).with_name("intent_vectors.npz")


@dataclass(frozen=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    steps: tuple[tuple[str, dict[str, Any]], ...]  # "__repair__" / "__speech__" = analysis-driven chains
    reason: str

    @property
    def example(self) -> str:
        return self.examples[0]


def intent(name: str, examples: list[str], steps: list[tuple[str, dict[str, Any]]], reason: str) -> Intent:
    return Intent(name, tuple(examples), tuple(steps), reason)


INTENTS: list[Intent] = [
    intent(
        "denoise",
        [
            "get rid of the background noise",
            "there is a fan running in the background",
            "remove the hiss",
            "I can hear the air conditioning",
            "filter out the street sounds",
            "make the background silent",
            "the recording has a constant whine",
        ],
        [("denoise", {"strength": 0.6})],
        "remove the background noise",
    ),
    intent(
        "declip",
        [
            "it sounds distorted and crackly on the loud parts",
            "the peaks are crunchy and broken",
            "the mic was overloaded",
            "fix the distortion on loud notes",
        ],
        [("declip", {"strength": 0.8})],
        "repair the clipped peaks",
    ),
    intent(
        "dereverb",
        [
            "it sounds like it was recorded in a bathroom",
            "too much echo from the room",
            "make it sound less like a big empty hall",
            "the voice sounds far from the mic",
            "remove the room echo",
        ],
        [("dereverb", {"strength": 0.5})],
        "reduce the room reverberation",
    ),
    intent(
        "bandwidth",
        [
            "it sounds like an old phone call",
            "the file sounds like a low bitrate mp3",
            "the highs are completely gone",
            "it sounds like AM radio",
        ],
        [("bandwidth_extension", {"amount": 0.5})],
        "restore the missing high frequencies",
    ),
    intent(
        "bright",
        [
            "make it sparkle",
            "give it more shine on top",
            "open up the top end",
            "make it pop more",
            "add some sizzle",
            "it needs more crispness",
            "make the cymbals shimmer",
        ],
        [("eq", {"bright_db": 3.0, "air_db": 1.5})],
        "lift the treble and air",
    ),
    intent(
        "dull",
        [
            "it sounds like there is a blanket over the speakers",
            "it sounds like it's underwater",
            "the sound is lifeless and flat",
            "everything sounds muffled",
        ],
        [("eq", {"bright_db": 3.0, "air_db": 2.0})],
        "lift the dull top end",
    ),
    intent(
        "warm",
        [
            "make it feel cozy and vintage",
            "give it a warmer analog vibe",
            "make it sound softer and rounder",
            "more body in the lower mids",
        ],
        [("eq", {"warm_db": 3.0}), ("saturation", {"amount": 0.25})],
        "warmth: low-mid lift and gentle harmonics",
    ),
    intent(
        "mud",
        [
            "the low mids are cluttered",
            "everything is smeared together in the low end",
            "clean up the lower midrange",
            "it sounds congested and unclear",
        ],
        [("eq", {"mud_db": -3.0})],
        "cut the 200–500 Hz mud",
    ),
    intent(
        "boom",
        [
            "the bass is overwhelming",
            "the low end is too much",
            "too much rumble in the low end",
            "the kick and bass are bloated",
        ],
        [("eq", {"boom_db": -3.0})],
        "cut the 80–200 Hz boom",
    ),
    intent(
        "thin",
        [
            "it has no weight",
            "the sound is weak in the low end",
            "it needs more bottom",
            "the voice sounds small",
        ],
        [("eq", {"warm_db": 3.0, "boom_db": 1.5})],
        "add body below 300 Hz",
    ),
    intent(
        "harsh",
        [
            "it hurts my ears",
            "the highs are painful on headphones",
            "the guitars are too aggressive up top",
            "it sounds tiring to listen to",
            "the trumpet is piercing",
        ],
        [("dynamic_eq", {"target": "harsh", "amount": 0.5})],
        "tame the harsh 2–5 kHz range",
    ),
    intent(
        "sibilance",
        [
            "the s sounds are too sharp",
            "the esses whistle",
            "every s cuts through too much",
            "tame the sibilants",
        ],
        [("de_ess", {"amount": 0.5})],
        "reduce the sibilance",
    ),
    intent(
        "clarity",
        [
            "I can't understand the words",
            "make the voice easier to understand",
            "the dialogue is hard to follow",
            "bring the lyrics out",
        ],
        [("eq", {"presence_db": 3.0, "mud_db": -2.0})],
        "more presence, less mud",
    ),
    intent(
        "punch",
        [
            "make the drums hit harder",
            "the kick needs more impact",
            "give it more slam",
            "the drums feel weak and soft",
            "make it more energetic and aggressive",
        ],
        [("compress", {"amount": 0.5, "ratio": 4.0, "attack_ms": 30.0, "release_ms": 120.0})],
        "punch: compression that keeps transients",
    ),
    intent(
        "even",
        [
            "some words are too quiet and others too loud",
            "the volume keeps jumping around",
            "make the level more consistent",
            "smooth out the volume differences",
        ],
        [("compress", {"amount": 0.6})],
        "even out the levels",
    ),
    intent(
        "glue",
        [
            "make everything sit together",
            "it sounds disconnected, bring it together",
            "make the mix feel cohesive",
        ],
        [("compress", {"amount": 0.35, "ratio": 2.0, "attack_ms": 30.0, "release_ms": 200.0})],
        "gentle bus compression",
    ),
    intent(
        "space",
        [
            "put it in a big concert hall",
            "make it sound like a cathedral",
            "give it some ambience",
            "make it sound dreamy and spacious",
            "add depth behind the voice",
        ],
        [("reverb", {"amount": 0.25, "style": "hall", "room_size": 0.7})],
        "add space",
    ),
    intent(
        "echo",
        ["add an echo effect", "make the words repeat", "a dub style echo", "add some repeats on the vocal"],
        [("delay", {"time_ms": 350.0, "feedback": 0.35, "amount": 0.25})],
        "add echo",
    ),
    intent(
        "wide",
        [
            "make it feel bigger and more immersive",
            "spread it out across the speakers",
            "make the stereo image larger",
            "it feels too narrow",
        ],
        [("stereo_width", {"width": 1.3})],
        "widen the stereo image",
    ),
    intent(
        "loud",
        [
            "make it as loud as commercial songs",
            "it needs to compete with other tracks on the radio",
            "it's too quiet compared to other songs",
            "bring the overall level up",
        ],
        [("master", {"target_lufs": -10.0, "true_peak_dbtp": -1.0})],
        "louder master",
    ),
    intent(
        "master",
        [
            "get it ready for release",
            "prepare it for upload",
            "finish the track for distribution",
            "make it sound like a finished record",
        ],
        [("master", {"target_lufs": -14.0, "true_peak_dbtp": -1.0})],
        "master for release",
    ),
    intent(
        "improve",
        [
            "make it sound professional",
            "make this sound better",
            "give it a professional polish",
            "can you make it sound good",
            "make my recording sound studio quality",
        ],
        [
            ("__repair__", {}),
            ("eq", {"mud_db": -1.5, "presence_db": 1.0, "air_db": 1.0}),
            ("compress", {"amount": 0.35, "ratio": 2.0}),
            ("master", {"target_lufs": -14.0, "true_peak_dbtp": -1.0}),
        ],
        "a gentle, complete finishing chain",
    ),
    intent(
        "speech",
        [
            "make my podcast sound professional",
            "make my voice sound like a radio host",
            "make the interview sound broadcast quality",
            "improve my voice over",
        ],
        [("__speech__", {})],
        "the speech chain",
    ),
    intent(
        "pitch",
        [
            "the singer is a bit off",
            "fix the wrong notes in the singing",
            "make the vocal hit the notes",
            "the singing is not in key",
        ],
        [("pitch_correct", {"strength": 0.8})],
        "tune the voice",
    ),
    intent(
        "duck",
        [
            "lower the music when someone talks",
            "make the background music quieter under the speech",
            "the music drowns out the voice",
        ],
        [("sidechain", {"depth_db": 6.0})],
        "duck the music under the voice",
    ),
    intent(
        "saturate",
        [
            "make it sound like tape",
            "add some grit and dirt",
            "make it sound like an old record",
            "add analog character",
        ],
        [("saturation", {"amount": 0.35})],
        "add harmonic character",
    ),
    intent(
        "lofi",
        ["make it sound lo-fi and chill", "give it a chill study beats vibe"],
        [("genre_preset", {"genre": "lofi", "intensity": 0.6})],
        "lo-fi styling",
    ),
    intent(
        "out_of_scope",
        [
            "what's the weather like today",
            "tell me a joke",
            "write me a poem about love",
            "who won the football game",
            "how do I cook pasta",
            "book me a flight to Paris",
            "what time is it",
            "help me with my homework",
            "translate this into French",
            "what is the capital of France",
            "order a pizza",
            "write some Python code",
            "how are you doing",
            "recommend a movie",
            "send an email to my boss",
            "what is the meaning of life",
            "set an alarm for seven",
            "calculate my taxes",
        ],
        [],
        "not about audio",
    ),
]


class IntentMatcher:
    """Embeds the intent examples once (lazily) and matches queries against them."""

    def __init__(
        self,
        intents: list[Intent] | None = None,
        *,
        accept: float = ACCEPT,
        unsure: float = UNSURE,
        embedder: Any = None,
    ) -> None:
        self.intents = intents or INTENTS
        self.accept, self.unsure = accept, unsure
        self._embedder = embedder
        self._matrix: np.ndarray | None = None
        self._owner: list[int] = []
        self._lock = threading.Lock()
        self.calls = 0  # how many requests needed the embedder (for benchmarks)

    def _ensure(self) -> None:
        if self._matrix is not None:
            return
        with self._lock:
            if self._matrix is not None:
                return
            if self._embedder is None:
                from agents.semantic.embedder import get_embedder

                self._embedder = get_embedder()
            texts, owner = [], []
            for i, intent in enumerate(self.intents):
                for ex in intent.examples:
                    texts.append(ex.lower())
                    owner.append(i)
            self._owner = owner
            self._matrix = load_vectors(texts)
            if self._matrix is None:
                self._matrix = self._embedder.encode(texts)
                save_vectors(texts, self._matrix)

    def match(self, queries: list[str]) -> list[tuple[Intent, float, str] | None]:
        """For each query: (best intent, cosine, status): "ok" | "unsure" | "out_of_scope" | "none" (too far)."""
        if not queries:
            return []
        self.calls += 1
        self._ensure()
        q = self._embedder.encode([x.lower() for x in queries])
        matrix = self._matrix
        if matrix is None:
            raise RuntimeError("intent vectors not loaded")
        sims = q @ matrix.T
        out: list[tuple[Intent, float, str] | None] = []
        for row in sims:
            best: dict[int, float] = {}
            for j, s in enumerate(row):
                i = self._owner[j]
                best[i] = max(best.get(i, -1.0), float(s))
            i, score = max(best.items(), key=lambda kv: kv[1])
            intent = self.intents[i]
            if intent.name == "out_of_scope":
                out.append((intent, score, "out_of_scope"))
            elif score >= self.accept:
                out.append((intent, score, "ok"))
            elif score >= self.unsure:
                out.append((intent, score, "unsure"))
            else:
                out.append((intent, score, "none"))
        return out


def _digest(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:32]


def load_vectors(texts: list[str], path: Path = VECTORS) -> np.ndarray | None:
    try:
        with np.load(path) as data:
            if str(data["digest"]) != _digest(texts):
                return None
            return data["vectors"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None


def save_vectors(texts: list[str], vectors: np.ndarray, path: Path = VECTORS) -> bool:
    try:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, digest=np.array(_digest(texts)), vectors=vectors.astype(np.float16))
        tmp.replace(path)
        return True
    except OSError:
        return False


def example_texts(intents: list[Intent] | None = None) -> list[str]:
    return [ex.lower() for intent in (intents or INTENTS) for ex in intent.examples]


_DEFAULT: IntentMatcher | None = None


def default_matcher() -> IntentMatcher:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = IntentMatcher()
    return _DEFAULT


if __name__ == "__main__":  # python -m agents.semantic.intents: rebuild the shipped vectors
    from agents.semantic.embedder import get_embedder

    texts = example_texts()
    ok = save_vectors(texts, get_embedder().encode(texts))
    print(f"{len(texts)} examples → {VECTORS} ({'written' if ok else 'NOT written'})")
