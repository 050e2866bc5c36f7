"""`mixpilot models`: pull from a local mirror (Demucs over HTTP, Vocos through huggingface_hub), resume,
checksum refusal, offline, verify, and the tools becoming available and running on real audio.

The mirror (tests/modelmirror.py) serves tiny randomly initialised checkpoints of the published formats
(a demucs ``.th`` package of an HTDemucs; a Vocos ``config.yaml`` + ``pytorch_model.bin``) from a temp
folder over Python's http.server; the catalogue is pointed at their checksums exactly as the real one
is at the published ones.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("demucs")
pytest.importorskip("huggingface_hub")

from modelmirror import DEMUCS_SIG, VOCOS_COMMIT, MirrorServer, build_mirror, closed_port_url

from models.weights import ModelLoadingError, WeightSources
from tools.audio import Audio


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    m = build_mirror(tmp_path_factory.mktemp("mirror") / "root")
    server = MirrorServer(m.root).start()
    yield m, server
    server.stop()


@pytest.fixture()
def repo(mirror, tmp_path, monkeypatch):
    """Sources as a surface installs them: a fresh models dir, the mirror, no upstream caches."""
    m, server = mirror
    server.requests.clear()
    r = WeightSources(models_dir=tmp_path / "models", mirror=server.url, cards=m.cards())
    monkeypatch.setattr("models.weights._SOURCES", r)
    import tools.separate
    import tools.vocoder_enhance

    tools.separate._DEMUCS_MODELS.clear()
    tools.vocoder_enhance._MODEL_CACHE.clear()
    yield r
    tools.separate._DEMUCS_MODELS.clear()
    tools.vocoder_enhance._MODEL_CACHE.clear()


def _voice(seconds: float = 1.5) -> Audio:
    """A real recording when ../shared/fixtures is here, else a sung-like glide."""
    from tests.conftest import shared_fixtures_dir
    from tools.audio import load

    f = shared_fixtures_dir() / "speech" / "cmu_arctic_us_aew_a0001.wav"
    if f.is_file():
        a = load(f)
        return a.with_samples(a.samples[:, : int(seconds * a.sample_rate)])
    sr = 24000
    t = np.arange(int(seconds * sr)) / sr
    ph = 2 * np.pi * np.cumsum(220 * 2 ** (0.2 * np.sin(2 * np.pi * t))) / sr
    return Audio((sum(0.1 / h * np.sin(h * ph) for h in range(1, 10)))[None].astype(np.float32), sr)


def _music(seconds: float = 1.5) -> Audio:
    from tests.conftest import shared_fixtures_dir
    from tools.audio import load

    f = shared_fixtures_dir() / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac"
    if f.is_file():
        a = load(f)
        start = int(10 * a.sample_rate)
        return a.with_samples(a.samples[:, start : start + int(seconds * a.sample_rate)])
    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 55 * t) + 0.1 * np.sin(2 * np.pi * 440 * t)
    return Audio(np.stack([x, x]).astype(np.float32), sr)


# ---------------------------------------------------------------------------- pull → the tools change


def test_pull_makes_the_tools_available_and_they_run(repo, mirror):
    from tools.registry import Registry

    reg = Registry()
    # before: the fallback separates and says how to get Demucs; the vocoder is unavailable and says how
    before = reg["separate"](_music())
    assert before.report["engine"] == "dsp"
    assert "mixpilot models pull htdemucs" in " ".join(before.warnings)
    ok, why = reg["vocoder_enhance"].availability()
    assert not ok and "`mixpilot models pull vocos`" in why
    assert not repo.has_model("htdemucs") and not repo.has_model("vocos")

    from models.hub import pull

    for name in ("htdemucs", "vocos"):
        state = pull(repo, name, progress=False)
        assert state.installed and state.path is not None and repo.models_dir in state.path.parents
    assert repo.has_model("htdemucs") and repo.has_model("vocos")
    assert not (repo.models_dir / ".partial" / "htdemucs").exists()  # staging cleaned up

    music = _music()
    res = reg["separate"](music)
    assert res.report["engine"] == "demucs" and res.report["model"] == "htdemucs" and not res.warnings
    total = sum(res.extra[k].samples.astype(np.float64) for k in ("vocals", "drums", "bass", "other"))
    err_db = 20 * np.log10(np.max(np.abs(total - music.samples)) / np.max(np.abs(music.samples)) + 1e-12)
    assert err_db < -60  # the stems sum back to the input

    assert reg["vocoder_enhance"].availability() == (True, "")
    voice = _voice()
    out = reg["vocoder_enhance"](voice, {"amount": 1.0})
    assert out.audio.samples.shape == voice.samples.shape and np.isfinite(out.audio.samples).all()
    assert str(repo.models_dir) in out.report["weights"]
    # Vocos came through huggingface_hub at the pinned revision
    paths = [p for _, p, _ in mirror[1].requests]
    assert any(f"/charactr/vocos-mel-24khz/resolve/{VOCOS_COMMIT}/pytorch_model.bin" in p for p in paths)
    assert any(f"/demucs/hybrid_transformer/{DEMUCS_SIG}-" in p for p in paths)


def test_pull_again_is_a_no_op_and_verify_passes(repo, mirror):
    from models.hub import pull

    pull(repo, "htdemucs", progress=False)
    n = len(mirror[1].requests)
    pull(repo, "htdemucs", progress=False)
    assert len(mirror[1].requests) == n  # nothing fetched
    assert repo.verify("htdemucs").detail == "verified"
    assert (repo.models_dir / "demucs" / "htdemucs.yaml").is_file()


# ---------------------------------------------------------------------------- failures


def test_resume_after_an_interrupted_transfer(repo, mirror):
    from models.hub import pull

    m, server = mirror
    url_path = f"/demucs/hybrid_transformer/{m.demucs_file.name}"
    size = m.demucs_file.stat().st_size
    server.cut(url_path, size // 3)
    with pytest.raises(ModelLoadingError, match="interrupted.*run the same command again to resume") as e:
        pull(repo, "htdemucs", progress=False)
    assert "\n" not in str(e.value)
    assert not repo.has_model("htdemucs") and not list((repo.models_dir / "demucs").glob("*.th"))
    part = repo.models_dir / ".partial" / "htdemucs" / (m.demucs_file.name + ".part")
    assert 0 < part.stat().st_size < size

    server.requests.clear()
    pull(repo, "htdemucs", progress=False)
    gets = [(p, r) for meth, p, r in server.requests if meth == "GET" and p == url_path]
    assert gets == [(url_path, f"bytes={size // 3}-")]  # only the rest was fetched
    assert repo.verify("htdemucs").installed


def test_checksum_mismatch_is_refused_and_nothing_installed(mirror, tmp_path, monkeypatch):
    from models.hub import pull

    m, server = mirror
    # the remote list names a checksum the served file does not have
    bad_remote = tmp_path / "remote"
    bad_remote.mkdir()
    wrong = m.demucs_file.name.replace(m.demucs_file.stem.rsplit("-", 1)[1], "00000000")
    (m.root / "demucs" / "hybrid_transformer" / wrong).write_bytes(m.demucs_file.read_bytes())
    (bad_remote / "files.txt").write_text(f"root: hybrid_transformer/\n{wrong}\n")
    (bad_remote / "htdemucs.yaml").write_text(f"models: ['{DEMUCS_SIG}']\n")
    from models.weights import default_cards

    cards = default_cards(
        demucs_remote=bad_remote, vocos_revision=VOCOS_COMMIT, vocos_sha256={"pytorch_model.bin": "ab" * 32}
    )
    repo = WeightSources(models_dir=tmp_path / "models", mirror=server.url, cards=cards)
    for name in ("htdemucs", "vocos"):
        with pytest.raises(ModelLoadingError, match="checksum mismatch, refused.*nothing was installed") as e:
            pull(repo, name, progress=False)
        assert "\n" not in str(e.value)
        assert not repo.has_model(name)
    assert not (repo.models_dir / "demucs").exists() and not (repo.models_dir / "vocos-mel-24khz").exists()


def test_offline_is_one_clear_line(tmp_path):
    from models.hub import pull

    repo = WeightSources(models_dir=tmp_path / "models", mirror=closed_port_url())
    for name in ("htdemucs", "vocos"):
        with pytest.raises(ModelLoadingError, match="cannot reach 127.0.0.1.*MIXPILOT_MODEL_MIRROR") as e:
            pull(repo, name, progress=False)
        assert "\n" not in str(e.value)
    assert not repo.has_model("htdemucs") and not repo.has_model("vocos")


def test_verify_catches_a_corrupted_install(repo):
    from models.hub import pull

    pull(repo, "htdemucs", progress=False)
    f = next((repo.models_dir / "demucs").glob(f"{DEMUCS_SIG}-*.th"))
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelLoadingError, match="corrupt.*mixpilot models pull htdemucs"):
        repo.verify("htdemucs")
    pull(repo, "htdemucs", progress=False)  # a pull replaces what no longer matches
    assert repo.verify("htdemucs").detail == "verified"


def test_progress_bar_is_shown(repo, capsys):
    from models.hub import pull

    pull(repo, "htdemucs", progress=True)
    err = capsys.readouterr().err
    assert DEMUCS_SIG in err and "100%" in err


def test_hf_endpoint_is_honoured_without_a_mirror(mirror, tmp_path):
    """No MIXPILOT_MODEL_MIRROR: Vocos comes from HF_ENDPOINT (read by huggingface_hub at import, so in a
    fresh process). The real catalogue pins the published sha256, so the mirror's tiny file is refused."""
    import os
    import subprocess
    import sys

    m, server = mirror
    server.requests.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPILOT_", "HF_"))}
    env.update(
        HF_ENDPOINT=server.url, MIXPILOT_DATA_DIR=str(tmp_path / "data"), HF_HUB_CACHE=str(tmp_path / "hf")
    )
    p = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "pull", "vocos", "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and p.stderr.count("\n") <= 2, p.stderr  # the "from" line, then the error
    assert "checksum mismatch, refused" in p.stderr and "nothing was installed" in p.stderr
    # huggingface_hub asked for the pinned commit, not a branch
    gets = [path for meth, path, _ in server.requests if meth == "GET" and "/resolve/" in path]
    assert gets and all(f"/charactr/vocos-mel-24khz/resolve/{VOCOS_COMMIT}/" in p for p in gets), gets
    assert not (tmp_path / "data" / "models" / "vocos-mel-24khz").exists()


