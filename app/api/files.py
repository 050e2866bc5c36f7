"""Uploads, metadata + analysis, downloads: the business logic behind routes/files.py.

An upload is streamed to a temporary file under ``data_dir/uploads/.tmp`` (the request body is
capped by `BodyLimit`), decoded and validated with `tools.audio.load` (duration limit, signal
required; the decoded size is bounded from the header before decoding: ``max_decoded_mb`` per
upload and what is left of the user's ``user_audio_mb``; at most ``decode_slots`` decodes at
once), and only then stored (`Mixpilot.import_audio`, content-addressed) and recorded for
its owner. Every rejection is a 4xx with a one-line message and leaves nothing on disk.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.api.deps import not_found
from app.api.schemas import Diagnosis, FileOut
from app.api.state import AppState
from memory import db

UPLOAD_SUFFIXES = {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".aiff", ".aif", ".m4a", ".aac", ".mp4"}
CHUNK = 1024 * 1024
DOWNLOAD_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413,
                         detail=f"request body too large: the limit is {limit / 1024 / 1024:.0f} MB")


class BodyLimit:
    """ASGI middleware: refuse request bodies over the limit (Content-Length first, then as they stream)."""

    def __init__(self, app: Any, *, upload_limit: int, other_limit: int = 1024 * 1024,
                 upload_path: str = "/api/v1/files") -> None:
        self.app, self.upload_limit, self.other_limit, self.upload_path = app, upload_limit, other_limit, upload_path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_limit + 64 * 1024 if scope["path"].rstrip("/") == self.upload_path else self.other_limit
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _send_413(send, limit)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_413(send: Any, limit: int) -> None:
    import json

    body = json.dumps({"detail": BodyTooLarge(limit).detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _safe_name(filename: str | None) -> str:
    name = Path(filename or "upload").name
    name = re.sub(r"[^\w.\- ]+", "_", name).strip() or "upload"
    return name[:200]


def _message(exc: Exception, tmp: Path, name: str) -> str:
    """The loader's message without the server's temp path."""
    msg = str(exc.args[0] if exc.args else exc)
    return msg.replace(str(tmp), name).replace(tmp.name, name).splitlines()[0][:500]


def upload_tmp_dir(state: AppState) -> Path:
    d = state.settings.data_dir / "uploads" / ".tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def decode_budget(state: AppState, used_samples: int) -> tuple[int, bool]:
    """(samples this upload may decode to, whether the user's quota is what limits it); 413 when none is left."""
    per_upload = state.settings.max_decoded_samples
    left = state.settings.user_audio_bytes // 4 - used_samples
    if left <= 0:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=quota_message(state, used_samples))
    return min(per_upload, left), left < per_upload


def quota_message(state: AppState, used_samples: int) -> str:
    return (f"your stored audio decodes to {used_samples * 4 / 1e6:.0f} MB of the "
            f"{state.settings.user_audio_bytes / 1e6:.0f} MB you may keep: this upload would exceed it")


async def accept_upload(state: AppState, session: AsyncSession, *, owner_id: str, upload: UploadFile) -> FileOut:
    from tools.audio import AudioError, AudioTooLarge, load

    name = _safe_name(upload.filename)
    suffix = Path(name).suffix.lower()
    tmp = upload_tmp_dir(state) / f"{uuid.uuid4().hex}{suffix if suffix in UPLOAD_SUFFIXES else ''}"
    limit = state.settings.max_upload_bytes
    size = 0
    try:
        with tmp.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                out.write(chunk)
        if size == 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{name}: file is empty (0 bytes)")
        used = await db.stored_samples(session, owner_id=owner_id)
        budget, by_quota = decode_budget(state, used)
        try:
            async with state.decode_slots:
                audio = await run_in_threadpool(load, tmp, max_duration_s=state.settings.max_duration_s,
                                                require_signal=True, max_samples=budget)
        except AudioTooLarge as exc:
            detail = quota_message(state, used) if by_quota else _message(exc, tmp, name)
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail) from None
        except (AudioError, ValueError, OSError) as exc:
            msg = _message(exc, tmp, name)
            code = (status.HTTP_415_UNSUPPORTED_MEDIA_TYPE if "not a readable audio" in msg or "format" in msg
                    else status.HTTP_422_UNPROCESSABLE_CONTENT)
            raise HTTPException(code, detail=msg) from None
        audio_id = await run_in_threadpool(state.service.import_audio, audio)
    finally:
        tmp.unlink(missing_ok=True)
    existing = await db.get_audio_file(session, owner_id=owner_id, audio_id=audio_id)
    row = existing or await db.add_audio_file(
        session, owner_id=owner_id, audio_id=audio_id, duration_s=audio.duration_s, sample_rate=audio.sample_rate,
        channels=audio.channels, format=suffix.lstrip(".") or None, original_filename=name, size_bytes=size)
    await session.commit()
    return file_out(row, deduplicated=existing is not None)


def file_out(row: db.AudioFile, *, deduplicated: bool = False, analysis: dict[str, Any] | None = None,
             diagnosis: dict[str, Any] | None = None) -> FileOut:
    return FileOut(id=row.id, filename=row.original_filename, format=row.format, duration_s=row.duration_s,
                   sample_rate=row.sample_rate, channels=row.channels, size_bytes=row.size_bytes,
                   created_at=row.created_at, deduplicated=deduplicated, analysis=analysis,
                   diagnosis=Diagnosis.model_validate(diagnosis) if diagnosis is not None else None)


async def read_file(state: AppState, *, owner_id: str, file_id: str) -> db.AudioFile:
    """`owned_file` for a read only (a transient row through `state.reads`: no session)."""
    row = await state.reads.audio_file(owner_id=owner_id, file_id=file_id)
    if row is None:
        raise not_found("file", file_id)
    return row


async def owned_file(session: AsyncSession, *, owner_id: str, file_id: str) -> db.AudioFile:
    row = await db.get_audio_file(session, owner_id=owner_id, audio_id=file_id)
    if row is None:
        raise not_found("file", file_id)
    return row


def analysis_of(state: AppState, file_id: str) -> dict[str, Any]:
    """Analysis of a stored version: the service's (cached by content id, the same entry the graph uses)."""
    from app.jobs import jsonable

    return jsonable(state.service.analysis(file_id))


def diagnosis_of(state: AppState, file_id: str) -> dict[str, Any]:
    """Diagnosis of a stored version: the service's (cached by content id)."""
    from app.jobs import jsonable

    return jsonable(state.service.diagnose(file_id))


async def export_file(state: AppState, row: db.AudioFile, *, format: str, bit_depth: int | None) -> tuple[Path, str]:
    """(temporary file, download name); the caller deletes the file after sending it."""
    if bit_depth is not None and bit_depth not in (16, 24, 32):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="bit_depth must be 16, 24 or 32")
    if format == "mp3" and bit_depth is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="bit_depth does not apply to mp3")
    if format == "flac" and bit_depth == 32:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="FLAC is 16 or 24 bit; use wav for 32")
    d = state.settings.data_dir / "exports" / ".tmp"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"{uuid.uuid4().hex}.{format}"
    try:
        await run_in_threadpool(state.service.export, row.id, tmp, format=format, bit_depth=bit_depth)
    except KeyError:
        tmp.unlink(missing_ok=True)
        raise HTTPException(status.HTTP_410_GONE, detail=f"the audio of file '{row.id}' is no longer stored") from None
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    stem = Path(row.original_filename or f"mixpilot-{row.id[:8]}").stem
    return tmp, f"{stem}.{format}"
