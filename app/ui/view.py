"""Text and HTML the chat UI shows: the plan, per-step progress bars, the metrics table, errors.

Pure functions of plain data (plan dicts, progress events, analysis dicts); no Gradio here,
so they are easy to test and reuse.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

# (analysis key, label, unit, decimals)
METRICS: list[tuple[str, str, str, int]] = [
    ("integrated_lufs", "Loudness", "LUFS", 1),
    ("true_peak_dbtp", "True peak", "dBTP", 1),
    ("lra_lu", "Loudness range (LRA)", "LU", 1),
    ("snr_db", "SNR estimate", "dB", 1),
    ("noise_floor_db", "Noise floor", "dBFS", 1),
    ("clipping_ratio", "Clipping", "%", 3),
    ("spectral_centroid_hz", "Spectral centroid", "Hz", 0),
    ("stereo_width", "Stereo width", "", 2),
    ("stereo_correlation", "Stereo correlation", "", 2),
    ("dnsmos_ovrl", "DNSMOS overall", "MOS", 2),
    ("dnsmos_sig", "DNSMOS signal", "MOS", 2),
    ("dnsmos_bak", "DNSMOS background", "MOS", 2),
    ("pesq_wb", "PESQ (wide band)", "MOS", 2),
]

STAGE_WORDS = {
    "analyze": "Listening to the recording…",
    "recall": "Checking what worked before on similar audio…",
    "plan": "Planning…",
    "execute": "Running the plan…",
    "evaluate": "Measuring the result…",
    "finishing": "Preparing the audio and the metrics…",  # the graph is done; the page is not yet
}


def tool_words(tool: str) -> str:
    return tool.replace("_", " ")


def fmt_number(value: Any, decimals: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "−∞" if v < 0 else "∞"
        return f"{v:.{decimals}f}".replace("-", "−")
    return html.escape(str(value))


def plan_markdown(plan: dict[str, Any]) -> str:
    """The plan as a numbered list in plain words (what, on what, why)."""
    steps = plan.get("steps") or []
    if not steps:
        lines = ["I don't see anything to change for that request."]
    else:
        from agents.explain import fmt_params as plain_params

        by = ", from the language model" if plan.get("source") == "llm" else ""
        lines = [f"**Plan** ({len(steps)} step{'s' if len(steps) != 1 else ''}{by}):"]
        for i, s in enumerate(steps, 1):
            target = s.get("target") or "mix"
            where = "" if target == "mix" else f" on the {target}"
            # the settings in plain words with units, as the turn's explanation says them
            params = plain_params(str(s.get("tool", "")), dict(s.get("params") or {}))
            line = f"{i}. **{tool_words(s.get('tool', '?'))}**{where}"
            if params:
                line += f" ({params})"
            if s.get("reason"):
                line += f" — {s['reason']}"
            lines.append(line)
    for note in plan.get("notes") or []:
        lines.append(f"- _{note}_")
    return "\n".join(lines)


@dataclass
class StepBar:
    tool: str
    target: str = "mix"
    fraction: float = 0.0
    status: str = "waiting"  # waiting | running | applied | trimmed | rolled_back | skipped
    message: str = ""


@dataclass
class ProgressBoard:
    """Folds the service's progress events into one bar per step plus a stage line."""

    stage: str = ""
    steps: list[StepBar] = field(default_factory=list)
    done: bool = False

    def update(self, e: dict[str, Any]) -> None:
        kind = e.get("event")
        if kind == "stage":
            self.stage = str(e.get("stage", ""))
        elif kind == "plan":
            self.steps = [
                StepBar(s.get("tool", "?"), s.get("target") or "mix")
                for s in (e.get("plan") or {}).get("steps") or []
            ]
        elif kind in ("step_started", "step_progress", "step_finished"):
            i, n = int(e.get("index", 0)), int(e.get("total", 0) or 0)
            while len(self.steps) < max(n, i + 1):
                self.steps.append(StepBar(e.get("tool", "?")))
            bar = self.steps[i]
            bar.tool = e.get("tool", bar.tool)
            if kind == "step_started":
                bar.status, bar.fraction = "running", 0.0
            elif kind == "step_progress":
                bar.status = "running"
                bar.fraction = max(bar.fraction, min(1.0, float(e.get("fraction") or 0.0)))
                bar.message = str(e.get("message") or "")
            else:
                bar.status, bar.fraction = str(e.get("status") or "applied"), 1.0
                bar.message = str(e.get("why") or "")
        elif kind == "done":  # the graph finished; "Done." waits until the page shows the audio and metrics
            self.stage = "finishing"

    def html(self) -> str:
        stage = "Done." if self.done else STAGE_WORDS.get(self.stage, self.stage)
        rows = [f'<div class="mp-stage">{html.escape(stage or "")}</div>']
        for i, b in enumerate(self.steps):
            pct = int(round(100 * b.fraction))
            label = f"{i + 1}. {tool_words(b.tool)}" + ("" if b.target in ("mix", "") else f" ({b.target})")
            status = {
                "waiting": "waiting",
                "running": f"{pct}%",
                "applied": "done",
                "trimmed": "done (trimmed)",
                "rolled_back": "rolled back",
                "skipped": "skipped",
            }.get(b.status, b.status)
            title = f' title="{html.escape(b.message)}"' if b.message else ""
            rows.append(
                f'<div class="mp-step mp-{b.status}" data-tool="{html.escape(b.tool)}" data-status="{b.status}"{title}>'
                f'<span class="mp-step-label">{html.escape(label)}</span>'
                f'<progress max="100" value="{pct}"></progress>'
                f'<span class="mp-step-status">{html.escape(status)}</span></div>'
            )
        return '<div class="mp-progress">' + "".join(rows) + "</div>"


