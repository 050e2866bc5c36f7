"""A typed client generated from the live schema (`openapi-python-client`) runs the whole flow.

An app developer's first step: read ``/openapi.json`` of a running server, generate a client, and
call it. This test does exactly that, then drives register → token → upload → chat → poll →
download → feedback → API key → paged list → client-credentials token → revoke through the generated
code only (no hand-written request).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("openapi_python_client")
pytest.importorskip("uvicorn")

import httpx
import soundfile as sf
import uvicorn

from app.api.main import create_app
from tests.apiclient import PASSWORD, SONG, make_settings

#: the audio types of downloads read as bytes (the generator knows `application/octet-stream` by name only)
GENERATOR_CONFIG = {
    "package_name_override": "mixpilot_client",
    "post_hooks": [],
    "content_type_overrides": {
        t: "application/octet-stream" for t in ("audio/wav", "audio/flac", "audio/mpeg")
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("codegen-data")
    port = _free_port()
    app = create_app(make_settings(data))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _openapi_python_client() -> list[str]:
    exe = Path(sys.executable).with_name("openapi-python-client")
    return [str(exe)] if exe.exists() else [shutil.which("openapi-python-client") or "openapi-python-client"]


@pytest.fixture(scope="module")
def client_pkg(live, tmp_path_factory):
    """The package generated from the server's ``/openapi.json``, imported."""
    out = tmp_path_factory.mktemp("codegen")
    schema = httpx.get(f"{live}/openapi.json", timeout=30).json()
    (out / "openapi.json").write_text(json.dumps(schema))
    (out / "config.json").write_text(json.dumps(GENERATOR_CONFIG))
    target = out / "mixpilot_client"
    proc = subprocess.run(
        [
            *_openapi_python_client(),
            "generate",
            "--path",
            str(out / "openapi.json"),
            "--config",
            str(out / "config.json"),
            "--output-path",
            str(target),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every operation and response generated: no "Cannot parse" / "will be omitted" warning
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("mixpilot_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "mixpilot_client" or m.startswith("mixpilot_client.")]:
            del sys.modules[name]


def test_schema_names_operations_for_generators(live):
    schema = httpx.get(f"{live}/openapi.json", timeout=30).json()
    ops = {
        op["operationId"]: (method, path)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert {
        "upload_file",
        "create_chat_job",
        "get_job",
        "download_file",
        "create_feedback",
        "create_token",
        "register",
        "stream_job_events",
    } <= set(ops)
    assert not [o for o in ops if "api_v1" in o], "an operation without an explicit operation_id"
    upload = schema["components"]["schemas"]["Body_upload_file"]["properties"]["file"]
    assert upload == {**upload, "type": "string", "format": "binary"} and "contentMediaType" not in upload
    download = schema["paths"]["/api/v1/files/{file_id}/download"]["get"]["responses"]["200"]["content"]
    assert download and all(c["schema"] == {"type": "string", "format": "binary"} for c in download.values())
    # one status enum, referenced wherever a job status appears
    assert schema["components"]["schemas"]["JobStatus"]["enum"] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]
    text = json.dumps(schema)
    assert text.count('"enum": ["queued", "running", "succeeded", "failed", "cancelled"]') == 1
    for name in ("JobOut", "ChatAccepted", "EnhancementOut"):
        assert (
            schema["components"]["schemas"][name]["properties"]["status"]
            .get("$ref", "")
            .endswith("/JobStatus")
        ), name


def test_generated_client_runs_the_whole_flow(live, client_pkg):
    from mixpilot_client.api.auth import create_token, get_me, register
    from mixpilot_client.api.chat import create_chat_job
    from mixpilot_client.api.feedback import create_feedback
    from mixpilot_client.api.files import download_file, upload_file
    from mixpilot_client.api.jobs import get_job
    from mixpilot_client.models import (
        BodyCreateToken,
        BodyUploadFile,
        ChatIn,
        DownloadFileFormat,
        FeedbackIn,
        JobStatus,
        RegisterIn,
    )
    from mixpilot_client.types import File

    anon = client_pkg.Client(base_url=live, timeout=httpx.Timeout(60))
    email = f"gen{uuid.uuid4().hex[:10]}@example.com"
    user = register.sync(client=anon, body=RegisterIn(email=email, password=PASSWORD))
    assert user.email == email, user
    tokens = create_token.sync(client=anon, body=BodyCreateToken(username=email, password=PASSWORD))
    assert tokens.access_token, tokens
    auth = client_pkg.AuthenticatedClient(base_url=live, token=tokens.access_token, timeout=httpx.Timeout(60))
    assert get_me.sync(client=auth).email == email

    with open(SONG, "rb") as f:
        up = upload_file.sync(
            client=auth,
            body=BodyUploadFile(file=File(payload=f, file_name=SONG.name, mime_type="audio/flac")),
        )
    assert up.id and up.sample_rate == 22050, up

    accepted = create_chat_job.sync(
        client=auth, body=ChatIn(message="master this for Spotify", file_ids=[up.id])
    )
    assert accepted.status == JobStatus.QUEUED, accepted
    deadline = time.monotonic() + 180
    while (job := get_job.sync(accepted.job_id, client=auth)).status not in (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    ):
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.2)
    assert job.status == JobStatus.SUCCEEDED, job.error
    result_id = job.result.file_id
    assert result_id and result_id != up.id

    audio = download_file.sync(result_id, client=auth, format_=DownloadFileFormat.FLAC, bit_depth=24)
    assert isinstance(audio, File), audio
    info = sf.info(io.BytesIO(audio.payload.read()))
    assert (
        info.format == "FLAC" and info.subtype == "PCM_24" and info.duration == pytest.approx(8.0, abs=0.05)
    )

    rated = create_feedback.sync(
        client=auth, body=FeedbackIn(job_id=accepted.job_id, rating=5, comment="great")
    )
    assert rated.ok, rated

    # server-to-server: an API key made, used (as a bearer token and traded for a token), listed, revoked
    from mixpilot_client.api.files import list_files
    from mixpilot_client.api.keys import create_api_key, list_api_keys, revoke_api_key
    from mixpilot_client.models import ApiKeyIn, ApiKeyInScopesItem, BodyCreateTokenGrantTypeType0
    from mixpilot_client.types import UNSET

    created = create_api_key.sync(
        client=auth, body=ApiKeyIn(name="ci", scopes=[ApiKeyInScopesItem.READ, ApiKeyInScopesItem.WRITE])
    )
    assert created.key.startswith("mp_live_"), created
    by_key = client_pkg.AuthenticatedClient(base_url=live, token=created.key, timeout=httpx.Timeout(60))
    assert get_me.sync(client=by_key).email == email
    # the files list a page at a time (the upload and the result)
    ids: list[str] = []
    cursor = UNSET
    for _ in range(5):
        page = list_files.sync(client=by_key, limit=1, cursor=cursor)
        assert page.total == 2 and len(page.items) == 1, page
        ids += [f.id for f in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert sorted(ids) == sorted({up.id, result_id})
    granted = create_token.sync(
        client=anon,
        body=BodyCreateToken(
            grant_type=BodyCreateTokenGrantTypeType0.CLIENT_CREDENTIALS,
            client_secret=created.key,
            scope="read",
        ),
    )
    assert granted.scope == "read", granted
    server = client_pkg.AuthenticatedClient(
        base_url=live, token=granted.access_token, timeout=httpx.Timeout(60)
    )
    assert list_files.sync(client=server).total == 2
    assert [k.id for k in list_api_keys.sync(client=auth).items] == [created.id]
    assert revoke_api_key.sync_detailed(created.id, client=auth).status_code == 204
    assert list_files.sync_detailed(client=by_key).status_code == 401
    assert list_files.sync_detailed(client=server).status_code == 401

    # webhooks: registered, paged like every list (`next_cursor`, `total`), their (empty) delivery log, removed
    from mixpilot_client.api.webhooks import (
        create_webhook,
        delete_webhook,
        list_webhook_deliveries,
        list_webhooks,
    )
    from mixpilot_client.models import WebhookIn

    hooks = [
        create_webhook.sync(client=auth, body=WebhookIn(url=f"http://127.0.0.1:9/h{i}")) for i in range(2)
    ]
    assert all(h.secret.startswith("whsec_") for h in hooks), hooks
    seen: list[str] = []
    cursor = UNSET
    for _ in range(5):
        listed = list_webhooks.sync(client=auth, limit=1, cursor=cursor)
        assert listed.total == 2 and len(listed.items) == 1, listed
        seen += [w.id for w in listed.items]
        if not listed.next_cursor:
            break
        cursor = listed.next_cursor
    assert sorted(seen) == sorted(h.id for h in hooks)
    log = list_webhook_deliveries.sync(hooks[0].id, client=auth, limit=1)
    assert log.total == 0 and log.items == [] and not log.next_cursor, log
    for h in hooks:
        assert delete_webhook.sync_detailed(h.id, client=auth).status_code == 204
    assert list_webhooks.sync(client=auth).total == 0
