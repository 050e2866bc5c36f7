"""The chat UI's pieces without a browser: progress folding, metrics table, pictures' numbers, errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.ui import plots, view
from tests.conftest import noise, sine
from tools.audio import Audio, AudioError
from tools.loudness import integrated_lufs


def test_progress_board_one_bar_per_step_from_the_event_stream():
    board = view.ProgressBoard()
    plan = {"steps": [{"tool": "denoise", "target": "mix"}, {"tool": "master", "target": "mix"}]}
    events: list[dict[str, Any]] = [
        {"event": "stage", "stage": "plan"},
        {"event": "plan", "plan": plan},
        {"event": "step_started", "index": 0, "total": 2, "tool": "denoise"},
        {"event": "step_progress", "index": 0, "total": 2, "tool": "denoise", "fraction": 0.5},
        {
            "event": "step_finished",
            "index": 0,
            "total": 2,
            "tool": "denoise",
            "status": "rolled_back",
            "why": "made it worse",
        },
        {"event": "step_started", "index": 1, "total": 2, "tool": "master"},
    ]
    for e in events:
        board.update(e)
    assert [(b.tool, b.status) for b in board.steps] == [("denoise", "rolled_back"), ("master", "running")]
    html = board.html()
    assert html.count('class="mp-step ') == 2 and "rolled back" in html and 'value="0"' in html
    board.update({"event": "step_progress", "index": 1, "total": 2, "tool": "master", "fraction": 0.4})
    assert 'value="40"' in board.html()
    board.update({"event": "done"})  # the graph is done, the page not yet: no "Done." until the UI says so
    assert not board.done and "Done." not in board.html() and "Preparing" in board.html()
    board.done = True
    assert "Done." in board.html()


def test_metrics_table_marks_loudness_on_target():
    html = view.metrics_html(
        {"integrated_lufs": -20.3, "true_peak_dbtp": -4.0},
        {"integrated_lufs": -14.2, "true_peak_dbtp": -1.1},
        target_lufs=-14.0,
        true_peak_ceiling=-1.0,
    )
    assert 'data-key="integrated_lufs"' in html and "mp-ok" in html
    assert 'data-value="-14.2"' in html and 'data-value="-14.0"' in html
    off = view.metrics_html({"integrated_lufs": -20.0}, {"integrated_lufs": -16.0}, target_lufs=-14.0)
    assert "mp-off" in off


def test_errors_are_one_readable_line_without_server_paths():
    msg = view.error_message(
        AudioError("/tmp/gradio/abc/song.wav: not a readable audio file"), ("/tmp/gradio/abc/song.wav",)
    )
    assert msg.startswith("I couldn't use that file") and "song.wav" in msg and "/tmp/gradio" not in msg
    try:
        raise RuntimeError('boom\n  File "x.py", line 3')
    except RuntimeError as exc:
        msg = view.error_message(exc)
    assert "\n" not in msg and "File" not in msg and "RuntimeError" in msg


def test_plan_markdown_lists_steps_and_notes():
    md = view.plan_markdown(
        {
            "steps": [
                {"tool": "genre_preset", "params": {"genre": "pop"}, "reason": "pop tone"},
                {"tool": "master", "params": {"target_lufs": -14.0}, "target": "mix"},
            ],
            "source": "semantic",
            "notes": ["dereverb unavailable: used EQ"],
        }
    )
    assert (
        "1. **genre preset** (genre pop) — pop tone" in md
        and "(loudness -14 LUFS)" in md
        and "dereverb" in md
    )
    assert "target_lufs" not in md and "planner" not in md  # plain words, no internals
    assert view.target_lufs_of({"steps": [{"tool": "master", "params": {"target_lufs": -16}}]}) == -16.0
    assert view.genre_of({"steps": [{"tool": "genre_preset", "params": {"genre": "rock"}}]}) == "rock"


@pytest.mark.parametrize("sr", [22050, 48000])
def test_short_term_loudness_matches_the_integrated_meter_on_a_steady_tone(sr):
    a = Audio(sine(997.0, 6.0, sr, 0.25, 2), sr)
    t, lufs = plots.short_term_lufs(a)
    assert t[0] == pytest.approx(3.0) and np.diff(t) == pytest.approx(0.1)
    assert t.size == pytest.approx(31, abs=1)
    assert np.allclose(lufs, integrated_lufs(a), atol=0.05)


def test_band_levels_tell_dark_from_bright():
    sr = 44100
    low = Audio(sine(100.0, 3.0, sr, 0.3) + noise(3.0, sr, 0.001), sr)
    high = Audio(sine(8000.0, 3.0, sr, 0.3) + noise(3.0, sr, 0.001), sr)
    bl, bh = plots.band_levels_db(low), plots.band_levels_db(high)
    labels = [b[0] for b in plots.BANDS]
    assert bl[labels.index("bass")] > -0.5 and bh[labels.index("air")] > -0.5
    assert bl[labels.index("air")] < -30 and bh[labels.index("bass")] < -30
    # shares add up to the total
    assert sum(10 ** (v / 10) for v in bl) == pytest.approx(1.0, rel=0.02)
    assert sum(10 ** (v / 10) for v in plots.band_levels_flat()) == pytest.approx(1.0, rel=1e-6)


def test_pictures_render(tmp_path):
    sr = 22050
    before = Audio(sine(440.0, 4.0, sr, 0.1, 2) + noise(4.0, sr, 0.01, 2), sr)
    after = before.with_samples(before.samples * 3.0)
    for fig in (
        plots.waveform_figure(before, after),
        plots.spectrogram_figure(before, after),
        plots.loudness_figure(before, after, -14.0),
        plots.tonal_balance_figure(before, after, genre="pop"),
    ):
        out = tmp_path / "f.png"
        fig.savefig(out)
        assert out.stat().st_size > 5_000
    t, lo, hi = plots.envelope(after)
    mono = after.samples.mean(axis=0)
    assert hi.max() == pytest.approx(float(mono.max()), rel=1e-6) and lo.min() == pytest.approx(
        float(mono.min()), rel=1e-6
    )
    assert math.isfinite(t[-1]) and t[-1] <= after.duration_s


def test_genre_target_is_the_presets_tilt_and_matches_measured_pink_noise():
    # the presets' tilt is a power-density slope: pink noise (equal energy per octave) is -3 dB/octave
    assert plots.tilt_band_levels(-3.0103) == pytest.approx(plots.band_levels_flat(), abs=0.1)
    sr, n = 48000, 48000 * 8
    spec = np.fft.rfft(np.random.default_rng(1).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n).astype(np.float32)
    measured = plots.band_levels_db(Audio(0.1 * pink[None, :] / np.abs(pink).max(), sr))
    assert measured == pytest.approx(plots.tilt_band_levels(-3.0103), abs=1.0)
    pop = plots.genre_target("pop")
    if pop is not None:  # tools/presets/pop.toml present: a darker-than-pink tilt puts more in the bass
        assert len(pop) == len(plots.BANDS) and pop[1] > plots.band_levels_flat()[1]
    assert plots.genre_target("no-such-genre") is None


def test_spectrogram_reads_a_full_scale_sine_at_0_dbfs():
    sr = 48000
    t, f, s = plots.spectrogram_db(Audio(sine(1000.0, 2.0, sr, 1.0), sr))
    col = s[:, s.shape[1] // 2]
    assert f[int(np.argmax(col))] == pytest.approx(1000.0, abs=sr / 2048)
    assert col.max() == pytest.approx(0.0, abs=1.5)  # Hann scalloping at most ~1.4 dB


def test_sign_in_checks_the_api_users_table(tmp_path):
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("pwdlib")
    import asyncio
    import inspect

    from app.ui.auth import SignIn
    from memory import db
    from memory.migrate import upgrade

    url = db.default_database_url(tmp_path)
    upgrade(url)

    async def add_user():
        from app.api.security import hash_password

        engine = db.make_engine(url)
        async with db.make_sessionmaker(engine)() as s:
            user = await db.create_user(
                s, email="Ana@Example.com", password_hash=hash_password("correct horse")
            )
            await s.commit()
            uid = user.id
        await engine.dispose()
        return uid

    try:
        uid = asyncio.run(add_user())
    except ImportError as exc:
        pytest.skip(f"API password hashing not installed: {exc}")
    signin = SignIn(url)
    assert inspect.iscoroutinefunction(signin.check)  # what Gradio tests before awaiting it
    assert asyncio.run(signin.check("ana@example.com", "correct horse")) is True
    assert signin.user_id("ana@example.com") == uid
    assert asyncio.run(signin.check("ana@example.com", "wrong")) is False
    assert asyncio.run(signin.check("nobody@example.com", "correct horse")) is False
    assert SignIn(url).user_id("ANA@example.com") == uid  # after a restart: looked up again
    assert signin.user_id("nobody@example.com") is None


# ------------------------------------------------------------------------------ answers and the suggestion button


def test_answer_markdown_quotes_the_answer_then_the_check_and_unquoted_findings():
    md = view.answer_markdown(
        "It plays at −9.2 LUFS: Spotify will turn it down 4.8 dB.",
        checks={
            "platform": "spotify",
            "ready": False,
            "reasons": ["true peak +1.0 dBTP is over the −1 dBTP ceiling"],
        },
        findings=[
            {
                "problem": "true_peak",
                "severity": 0.8,
                "evidence": "true peak +1.0 dBTP is over the −1 dBTP ceiling",
            },
            {"problem": "over_compressed", "severity": 0.4, "evidence": "PLR 7.1 dB"},
        ],
    )
    assert md.startswith("It plays at −9.2 LUFS") and "**Spotify check: fail** (not ready yet)" in md
    assert md.count("+1.0 dBTP") == 1  # quoted by the check: not repeated as a finding
    assert "**over compressed** (0.4): PLR 7.1 dB" in md
    quoted = view.answer_markdown(
        "Not yet: loudness −9.0 LUFS is 5.0 dB above Spotify's −14 LUFS.",
        checks={
            "platform": "spotify",
            "ready": False,
            "reasons": ["loudness −9.0 LUFS is 5.0 dB above Spotify's −14 LUFS"],
        },
    )
    assert quoted.count("5.0 dB above") == 1 and "**Spotify check: fail**" in quoted  # reasons said once
    ok = view.check_markdown({"platform": "apple_music", "ready": True, "reasons": []})
    assert ok == "**Apple Music check: pass** (ready)"
    assert view.answer_markdown(None, fallback="Nothing to do: it is clean.") == "Nothing to do: it is clean."


def test_suggestion_label_names_the_steps_and_the_platform():
    assert (
        view.suggestion_label([{"tool": "master", "params": {"target_lufs": -14.0}}], {"platform": "spotify"})
        == "Do it: master for Spotify"
    )
    steps = [
        {"tool": "declip"},
        {"tool": "de_ess", "target": "vocals"},
        {"tool": "master"},
        {"tool": "master"},
    ]
    assert view.suggestion_label(steps) == "Do it: declip, de ess (vocals) and master"
    assert view.suggestion_label([]) == ""


@pytest.fixture
def ui_svc(tmp_path):
    from agents.service import Mixpilot

    with Mixpilot(data_dir=tmp_path / "data") as svc:
        yield svc


def _panel(y: tuple, name: str):
    from app.ui.app import PANELS

    return dict(zip(PANELS, y, strict=True))[name]


def _last(yields: list, name: str):
    """The last value a run of yields gave panel `name` (gr.skip() leaves it as it was)."""
    values = [_panel(y, name) for y in yields if _panel(y, name) != {"__type__": "update"}]
    return values[-1] if values else None


def _button(yields: list) -> dict:
    """The suggestion button's state after a run of yields: the last update that set it (gr.skip() keeps it)."""
    sets = [_panel(y, "suggest") for y in yields if "visible" in _panel(y, "suggest")]
    return sets[-1] if sets else {}


