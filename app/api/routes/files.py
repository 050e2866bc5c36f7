from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from app.api import deletion, idempotency, reads
from app.api import files as svc
from app.api.deps import CurrentUser, SessionDep, StateDep
from app.api.schemas import ID_PATTERN, FileList, FileOut, Message, Responses
from memory import db

router = APIRouter(prefix="/files", tags=["files"])
FileIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="file id")]


def _binary(schema: dict[str, Any]) -> None:
    """`format: binary` for an upload field: pydantic writes `contentMediaType`, which client generators
    (openapi-python-client, openapi-generator) read as a text field."""
    schema.pop("contentMediaType", None)
    schema["format"] = "binary"


NOT_FOUND: Responses = {404: {"model": Message, "description": "no such file (or not yours)"}}


@router.post(
    "",
    operation_id="upload_file",
    status_code=status.HTTP_201_CREATED,
    response_model=FileOut,
    responses={
        413: {"model": Message, "description": "larger than the upload limit"},
        415: {"model": Message, "description": "not a readable audio file"},
        422: {
            "model": Message,
            "description": "empty, truncated, silent, too long, NaN/inf, bad rate or channels",
        },
        **idempotency.RESPONSES,
    },
)
async def upload(
    file: Annotated[
        UploadFile, File(description="WAV, FLAC, MP3, OGG, AIFF (M4A with ffmpeg)", json_schema_extra=_binary)
    ],
    user: CurrentUser,
    state: StateDep,
    session: SessionDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> JSONResponse:
    """Upload a recording. It is decoded and checked before it is accepted; the same audio twice is one file."""
    digest = await run_in_threadpool(svc.upload_fingerprint, file) if idempotency_key else ""

    async def create() -> FileOut:
        return await svc.accept_upload(state, session, owner_id=user.id, upload=file)

    return await idempotency.run_once(
        state,
        owner_id=user.id,
        scope="POST /files",
        key=idempotency_key,
        request_hash=digest,
        create=create,
        status_code=status.HTTP_201_CREATED,
    )


#: the `format` filter: what an upload's name said (results are "wav")
FileFormat = Literal["wav", "wave", "flac", "mp3", "ogg", "oga", "aiff", "aif", "m4a", "aac", "mp4"]


@router.get(
    "",
    operation_id="list_files",
    response_model=FileList,
    dependencies=[Depends(reads.known_query)],
    responses={400: {"model": Message, "description": "an unknown query parameter, or a bad cursor"}},
)
async def list_files(
    user: CurrentUser,
    session: SessionDep,
    limit: reads.Limit = reads.DEFAULT_PAGE,
    cursor: reads.Cursor = None,
    format: Annotated[
        FileFormat | None, Query(description="only files of this format (as uploaded; results are wav)")
    ] = None,
) -> FileList:
    """Your files (uploads and results), newest first, a page at a time: follow `next_cursor`."""
    where = [db.AudioFile.owner_id == user.id]
    if format is not None:
        where.append(db.AudioFile.format == format)
    got = await reads.page(
        session, db.AudioFile, where=where, limit=limit, cursor=cursor, filters={"format": format}
    )
    return FileList(items=[svc.file_out(r) for r in got.items], next_cursor=got.next_cursor, total=got.total)


@router.get("/{file_id}", operation_id="get_file", response_model=FileOut, responses=NOT_FOUND)
async def get_file(
    file_id: FileIdPath, user: CurrentUser, state: StateDep, analysis: bool = True, diagnosis: bool = False
) -> FileOut:
    """Metadata, (unless `analysis=false`) the analysis: loudness, peaks, spectrum, stereo, speech, and
    (with `diagnosis=true`) the diagnosis: findings (noise, hum, clipping, …) with the measured evidence."""
    row = await svc.read_file(state, owner_id=user.id, file_id=file_id)
    result = await run_in_threadpool(svc.analysis_of, state, file_id) if analysis else None
    found = await run_in_threadpool(svc.diagnosis_of, state, file_id) if diagnosis else None
    return svc.file_out(row, analysis=result, diagnosis=found)


@router.delete(
    "/{file_id}",
    operation_id="delete_file",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        409: {"model": Message, "description": "a queued or running job uses the file: cancel it first"},
    },
)
async def delete_file(file_id: FileIdPath, user: CurrentUser, state: StateDep, session: SessionDep) -> None:
    """Delete the file and what derives from it: ratings and learned settings of turns on it, their feature
    vectors, its download renditions, and the stored audio once nothing references it (no account's file,
    no conversation thread, no queued or running job). Results made from it are files of their own (delete
    them, or the thread)."""
    await deletion.delete_file(state, session, owner_id=user.id, file_id=file_id)


