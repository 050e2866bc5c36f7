"""The chat UI's conversation on the real service (planner, tools, memory), without a browser: ratings bind
to the version heard, versions are named and pickable with one baseline, honest progress, a new
conversation clears every panel, and a page refresh restores the conversation (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import noise, sine
from tools.audio import Audio, save

pytest.importorskip("gradio")
pytest.importorskip("langgraph")

SKIP = {"__type__": "update"}


@pytest.fixture
def svc(tmp_path: Path):
    pytest.importorskip("sqlalchemy")
    from app.runtime import open_service
    from app.settings import Settings

    with open_service(Settings(data_dir=tmp_path / "data")) as s:
        if s.memory is None:
            pytest.skip("memory unavailable here")
        yield s


@pytest.fixture
def song(tmp_path: Path) -> str:
    sr = 22050
    x = sine(220.0, 3.0, sr, 0.2, 2) + sine(3000.0, 3.0, sr, 0.05, 2) + noise(3.0, sr, 0.01, 2)
    path = tmp_path / "song.wav"
    save(Audio(x, sr), path)
    return str(path)


def panels(y: tuple) -> dict[str, Any]:
    from app.ui.app import PANELS

    return dict(zip(PANELS, y, strict=True))


def plays(path: str | None, version_id: str) -> bool:
    """The player's file is that version (as rendered, or attenuated to match loudness: `UI.preview`)."""
    return bool(path) and Path(str(path)).name.startswith(version_id)


def last(yields: list[tuple], name: str) -> Any:
    values = [panels(y)[name] for y in yields if panels(y)[name] != SKIP]
    return values[-1] if values else None


class Chat:
    """Drives `UI` handlers the way the page does: one state dict, the chat history carried along."""

    def __init__(self, ui: Any, st: dict | None = None, history: list | None = None) -> None:
        self.ui, self.history = ui, history or []
        self.st: dict[str, Any] = st or {}
        self.yields: list[tuple] = []

    def apply(self, y: tuple) -> None:
        d = panels(y)
        if d["state"] != SKIP:
            self.st = d["state"]
        if d["chat"] != SKIP:
            self.history = d["chat"]

    def upload(self, path: str) -> tuple:
        y = self.ui.on_upload(path, None, self.history, self.st)
        self.apply(y)
        return y

    def send(self, text: str) -> list[tuple]:
        self.yields = list(self.ui.on_send(text, self.history, self.st))
        for y in self.yields:
            self.apply(y)
        return self.yields

    def rate(self, overall: int, comment: str = "") -> str:
        self.history, said = self.ui.on_rate(
            overall, None, None, None, None, None, comment, self.history, self.st
        )
        return said

    def names(self) -> list[str]:
        return [v["name"] for v in self.st["versions"]]


def ratings(svc: Any, version_id: str) -> int:
    found = svc.memory.find_turn(user_id=None, ref=version_id)
    return int(found["rating_count"]) if found else 0


def test_a_rating_lands_on_the_version_in_the_after_player(svc: Any, song: str, tmp_path: Path) -> None:
    from app.ui.app import UI

    c = Chat(UI(svc, work_dir=tmp_path / "ui", user_id="local"))
    c.upload(song)
    c.send("a bit brighter")
    brighter = c.st["current_id"]
    assert "brighter" in last(c.yields, "rate_label") and last(c.yields, "overall") is None  # form reset
    c.send("master it for Spotify")
    master = c.st["current_id"]
    assert master != brighter and c.names()[1:] == ["v1 brighter", "v2 master spotify"]
    c.send("undo")
    assert c.st["current_id"] == brighter and c.st["shown_id"] == brighter
    assert "v1 brighter" in last(c.yields, "rate_label")
    said = c.rate(4, "ui test: after undo")
    assert "v1 brighter" in said
    assert ratings(svc, brighter) == 1 and ratings(svc, master) == 0  # not the undone master

    # back to the original: nothing mixpilot made is playing, so nothing is rated (least of all "brighter")
    c.send("go back to the original")
    assert c.st["shown_id"] == c.st["original_id"]
    said = c.rate(5)
    assert "original" in said and ratings(svc, brighter) == 1 and ratings(svc, master) == 0


