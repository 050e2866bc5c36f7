"""Uploads, metadata + analysis, downloads: the business logic behind routes/files.py.

An upload is streamed to a temporary file under ``data_dir/uploads/.tmp`` (the request body is
capped by `BodyLimit`), decoded and validated with `tools.audio.load` (duration limit, signal
required; the decoded size is bounded from the header before decoding: ``max_decoded_mb`` per
upload and what is left of the user's ``user_audio_mb``; at most ``decode_slots`` decodes at
once), and only then stored (`Mixpilot.import_audio`, content-addressed) and recorded for
its owner. Every rejection is a 4xx with a one-line message and leaves nothing on disk.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
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
        super().__init__(413, detail=f"request body too large: the limit is {limit / 1024 / 1024:.0f} MB")


class BodyLimit:
    """ASGI middleware: refuse request bodies over the limit (Content-Length first, then as they stream)."""

    def __init__(
        self,
        app: Any,
        *,
        upload_limit: int,
        other_limit: int = 1024 * 1024,
        upload_path: str = "/api/v1/files",
    ) -> None:
        self.app, self.upload_limit, self.other_limit, self.upload_path = (
            app,
            upload_limit,
            other_limit,
            upload_path,
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = (
            self.upload_limit + 64 * 1024
            if scope["path"].rstrip("/") == self.upload_path
            else self.other_limit
        )
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
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
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
    return (
        f"your stored audio decodes to {used_samples * 4 / 1e6:.0f} MB of the "
        f"{state.settings.user_audio_bytes / 1e6:.0f} MB you may keep: this upload would exceed it"
    )


async def check_quota(state: AppState, session: AsyncSession, *, owner_id: str, audio: Any) -> None:
    """507 when storing `audio` would take the user's stored bytes over ``user_quota_bytes`` (checked before
    anything is stored). Audio the user already has costs nothing; audio stored for someone else costs its
    stored size; new audio its float32 size (an upper bound of what the store's lossless encoding takes)."""
    from memory.retention import quota_refusal
    from memory.storage import audio_id

    vid = await run_in_threadpool(audio_id, audio)
    if await db.get_audio_file(session, owner_id=owner_id, audio_id=vid) is not None:
        return
    store = state.service.store
    adding = await run_in_threadpool(
        lambda: store.nbytes(vid) if store.exists(vid) else int(audio.samples.nbytes)
    )
    used = await db.stored_bytes(session, owner_id=owner_id)
    refusal = quota_refusal(used=used, adding=adding, quota=int(state.settings.user_quota_bytes))
    if refusal is not None:
        raise HTTPException(status.HTTP_507_INSUFFICIENT_STORAGE, detail=refusal)


async def accept_upload(
    state: AppState, session: AsyncSession, *, owner_id: str, upload: UploadFile
) -> FileOut:
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
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{name}: file is empty (0 bytes)"
            )
        used = await db.stored_samples(session, owner_id=owner_id)
        budget, by_quota = decode_budget(state, used)
        try:
            async with state.decode_slots:
                audio = await run_in_threadpool(
                    load,
                    tmp,
                    max_duration_s=state.settings.max_duration_s,
                    require_signal=True,
                    max_samples=budget,
                )
        except AudioTooLarge as exc:
            detail = quota_message(state, used) if by_quota else _message(exc, tmp, name)
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail) from None
        except (AudioError, ValueError, OSError) as exc:
            msg = _message(exc, tmp, name)
            code = (
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
                if "not a readable audio" in msg or "format" in msg
                else status.HTTP_422_UNPROCESSABLE_CONTENT
            )
            raise HTTPException(code, detail=msg) from None
        await check_quota(state, session, owner_id=owner_id, audio=audio)
        audio_id = await run_in_threadpool(state.service.import_audio, audio)
        stored_bytes = await run_in_threadpool(state.service.store.nbytes, audio_id)
    finally:
        tmp.unlink(missing_ok=True)
    existing = await db.get_audio_file(session, owner_id=owner_id, audio_id=audio_id)
    row = existing or await db.add_audio_file(
        session,
        owner_id=owner_id,
        audio_id=audio_id,
        duration_s=audio.duration_s,
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        format=suffix.lstrip(".") or None,
        original_filename=name,
        size_bytes=size,
        stored_bytes=stored_bytes,
    )
    await session.commit()
    return file_out(row, deduplicated=existing is not None)


def upload_fingerprint(upload: UploadFile) -> str:
    """What makes an upload this upload (for ``Idempotency-Key``): its file name and bytes (read from the
    spooled request body, then rewound)."""
    from app.api.idempotency import fingerprint

    f = upload.file
    f.seek(0)
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    f.seek(0)
    return fingerprint(upload.filename or "", digest.hexdigest())


def file_out(
    row: db.AudioFile,
    *,
    deduplicated: bool = False,
    analysis: dict[str, Any] | None = None,
    diagnosis: dict[str, Any] | None = None,
) -> FileOut:
    return FileOut(
        id=row.id,
        filename=row.original_filename,
        format=row.format,
        duration_s=row.duration_s,
        sample_rate=row.sample_rate,
        channels=row.channels,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        deduplicated=deduplicated,
        analysis=analysis,
        diagnosis=Diagnosis.model_validate(diagnosis) if diagnosis is not None else None,
    )


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


@dataclass(frozen=True, kw_only=True)
class Rendition:
    """A stored download: a version's audio in one format and bit depth, named by the hash of its bytes
    (a blob of the audio store under `key`: any API process on any machine serves the same bytes)."""

    key: str
    sha256: str
    media_type: str
    filename: str

    @property
    def etag(self) -> str:
        """A strong validator: the same bytes, the same tag, on every server that holds them."""
        return f'"{self.sha256}"'