def test_an_answer_shows_its_numbers_and_a_button_that_confirms_on_the_same_thread(ui_svc, tmp_path):
    pytest.importorskip("gradio")
    from agents.service import TurnResult
    from app.ui.app import CONFIRM, UI
    from tools.audio import save

    song = tmp_path / "song.wav"
    save(Audio(sine(440.0, 2.0, 22050, 0.3, 2), 22050), song)
    ui = UI(ui_svc, work_dir=tmp_path / "ui", user_id="local")
    up = ui.on_upload(str(song), None, [], None)
    history, st, suggest = _panel(up, "chat"), _panel(up, "state"), _panel(up, "suggest")
    assert suggest.get("visible") is False
    aid = st["current_id"]
    seen: list[tuple[str, str, str | None]] = []
    master = {
        "tool": "master",
        "params": {"target_lufs": -14.0, "true_peak_dbtp": -1.0},
        "target": "mix",
        "reason": "Spotify plays at −14 LUFS",
    }

    def turn(text, *, thread_id=None, audio_id=None, inputs=None, on_event=None, user_id=None, **_):
        seen.append((text, thread_id, audio_id))
        if text != CONFIRM:
            on_event({"event": "stage", "stage": "plan"})
            on_event({"event": "plan", "plan": {"steps": [], "source": "semantic"}})
            return TurnResult(
                thread_id=thread_id,
                kind="answer",
                output_id=aid,
                plan={"steps": []},
                steps=[],
                metrics_before={},
                metrics_after={},
                explanation="",
                answer="It plays at −13.1 LUFS integrated, true peak −0.4 dBTP: Spotify will leave "
                "its level alone, but the peak is over the −1 dBTP ceiling.",
                findings=[{"problem": "true_peak", "severity": 0.5, "evidence": "true peak −0.4 dBTP"}],
                suggested_steps=[master],
                checks={"platform": "spotify", "ready": False, "reasons": ["true peak −0.4 dBTP > −1"]},
            )
        out = ui_svc.import_audio(Audio(sine(440.0, 2.0, 22050, 0.5, 2), 22050))
        plan = {"steps": [master], "source": "semantic"}
        on_event({"event": "plan", "plan": plan})
        return TurnResult(
            thread_id=thread_id,
            kind="process",
            output_id=out,
            plan=plan,
            steps=[dict(master, status="applied")],
            metrics_before=ui_svc.analysis(aid),
            metrics_after=ui_svc.analysis(out),
            explanation="Mastered to −14.0 LUFS for Spotify.",
        )

    ui_svc.turn = turn
    outs = list(ui.on_send("is it ready for Spotify?", history, st))
    history = _last(outs, "chat")
    answer = history[-1]["content"]
    assert "−13.1 LUFS" in answer and "Spotify check: fail" in answer
    assert not any(
        "I don't see anything to change" in str(m["content"]) for m in history
    )  # no empty plan line
    assert _button(outs[:1]).get("visible") is False  # hidden while the turn runs
    button = _button(outs)
    assert button.get("visible") is True and button.get("value") == "Do it: master for Spotify"

    outs = list(ui.on_suggest(history, st))
    history = _last(outs, "chat")
    assert seen[1][0] == CONFIRM and seen[1][1] == seen[0][1]  # same thread
    assert seen[0][2] == aid and seen[1][2] is None  # the upload went with the first turn only
    assert any("**master**" in str(m["content"]) for m in history)
    assert "Mastered to −14.0 LUFS" in history[-1]["content"]
    assert st["current_id"] != aid and _button(outs).get("visible") is False
    after = [_panel(o, "after") for o in outs if isinstance(_panel(o, "after"), str)]
    # the louder master is played attenuated to the original's loudness (fair listening, the default)
    assert after and Path(after[-1]).name.startswith(st["current_id"])