def test_vocos_is_pinned_by_commit_and_content():
    """The catalogue names a commit (not a branch) and a full sha256 for each file; the published config
    hashes to its pin and describes the network models/vocos.py builds, at the published weights' size."""
    import hashlib
    import re

    import yaml
    from modelmirror import PUBLISHED_VOCOS_CONFIG

    from models.vocos import Vocos
    from models.weights import VOCOS_FILES, VOCOS_REVISION, VOCOS_SHA256, default_cards

    assert re.fullmatch(r"[0-9a-f]{40}", VOCOS_REVISION)
    card = default_cards()["vocos"]
    assert {rf.name: rf.revision for rf in card.files} == dict.fromkeys(VOCOS_FILES, VOCOS_REVISION)
    assert all(rf.sha256 and re.fullmatch(r"[0-9a-f]{64}", rf.sha256) for rf in card.files)
    assert VOCOS_REVISION in card.source
    published = PUBLISHED_VOCOS_CONFIG.encode()
    assert len(published) == 461 and hashlib.sha256(published).hexdigest() == VOCOS_SHA256["config.yaml"]
    net = Vocos.from_config(yaml.safe_load(PUBLISHED_VOCOS_CONFIG))
    n_bytes = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    assert abs(n_bytes / 1e6 - card.size_mb) / card.size_mb < 0.01  # 54,365,991 bytes published