def rendition_key(*, format: str, bit_depth: int | None) -> str:
    """The one name of a format + depth (422 for combinations that do not exist); wav/flac default to 24 bit."""
    if bit_depth is not None and bit_depth not in (16, 24, 32):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="bit_depth must be 16, 24 or 32")
    if format == "mp3" and bit_depth is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="bit_depth does not apply to mp3")
    if format == "flac" and bit_depth == 32:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="FLAC is 16 or 24 bit; use wav for 32"
        )
    return "mp3" if format == "mp3" else f"{format}-{bit_depth or 24}"


#: blob keys of renditions: ``renditions/index/<vid[:2]>/<vid>.<key>`` holds the hash of the bytes stored
#: under ``renditions/<sha[:2]>/<sha>.<format>`` (in the data dir for the local store)
RENDITIONS = "renditions"


def renditions_dir(state: AppState) -> Path:
    """Local scratch for producing renditions (what is served lives in the audio store's blobs)."""
    return state.settings.data_dir / RENDITIONS


def _index_key(version_id: str, key: str) -> str:
    return f"{RENDITIONS}/index/{version_id[:2]}/{version_id}.{key}"


def _content_key(sha256: str, format: str) -> str:
    return f"{RENDITIONS}/{sha256[:2]}/{sha256}.{format}"


def _stored_rendition(state: AppState, version_id: str, key: str, format: str) -> str | None:
    """The hash of the stored rendition, if both its index entry and its bytes are there."""
    store = state.service.store
    raw = store.read_blob(_index_key(version_id, key))
    if raw is None:
        return None
    sha = raw.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        return None
    return sha if store.blob_size(_content_key(sha, format)) is not None else None


def _produce_rendition(state: AppState, version_id: str, key: str, format: str, bit_depth: int | None) -> str:
    """Export once, store the bytes under their SHA-256, point the (version, format, depth) index at it.

    Exports are deterministic (`AudioStore.export` seeds the 16/24-bit dither by the version id), so
    two requests (or two machines) racing here write the same bytes; each write replaces a whole blob,
    never leaves a partial one."""
    sha = _stored_rendition(state, version_id, key, format)
    if sha is not None:
        return sha
    store = state.service.store
    tmp_dir = renditions_dir(state) / ".tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}.{format}"
    try:
        state.service.export(version_id, tmp, format=format, bit_depth=bit_depth)
        digest = hashlib.sha256()
        with tmp.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        sha = digest.hexdigest()
        store.put_blob(_content_key(sha, format), tmp)  # taken over (moved or uploaded)
        store.put_blob(_index_key(version_id, key), sha.encode())
        return sha
    finally:
        tmp.unlink(missing_ok=True)


async def rendition(state: AppState, row: db.AudioFile, *, format: str, bit_depth: int | None) -> Rendition:
    """The stored download of `row` in `format`/`bit_depth`: produced on the first request, then served as is
    (same bytes, same ETag, byte ranges that resume); 410 when the version's audio is gone."""
    key = rendition_key(format=format, bit_depth=bit_depth)
    depth = None if format == "mp3" else bit_depth or 24
    sha = await run_in_threadpool(_stored_rendition, state, row.id, key, format)
    if sha is None:
        try:
            sha = await run_in_threadpool(_produce_rendition, state, row.id, key, format, depth)
        except KeyError:
            raise _gone(row.id) from None
    await note_download(state, row)
    stem = Path(row.original_filename or f"mixpilot-{row.id[:8]}").stem
    return Rendition(
        key=_content_key(sha, format),
        sha256=sha,
        media_type=DOWNLOAD_TYPES[format],
        filename=f"{stem}.{format}",
    )


async def note_download(state: AppState, row: db.AudioFile) -> None:
    """Retention keeps a result its owner downloaded (`memory.retention`): the first download is noted."""
    if row.downloaded_at is not None:
        return
    async with state.sessions() as session:
        await db.mark_downloaded(session, owner_id=row.owner_id, audio_id=row.id)
        await session.commit()


def _gone(file_id: str) -> HTTPException:
    return HTTPException(status.HTTP_410_GONE, detail=f"the audio of file '{file_id}' is no longer stored")


async def rendition_path(state: AppState, stored: Rendition, *, file_id: str) -> Path:
    """A local file with the rendition's bytes to serve (from object storage: its disk-cache copy)."""
    path = await run_in_threadpool(state.service.store.blob_path, stored.key)
    if path is None:
        raise _gone(file_id)
    return path


def rendition_url(state: AppState, stored: Rendition) -> str | None:
    """A presigned URL of the rendition (the client downloads from the object store, not through the API);
    None where the store has none (the data dir)."""
    return state.service.store.blob_url(
        stored.key,
        expires_s=state.settings.storage_presign_s,
        filename=stored.filename,
        media_type=stored.media_type,
    )


def remove_renditions(state: AppState, version_id: str) -> int:
    """Delete every stored rendition of a version (index entries and bytes); returns how many."""
    store = state.service.store
    removed = 0
    for index in list(store.blob_keys(f"{RENDITIONS}/index/{version_id[:2]}")):
        name = index.rsplit("/", 1)[-1]
        if not name.startswith(f"{version_id}."):
            continue
        raw = store.read_blob(index)
        if raw is None:
            continue
        fmt = name.split(".", 1)[1].split("-")[0]
        sha = raw.decode("ascii", "replace").strip()
        if re.fullmatch(r"[0-9a-f]{64}", sha):
            store.remove_blob(_content_key(sha, fmt))
        store.remove_blob(index)
        removed += 1
    return removed


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or any listed tag (weak comparison: a `W/` prefix is ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