def target_lufs_of(plan: dict[str, Any] | None) -> float | None:
    for s in (plan or {}).get("steps") or []:
        if s.get("tool") == "master" and isinstance((s.get("params") or {}).get("target_lufs"), (int, float)):
            return float(s["params"]["target_lufs"])
    return None


def genre_of(plan: dict[str, Any] | None) -> str | None:
    for s in (plan or {}).get("steps") or []:
        if s.get("tool") == "genre_preset" and (s.get("params") or {}).get("genre"):
            return str(s["params"]["genre"])
    return None


def metrics_html(
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    target_lufs: float | None = None,
    true_peak_ceiling: float | None = None,
) -> str:
    """Before/after/target table; rows carry `data-key` and cells `data-value` for tests and scripts."""
    if not before and not after:
        return '<div class="mp-metrics-empty">Metrics appear here after a turn.</div>'
    targets: dict[str, float] = {}
    if target_lufs is not None:
        targets["integrated_lufs"] = target_lufs
    if true_peak_ceiling is not None:
        targets["true_peak_dbtp"] = true_peak_ceiling
    head = "<tr><th>metric</th><th>before</th><th>after</th><th>target</th></tr>"
    rows = []
    for key, label, unit, dec in METRICS:
        if key not in before and key not in after:
            continue
        b, a, t = before.get(key), after.get(key), targets.get(key)
        scale = 100.0 if unit == "%" else 1.0
        b = b * scale if isinstance(b, (int, float)) and not isinstance(b, bool) else b
        a = a * scale if isinstance(a, (int, float)) and not isinstance(a, bool) else a
        name = f"{label} ({unit})" if unit else label
        ok = ""
        if key == "integrated_lufs" and t is not None and isinstance(a, (int, float)) and math.isfinite(a):
            ok = " mp-ok" if abs(a - t) <= 0.5 else " mp-off"
        rows.append(
            f'<tr data-key="{key}"><td>{html.escape(name)}</td>'
            f'<td class="mp-before" data-value="{_raw(b)}">{fmt_number(b, dec)}</td>'
            f'<td class="mp-after{ok}" data-value="{_raw(a)}">{fmt_number(a, dec)}</td>'
            f'<td class="mp-target" data-value="{_raw(t)}">{fmt_number(t, dec) if t is not None else ""}</td></tr>'
        )
    return f'<table class="mp-metrics" id="mp-metrics-table">{head}{"".join(rows)}</table>'


