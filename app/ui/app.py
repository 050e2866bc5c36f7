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
        "current_id": None,
        "turn_id": None,
        "target_lufs": None,
        "genre": None,
        "suggested": [],  # the steps a confirming turn runs (the suggestion button shows while non-empty)
    }


class UI:
    """Handlers bound to one service; the Blocks wiring is in `build`."""

    def __init__(self, svc: Any, *, work_dir: Path, user_id: str, signin: Any = None) -> None:
        self.svc = svc
        self.signin = signin
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.user_id = user_id

    # ------------------------------------------------------------------ helpers

    def session(self, st: dict[str, Any] | None, request: gr.Request | None = None) -> dict[str, Any]:
        if st:
            return st
        user_id = self.user_id
        if self.signin is not None:
            user_id = self.signin.user_id(getattr(request, "username", None)) or self.user_id
        return new_session(self.svc, user_id)

    def preview(self, version_id: str | None) -> str | None:
        """A 16-bit WAV of a stored version for the browser's player (versions never change: cached)."""
        if not version_id:
            return None
        p = self.work_dir / "preview" / f"{version_id}.wav"
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            self.svc.export(version_id, p, format="wav", bit_depth=16)
        return str(p)

    def pictures(self, before_id: str | None, after_id: str | None, st: dict[str, Any]) -> tuple[Any, ...]:
        from app.ui import plots

        if not before_id:
            return (None, None, None, None)
        before = self.svc.audio(before_id)
        after = self.svc.audio(after_id) if after_id and after_id != before_id else None
        figs = (
            plots.waveform_figure(before, after),
            plots.spectrogram_figure(before, after),
            plots.loudness_figure(before, after, st.get("target_lufs")),
            plots.tonal_balance_figure(before, after, genre=st.get("genre")),
        )
        return figs

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
        hide = gr.update(visible=False)
        if not main:
            st["pending_audio"], st["pending_inputs"] = None, {}
            return history, st, None, None, None, None, None, hide
        try:
            aid = self.svc.import_audio(main)
            inputs = {"voice": self.svc.import_audio(voice)} if voice else {}
        except Exception as exc:
            if not isinstance(exc, (ValueError, KeyError, OSError)):
                log.exception("upload failed")
            history.append({"role": "assistant", "content": view.error_message(exc, (main, voice))})
            return history, st, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        st.update(
            pending_audio=aid,
            pending_inputs=inputs,
            original_id=aid,
            current_id=aid,
            turn_id=None,
            suggested=[],
        )
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
        wave, spec, _, _ = self.pictures(aid, None, st)
        return history, st, self.preview(aid), None, wave, spec, None, hide

    # ------------------------------------------------------------------ a turn

    def run_turn(self, st: dict, text: str) -> Iterator[dict[str, Any]]:
        """Run `svc.turn` in a worker thread; yield its progress events, then `_result` or `_error`."""
        q: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                res = self.svc.turn(
                    text,
                    thread_id=st["thread_id"],
                    audio_id=st.get("pending_audio"),
                    inputs=dict(st.get("pending_inputs") or {}),
                    on_event=q.put,
                    user_id=st.get("user_id"),
                )
                q.put({"event": "_result", "result": res})
            except BaseException as exc:
                q.put({"event": "_error", "error": exc})

        threading.Thread(target=work, name="mixpilot-turn", daemon=True).start()
        while True:
            e = q.get()
            yield e
            if e.get("event") in ("_result", "_error"):
                return

    def on_send(self, text: str, history: list, st: dict | None, request: gr.Request | None = None):
        """Generator: (chat, state, textbox, progress, before, after, metrics, 4 plots, suggestion) per yield."""
        st = self.session(st, request)
        history = list(history or [])
        text = (text or "").strip()
        skip = gr.skip()

        def out(
            progress=skip, before=skip, after=skip, metrics=skip, plots=(skip,) * 4, msg=skip, suggest=skip
        ):
            return (history, st, msg, progress, before, after, metrics, *plots, suggest)

        if not text:
            yield out()
            return
        history.append({"role": "user", "content": text})
        if not st.get("pending_audio") and not st.get("current_id"):
            history.append(
                {
                    "role": "assistant",
                    "content": ("Upload a song first (or a vocal and a beat), then tell me what you want."),
                }
            )
            yield out(msg="")
            return
        board = view.ProgressBoard()
        history.append({"role": "assistant", "content": view.STAGE_WORDS["analyze"]})
        working = len(history) - 1
        yield out(progress=board.html(), msg="", suggest=gr.update(visible=False))  # one turn at a time

        result, error, last, planned = None, None, 0.0, False
        for e in self.run_turn(st, text):
            kind = e.get("event")
            if kind == "_result":
                result = e["result"]
                break
            if kind == "_error":
                error = e["error"]
                break
            board.update(e)
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
                yield out(progress=board.html())

        if error is not None:
            if not isinstance(error, (ValueError, KeyError, OSError)):
                log.error("turn failed", exc_info=(type(error), error, error.__traceback__))
            if not planned:
                history.pop(working)
            history.append({"role": "assistant", "content": view.error_message(error)})
            yield out(progress="", suggest=self._suggestion(st))
            return

        try:
            yield from self._show_result(result, st, history, working if not planned else None, board, out)
        except Exception as exc:
            log.exception("showing the result failed")
            history.append({"role": "assistant", "content": view.error_message(exc)})
            yield out(suggest=self._suggestion(st))

    def on_suggest(self, history: list, st: dict | None, request: gr.Request | None = None):
        """The suggestion button: a confirming turn ("do it") on the same thread runs the suggested steps."""
        yield from self.on_send(CONFIRM, history, st, request)

    @staticmethod
    def _suggestion(st: dict) -> Any:
        """The suggestion button for what the thread suggests now: shown with its label, or hidden."""
        label = view.suggestion_label(st.get("suggested"), st.get("suggested_checks"))
        return gr.update(visible=True, value=label) if label else gr.update(visible=False)

    def _show_result(
        self, result: Any, st: dict, history: list, working: int | None, board: view.ProgressBoard, out
    ):
        board.done = True
        st["pending_audio"], st["pending_inputs"] = None, {}
        if result.output_id:
            st["current_id"] = result.output_id
        st["turn_id"] = getattr(result, "turn_id", None) or st.get("turn_id")
        timeline_start = st.get("original_id")
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
            if result.output_id and result.kind in ("process", "adjust") and "rate" not in text.lower():
                text += '\n\nRate the result on the right, or ask for more ("a bit brighter", "undo").'
        history.append({"role": "assistant", "content": text})
        yield out(progress=board.html(), suggest=self._suggestion(st))

        current = st.get("current_id")
        if not current:
            return
        before_m, after_m = dict(result.metrics_before or {}), dict(result.metrics_after or {})
        if result.kind not in ("process", "adjust") or not after_m:
            # undo / reset / nothing applied: compare the original with what is current now
            before_m = self.svc.analysis(timeline_start) if timeline_start else {}
            after_m = self.svc.analysis(current)
        before_m.update(self._speech_scores(timeline_start))
        after_m.update(self._speech_scores(current))
        ceiling = None
        for s in (result.plan or {}).get("steps") or []:
            if s.get("tool") == "master":
                ceiling = (s.get("params") or {}).get("true_peak_dbtp")
        metrics = view.metrics_html(
            before_m, after_m, target_lufs=st.get("target_lufs"), true_peak_ceiling=ceiling
        )
        yield out(
            before=self.preview(timeline_start),
            after=self.preview(current) if current != timeline_start else None,  # the original: no "after"
            metrics=metrics,
            plots=self.pictures(timeline_start, current, st),
        )

    # ------------------------------------------------------------------ rating, export, new conversation

    def on_rate(self, overall: Any, *rest: Any):
        *aspect_values, comment, history, st = rest
        st = self.session(st)
        history = list(history or [])
        if overall in (None, ""):
            return history, "Pick an overall rating (1–5) first."
        if not st.get("turn_id"):
            if getattr(self.svc, "memory", True) is None:
                return history, "Ratings can't be stored: memory is off on this server (see its log)."
            return history, "Nothing to rate yet: ask for a change first, then rate the result."
        rating = int(overall)
        aspects = {key: int(v) for (key, _), v in zip(ASPECTS, aspect_values) if v not in (None, "")}
        try:
            understood = self.svc.feedback(
                turn_id=st["turn_id"],
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
                    f"Thanks — saved your rating ({rating}/5). I'll use it for similar audio next time.{heard}"
                ),
            }
        )
        return history, f"Saved: {rating}/5" + (
            f" ({', '.join(f'{k} {v}' for k, v in aspects.items())})" if aspects else ""
        )

    def on_export(self, label: str, history: list, st: dict | None):
        st = self.session(st)
        history = list(history or [])
        vid = st.get("current_id")
        if not vid:
            history.append({"role": "assistant", "content": "Nothing to export yet: upload a song first."})
            return history, None
        fmt, depth, suffix = EXPORTS.get(label, EXPORTS["WAV 24-bit"])
        d = self.work_dir / "export" / vid
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{depth}bit" if depth else "320k"
        if depth == 32:
            tag = "32f"
        path = d / f"mixpilot_{vid[:8]}_{tag}.{suffix}"
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
        """Split the current version into stems (the service's `stems`) and offer each as a WAV."""
        st = self.session(st)
        history = list(history or [])
        vid = st.get("current_id")
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
        st = new_session(self.svc, self.session(st, request)["user_id"])
        return (
            [],
            st,
            "",
            view.metrics_html({}, {}),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            gr.update(visible=False),
        )