AUDIO: dict[str, Any] = {
    t: {"schema": {"type": "string", "format": "binary"}} for t in svc.DOWNLOAD_TYPES.values()
}
ETAG = {
    "ETag": {
        "description": "SHA-256 of the bytes (strong): send it back in If-None-Match or If-Range",
        "schema": {"type": "string"},
    }
}
STORED = {
    **ETAG,
    "Accept-Ranges": {"description": "bytes: resume with `Range: bytes=N-`", "schema": {"type": "string"}},
    "Cache-Control": {
        "description": "private, no-cache: revalidate with If-None-Match",
        "schema": {"type": "string"},
    },
}


@router.get(
    "/{file_id}/download",
    operation_id="download_file",
    response_class=FileResponse,
    responses={
        200: {
            "content": AUDIO,
            "headers": STORED,
            "description": "the audio file: produced once per version, format and bit depth, then the same bytes",
        },
        206: {
            "content": AUDIO,
            "description": "the byte range asked for with `Range` (and a matching `If-Range`)",
            "headers": {
                **STORED,
                "Content-Range": {"description": "bytes START-END/SIZE", "schema": {"type": "string"}},
            },
        },
        304: {
            "description": "`If-None-Match` names this ETag: you already have these bytes",
            "headers": ETAG,
        },
        307: {
            "description": "`redirect=true` with object storage: GET the presigned URL in `Location`",
            "headers": {"Location": {"description": "presigned URL", "schema": {"type": "string"}}, **ETAG},
        },
        **NOT_FOUND,
        410: {"model": Message, "description": "the audio is no longer stored"},
    },
)
async def download(
    file_id: FileIdPath,
    user: CurrentUser,
    state: StateDep,
    request: Request,
    format: Literal["wav", "flac", "mp3"] = "wav",
    bit_depth: Annotated[
        int | None, Query(ge=16, le=32, description="16, 24 or 32: wav 16/24/32 (float), flac 16/24")
    ] = None,
    redirect: Annotated[
        bool,
        Query(
            description="307 to a presigned URL of the object store instead of the bytes (where audio is "
            "in S3-compatible storage; otherwise the bytes as usual)"
        ),
    ] = False,
):
    """The audio of a file. Every request for the same file, format and bit depth gets the same bytes
    (strong `ETag`): `If-None-Match` answers 304, `Range`/`If-Range` resume a download, `HEAD` gives
    the headers only."""
    row = await svc.read_file(state, owner_id=user.id, file_id=file_id)
    stored = await svc.rendition(state, row, format=format, bit_depth=bit_depth)
    headers = {"ETag": stored.etag, "Cache-Control": "private, no-cache"}
    if svc.etag_matches(request.headers.get("if-none-match"), stored.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if redirect and (url := svc.rendition_url(state, stored)):
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT, headers=headers)
    path = await svc.rendition_path(state, stored, file_id=file_id)
    return FileResponse(path, media_type=stored.media_type, filename=stored.filename, headers=headers)


router.add_api_route(
    "/{file_id}/download",
    download,
    methods=["HEAD"],
    operation_id="head_download_file",
    summary="Download headers only",
    description="The download's headers without its body: `ETag`, `Content-Length`, `Accept-Ranges`, "
    "`Content-Disposition` (a client checks size and version before fetching, or after a dropped transfer).",
    response_class=Response,
    responses={
        200: {"description": "the headers a GET would send", "headers": STORED},
        304: {"description": "`If-None-Match` names this ETag", "headers": ETAG},
        307: {"description": "`redirect=true` with object storage: the presigned URL in `Location`"},
        **NOT_FOUND,
        410: {"description": "the audio is no longer stored"},
    },
)