def _pull_process(mirror, tmp_path, *args: str, err_name: str):
    """``mixpilot models pull ARGS`` in another process, on the models dir ``tmp_path/models``, from the
    mirror (its catalogue at the mirror's checksums); stderr to ``tmp_path/err_name``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    m, server = mirror
    repo_root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIXPILOT_", "HF_"))}
    env.update(
        PYTHONPATH=str(repo_root),
        MIXPILOT_DATA_DIR=str(tmp_path / "data"),
        MIXPILOT_MODELS_DIR=str(tmp_path / "models"),
        MIXPILOT_MODEL_MIRROR=server.url,
        HF_HUB_CACHE=str(tmp_path / "hf"),
        TORCH_HOME=str(tmp_path / "torch"),
    )
    cmd = [sys.executable, "-m", "tests.modelmirror", str(m.root), str(m.remote), "models", "pull", *args]
    with open(tmp_path / err_name, "w") as err:
        return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)


def _wait_for(check, timeout_s: float = 120.0) -> None:
    import time

    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s:g} s")
        time.sleep(0.1)


def test_two_pulls_at_once_install_once(mirror, tmp_path):
    """A second `mixpilot models pull htdemucs` while the first is still downloading says so and waits
    (fetching nothing), then finds the model installed; with --no-wait it stops at once with one line."""
    m, server = mirror
    server.requests.clear()
    url_path = f"/demucs/hybrid_transformer/{m.demucs_file.name}"
    release = server.hold(url_path)  # the first pull's transfer stays in progress until released
    procs = []
    try:
        first = _pull_process(mirror, tmp_path, "htdemucs", "--quiet", err_name="first.err")
        procs.append(first)
        _wait_for(lambda: any(meth == "GET" and p == url_path for meth, p, _ in server.requests))
        second = _pull_process(mirror, tmp_path, "htdemucs", "--quiet", err_name="second.err")
        procs.append(second)
        _wait_for(lambda: "waiting for it to finish" in (tmp_path / "second.err").read_text())
        third = _pull_process(mirror, tmp_path, "htdemucs", "--quiet", "--no-wait", err_name="third.err")
        procs.append(third)
        assert third.wait(120) == 2
        err = (tmp_path / "third.err").read_text().strip().splitlines()
        assert err[-1].startswith("mixpilot: error: another `mixpilot models pull htdemucs` is running"), err
        assert first.poll() is None and second.poll() is None  # both still there: one fetching, one waiting
        release.set()
        assert first.wait(120) == 0, (tmp_path / "first.err").read_text()
        assert second.wait(120) == 0, (tmp_path / "second.err").read_text()
    finally:
        release.set()
        server.holds.clear()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    gets = [p for meth, p, _ in server.requests if meth == "GET" and p == url_path]
    assert len(gets) == 1  # the second pull fetched nothing
    assert "already installed" in (tmp_path / "second.err").read_text()
    assert (
        "htdemucs: installed in" in first.stdout.read() and "htdemucs: installed in" in second.stdout.read()
    )
    repo = WeightSources(models_dir=tmp_path / "models", cards=m.cards())
    assert repo.verify("htdemucs").detail == "verified"
    assert not (tmp_path / "models" / ".partial" / "htdemucs").exists()


# ---------------------------------------------------------------------------- the CLI and settings


def _cli(argv, capsys):
    from app.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture()
def cli_env(mirror, tmp_path, monkeypatch):
    """The CLI's settings from the environment, as a user sets them; the catalogue at the mirror's files."""
    m, server = mirror
    monkeypatch.setenv("MIXPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MIXPILOT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MIXPILOT_MODEL_MIRROR", server.url)
    for var in ("MIXPILOT_DEMUCS_DIR", "MIXPILOT_VOCOS_DIR", "MIXPILOT_DEMUCS_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    cards = m.cards()
    monkeypatch.setattr("models.weights.default_cards", lambda **kw: cards)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("COLUMNS", "400")  # the tools table on one line per row
    import models.weights

    monkeypatch.setattr(models.weights, "_SOURCES", models.weights._SOURCES)  # restored after the test
    return tmp_path


def test_cli_list_pull_all_verify(cli_env, mirror, capsys):
    rc, out, _ = _cli(["models", "list", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)}
    assert rc == 0 and set(rows) == {"htdemucs", "vocos"}  # the mirror's list has no htdemucs_ft
    assert (
        rows["htdemucs"]["installed"] is False and rows["htdemucs"]["pull"] == "mixpilot models pull htdemucs"
    )
    assert rows["vocos"]["source"].startswith(mirror[1].url) and VOCOS_COMMIT in rows["vocos"]["source"]
    assert (
        rows["htdemucs"]["licence"]
        and rows["htdemucs"]["size_mb"] > 0
        and "separate" in rows["htdemucs"]["enables"]
    )

    assert "9.0 dB" in rows["htdemucs"]["gain"]  # what it would gain over the fallback
    rc, text, _ = _cli(["models", "list"], capsys)
    assert rc == 0 and "not installed: mixpilot models pull htdemucs" in text and "gains    HT-Demucs" in text
    rc, tools_out, _ = _cli(["tools"], capsys)
    assert rc == 0 and "fallback only: htdemucs not installed (`mixpilot models pull htdemucs`" in tools_out
    rc, tools_json, _ = _cli(["tools", "--json"], capsys)
    tools = {d["name"]: d for d in json.loads(tools_json)}
    assert tools["separate"]["available"] and tools["separate"]["models"][0]["installed"] is False
    assert (
        not tools["vocoder_enhance"]["available"]
        and "mixpilot models pull vocos" in tools["vocoder_enhance"]["reason"]
    )

    rc, out, err = _cli(["models", "pull", "all", "--quiet"], capsys)
    assert rc == 0, err
    assert "htdemucs: installed in" in out and "vocos: installed in" in out
    rc, out, _ = _cli(["models", "list", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["htdemucs"]["installed"] and str(cli_env / "models") in rows["htdemucs"]["path"]
    assert rows["vocos"]["installed"]
    rc, out, _ = _cli(["models", "verify"], capsys)
    assert rc == 0 and "htdemucs: ok" in out and "vocos: ok" in out
    rc, tools_json, _ = _cli(["tools", "--json"], capsys)
    tools = {d["name"]: d for d in json.loads(tools_json)}
    assert (
        tools["vocoder_enhance"]["available"] is True and tools["separate"]["models"][0]["installed"] is True
    )


def test_cli_offline_and_unknown_model_are_one_line(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("MIXPILOT_MODEL_MIRROR", closed_port_url())
    rc, _, err = _cli(["models", "pull", "vocos"], capsys)
    lines = err.strip().splitlines()  # what is being fetched, then the one-line error
    assert rc == 2 and len(lines) == 2 and lines[1].startswith("mixpilot: error: cannot reach 127.0.0.1")
    rc, _, err = _cli(["models", "pull", "nosuchmodel"], capsys)
    assert rc == 2 and err.startswith("mixpilot: error: unknown model 'nosuchmodel'") and err.count("\n") == 1


def test_settings_build_the_sources(tmp_path, monkeypatch):
    from app.settings import Settings

    monkeypatch.setenv("MIXPILOT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.delenv("MIXPILOT_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://unused")  # read by huggingface_hub, not by the settings
    s = Settings(_env_file=None)
    assert s.models_dir == tmp_path / "d" / "models" and s.weight_sources().models_dir == s.models_dir
    monkeypatch.setenv("MIXPILOT_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("MIXPILOT_MODEL_MIRROR", "http://mirror.example/weights")
    src = Settings(_env_file=None).weight_sources()
    assert src.models_dir == tmp_path / "m" and src.mirror == "http://mirror.example/weights"


def test_api_lists_models_read_only_and_ready_names_the_missing(mirror, tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("jwt")
    from fastapi.testclient import TestClient

    import models.weights
    from app.api.main import create_app
    from models.hub import pull
    from tests.apiclient import make_settings, register

    m, server = mirror
    cards = m.cards()
    monkeypatch.setattr(models.weights, "default_cards", lambda **kw: cards)
    monkeypatch.setattr(models.weights, "_SOURCES", models.weights._SOURCES)  # restored after the test
    settings = make_settings(
        tmp_path / "data", models_dir=tmp_path / "models", model_mirror=server.url, job_runner="thread"
    )
    pull(settings.weight_sources(), "htdemucs", progress=False)
    with TestClient(create_app(settings)) as api:
        assert api.get("/api/v1/models").status_code == 401
        h = register(api)
        r = api.get("/api/v1/models", headers=h)
        assert r.status_code == 200, r.text
        rows = {row["name"]: row for row in r.json()}
        assert rows["htdemucs"]["installed"] is True and rows["htdemucs"]["tool"] == "separate"
        assert (
            rows["vocos"]["installed"] is False and rows["vocos"]["install"] == "mixpilot models pull vocos"
        )
        assert "path" not in rows["htdemucs"]  # the server's folders are not the user's business
        assert (
            api.post("/api/v1/models", headers=h).status_code == 405
        )  # pulling is the operator's CLI action
        assert api.get("/health").json()["models"] == {"htdemucs": True, "vocos": False}
        detail = api.get("/ready").json()["checks"]["models"]["detail"]
        assert "not installed: vocos" in detail and "vocoder_enhance" in detail


def test_chat_says_how_to_get_demucs_then_uses_it(repo, tmp_path, monkeypatch):
    """ "extract the vocals" without Demucs: the fallback runs and the answer names the command and the gain;
    after the pull the same request runs Demucs and says nothing of a fallback."""
    pytest.importorskip("langgraph")
    monkeypatch.setenv("MIXPILOT_NO_EMBEDDER", "1")
    from agents.service import Mixpilot
    from models.hub import pull

    with Mixpilot(data_dir=tmp_path / "svc") as svc:
        aid = svc.import_audio(_music(2.0))
        before = svc.turn("extract the vocals", thread_id="a", audio_id=aid)
        step = next(s for s in before.steps if s["tool"] == "separate")
        assert step["status"] == "applied" and step["report"]["fallback"] is True
        assert "`mixpilot models pull htdemucs`" in before.explanation and "9.0 dB" in before.explanation
        pull(repo, "htdemucs", progress=False)
        after = svc.turn("extract the vocals", thread_id="b", audio_id=aid)
        step = next(s for s in after.steps if s["tool"] == "separate")
        assert step["report"]["engine"] == "demucs" and step["report"]["fallback"] is False
        assert "models pull" not in after.explanation


def test_weights_are_resolved_in_one_place():
    """Only app/settings.py reads the weight settings; models/weights.py resolves from what it is handed,
    and the tools ask it (no environment reads, no paths of their own)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for f in ("models/weights.py", "models/hub.py", "tools/separate.py", "tools/vocoder_enhance.py"):
        src = (repo / f).read_text()
        assert "os.environ" not in src and "getenv" not in src, f
    for f in ("tools/separate.py", "tools/vocoder_enhance.py"):
        src = (repo / f).read_text()
        assert (
            "models.weights" in src and ".th" not in src and "pytorch_model.bin" not in src.split('"""', 2)[2]
        ), f