# ------------------------------------------------------------------------------ layout


def build_app(
    svc: Any, *, work_dir: str | Path, user_id: str = "local", signin: Any = None, title: str = "mixpilot"
) -> gr.Blocks:
    """The Blocks app; `signin` (an `app.ui.auth.SignIn`) maps the signed-in email to a user id."""
    ui = UI(svc, work_dir=Path(work_dir), user_id=user_id, signin=signin)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        st = gr.State(None)
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
                        placeholder="What should I do with it?",
                        elem_id="mp-msg",
                        scale=6,
                        lines=1,
                        max_lines=3,
                    )
                    send = gr.Button("Send", variant="primary", elem_id="mp-send", scale=1, min_width=80)
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
                    before = gr.Audio(label="Before", type="filepath", interactive=False, elem_id="mp-before")
                    after = gr.Audio(label="After", type="filepath", interactive=False, elem_id="mp-after")
                metrics = gr.HTML(view.metrics_html({}, {}), elem_id="mp-metrics")
                with gr.Accordion("Rate this result", open=True, elem_id="mp-rate"):
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

        upload_out = [chat, st, before, after, wave, spec, loud, suggest]
        song.upload(ui.on_upload, [song, vocal, chat, st], upload_out, show_progress="minimal")
        vocal.upload(ui.on_upload, [song, vocal, chat, st], upload_out, show_progress="minimal")
        turn_out = [chat, st, msg, progress, before, after, metrics, wave, spec, loud, tone, suggest]
        send.click(ui.on_send, [msg, chat, st], turn_out, show_progress="hidden")
        msg.submit(ui.on_send, [msg, chat, st], turn_out, show_progress="hidden")
        suggest.click(ui.on_suggest, [chat, st], turn_out, show_progress="hidden")
        rate.click(ui.on_rate, [overall, *aspect_inputs, comment, chat, st], [chat, rated])
        export.click(ui.on_export, [fmt, chat, st], [chat, download])
        stems_btn.click(ui.on_stems, [chat, st], [chat, stems_files])
        new.click(
            ui.on_new,
            [st],
            [chat, st, msg, metrics, before, after, wave, spec, loud, tone, song, vocal, suggest],
        )
    demo.queue(default_concurrency_limit=2)
    return demo


def local_user_id() -> str:
    """The single user of a local UI (the memory layer's LOCAL_USER_ID when it is installed)."""
    try:
        from memory.db import LOCAL_USER_ID

        return LOCAL_USER_ID
    except Exception:
        return "local"


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
        demo = build_app(svc, work_dir=work_dir, user_id=local_user_id(), signin=signin)
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