def test_stems_button_offers_the_services_stems_as_wavs(ui_svc, tmp_path):
    pytest.importorskip("gradio")
    import soundfile as sf

    from app.ui.app import UI
    from tools.audio import save

    ui = UI(ui_svc, work_dir=tmp_path / "ui", user_id="local")
    if not ui.stems_available():
        pytest.skip("separate unavailable here")
    song = tmp_path / "song.wav"
    save(Audio(sine(220.0, 2.0, 22050, 0.3, 2) + noise(2.0, 22050, 0.01, 2), 22050), song)
    up = ui.on_upload(str(song), None, [], None)
    history, files = ui.on_stems(_panel(up, "chat"), _panel(up, "state"))
    assert sorted(p.rsplit("/", 1)[-1] for p in files) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    info = sf.info(files[0])
    assert info.samplerate == 22050 and info.channels == 2 and info.subtype == "PCM_24"


def test_browser_storage_key_is_derived_from_the_jwt_secret_never_the_secret_itself():
    pytest.importorskip("gradio")
    from pydantic import SecretStr

    from app.settings import Settings
    from app.ui.app import browser_storage_secret

    assert browser_storage_secret(Settings()) is None  # a random key per start
    secret = "k" * 48
    key = browser_storage_secret(Settings(jwt_secret=SecretStr(secret)))
    assert key and secret not in key and key == browser_storage_secret(Settings(jwt_secret=SecretStr(secret)))


