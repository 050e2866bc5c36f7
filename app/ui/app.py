"""The Gradio chat UI on the shared `Mixpilot` service (no second pipeline).

`build_app(service, settings)` returns a `gr.Blocks`; `launch(...)` starts it. Each browser
session keeps one conversation (a LangGraph thread) in `gr.State`, so "undo", "a bit
brighter" and "go back to the original" act on the previous turn exactly as in the CLI.

Handlers never let an exception reach the page: every failure becomes a readable chat
message (`view.error_message`) and the traceback goes to the server log only.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.ui import view

log = logging.getLogger("mixpilot.ui")

AUDIO_TYPES = [".wav", ".flac", ".mp3", ".ogg", ".oga", ".aiff", ".aif", ".m4a", ".aac"]
EXPORTS: dict[str, tuple[str, int | None, str]] = {  # label → (format, bit depth, suffix)
    "WAV 24-bit": ("wav", 24, "wav"),
    "WAV 16-bit": ("wav", 16, "wav"),
    "WAV 32-bit float": ("wav", 32, "wav"),
    "FLAC 24-bit": ("flac", 24, "flac"),
    "FLAC 16-bit": ("flac", 16, "flac"),
    "MP3 320 kbps": ("mp3", None, "mp3"),
}
ASPECTS = [
    ("vocal_clarity", "Vocal clarity"),
    ("balance", "Balance"),
    ("width", "Width"),
    ("tone", "Tone"),
    ("loudness", "Loudness"),
]
EXAMPLES = [
    "is it ready for Spotify?",
    "clean and master this in a pop style",
    "a bit brighter",
    "louder for Spotify",
    "what's wrong with it?",
    "undo",
    "go back to the original",
]
UPDATE_EVERY_S = 0.25
BASELINES = ["previous version", "original"]
MSG_PLACEHOLDER = "What should I do with it?"
BUSY_PLACEHOLDER = "still working… (type the next request; send it when this one is done)"


def busy_send() -> Any:
    """Send while a turn runs (a fresh update each time: Gradio consumes the dicts it is given)."""
    return gr.update(interactive=False, value="still working…")


def ready_send() -> Any:
    return gr.update(interactive=True, value="Send")


CONFIRM = "do it"  # what the suggestion button sends: a confirming turn runs the thread's suggested steps

CSS = """
.mp-progress {font-size: 0.9em}
.mp-stage {font-weight: 600; margin-bottom: 4px}
.mp-step {display: grid; grid-template-columns: 14em 1fr 7em; gap: 8px; align-items: center; margin: 2px 0}
.mp-step progress {width: 100%; height: 12px}
.mp-rolled_back .mp-step-status, .mp-skipped .mp-step-status {color: #c92a2a}
table.mp-metrics {width: 100%; border-collapse: collapse; font-size: 0.9em}
table.mp-metrics th, table.mp-metrics td {padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right}
table.mp-metrics td:first-child, table.mp-metrics th:first-child {text-align: left}
td.mp-ok {color: #2b8a3e; font-weight: 600}
td.mp-off {color: #c92a2a; font-weight: 600}
"""


# ------------------------------------------------------------------------------ session state


def new_session(svc: Any, user_id: str) -> dict[str, Any]:
    return {
        "thread_id": svc.new_thread_id(),
        "user_id": user_id,
        "pending_audio": None,  # imported but not yet sent with a turn
        "pending_inputs": {},
        "original_id": None,
        "current_id": None,  # the thread's current version (what the next turn works on)
        "shown_id": None,  # the version in the After player: what is rated and exported
        "versions": [],  # [{id, name, turn_id, target_lufs, ceiling, genre}], the original first
        "baseline": BASELINES[0],  # what the Before player, the table and the plots compare with
        "turn_id": None,
        "target_lufs": None,
        "genre": None,
        "suggested": [],  # the steps a confirming turn runs (the suggestion button shows while non-empty)
    }


#: every panel a handler may update, in the order of `build_app`'s outputs; handlers return dicts by these
#: names and `UI.out` turns them into a tuple (gr.skip() for the rest)
PANELS = (
    "chat", "state", "saved", "msg", "progress", "before", "after", "metrics", "wave", "spec", "loud", "tone",
    "suggest", "send", "version", "rate_label", "overall", *(f"aspect_{k}" for k, _ in ASPECTS), "comment",
    "rated", "download", "stems_files", "song", "vocal", "match_note", "preview_audio", "preview_note", "stop",
)  # fmt: skip
#: the preview (the plan on the loudest excerpt, `Mixpilot.preview`) is rendered before a first turn on a
#: recording at least this much longer than the excerpt (shorter ones render in full about as fast)
PREVIEW_MIN_EXTRA_S = 10.0


class TurnStopped(Exception):
    """Raised from a turn's progress callback after Stop (the turn ends there; nothing is kept)."""


class UI:
    """Handlers bound to one service; the Blocks wiring is in `build`."""

    def __init__(self, svc: Any, *, work_dir: Path, user_id: str, signin: Any = None) -> None:
        self.svc = svc
        self.signin = signin
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.user_id = user_id
        self._lock = threading.Lock()
        self._busy: dict[str, view.ProgressBoard] = {}  # thread id → the board of its running turn
        self._sending: set[str] = set()  # threads whose send is being handled, until its last update
        self._stop: set[str] = set()  # threads whose running turn was asked to stop (Stop)

    # ------------------------------------------------------------------ helpers

    def session(self, st: dict[str, Any] | None, request: gr.Request | None = None) -> dict[str, Any]:
        if st:
            return st
        user_id = self.user_id
        if self.signin is not None:
            user_id = self.signin.user_id(getattr(request, "username", None)) or self.user_id
        return new_session(self.svc, user_id)

    @staticmethod
    def out(values: dict[str, Any]) -> tuple[Any, ...]:
        """`values` (by panel name) as the tuple of every panel, gr.skip() for those not named."""
        unknown = set(values) - set(PANELS)
        if unknown:
            raise KeyError(f"unknown panels: {sorted(unknown)}")
        return tuple(values[k] if k in values else gr.skip() for k in PANELS)

    def busy(self, thread_id: str | None) -> bool:
        with self._lock:
            return bool(thread_id) and thread_id in self._busy

    @staticmethod
    def saved(st: dict[str, Any]) -> dict[str, Any]:
        """What the browser keeps across a page refresh (gr.BrowserState, encrypted by the server): the thread,
        whose it is, and a pending upload."""
        return {
            "thread_id": st.get("thread_id"),
            "user_id": st.get("user_id"),
            "pending_audio": st.get("pending_audio"),
            "pending_inputs": dict(st.get("pending_inputs") or {}),
        }

    def preview(self, version_id: str | None, gain_db: float = 0.0) -> str | None:
        """A 16-bit WAV of a stored version for the browser's player, ``gain_db`` applied (fair listening
        attenuates the louder version; versions never change: cached per gain)."""
        if not version_id:
            return None
        gain_db = round(float(gain_db), 1)
        if gain_db == 0.0:
            p = self.work_dir / "preview" / f"{version_id}.wav"
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                self.svc.export(version_id, p, format="wav", bit_depth=16)
            return str(p)
        from tools.audio import save

        p = self.work_dir / "preview" / f"{version_id}_{gain_db:+.1f}dB.wav"
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            audio = self.svc.audio(version_id)
            scaled = audio.samples * np.float32(10.0 ** (gain_db / 20.0))
            save(audio.with_samples(scaled), p, bit_depth=16)  # tools.audio.save writes atomically
        return str(p)

    def players(
        self, st: dict[str, Any], base: str, shown: str, before_lufs: Any, after_lufs: Any
    ) -> dict[str, Any]:
        """The Before/After players and the line that says what they do about loudness: matched by default
        (`tools.dsp.loudness_match_db` on measured integrated loudness; the louder one is attenuated, so
        nothing clips), as rendered when the toggle is off."""
        from tools.dsp import loudness_match_db

        if shown == base:
            return {"before": self.preview(base), "after": None, "match_note": ""}
        gain = loudness_match_db(before_lufs, after_lufs)  # brings After to Before's loudness
        matched = st.get("match", True)
        before_gain = -gain if matched and gain > 0 else 0.0
        after_gain = gain if matched and gain < 0 else 0.0
        return {
            "before": self.preview(base, before_gain),
            "after": self.preview(shown, after_gain),
            "match_note": view.match_note(gain, matched=matched),
        }

    def pictures(
        self, before_id: str | None, after_id: str | None, target_lufs: float | None, genre: str | None
    ) -> tuple[Any, ...]:
        from app.ui import plots

        if not before_id:
            return (None, None, None, None)
        before = self.svc.audio(before_id)
        after = self.svc.audio(after_id) if after_id and after_id != before_id else None
        return (
            plots.waveform_figure(before, after),
            plots.spectrogram_figure(before, after),
            plots.loudness_figure(before, after, target_lufs),
            plots.tonal_balance_figure(before, after, genre=genre),
        )

    def _speech_scores(self, version_id: str | None) -> dict[str, Any]:
        """DNSMOS for speech (the service's quality metrics; non-intrusive: no reference); nothing for music."""
        if not version_id:
            return {}
        try:
            if not self.svc.is_speech(version_id):
                return {}
            q = self.svc.quality(version_id, speech=True)
        except Exception as exc:  # DNSMOS is optional (neural extra); the table just lacks the row
            log.info("DNSMOS unavailable: %s", exc)
            return {}
        return {k: q[k] for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak") if q.get(k) is not None}

    # ------------------------------------------------------------------ versions

    @staticmethod
    def version(st: dict[str, Any], version_id: str | None) -> dict[str, Any] | None:
        return next((v for v in st.get("versions") or [] if v["id"] == version_id), None)

    def add_version(
        self,
        st: dict[str, Any],
        version_id: str,
        *,
        plan: dict[str, Any] | None = None,
        request: str | None = None,
        turn_id: str | None = None,
    ) -> dict[str, Any]:
        """The version `version_id` of the session, added (named after its plan and request) if new."""
        versions = st.setdefault("versions", [])
        known = self.version(st, version_id)
        if known is not None:
            if turn_id and not known.get("turn_id"):
                known["turn_id"] = turn_id
            return known
        name = "original" if not versions else view.version_name(len(versions), plan, request)
        steps = (plan or {}).get("steps") or []
        ceiling = next(
            ((s.get("params") or {}).get("true_peak_dbtp") for s in steps if s.get("tool") == "master"), None
        )
        entry = {
            "id": version_id,
            "name": name,
            "turn_id": turn_id,
            "target_lufs": view.target_lufs_of(plan),
            "ceiling": ceiling,
            "genre": view.genre_of(plan) or (versions[-1].get("genre") if versions else None),
        }
        versions.append(entry)
        return entry

    @staticmethod
    def baseline_id(st: dict[str, Any], version_id: str | None) -> str | None:
        """The version `version_id` is compared with: the one before it (default) or the original."""
        versions = st.get("versions") or []
        ids = [v["id"] for v in versions]
        if not ids:
            return version_id
        if st.get("baseline") == BASELINES[1] or version_id not in ids:
            return ids[0]
        return ids[max(0, ids.index(version_id) - 1)]

    @staticmethod
    def rateable(st: dict[str, Any], version_id: str | None) -> bool:
        """A version mixpilot made (not the original upload) can be rated."""
        versions = st.get("versions") or []
        return bool(version_id) and bool(versions) and version_id != versions[0]["id"]

    def panels(self, st: dict[str, Any]) -> dict[str, Any]:
        """Players, table, plots, version picker and rating label for the version shown, against one baseline."""
        shown = st.get("shown_id") or st.get("current_id")
        versions = st.get("versions") or []
        picker = gr.update(
            choices=[(v["name"], v["id"]) for v in versions], value=shown if versions else None
        )
        v = self.version(st, shown)
        if not shown:
            return {
                "before": None,
                "after": None,
                "match_note": "",
                "metrics": view.metrics_html({}, {}),
                **dict(zip(("wave", "spec", "loud", "tone"), (None,) * 4)),
                "version": picker,
                "rate_label": view.rating_label(None, rateable=False),
            }
        base = self.baseline_id(st, shown) or shown
        before_m = dict(self.svc.analysis(base))
        after_m = dict(self.svc.analysis(shown)) if shown != base else {}
        before_m.update(self._speech_scores(base))
        if shown != base:
            after_m.update(self._speech_scores(shown))
        target = (v or {}).get("target_lufs")
        genre = (v or {}).get("genre") or st.get("genre")
        metrics = view.metrics_html(
            before_m, after_m, target_lufs=target, true_peak_ceiling=(v or {}).get("ceiling")
        )
        figs = self.pictures(base, shown, target, genre)
        return {
            **self.players(st, base, shown, before_m.get("integrated_lufs"), after_m.get("integrated_lufs")),
            "metrics": metrics,
            **dict(zip(("wave", "spec", "loud", "tone"), figs)),
            "version": picker,
            "rate_label": view.rating_label((v or {}).get("name"), rateable=self.rateable(st, shown)),
        }

    @staticmethod
    def cleared_rating() -> dict[str, Any]:
        """The rating form emptied (after each turn, a new version shown, a new upload or conversation)."""
        return {
            "overall": None,
            **{f"aspect_{k}": None for k, _ in ASPECTS},
            "comment": "",
            "rated": "",
        }

    # ------------------------------------------------------------------ load (a page refresh)

    def on_load(self, saved: dict | None, request: gr.Request | None = None):
        """Generator: restore the conversation the browser remembers (history, versions, current version);
        while its turn still runs, follow that turn's progress until it is done."""
        st = self.session(None, request)
        saved = saved if isinstance(saved, dict) else {}
        tid = saved.get("thread_id")
        if (
            not tid or saved.get("user_id") != st["user_id"]
        ):  # nothing kept, or another account's conversation
            yield self.out({"state": st, "saved": self.saved(st)})
            return
        st["thread_id"] = tid
        try:
            history = self.restore(st)
        except Exception:
            log.exception("restoring thread %s failed", tid)
            history = []
        pending = saved.get("pending_audio")
        if pending and not st.get("current_id"):
            st.update(pending_audio=pending, pending_inputs=dict(saved.get("pending_inputs") or {}))
            st.update(original_id=pending, current_id=pending, shown_id=pending)
            st["versions"] = []
            self.add_version(st, pending)
        ready = {"send": ready_send()}
        if self.busy(tid):
            history.append({"role": "assistant", "content": "Still working on your last request…"})
            yield self.out(
                {
                    "chat": history,
                    "state": st,
                    "saved": self.saved(st),
                    "send": busy_send(),
                    "msg": gr.update(placeholder=BUSY_PLACEHOLDER),
                }
            )
            while self.busy(tid):
                with self._lock:
                    board = self._busy.get(tid)
                yield self.out({"progress": board.html() if board else ""})
                time.sleep(0.5)
            history = self.restore(st)
        done = view.ProgressBoard(done=True) if history else None
        yield self.out(
            {
                "chat": history,
                "state": st,
                "saved": self.saved(st),
                "progress": done.html() if done else "",
                "suggest": self._suggestion(st),
                "msg": gr.update(placeholder=MSG_PLACEHOLDER),
                **ready,
                **self.panels(st),
                **self.cleared_rating(),
            }
        )

    def restore(self, st: dict[str, Any]) -> list[dict[str, Any]]:
        """Fill `st` from the service's record of its thread; returns the chat history it implies."""
        tid = st["thread_id"]
        ctx = self.svc.thread_context(tid)
        turns = self.svc.history(tid) if ctx else []
        history: list[dict[str, Any]] = []
        if not ctx or not ctx.get("original_id"):
            return history
        original = ctx["original_id"]
        st.update(original_id=original, current_id=ctx.get("current_id") or original, versions=[])
        st["shown_id"] = st["current_id"]
        self.add_version(st, original)
        for t in turns:
            history.append({"role": "user", "content": t.get("request") or ""})
            kind = t.get("kind")
            if kind in view.ANSWER_KINDS:
                text = view.answer_markdown(
                    t.get("answer"), checks=t.get("checks"), findings=t.get("findings"),
                    fallback=t.get("explanation") or "",
                )  # fmt: skip
            else:
                text = t.get("explanation") or "Done."
            history.append({"role": "assistant", "content": text})
            rid = t.get("result_id")
            if kind in ("process", "adjust") and rid and self.version(st, t.get("source_id")) is not None:
                self.add_version(st, rid, plan=t.get("plan"), request=t.get("request"))
        if turns:
            last = turns[-1]
            st["suggested"] = (
                list(last.get("suggested_steps") or []) if last.get("kind") in ("answer", "clarify") else []
            )
            st["suggested_checks"] = last.get("checks")
        if self.version(st, st["current_id"]) is None:  # a version from an earlier upload on this thread
            self.add_version(st, st["current_id"])
        return history

    # ------------------------------------------------------------------ upload

    def on_upload(
        self,
        song: str | None,
        vocal: str | None,
        history: list,
        st: dict | None,
        request: gr.Request | None = None,
    ):
        st = self.session(st, request)
        history = list(history or [])
        main, voice = (song, vocal) if song else (vocal, None)
        if not main:
            st["pending_audio"], st["pending_inputs"] = None, {}
            return self.out({"chat": history, "state": st, "saved": self.saved(st)})
        try:
            aid = self.svc.import_audio(main)
            inputs = {"voice": self.svc.import_audio(voice)} if voice else {}
        except Exception as exc:
            if not isinstance(exc, (ValueError, KeyError, OSError)):
                log.exception("upload failed")
            history.append({"role": "assistant", "content": view.error_message(exc, (main, voice))})
            return self.out({"chat": history})
        st.update(
            preview=None,
            pending_audio=aid,
            pending_inputs=inputs,
            original_id=aid,
            current_id=aid,
            shown_id=aid,
            versions=[],
            turn_id=None,
            target_lufs=None,
            genre=None,
            suggested=[],
        )
        self.add_version(st, aid)
        audio = self.svc.audio(aid)
        names = Path(main).name + (f" with the vocal {Path(voice).name}" if voice else "")
        layout = {1: "mono", 2: "stereo"}.get(audio.channels, f"{audio.channels} channels")
        history.append(
            {
                "role": "assistant",
                "content": (
                    f"Got **{names}** ({audio.duration_s:.1f} s, {audio.sample_rate / 1000:g} kHz {layout}). "
                    "What should I do with it? For example: _clean and master this in a pop style_."
                ),
            }
        )
        panels = self.panels(st)
        panels["metrics"] = view.metrics_html({}, {})  # no comparison yet: the table waits for a turn
        panels["loud"] = panels["tone"] = None
        return self.out(
            {
                "chat": history,
                "state": st,
                "saved": self.saved(st),
                "progress": "",
                "suggest": gr.update(visible=False),
                "download": None,
                "stems_files": None,
                "preview_audio": None,
                "preview_note": "",
                **panels,
                **self.cleared_rating(),
            }
        )

    # ------------------------------------------------------------------ a turn

    def run_turn(self, st: dict, text: str, board: view.ProgressBoard) -> Iterator[dict[str, Any]]:
        """Run `svc.turn` in a worker thread; yield its progress events, then `_result` or `_error`.

        The thread is busy (`busy`) until the service returns, even if the page that asked goes away."""
        q: queue.Queue = queue.Queue()
        tid = st["thread_id"]

        def work() -> None:
            try:
                res = self.svc.turn(
                    text,
                    thread_id=tid,
                    audio_id=st.get("pending_audio"),
                    inputs=dict(st.get("pending_inputs") or {}),
                    on_event=on_event,
                    user_id=st.get("user_id"),
                )
                q.put({"event": "_result", "result": res})
            except BaseException as exc:
                q.put({"event": "_error", "error": exc})
            finally:
                with self._lock:
                    self._busy.pop(tid, None)
                    self._stop.discard(tid)

        def on_event(e: dict[str, Any]) -> None:
            if tid in self._stop:
                raise TurnStopped("stopped")
            board.update(e)  # also followed by a page reloaded mid-turn (`on_load`)
            q.put(e)

        with self._lock:
            self._busy[tid] = board
            self._sending.discard(tid)  # the running turn holds the thread from here
        threading.Thread(target=work, name="mixpilot-turn", daemon=True).start()
        while True:
            e = q.get()
            yield e
            if e.get("event") in ("_result", "_error"):
                return

    def on_send(self, text: str, history: list, st: dict | None, request: gr.Request | None = None):
        """Generator of panel tuples (`PANELS`): Send shows "still working…" until the result is on screen."""
        st = self.session(st, request)
        tid = st["thread_id"]
        text = (text or "").strip()
        with self._lock:  # claim the thread before the first update shows "still working…": no window
            taken = bool(text) and bool(tid) and (tid in self._busy or tid in self._sending)
            if text and tid and not taken:
                self._sending.add(tid)
                self._stop.discard(tid)
        if taken:  # another tab, or a send that slipped through: keep the message, say why
            gr.Info(
                "Still working on the previous request: your message stays in the box; send it when done."
            )
            yield self.out({})
            return
        try:
            for values in self._send(text, history, st):
                yield self.out(values)
            yield self.out(
                {
                    "send": ready_send(),
                    "msg": gr.update(placeholder=MSG_PLACEHOLDER),
                    "stop": gr.update(visible=False),
                }
            )
        finally:
            with self._lock:
                self._sending.discard(tid)

    def _send(self, text: str, history: list, st: dict) -> Iterator[dict[str, Any]]:
        history = list(history or [])
        if not text:
            yield {}
            return
        history.append({"role": "user", "content": text})
        if not st.get("pending_audio") and not st.get("current_id"):
            history.append(
                {
                    "role": "assistant",
                    "content": ("Upload a song first (or a vocal and a beat), then tell me what you want."),
                }
            )
            yield {"chat": history, "state": st, "msg": ""}
            return
        board = view.ProgressBoard()
        history.append({"role": "assistant", "content": view.STAGE_WORDS["analyze"]})
        working = len(history) - 1
        yield {
            "chat": history,
            "state": st,
            "saved": self.saved(st),
            "msg": gr.update(value="", placeholder=BUSY_PLACEHOLDER),
            "send": busy_send(),
            "progress": board.html(),
            "suggest": gr.update(visible=False),
            "stop": gr.update(visible=True),
            "preview_audio": None,
            "preview_note": "",
        }
        shown = self._render_preview(st, text)
        if shown:
            yield shown

        result, error, last, planned = None, None, 0.0, False
        for e in self.run_turn(st, text, board):
            kind = e.get("event")
            if kind == "_result":
                result = e["result"]
                break
            if kind == "_error":
                error = e["error"]
                break
            if kind == "plan" and (e.get("plan") or {}).get("steps"):  # an answer plans nothing: no plan line
                history[working] = {"role": "assistant", "content": view.plan_markdown(e.get("plan") or {})}
                planned = True
            elif kind == "stage" and not planned:
                history[working] = {
                    "role": "assistant",
                    "content": view.STAGE_WORDS.get(board.stage, board.stage),
                }
            now = time.monotonic()
            if kind != "step_progress" or now - last >= UPDATE_EVERY_S:
                last = now
                yield {"chat": history, "progress": board.html()}

        if error is not None:
            if not isinstance(error, (ValueError, KeyError, OSError, TurnStopped)):
                log.error("turn failed", exc_info=(type(error), error, error.__traceback__))
            if not planned:
                history.pop(working)
            words = (
                "Stopped: nothing was changed. Say what you would like instead."
                if isinstance(error, TurnStopped)
                else view.error_message(error)
            )
            history.append({"role": "assistant", "content": words})
            yield {"chat": history, "state": st, "progress": "", "suggest": self._suggestion(st)}
            return

        try:
            yield from self._show_result(result, text, st, history, working if not planned else None, board)
        except Exception as exc:
            log.exception("showing the result failed")
            history.append({"role": "assistant", "content": view.error_message(exc)})
            yield {"chat": history, "state": st, "suggest": self._suggestion(st)}

    def _render_preview(self, st: dict[str, Any], text: str) -> dict[str, Any] | None:
        """Before a first turn on a long recording: the plan rendered on its loudest excerpt
        (`Mixpilot.preview`, loudness aimed with the whole file's), for the Preview player; None when
        there is nothing to hear first (a short file, a question, a later turn) or it failed."""
        from agents.service import PREVIEW_S

        source = st.get("pending_audio")
        if not source:
            return None
        try:
            if self.svc.audio(source).duration_s < PREVIEW_S + PREVIEW_MIN_EXTRA_S:
                return None
            p = self.svc.preview(text, audio_id=source, user_id=st.get("user_id"))
        except Exception:
            log.exception("preview failed (the full render goes on)")
            return None
        if not (p.get("plan") or {}).get("steps"):
            return None
        st["preview"] = {k: p[k] for k in ("preview_id", "start_s", "seconds", "match_gain_db")}
        return {"state": st, **self.preview_player(st)}

    def preview_player(self, st: dict[str, Any]) -> dict[str, Any]:
        """The Preview player and its line, matched to the original excerpt's loudness unless the toggle is off."""
        p = st.get("preview")
        if not p:
            return {"preview_audio": None, "preview_note": ""}
        matched, gain = st.get("match", True), float(p["match_gain_db"])
        return {
            "preview_audio": self.preview(p["preview_id"], gain if matched and gain < 0 else 0.0),
            "preview_note": view.preview_note(p["start_s"], p["seconds"], gain, matched=matched),
        }

    def on_stop(self, st: dict | None) -> None:
        """Stop: the running turn of this conversation ends at its next progress event (nothing is kept)."""
        tid = (st or {}).get("thread_id")
        with self._lock:
            if tid and (tid in self._busy or tid in self._sending):
                self._stop.add(tid)

    def on_match(self, match: bool, st: dict | None):
        """The loudness-matching toggle: the players (and the preview) again, matched or as rendered."""
        st = self.session(st)
        st["match"] = bool(match)
        shown = st.get("shown_id") or st.get("current_id")
        values: dict[str, Any] = {"state": st, **self.preview_player(st)}
        if shown:
            base = self.baseline_id(st, shown) or shown
            values.update(
                self.players(
                    st,
                    base,
                    shown,
                    self.svc.analysis(base).get("integrated_lufs"),
                    self.svc.analysis(shown).get("integrated_lufs") if shown != base else None,
                )
            )
        return self.out(values)

    def on_suggest(self, history: list, st: dict | None, request: gr.Request | None = None):
        """The suggestion button: a confirming turn ("do it") on the same thread runs the suggested steps."""
        yield from self.on_send(CONFIRM, history, st, request)

    @staticmethod
    def _suggestion(st: dict) -> Any:
        """The suggestion button for what the thread suggests now: shown with its label, or hidden."""
        label = view.suggestion_label(st.get("suggested"), st.get("suggested_checks"))
        return gr.update(visible=True, value=label) if label else gr.update(visible=False)

    def _show_result(
        self,
        result: Any,
        request: str,
        st: dict,
        history: list,
        working: int | None,
        board: view.ProgressBoard,
    ) -> Iterator[dict[str, Any]]:
        st["pending_audio"], st["pending_inputs"] = None, {}
        if result.output_id:
            st["current_id"] = result.output_id
            if result.kind in ("process", "adjust"):
                self.add_version(
                    st, result.output_id, plan=result.plan, request=request, turn_id=result.turn_id
                )
            else:
                self.add_version(st, result.output_id)  # undo / reset / an answer: a version already known
            st["shown_id"] = result.output_id  # the After player follows the conversation
        st["turn_id"] = getattr(result, "turn_id", None)
        if result.kind in ("process", "adjust"):
            st["target_lufs"] = view.target_lufs_of(result.plan)
            st["genre"] = view.genre_of(result.plan) or st.get("genre")
        if working is not None:  # no plan was shown (undo, reset, an answer): drop the "working" line
            history.pop(working)
        checks = getattr(result, "checks", None)
        st["suggested"] = list(getattr(result, "suggested_steps", None) or [])
        st["suggested_checks"] = checks
        if result.kind in view.ANSWER_KINDS:  # nothing ran: the answer, the platform check, the findings
            text = view.answer_markdown(
                getattr(result, "answer", None),
                checks=checks,
                findings=getattr(result, "findings", None),
                fallback=result.explanation,
            )
        else:
            text = result.explanation or "Done."
            extra = [ln for ln in view.outcome_lines(result.steps) if ln[2:] not in text]
            if extra:
                text += "\n\n" + "\n".join(extra)
            check = view.check_markdown(checks)
            if check:
                text += "\n\n" + check
            shown = self.version(st, st.get("current_id"))
            if shown and result.kind in ("process", "adjust") and shown["name"] != "original":
                text += f"\n\nThis is **{shown['name']}**."
            if result.output_id and result.kind in ("process", "adjust") and "rate" not in text.lower():
                text += '\n\nRate the result on the right, or ask for more ("a bit brighter", "undo").'
        history.append({"role": "assistant", "content": text})
        yield {"chat": history, "state": st, "progress": board.html(), "suggest": self._suggestion(st)}
        panels = self.panels(st) if st.get("current_id") else {}
        board.done = True  # only now: the audio and the metrics go out with "Done."
        yield {"progress": board.html(), "state": st, **panels, **self.cleared_rating()}

    # ------------------------------------------------------------------ versions, baseline

    def on_pick(self, version_id: str | None, st: dict | None):
        """The version picker: play, compare, rate and export that version (the conversation stays put)."""
        st = self.session(st)
        if version_id and version_id == st.get("shown_id"):
            # the version already shown (a repeated input event, e.g. under load): keep every panel as it
            # is, an export link and a half-filled rating included
            return self.out({"state": st})
        if version_id and self.version(st, version_id) is not None:
            st["shown_id"] = version_id
        return self.out({"state": st, "download": None, **self.panels(st), **self.cleared_rating()})

    def on_baseline(self, baseline: str | None, st: dict | None):
        st = self.session(st)
        st["baseline"] = baseline if baseline in BASELINES else BASELINES[0]
        return self.out({"state": st, **self.panels(st)})

    # ------------------------------------------------------------------ rating, export, new conversation

    def on_rate(self, overall: Any, *rest: Any):
        *aspect_values, comment, history, st = rest
        st = self.session(st)
        history = list(history or [])
        if overall in (None, ""):
            return history, "Pick an overall rating (1–5) first."
        shown = st.get("shown_id") or st.get("current_id")
        v = self.version(st, shown)
        if v is None or not self.rateable(st, shown):
            if getattr(self.svc, "memory", True) is None:
                return history, "Ratings can't be stored: memory is off on this server (see its log)."
            if v is not None:
                return (
                    history,
                    f"**{v['name']}** is your upload as it came: ask for a change, then rate that.",
                )
            return history, "Nothing to rate yet: ask for a change first, then rate the result."
        if getattr(self.svc, "memory", True) is None:
            return history, "Ratings can't be stored: memory is off on this server (see its log)."
        rating = int(overall)
        aspects = {key: int(v) for (key, _), v in zip(ASPECTS, aspect_values) if v not in (None, "")}
        try:
            understood = self.svc.feedback(
                turn_id=v.get("turn_id") or v["id"],  # the version heard (memory finds its turn by result id)
                rating=rating,
                aspects=aspects,
                comment=(comment or "").strip() or None,
                liked=rating >= 4,
                user_id=st.get("user_id"),
            )
        except Exception as exc:
            if not isinstance(exc, (ValueError, KeyError, OSError)):
                log.exception("feedback failed")
            history.append({"role": "assistant", "content": view.error_message(exc)})
            return history, "The rating was not saved."
        heard = f" From your comment I'll aim for {' and '.join(understood)}." if understood else ""
        history.append(
            {
                "role": "assistant",
                "content": (
                    f"Thanks — saved your rating of **{v['name']}** ({rating}/5). "
                    f"I'll use it for similar audio next time.{heard}"
                ),
            }
        )
        return history, f"Saved: {rating}/5 for {v['name']}" + (
            f" ({', '.join(f'{k} {n}' for k, n in aspects.items())})" if aspects else ""
        )

    def on_export(self, label: str, history: list, st: dict | None):
        """Export the version shown (the picker's), its name in the file name."""
        st = self.session(st)
        history = list(history or [])
        vid = st.get("shown_id") or st.get("current_id")
        if not vid:
            history.append({"role": "assistant", "content": "Nothing to export yet: upload a song first."})
            return history, None
        v = self.version(st, vid) or {"name": vid[:8]}
        fmt, depth, suffix = EXPORTS.get(label, EXPORTS["WAV 24-bit"])
        d = self.work_dir / "export" / vid
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{depth}bit" if depth else "320k"
        if depth == 32:
            tag = "32f"
        path = d / f"mixpilot_{view.slug(v['name'])}_{tag}.{suffix}"
        try:
            if not path.exists():
                self.svc.export(vid, path, format=fmt, bit_depth=depth)
        except Exception as exc:
            if not isinstance(exc, (ValueError, KeyError, OSError)):
                log.exception("export failed")
            history.append({"role": "assistant", "content": view.error_message(exc)})
            return history, None
        return history, str(path)

    def stems_available(self) -> bool:
        try:
            ok, _ = self.svc.stems_available()
            return bool(ok)
        except Exception:
            return False

    def on_stems(self, history: list, st: dict | None):
        """Split the version shown into stems (the service's `stems`) and offer each as a WAV."""
        st = self.session(st)
        history = list(history or [])
        vid = st.get("shown_id") or st.get("current_id")
        if not vid:
            history.append({"role": "assistant", "content": "Nothing to split yet: upload a song first."})
            return history, None
        try:
            stems = self.svc.stems(vid)
            d = self.work_dir / "stems" / vid
            d.mkdir(parents=True, exist_ok=True)
            files = [
                str(self.svc.export(sid, d / f"{name}.wav", format="wav", bit_depth=24))
                for name, sid in sorted(stems.items())
            ]
        except Exception as exc:
            if not isinstance(exc, (ValueError, KeyError, OSError)):
                log.exception("stems failed")
            history.append({"role": "assistant", "content": view.error_message(exc)})
            return history, None
        return history, files

    def on_new(self, st: dict | None, request: gr.Request | None = None):
        """A new conversation: a new thread, and every panel emptied."""
        st = new_session(self.svc, self.session(st, request)["user_id"])
        return self.out(
            {
                "chat": [],
                "state": st,
                "saved": self.saved(st),
                "msg": "",
                "progress": "",
                "suggest": gr.update(visible=False),
                "download": None,
                "stems_files": None,
                "song": None,
                "vocal": None,
                "preview_audio": None,
                "preview_note": "",
                **self.panels(st),
                **self.cleared_rating(),
            }
        )


# ------------------------------------------------------------------------------ layout


def build_app(
    svc: Any,
    *,
    work_dir: str | Path,
    user_id: str = "local",
    signin: Any = None,
    title: str = "mixpilot",
    storage_secret: str | None = None,
) -> gr.Blocks:
    """The Blocks app; `signin` (an `app.ui.auth.SignIn`) maps the signed-in email to a user id.

    `storage_secret` encrypts what the browser keeps (the conversation's thread); without one a random key
    per start, so a conversation survives a page refresh but not a server restart."""
    ui = UI(svc, work_dir=Path(work_dir), user_id=user_id, signin=signin)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        st = gr.State(None)
        saved = gr.BrowserState({}, storage_key="mixpilot-conversation", secret=storage_secret)
        gr.Markdown(
            "## mixpilot — say what you want, hear the result\n"
            "Upload a song (or a vocal and a beat), then ask about it — *is it ready for Spotify?*, "
            "*does it clip?* — or say what you want: *clean and master this in a pop style*, "
            "*the vocals are harsh*, *a bit brighter*, *undo*. A suggestion comes with a button that does it."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = gr.Chatbot(
                    label="Conversation",
                    elem_id="mp-chat",
                    height=440,
                    buttons=["copy"],
                    feedback_options=None,
                    placeholder="Upload a recording to start.",
                )
                # what the last answer suggests; pressing it sends the confirming turn (label: view.suggestion_label)
                suggest = gr.Button("Do it", variant="primary", elem_id="mp-suggest", visible=False)
                with gr.Row():
                    msg = gr.Textbox(
                        show_label=False,
                        placeholder=MSG_PLACEHOLDER,
                        elem_id="mp-msg",
                        scale=6,
                        lines=1,
                        max_lines=3,
                    )
                    send = gr.Button("Send", variant="primary", elem_id="mp-send", scale=1, min_width=80)
                    stop = gr.Button("Stop", elem_id="mp-stop", scale=1, min_width=70, visible=False)
                gr.Examples(EXAMPLES, inputs=[msg], label="Try")
                progress = gr.HTML("", elem_id="mp-progress")
                with gr.Tabs():
                    with gr.Tab("Waveform"):
                        wave = gr.Plot(show_label=False, format="png", elem_id="mp-wave")
                    with gr.Tab("Spectrogram"):
                        spec = gr.Plot(show_label=False, format="png", elem_id="mp-spec")
                    with gr.Tab("Loudness"):
                        loud = gr.Plot(show_label=False, format="png", elem_id="mp-loud")
                    with gr.Tab("Tonal balance"):
                        tone = gr.Plot(show_label=False, format="png", elem_id="mp-tone")
            with gr.Column(scale=2):
                with gr.Row():
                    song = gr.File(
                        label="Song (or beat)",
                        file_types=AUDIO_TYPES,
                        type="filepath",
                        elem_id="mp-song",
                        height=110,
                    )
                    vocal = gr.File(
                        label="Vocal (optional)",
                        file_types=AUDIO_TYPES,
                        type="filepath",
                        elem_id="mp-vocal",
                        height=110,
                    )
                with gr.Row():
                    version = gr.Dropdown(
                        choices=[],
                        label="Version (play, compare, rate, export)",
                        elem_id="mp-version",
                        interactive=True,
                        scale=2,
                    )
                    baseline = gr.Radio(
                        BASELINES, value=BASELINES[0], label="Compare with", elem_id="mp-baseline", scale=2
                    )
                preview_audio = gr.Audio(
                    label="Preview (the loudest 15 s, first)",
                    type="filepath",
                    interactive=False,
                    autoplay=True,
                    elem_id="mp-preview",
                )
                preview_note = gr.Markdown("", elem_id="mp-preview-note")
                with gr.Row():
                    before = gr.Audio(label="Before", type="filepath", interactive=False, elem_id="mp-before")
                    after = gr.Audio(label="After", type="filepath", interactive=False, elem_id="mp-after")
                with gr.Row():
                    match = gr.Checkbox(
                        True,
                        label="Match loudness (louder never passes for better)",
                        elem_id="mp-match",
                        scale=2,
                    )
                    match_note = gr.Markdown("", elem_id="mp-match-note")
                metrics = gr.HTML(view.metrics_html({}, {}), elem_id="mp-metrics")
                with gr.Accordion("Rate this result", open=True, elem_id="mp-rate"):
                    rate_label = gr.Markdown(
                        view.rating_label(None, rateable=False), elem_id="mp-rate-version"
                    )
                    overall = gr.Radio([1, 2, 3, 4, 5], label="Overall", elem_id="mp-overall")
                    with gr.Accordion(
                        "Aspects (optional: each teaches mixpilot one part of your taste)",
                        open=True,
                        elem_id="mp-aspects",
                    ):
                        aspect_inputs = [
                            gr.Radio([1, 2, 3, 4, 5], label=label, elem_id=f"mp-aspect-{key}")
                            for key, label in ASPECTS
                        ]
                    with gr.Row():
                        comment = gr.Textbox(
                            show_label=False,
                            lines=1,
                            elem_id="mp-comment",
                            scale=3,
                            placeholder="What was off? e.g. too bright, a bit quiet (optional; remembered)",
                        )
                        rate = gr.Button("Send rating", elem_id="mp-rate-send", scale=1, min_width=110)
                    rated = gr.Markdown("", elem_id="mp-rated")
                with gr.Accordion("Export", open=True):
                    with gr.Row():
                        fmt = gr.Dropdown(
                            list(EXPORTS), value="WAV 24-bit", show_label=False, elem_id="mp-format", scale=2
                        )
                        export = gr.Button("Export", elem_id="mp-export", scale=1, min_width=90)
                    download = gr.File(label="Download", elem_id="mp-download", interactive=False, height=80)
                    stems_btn = gr.Button(
                        "Split the current version into stems",
                        elem_id="mp-stems",
                        visible=ui.stems_available(),
                    )
                    stems_files = gr.File(
                        label="Stems",
                        file_count="multiple",
                        interactive=False,
                        elem_id="mp-stems-files",
                        visible=ui.stems_available(),
                        height=120,
                    )
                new = gr.Button("New conversation", variant="secondary", elem_id="mp-new")

        panels = dict(
            chat=chat, state=st, saved=saved, msg=msg, progress=progress, before=before, after=after,
            metrics=metrics, wave=wave, spec=spec, loud=loud, tone=tone, suggest=suggest, send=send,
            version=version, rate_label=rate_label, overall=overall, comment=comment, rated=rated,
            download=download, stems_files=stems_files, song=song, vocal=vocal, match_note=match_note,
            preview_audio=preview_audio, preview_note=preview_note, stop=stop,
            **{f"aspect_{k}": c for (k, _), c in zip(ASPECTS, aspect_inputs)},
        )  # fmt: skip
        every = [panels[k] for k in PANELS]
        song.upload(ui.on_upload, [song, vocal, chat, st], every, show_progress="minimal")
        vocal.upload(ui.on_upload, [song, vocal, chat, st], every, show_progress="minimal")
        send.click(ui.on_send, [msg, chat, st], every, show_progress="hidden")
        msg.submit(ui.on_send, [msg, chat, st], every, show_progress="hidden")
        suggest.click(ui.on_suggest, [chat, st], every, show_progress="hidden")
        version.input(ui.on_pick, [version, st], every, show_progress="minimal")
        baseline.input(ui.on_baseline, [baseline, st], every, show_progress="minimal")
        rate.click(ui.on_rate, [overall, *aspect_inputs, comment, chat, st], [chat, rated])
        export.click(ui.on_export, [fmt, chat, st], [chat, download])
        stems_btn.click(ui.on_stems, [chat, st], [chat, stems_files])
        new.click(ui.on_new, [st], every, show_progress="hidden")
        stop.click(ui.on_stop, [st], None, queue=False)
        match.input(ui.on_match, [match, st], every, show_progress="hidden")
        demo.load(ui.on_load, [saved], every, show_progress="hidden")
    demo.queue(default_concurrency_limit=2)
    return demo


def local_user_id() -> str:
    """The single user of a local UI (the memory layer's LOCAL_USER_ID when it is installed)."""
    try:
        from memory.db import LOCAL_USER_ID

        return LOCAL_USER_ID
    except Exception:
        return "local"


def browser_storage_secret(settings: Any) -> str | None:
    """A key for the browser's stored conversation, derived from the configured JWT secret (never the
    secret itself), so a conversation survives a server restart; None without one."""
    import hashlib
    import hmac

    secret = getattr(settings, "jwt_secret", None)
    if secret is None:
        return None
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    return hmac.new(value.encode(), b"mixpilot-ui-browser-state", hashlib.sha256).hexdigest()


def launch(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    settings: Any = None,
    open_browser: bool = False,
    share: bool = False,
    login: bool = False,
) -> None:
    """Open the service from settings, build the UI and serve it until interrupted.

    `login=True` asks for an email and password (the API's users); otherwise local single-user mode.
    """
    from app.runtime import open_service
    from app.settings import Settings

    settings = settings or Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    work_dir = Path(settings.data_dir) / "ui"
    with open_service(settings) as svc:
        signin = None
        if login:
            from app.ui.auth import SignIn
            from memory.db import default_database_url

            signin = SignIn(settings.database_url or default_database_url(settings.data_dir))
        demo = build_app(
            svc,
            work_dir=work_dir,
            user_id=local_user_id(),
            signin=signin,
            storage_secret=browser_storage_secret(settings),
        )
        try:
            demo.launch(
                server_name=host,
                server_port=port,
                inbrowser=open_browser,
                share=share,
                show_error=False,
                allowed_paths=[str(work_dir)],
                css=CSS,
                footer_links=[],
                quiet=False,
                auth=signin.check if signin else None,  # type: ignore[arg-type]  # Gradio awaits a coroutine function too
                auth_message="Sign in with your mixpilot account (the same as the API)." if signin else None,
            )
        finally:
            shutil.rmtree(work_dir / "preview", ignore_errors=True)
