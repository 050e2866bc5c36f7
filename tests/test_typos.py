"""Requests as people type them (issue: typos, fillers and shorthand must not change the plan).

Every request of the planner test set (tests/data/planner_cases.yaml) is re-typed with one typo in
one content word (a dropped, doubled, swapped or neighbouring-key letter; the first letter kept) and
scored with the same checks as the original. The typed set must score close to the clean one."""

from __future__ import annotations

import random
import re
import zlib

import pytest
from planner_eval import check_plan, load_cases

NEIGHBOURS = {
    "a": "sqwz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
STOP = {
    "about",
    "there",
    "their",
    "would",
    "could",
    "should",
    "please",
    "little",
    "really",
    "which",
    "these",
    "those",
    "without",
    "while",
    "where",
    "after",
    "before",
    "other",
}


def typo(request: str) -> str:
    """One plausible typo in one content word of ``request`` (deterministic per request)."""
    rng = random.Random(zlib.crc32(request.encode()))
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", request) if m.group(0).lower() not in STOP]
    if not words:
        return request
    m = rng.choice(words)
    w = m.group(0)
    i = rng.randrange(1, len(w) - 1)
    kind = rng.choice(("drop", "double", "swap", "near"))
    if kind == "drop":
        t = w[:i] + w[i + 1 :]
    elif kind == "double":
        t = w[:i] + w[i] + w[i:]
    elif kind == "swap":
        t = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    else:
        t = w[:i] + rng.choice(NEIGHBOURS.get(w[i].lower(), w[i])) + w[i + 1 :]
    return request[: m.start()] + t + request[m.end() :]


def _score(cases: list[dict], retype: bool) -> tuple[int, list[str]]:
    from agents.planner import make_plan

    ok, bad = 0, []
    for case in cases:
        req = typo(case["req"]) if retype else case["req"]
        plan = make_plan(req, analysis=case.get("analysis"), allow_unavailable=True, use_embedder=False)
        problems = check_plan(plan, case)
        if problems:
            bad.append(f"{req!r}: {problems}")
        else:
            ok += 1
    return ok, bad


def test_typed_requests_plan_like_the_clean_ones() -> None:
    cases = load_cases()["cases"]
    clean, _ = _score(cases, retype=False)
    typed, failures = _score(cases, retype=True)
    n = len(cases)
    print(
        f"\nplanner set: clean {clean}/{n} ({clean / n:.1%}), one typo per request {typed}/{n} ({typed / n:.1%})"
    )
    for f in failures:
        print("  ", f)
    assert typed >= clean - 0.08 * n, failures


@pytest.mark.parametrize(
    ("typed", "tool", "read"),
    [
        ("bost the bass a bit", "eq", "boost"),
        ("denosie the podcast", "denoise", "denoise"),
        ("can u compres it more", "compress", "compress"),
        ("reduce sibilence on the vox", "de_ess", "sibilance"),
        ("mster it 4 spotify", "master", "master"),
    ],
)
def test_examples_from_the_issue(typed: str, tool: str, read: str) -> None:
    from agents.planner import make_plan

    plan = make_plan(typed, use_embedder=False, allow_unavailable=True)
    assert tool in plan.tools, plan.to_json()
    assert any(f"as '{read}'" in n for n in plan.notes) or read in typed


def test_both_halves_survive_a_typo() -> None:
    from agents.planner import make_plan

    plan = make_plan("make it wider and brigther", use_embedder=False, allow_unavailable=True)
    assert {"eq", "stereo_width"} <= set(plan.tools) and plan.step("eq").params["bright_db"] > 0


@pytest.mark.parametrize("word", ["mix", "max", "bass", "hall", "all", "vocal", "louder", "warmer"])
def test_real_words_are_not_corrected(word: str) -> None:
    from agents.semantic.spelling import correct

    reading = correct(f"the {word} please")
    assert word in reading.text.split() and not reading.notes


def test_shorthand() -> None:
    from agents.semantic.spelling import correct

    assert correct("master 4 spotify pls").text == "master for spotify please"
    assert correct("-14lufs w/ 3db more at 8k").text == "-14 lufs with 3 db more at 8 kHz"
    assert correct("louder n brighter thx").text == "louder and brighter thanks"


def test_too_far_to_be_sure_asks_back() -> None:
    """'thik' is one letter from both 'thick' and 'thin' (opposites): mixpilot asks, and a "yes" runs the
    part it was sure of."""
    from agents.planner import make_plan
    from agents.semantic.spelling import nearest

    assert nearest("thik")[1] is False
    plan = make_plan("make it thik and master for spotify", use_embedder=False, allow_unavailable=True)
    assert plan.kind == "clarify" and plan.steps == [] and "thik" in (plan.answer or "")
    assert "master" in [s.tool for s in plan.suggested_steps]