def test_match_note_says_which_player_is_attenuated_and_by_how_much():
    assert view.match_note(-4.2, matched=True) == "After played 4.2 dB quieter to match loudness."
    assert view.match_note(3.0, matched=True) == "Before played 3.0 dB quieter to match loudness."
    assert "off: after is 4.2 dB louder" in view.match_note(-4.2, matched=False)
    assert "equally loud" in view.match_note(0.01, matched=True)


def test_players_are_loudness_matched_by_default_and_the_toggle_plays_them_as_rendered(ui_svc, tmp_path):
    """A real turn ("master it for spotify" raises a quiet song by ~10 dB): the After player is the master
    attenuated to the original's integrated loudness, the gain is shown; off, the files are as rendered."""
    pytest.importorskip("gradio")
    from app.ui.app import UI
    from tools.audio import load, save

    song = tmp_path / "song.wav"
    x = sum(sine(f, 6.0, 22050, 0.03, 2) for f in (220.0, 330.0)) + noise(6.0, 22050, 0.003, 2, seed=1)
    save(Audio(x.astype(np.float32), 22050), song)
    ui = UI(ui_svc, work_dir=tmp_path / "ui", user_id="local")
    up = ui.on_upload(str(song), None, [], None)
    outs = list(ui.on_send("master it for spotify", _panel(up, "chat"), _panel(up, "state")))
    st = _last(outs, "state")
    before, after, note = _last(outs, "before"), _last(outs, "after"), _last(outs, "match_note")
    lb, la = integrated_lufs(load(before)), integrated_lufs(load(after))
    assert abs(la - lb) < 0.3, (lb, la)  # played at equal loudness
    gain = (
        ui_svc.analysis(st["current_id"])["integrated_lufs"]
        - ui_svc.analysis(st["original_id"])["integrated_lufs"]
    )
    assert gain > 5.0 and note == f"After played {gain:.1f} dB quieter to match loudness."
    off = ui.on_match(False, st)
    assert _panel(off, "after").endswith(f"{st['current_id']}.wav")
    assert integrated_lufs(load(_panel(off, "after"))) - lb == pytest.approx(gain, abs=0.3)
    assert "Loudness matching is off" in _panel(off, "match_note")
    on = ui.on_match(True, st)
    assert _panel(on, "after") == after


