"""The listening assistant's conversation test set (tests/test_listening.py, bench/listening.py).

Audio variants are built from the CC-licensed clips in tests/fixtures by known operations (noise at a
known SNR, hard clipping, mains hum, gain to a loudness); the expected outcome of each turn follows
from how the variant was made, never from what mixpilot measured. A case is one turn, or a
suggest → confirm pair (``then``).

Expectations: ``kind``; ``steps_has`` / ``steps_not`` (tools that must / must not run now);
``suggests`` (a tool the suggestion must hold); ``ready`` (platform verdict); ``number`` (the answer
quotes a number with this unit); ``no_repair`` (no repair tool runs now).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).with_name("fixtures")
REPAIR_TOOLS = {"denoise", "declip", "dereverb", "restore", "bandwidth_extension"}

CLEAN = ("music_clean", "speech_clean", "master_spotify")
HOT = ("master_hot",)
VARIANTS = (
    "music_clean",
    "speech_clean",
    "speech_noisy",
    "music_clipped",
    "speech_hum",
    "master_hot",
    "master_quiet",
    "master_spotify",
)


def _load(name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(str(FIXTURES / name), dtype="float32", always_2d=True)
    return x.T.copy(), int(sr)


def _lufs(x: np.ndarray, sr: int) -> float:
    import pyloudnorm as pyln

    return float(pyln.Meter(sr).integrated_loudness(x.T.astype(np.float64)))


def _gain_to(x: np.ndarray, sr: int, lufs: float) -> np.ndarray:
    return (x * 10 ** ((lufs - _lufs(x, sr)) / 20)).astype(np.float32)


def build_variants() -> dict[str, tuple[np.ndarray, int]]:
    """name → (samples (channels, frames) float32, rate). Deterministic."""
    rng = np.random.default_rng(7)
    music, msr = _load("karissa_hobbs_lets_go_fishin_8s.flac")
    speech, ssr = _load("speech_female_16k.flac")
    out: dict[str, tuple[np.ndarray, int]] = {}
    out["music_clean"] = (music, msr)
    out["speech_clean"] = (speech, ssr)
    # pink-ish noise at 8 dB SNR
    white = rng.standard_normal(speech.shape[-1]).astype(np.float32)
    pink = np.cumsum(white) * 0.02
    pink = (pink - np.convolve(pink, np.ones(200) / 200, mode="same")).astype(np.float32)
    noise = 0.5 * white / np.std(white) + pink / (np.std(pink) + 1e-12)
    noise = noise / np.std(noise) * np.sqrt(np.mean(speech**2)) * 10 ** (-8 / 20)
    out["speech_noisy"] = ((speech + noise[None, :]).astype(np.float32), ssr)
    # hard clipping: 12 dB of gain into a full-scale ceiling
    m = music / np.max(np.abs(music))
    out["music_clipped"] = (np.clip(m * 4.0, -1.0, 1.0).astype(np.float32), msr)
    # 60 Hz mains hum with harmonics, 20 dB under the speech
    t = np.arange(speech.shape[-1]) / ssr
    hum = sum(a * np.sin(2 * np.pi * 60 * k * t) for k, a in ((1, 1.0), (2, 0.5), (3, 0.3)))
    hum = hum / np.sqrt(np.mean(hum**2)) * np.sqrt(np.mean(speech**2)) * 10 ** (-20 / 20)
    out["speech_hum"] = ((speech + hum[None, :]).astype(np.float32), ssr)
    # a hot master: -8 LUFS, peaks over full scale (float: not clipped, true peak > 0 dBTP)
    out["master_hot"] = (_gain_to(music, msr, -8.0), msr)
    # a quiet master: -30 LUFS
    out["master_quiet"] = (_gain_to(music, msr, -30.0), msr)
    # a Spotify-ready master: -14 LUFS with the peaks held under -2 dBTP by a look-ahead limiter
    out["master_spotify"] = (_limited(music, msr, -14.0, -2.0), msr)
    return out


def _limited(x: np.ndarray, sr: int, lufs: float, ceiling_db: float) -> np.ndarray:
    """Gain to ``lufs`` through a look-ahead true-peak limiter (the master tool; the test checks the
    result with an independent meter). Not pedalboard's Limiter: its final hard clipper leaves flat tops
    that are, rightly, read as clipping."""
    from tools.audio import Audio
    from tools.registry import ToolContext, default_registry

    out = default_registry()["master"](
        Audio(x, sr), {"target_lufs": lufs, "true_peak_dbtp": ceiling_db}, ToolContext()
    )
    return np.asarray(out.audio.samples, dtype=np.float32)


Case = dict[str, Any]


def _platform_cases() -> list[Case]:
    phrasings = [
        "is it ready for {p}?",
        "is this ready for {p}",
        "will it pass {p}'s loudness spec?",
        "can I upload this to {p} as it is?",
        "does it meet the {p} requirements?",
        "is my track good enough for {p}?",
        "would {p} turn it down?",
    ]
    cases: list[Case] = []
    verdicts = {  # variant → platform → ready?, from how the variant was made
        "master_spotify": {"Spotify": True, "YouTube": True, "Tidal": True, "Apple Music": False},
        "master_hot": {"Spotify": False, "YouTube": False, "Apple Music": False, "Tidal": False},
        "master_quiet": {"Spotify": False, "Apple Music": False, "YouTube": False},
    }
    i = 0
    for variant, table in verdicts.items():
        for platform, ready in table.items():
            for k in range(2):
                q = phrasings[(i + k) % len(phrasings)].format(p=platform)
                case: Case = {
                    "audio": variant,
                    "req": q,
                    "kind": "answer",
                    "ready": ready,
                    "number": "LUFS",
                    "steps_not": ["*"],
                }
                if not ready:
                    case["suggests"] = "master"
                cases.append(case)
            i += 1
    # suggest → confirm pairs: the confirmation runs the suggested master
    for variant in ("master_hot", "master_quiet"):
        for q, yes in (
            ("is it ready for Spotify?", "yes"),
            ("is this ready for YouTube", "do it"),
            ("is it ready for Apple Music?", "ok, fix it"),
            ("ready for spotify?", "go ahead"),
        ):
            cases.append(
                {
                    "audio": variant,
                    "req": q,
                    "kind": "answer",
                    "suggests": "master",
                    "ready": False,
                    "then": {"req": yes, "kind": "process", "steps_has": ["master"]},
                }
            )
    # ACX: speech
    cases.append(
        {
            "audio": "speech_noisy",
            "req": "does it meet ACX requirements?",
            "kind": "answer",
            "ready": False,
            "number": "dB",
        }
    )
    return cases


def _question_cases() -> list[Case]:
    cases: list[Case] = []
    loud_q = [
        "how loud is this track?",
        "what's the loudness?",
        "how many LUFS is it?",
        "is it too loud?",
        "what is the integrated loudness",
        "how loud is it",
    ]
    peak_q = [
        "what's the true peak?",
        "how much headroom do I have?",
        "is it peaking over 0?",
        "what are the peaks at",
    ]
    for j, v in enumerate(VARIANTS):
        cases.append(
            {
                "audio": v,
                "req": loud_q[j % len(loud_q)],
                "kind": "answer",
                "number": "LUFS",
                "steps_not": ["*"],
                "quotes_lufs": True,
            }
        )
        cases.append(
            {
                "audio": v,
                "req": peak_q[j % len(peak_q)],
                "kind": "answer",
                "number": "dBTP",
                "steps_not": ["*"],
            }
        )
    clip_q = ["does it clip anywhere?", "is there any clipping?", "is it distorted?", "any clipping in this?"]
    for j, q in enumerate(clip_q):
        cases.append(
            {"audio": "music_clipped", "req": q, "kind": "answer", "suggests": "declip", "steps_not": ["*"]}
        )
        cases.append(
            {
                "audio": ("music_clean", "speech_clean")[j % 2],
                "req": q,
                "kind": "answer",
                "suggests_not": "declip",
                "steps_not": ["*"],
                "number": "dBFS",
            }
        )
    noise_q = ["is there any background noise?", "is it noisy?", "do you hear hiss?", "how noisy is it?"]
    for j, q in enumerate(noise_q):
        cases.append(
            {
                "audio": "speech_noisy",
                "req": q,
                "kind": "answer",
                "suggests": "denoise",
                "steps_not": ["*"],
                "number": "dB",
            }
        )
        cases.append(
            {
                "audio": ("speech_clean", "music_clean")[j % 2],
                "req": q,
                "kind": "answer",
                "suggests_not": "denoise",
                "steps_not": ["*"],
            }
        )
    hum_q = ["is there hum?", "do you hear a mains hum", "is there a 60 Hz buzz?"]
    for q in hum_q:
        cases.append(
            {
                "audio": "speech_hum",
                "req": q,
                "kind": "answer",
                "suggests": "denoise",
                "number": "Hz",
                "steps_not": ["*"],
            }
        )
        cases.append(
            {
                "audio": "speech_clean",
                "req": q,
                "kind": "answer",
                "suggests_not": "denoise",
                "steps_not": ["*"],
            }
        )
    mono_q = ["is it mono compatible?", "will it collapse in mono?", "any phase problems?"]
    for q in mono_q:
        cases.append({"audio": "music_clean", "req": q, "kind": "answer", "steps_not": ["*"]})
    wrong_q = [
        "what's wrong with my mix",
        "what's wrong with it?",
        "any problems with this recording?",
        "how does it sound?",
        "what should I fix?",
        "tell me about this track",
        "give me the stats",
        "analyze this for me",
    ]
    for j, q in enumerate(wrong_q):
        for v in VARIANTS[j % 4 :: 4]:
            case: Case = {
                "audio": v,
                "req": q,
                "kind": "answer",
                "steps_not": ["*"],
                "number": "LUFS" if "stats" in q or "about" in q or "analy" in q else None,
            }
            if v == "music_clipped" and "stats" not in q:
                case["suggests"] = "declip"
            if v == "speech_noisy":
                case["suggests"] = "denoise"
            cases.append(case)
    tone_q = [
        "why does it sound muddy?",
        "is it too harsh?",
        "why is it so boomy?",
        "does it sound dull?",
        "are the vocals harsh?",
        "is it thin?",
    ]
    for j, q in enumerate(tone_q):
        cases.append(
            {"audio": ("music_clean", "speech_clean")[j % 2], "req": q, "kind": "answer", "steps_not": ["*"]}
        )
    # the low end, asked either way: an answer with the 60-160 Hz level, never an EQ run
    for q in [
        "is the low end ok?",
        "is there enough bass?",
        "how's the bass?",
        "is the bass too loud?",
        "is it boomy?",
    ]:
        for v in ("music_clean", "speech_clean", "master_hot"):
            cases.append({"audio": v, "req": q, "kind": "answer", "steps_not": ["*"], "number": "dB"})
    return cases


def _repair_cases() -> list[Case]:
    cases: list[Case] = []
    generic = [
        "clean this up",
        "clean it up please",
        "fix it up, clean the audio",
        "tidy this recording up",
        "clean up the recording",
    ]
    for q in generic:
        for v in CLEAN:
            cases.append({"audio": v, "req": q, "kind": "none", "no_repair": True, "number": "dBFS"})
        cases.append({"audio": "speech_noisy", "req": q, "kind": "process", "steps_has": ["denoise"]})
        cases.append({"audio": "music_clipped", "req": q, "kind": "process", "steps_has": ["declip"]})
        cases.append({"audio": "speech_hum", "req": q, "kind": "process", "steps_has": ["denoise"]})
    for q in (
        "clean and master this in a pop style",
        "clean it up and master it for spotify",
        "clean up and make it louder",
    ):
        for v in ("music_clean", "master_spotify", "master_quiet"):
            cases.append(
                {"audio": v, "req": q, "kind": "process", "no_repair": True, "steps_has": ["master"]}
            )
        cases.append(
            {"audio": "music_clipped", "req": q, "kind": "process", "steps_has": ["declip", "master"]}
        )
    # explicit orders still run (and say little was found)
    for q, tool in (
        ("remove the noise", "denoise"),
        ("denoise it", "denoise"),
        ("fix the clipping", "declip"),
    ):
        for v in ("music_clean", "speech_clean"):
            cases.append({"audio": v, "req": q, "kind": "process", "steps_has": [tool], "note_has": "little"})
    # commands stay commands
    for q, tool in (
        ("make it brighter", "eq"),
        ("master it for spotify", "master"),
        ("add some reverb", "reverb"),
        ("the vocals are harsh", "dynamic_eq"),
        ("it sounds muddy", "eq"),
        ("can you make it warmer?", "eq"),
    ):
        for v in ("music_clean", "speech_noisy"):
            cases.append({"audio": v, "req": q, "kind": "process", "steps_has": [tool], "no_repair": True})
    return cases


def _conversation_cases() -> list[Case]:
    return [
        {"audio": "music_clean", "req": "yes", "kind": "none"},
        {"audio": "music_clean", "req": "go ahead", "kind": "none"},
        {"audio": "music_clean", "req": "what's the weather like tomorrow?", "kind": "none"},
        {"audio": "music_clean", "req": "what did you do?", "kind": "answer"},
        {
            "audio": "speech_noisy",
            "req": "is there any background noise?",
            "kind": "answer",
            "suggests": "denoise",
            "then": {"req": "yes please", "kind": "process", "steps_has": ["denoise"]},
        },
        {
            "audio": "music_clipped",
            "req": "does it clip?",
            "kind": "answer",
            "suggests": "declip",
            "then": {"req": "ok, fix it", "kind": "process", "steps_has": ["declip"]},
        },
        {
            "audio": "music_clipped",
            "req": "what's wrong with it?",
            "kind": "answer",
            "suggests": "declip",
            "then": {
                "req": "make it brighter",
                "kind": "process",
                "steps_has": ["eq"],
                "steps_not": ["declip"],
            },
        },
        {
            "audio": "master_hot",
            "req": "how loud is this track?",
            "kind": "answer",
            "suggests": "master",
            "then": {"req": "do it", "kind": "process", "steps_has": ["master"]},
        },
    ]


def all_cases() -> list[Case]:
    return _platform_cases() + _question_cases() + _repair_cases() + _conversation_cases()


def turns(cases: list[Case]) -> int:
    return sum(2 if "then" in c else 1 for c in cases)