def _raw(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
        return repr(float(v))
    return ""


def outcome_lines(steps: list[dict[str, Any]]) -> list[str]:
    """One line per step that did not simply apply (skipped, rolled back, trimmed) and why."""
    out = []
    for s in steps or []:
        st = s.get("status")
        if st in ("skipped", "rolled_back", "trimmed"):
            word = {"skipped": "skipped", "rolled_back": "rolled back", "trimmed": "trimmed"}[st]
            why = f": {s['why']}" if s.get("why") else ""
            out.append(f"- {tool_words(s.get('tool', '?'))} {word}{why}")
    return out


def error_message(exc: BaseException, paths: tuple[str | None, ...] = ()) -> str:
    """A readable one-paragraph message for the chat; never a traceback.

    Server-side upload paths in `paths` are shortened to their file names.
    """
    from pathlib import Path

    from tools.audio import AudioError

    text = str(exc).strip().strip("'\"") or type(exc).__name__
    for p in paths:
        if p:
            text = text.replace(str(p), Path(p).name)
    first = text.splitlines()[0]
    if isinstance(exc, AudioError):
        return f"I couldn't use that file: {first}"
    if isinstance(exc, (ValueError, KeyError)):
        return f"Sorry, I couldn't do that: {first}"
    if isinstance(exc, (OSError, PermissionError)):
        return f"Sorry, a file problem stopped me: {first}"
    return (
        f"Sorry, something went wrong ({type(exc).__name__}: {first}). Nothing was changed; please try again."
    )


# ------------------------------------------------------------------------------ answers and suggestions

#: turn kinds whose text is `answer` (nothing ran); a `process` turn keeps its explanation
ANSWER_KINDS = ("answer", "clarify", "none")
MAX_FINDINGS = 5


def platform_name(platform: Any) -> str:
    """'spotify' → 'Spotify', 'apple_music' → 'Apple Music' (the planner's display names)."""
    text = str(platform or "").strip()
    try:
        from agents.semantic.planner import PLATFORM_NAMES
    except Exception:  # the UI renders without the planner's table too
        PLATFORM_NAMES = {}
    return PLATFORM_NAMES.get(text) or (text.replace("_", " ").title() if text.islower() else text)


def check_markdown(checks: dict[str, Any] | None, *, skip_in: str = "") -> str:
    """A platform check as one pass/fail line and its reasons (those not already quoted in `skip_in`).

    Words, not emoji: a browser without an emoji font would show empty boxes."""
    if not checks or "ready" not in checks:
        return ""
    name = platform_name(checks.get("platform") or "streaming")
    ready = bool(checks.get("ready"))
    head = f"**{name} check: pass** (ready)" if ready else f"**{name} check: fail** (not ready yet)"
    reasons = [str(r) for r in checks.get("reasons") or [] if str(r).strip() and str(r) not in skip_in]
    return "\n".join([head, *(f"- {r}" for r in reasons)])


def findings_markdown(findings: list[dict[str, Any]] | None, *, skip_in: str = "") -> str:
    """The diagnosis as a short list, most severe first; evidence already quoted in `skip_in` is left out."""
    rows = sorted(
        (f for f in findings or [] if f.get("problem")), key=lambda f: -float(f.get("severity") or 0.0)
    )
    lines = []
    for f in rows[:MAX_FINDINGS]:
        evidence = str(f.get("evidence") or "").strip()
        if evidence and evidence in skip_in:
            continue
        sev = f.get("severity")
        sev_txt = (
            f" ({float(sev):.1f})" if isinstance(sev, (int, float)) and not isinstance(sev, bool) else ""
        )
        lines.append(
            f"- **{tool_words(str(f['problem']))}**{sev_txt}" + (f": {evidence}" if evidence else "")
        )
    if len(rows) > MAX_FINDINGS:
        lines.append(f"- _and {len(rows) - MAX_FINDINGS} more_")
    return ("**What I measured:**\n" + "\n".join(lines)) if lines else ""


def answer_markdown(
    answer: str | None,
    *,
    checks: dict[str, Any] | None = None,
    findings: list[dict[str, Any]] | None = None,
    fallback: str = "",
) -> str:
    """The answer of an answer/clarify/none turn (its numbers as the planner wrote them), the platform
    check as pass/fail with reasons, then the findings it did not already quote."""
    text = (answer or "").strip() or (fallback or "").strip()
    parts = [text] if text else []
    check = check_markdown(checks, skip_in=text)
    if check:
        parts.append(check)
    found = findings_markdown(findings, skip_in="\n".join(parts))
    if found:
        parts.append(found)
    return "\n\n".join(parts) or "I have nothing to add to that."


def suggestion_label(
    steps: list[dict[str, Any]] | None, checks: dict[str, Any] | None = None, *, max_tools: int = 3
) -> str:
    """The button text for a suggested plan: 'Do it: master for Spotify', 'Do it: denoise, eq and master'."""
    names: list[str] = []
    for s in steps or []:
        word = tool_words(str(s.get("tool") or "?"))
        target = s.get("target") or "mix"
        if target != "mix":
            word += f" ({target})"
        if word not in names:
            names.append(word)
    if not names:
        return ""
    shown = names[:max_tools]
    if len(names) > max_tools:
        shown.append(f"{len(names) - max_tools} more")
    text = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    if checks and checks.get("platform"):
        text += f" for {platform_name(checks['platform'])}"
    return f"Do it: {text}"


# ------------------------------------------------------------------------------ versions

#: words a version name leaves out of the request ("a bit brighter" → "brighter")
_FILLER_WORDS = (
    "a an the and or but it this that these my me please can could would you just bit little lot "
    "make do some more much to in of on with for style sound song track mix version again now"
)
_FILLER = frozenset(_FILLER_WORDS.split(" "))
_PLATFORM_WORDS = {
    "spotify",
    "apple",
    "youtube",
    "tidal",
    "podcast",
    "broadcast",
    "cd",
    "club",
    "loud",
    "louder",
}


def version_name(number: int, plan: dict[str, Any] | None, request: str | None, *, max_words: int = 3) -> str:
    """'v1 pop master', 'v2 brighter', 'v3 louder spotify': the number, then the genre and the master when
    the plan has them, else the request's own words, else the tools that ran."""
    steps = (plan or {}).get("steps") or []
    tools = [str(s.get("tool") or "") for s in steps]
    words: list[str] = []
    genre = genre_of(plan)
    request_words = [
        w for w in re.findall(r"[a-z0-9]+", (request or "").lower()) if w not in _FILLER and not w.isdigit()
    ]
    if genre:
        words.append(genre)
        words += [w for w in request_words if w in _PLATFORM_WORDS]
        if "master" in tools:
            words.append("master")
    else:
        words = request_words
    if not words:
        words = [tool_words(t) for t in tools if t]
    unique: list[str] = []
    for w in words:
        if w not in unique:
            unique.append(w)
    label = " ".join(unique[:max_words]) or "change"
    return f"v{number} {label}"


def slug(name: str) -> str:
    """A file-name-safe form of a version name: 'v2 brighter' → 'v2-brighter'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "version"


def rating_label(name: str | None, *, rateable: bool) -> str:
    """What the rating form rates, in words (it always rates the version in the After player)."""
    if not name:
        return "_Nothing to rate yet: ask for a change first._"
    if not rateable:
        return f"Playing **{name}**: nothing mixpilot did to rate. Pick a processed version to rate it."
    return f"Rating **{name}** (the version in the After player)"


def match_note(gain_db: float, *, matched: bool, played: str = "After", other: str = "Before") -> str:
    """What the players do about loudness, in words: `gain_db` brings `played` to `other`'s integrated
    loudness (`tools.dsp.loudness_match_db`). Matched: the louder one is played quieter by that much
    (attenuating never clips). Not matched: how much louder or quieter `played` is as rendered."""
    if abs(gain_db) < 0.05:
        return f"{played} and {other.lower()} are equally loud."
    if matched:
        if gain_db < 0:
            return f"{played} played {-gain_db:.1f} dB quieter to match loudness."
        return f"{other} played {gain_db:.1f} dB quieter to match loudness."
    louder = "louder" if gain_db < 0 else "quieter"
    return f"Loudness matching is off: {played.lower()} is {abs(gain_db):.1f} dB {louder} as rendered."


def preview_note(start_s: float, seconds: float, gain_db: float, *, matched: bool) -> str:
    """The line under the preview player: which part it is, and its loudness matching."""
    start = f"{int(start_s // 60)}:{start_s % 60:04.1f}"
    text = f"Preview: the plan on the loudest {seconds:.0f} s (from {start}); the full render follows."
    if matched and gain_db < -0.05:
        text += f" Played {-gain_db:.1f} dB quieter to match the original's loudness."
    elif not matched and abs(gain_db) >= 0.05:
        text += f" {abs(gain_db):.1f} dB {'louder' if gain_db < 0 else 'quieter'} than the original (not matched)."
    return text + " Press Stop to change course."