def test_versions_are_named_picked_compared_and_exported(svc: Any, song: str, tmp_path: Path) -> None:
    from app.ui.app import BASELINES, UI

    ui = UI(svc, work_dir=tmp_path / "ui", user_id="local")
    c = Chat(ui)
    c.upload(song)
    original = c.st["original_id"]
    c.send("a bit brighter")
    v1 = c.st["current_id"]
    c.send("master it for Spotify")
    v2 = c.st["current_id"]
    assert c.names() == ["original", "v1 brighter", "v2 master spotify"]
    picker = last(c.yields, "version")
    assert picker["value"] == v2 and [n for n, _ in picker["choices"]] == c.names()

    # one baseline (the previous version) for the Before player, the table and the plots
    assert plays(last(c.yields, "before"), v1) and plays(last(c.yields, "after"), v2)
    table = last(c.yields, "metrics")
    lufs = svc.analysis(v1)["integrated_lufs"]
    assert f'data-value="{float(lufs)!r}"' in table

    # the original on request: all three follow
    y = panels(ui.on_baseline(BASELINES[1], c.st))
    assert plays(y["before"], original) and plays(y["after"], v2)
    assert f'data-value="{float(svc.analysis(original)["integrated_lufs"])!r}"' in y["metrics"]
    ui.on_baseline(BASELINES[0], c.st)

    # pick v1: play it against its own previous version, rate it, export it under its name
    y = panels(ui.on_pick(v1, c.st))
    assert plays(y["after"], v1) and plays(y["before"], original)
    assert "v1 brighter" in y["rate_label"] and y["overall"] is None and y["download"] is None
    assert c.st["current_id"] == v2  # the conversation did not move
    _, path = ui.on_export("WAV 16-bit", c.history, c.st)
    assert Path(path).name == "mixpilot_v1-brighter_16bit.wav" and Path(path).read_bytes()[:4] == b"RIFF"
    assert "v1 brighter" in c.rate(3)
    assert ratings(svc, v1) == 1 and ratings(svc, v2) == 0


def test_done_only_with_the_audio_and_metrics_and_send_disabled_meanwhile(
    svc: Any, song: str, tmp_path: Path
) -> None:
    from app.ui.app import UI

    c = Chat(UI(svc, work_dir=tmp_path / "ui", user_id="local"))
    c.upload(song)
    ys = [panels(y) for y in c.send("a bit brighter")]
    assert ys[0]["send"]["interactive"] is False and ys[0]["send"]["value"] == "still working…"
    assert ys[-1]["send"]["interactive"] is True and ys[-1]["send"]["value"] == "Send"
    done = [y for y in ys if isinstance(y["progress"], str) and "Done." in y["progress"]]
    assert done, "no Done."
    first = done[0]
    assert isinstance(first["after"], str) and "mp-metrics-table" in first["metrics"]
    # Send stays disabled until that yield: no yield before it re-enables Send
    assert all(y["send"] == SKIP or y["send"]["interactive"] is False for y in ys[: ys.index(first) + 1])


def test_a_message_while_the_thread_is_busy_is_kept_not_run(svc: Any, song: str, tmp_path: Path) -> None:
    from app.ui import view
    from app.ui.app import UI

    ui = UI(svc, work_dir=tmp_path / "ui", user_id="local")
    c = Chat(ui)
    c.upload(song)
    ui._busy[c.st["thread_id"]] = view.ProgressBoard()  # a turn of this thread runs (another tab, say)
    ys = [panels(y) for y in ui.on_send("louder", c.history, c.st)]
    assert all(y["msg"] == SKIP and y["chat"] == SKIP for y in ys)  # the text stays in the box, nothing ran
    assert svc.history(c.st["thread_id"]) == []