def test_a_first_turn_on_a_long_recording_plays_the_preview_first_and_stop_ends_the_turn(ui_svc, tmp_path):
    pytest.importorskip("gradio")
    from app.ui.app import UI
    from tests.test_preview import song as long_song
    from tools.audio import load, save

    path = tmp_path / "long.wav"
    save(long_song(), path)
    ui = UI(ui_svc, work_dir=tmp_path / "ui", user_id="local")
    up = ui.on_upload(str(path), None, [], None)
    st = _panel(up, "state")
    outs = []
    sending = ui.on_send("master it for spotify", _panel(up, "chat"), st)
    for out in sending:
        outs.append(out)
        if isinstance(_panel(out, "preview_audio"), str):
            break
    assert outs, "no update"
    preview = _panel(outs[-1], "preview_audio")
    assert isinstance(preview, str) and load(preview).duration_s == pytest.approx(15.0, abs=0.01)
    assert "loudest 15 s" in _panel(outs[-1], "preview_note")
    assert not any(isinstance(_panel(o, "after"), str) for o in outs)  # the preview comes before the result
    assert _last(outs, "stop").get("visible") is True
    # the preview is matched to the original excerpt's loudness
    excerpt = ui_svc.audio(st["pending_audio"])
    start = int(st["preview"]["start_s"] * excerpt.sample_rate)
    part = excerpt.with_samples(excerpt.samples[:, start : start + 15 * excerpt.sample_rate])
    assert integrated_lufs(load(preview)) == pytest.approx(integrated_lufs(part), abs=0.3)
    ui.on_stop(st)  # heard enough: change course
    rest = list(sending)
    assert "Stopped" in _last(rest, "chat")[-1]["content"]
    assert not any(isinstance(_panel(o, "after"), str) for o in rest)  # no full render shown
    assert st["current_id"] == st["original_id"] and _last(rest, "stop").get("visible") is False
    # a new course on the same conversation runs in full
    outs = list(ui.on_send("master it for apple music", _last(rest, "chat"), st))
    assert isinstance(_last(outs, "after"), str) and st["current_id"] != st["original_id"]