def test_new_conversation_and_a_new_upload_clear_every_panel(svc: Any, song: str, tmp_path: Path) -> None:
    from app.ui.app import UI

    ui = UI(svc, work_dir=tmp_path / "ui", user_id="local")
    c = Chat(ui)
    c.upload(song)
    c.send("a bit brighter")
    ui.on_export("WAV 24-bit", c.history, c.st)
    old_thread = c.st["thread_id"]

    up = panels(c.upload(song))
    assert "Metrics appear here" in up["metrics"] and up["progress"] == "" and up["download"] is None
    assert up["overall"] is None and up["comment"] == "" and up["rated"] == ""
    assert [n for n, _ in up["version"]["choices"]] == ["original"]

    new = panels(ui.on_new(c.st))
    assert new["chat"] == [] and new["state"]["thread_id"] != old_thread
    assert "Metrics appear here" in new["metrics"] and new["progress"] == "" and new["download"] is None
    assert new["before"] is None and new["after"] is None and new["version"]["choices"] == []
    assert all(new[k] is None for k in ("wave", "spec", "loud", "tone", "song", "vocal", "stems_files"))
    assert new["overall"] is None and new["comment"] == "" and new["rated"] == ""
    assert "Nothing to rate" in new["rate_label"] and new["saved"]["thread_id"] == new["state"]["thread_id"]


def test_a_page_refresh_restores_the_conversation(svc: Any, song: str, tmp_path: Path) -> None:
    from app.ui.app import UI

    ui = UI(svc, work_dir=tmp_path / "ui", user_id="local")
    c = Chat(ui)
    up = panels(c.upload(song))
    saved = up["saved"]
    # refreshed before the first turn: the upload is still there
    y = panels(list(ui.on_load(saved))[-1])
    assert y["state"]["pending_audio"] == c.st["pending_audio"] and y["before"]
    c.send("a bit brighter")
    c.send("master it for Spotify")
    c.send("undo")

    fresh = UI(svc, work_dir=tmp_path / "ui", user_id="local")  # a reload (even a restarted server)
    y = panels(list(fresh.on_load(last(c.yields, "saved") or saved))[-1])
    st = y["state"]
    assert st["thread_id"] == c.st["thread_id"] and st["current_id"] == c.st["current_id"]
    assert [v["name"] for v in st["versions"]] == ["original", "v1 brighter", "v2 master spotify"]
    text = "\n".join(m["content"] for m in y["chat"])
    for said in ("a bit brighter", "master it for Spotify", "undo"):
        assert said in text
    assert plays(y["after"], st["current_id"]) and "mp-metrics-table" in y["metrics"]
    # and it goes on: the rating lands on the version restored in the After player
    r = Chat(fresh, st, y["chat"])
    assert "v1 brighter" in r.rate(4)
    assert ratings(svc, st["current_id"]) == 1


def test_a_refresh_while_the_turn_runs_follows_it_then_shows_the_result(
    svc: Any, song: str, tmp_path: Path
) -> None:
    import threading
    import time

    from app.ui import view
    from app.ui.app import UI

    ui = UI(svc, work_dir=tmp_path / "ui", user_id="local")
    c = Chat(ui)
    c.upload(song)
    c.send("a bit brighter")
    tid = c.st["thread_id"]
    board = view.ProgressBoard(stage="execute")
    ui._busy[tid] = board  # a turn of this thread still runs in the server
    threading.Timer(1.0, lambda: ui._busy.pop(tid, None)).start()
    t0 = time.monotonic()
    ys = [panels(y) for y in ui.on_load(last(c.yields, "saved"))]
    assert time.monotonic() - t0 >= 0.9  # it waited for the turn
    assert "Still working" in ys[0]["chat"][-1]["content"] and ys[0]["send"]["interactive"] is False
    assert any(isinstance(y["progress"], str) and "Running the plan" in y["progress"] for y in ys)
    end = ys[-1]
    assert "Done." in end["progress"] and end["send"]["interactive"] is True
    assert plays(end["after"], c.st["current_id"])

    # another account's browser storage restores nothing
    other = UI(svc, work_dir=tmp_path / "ui", user_id="someone-else")
    y = panels(list(other.on_load(last(c.yields, "saved")))[-1])
    assert y["state"]["thread_id"] != tid and y["chat"] == SKIP
