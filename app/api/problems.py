"""Errors as ``application/problem+json`` (RFC 9457), and a request id on every response.

Every error the API answers has one shape (`Problem`)::

    {"type": "https://mixpilot.dev/problems/not_found", "title": "Not Found", "status": 404,
     "detail": "job '3f1c…' not found", "code": "not_found", "instance": "/api/v1/jobs/3f1c…",
     "request_id": "9b2e…", "job_id": "3f1c…"}

- ``code`` is stable snake_case (`code_for`): a client branches on it, never on ``detail``
  (a sentence for people, which may change);
- the ids a message names (``job '…'``, ``file '…'``, ``thread '…'``, ``webhook '…'``) are fields too
  (``job_id``, …), so a 409 says which job holds the thread without parsing the sentence;
- 422 (and 400 for a body that is not JSON) carry ``errors: [{loc, msg, type}]``;
- ``request_id`` is also the ``X-Request-ID`` header of every response (an incoming one is kept when it is
  sane, `REQUEST_ID_PATTERN`), and the server's log line for the error names it.

`RequestContext` (ASGI middleware) gives each request its id, adds the headers (``X-Request-ID``, the
rate-limit headers `app.api.ratelimit` left in the request state) and turns an error answered outside the
exception handlers (``BodyLimit``'s early 413) into a problem too. `install` registers the handlers.
`ProblemError` raises a problem with its own ``code`` and fields.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("mixpilot.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://mixpilot.dev/problems/"
REQUEST_ID_HEADER = "X-Request-ID"
#: an incoming X-Request-ID is kept when it looks like an id (a UUID, a trace id), else replaced
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{7,127}$")
#: the code of a status when nothing more specific applies
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
#: more specific codes for the messages the API raises (status, pattern in the detail, code), first match wins
DETAIL_CODES: tuple[tuple[int, re.Pattern[str], str], ...] = tuple(
    (s, re.compile(p, re.IGNORECASE), c)
    for s, p, c in (
        (409, r"Idempotency-Key .* still running", "idempotency_key_in_use"),
        (422, r"Idempotency-Key .* different request", "idempotency_key_reused"),
        (409, r"busy with job|queued or running", "resource_busy"),
        (409, r"only failed or cancelled jobs", "job_not_retryable"),
        (409, r"is already (succeeded|failed|cancelled)", "job_ended"),
        (409, r"already exists", "already_exists"),
        (429, r"jobs queued or running", "too_many_active_jobs"),
        (413, r"request body too large", "body_too_large"),
        (413, r"you may keep|decodes to", "audio_quota_exceeded"),
        (401, r"expired", "token_expired"),
    )
)
#: ``<what> '<id>'`` in a message: the id becomes the field ``<what>_id``
_IDS = re.compile(r"\b(job|file|thread|webhook|key|delivery) '([A-Za-z0-9_\-]{1,64})'")


class Problem(BaseModel):
    """An error (RFC 9457 problem details), content type ``application/problem+json``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": TYPE_BASE + "resource_busy",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "thread '3f1c…' is busy with job '9a7b…': wait for it or cancel it",
                    "code": "resource_busy",
                    "instance": "/api/v1/chat",
                    "request_id": "5d0c2f6e9b8a4c1d8e7f6a5b4c3d2e1f",
                    "thread_id": "3f1c…",
                    "job_id": "9a7b…",
                }
            ]
        },
    )

    type: str = Field(description="a URI naming the kind of problem: " + TYPE_BASE + "<code>")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong and what to do, for people (may change: use `code`)")
    code: str = Field(description="stable snake_case code: branch on it", pattern=r"^[a-z][a-z0-9_]*$")
    instance: str = Field(description="the request path")
    request_id: str = Field(description="also in X-Request-ID and the server log")
    errors: list[dict[str, Any]] | None = Field(
        None, description="422 and 400: the fields at fault, [{loc, msg, type}]"
    )


class ProblemError(StarletteHTTPException):
    """An HTTP error with its own stable `code` and extra fields (``job_id=…``) in the problem body."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=headers)
        self.code, self.fields = code, fields


def code_for(status: int, detail: str) -> str:
    for s, pattern, code in DETAIL_CODES:
        if s == status and pattern.search(detail):
            return code
    return STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:  # outside RequestContext (an app built without it)
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str,
    request_id: str,
    code: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    code = code or code_for(status, detail)
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        "request_id": request_id,
    }
    for what, ident in _IDS.findall(detail):
        body.setdefault(f"{what}_id", ident)
    for k, v in fields.items():
        if v is not None and k not in body:
            body[k] = v
    return body


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    **fields: Any,
) -> JSONResponse:
    rid = request_id_of(request)
    body = problem_body(status, detail, instance=request.url.path, request_id=rid, code=code, **fields)
    _log(request.method, request.url.path, body)
    return JSONResponse(
        body,
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={**(headers or {}), REQUEST_ID_HEADER: rid},
    )


def _log(method: str, path: str, body: dict[str, Any], exc: BaseException | None = None) -> None:
    status = body["status"]
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(
        level,
        "request %s: %s %s -> %d %s: %s",
        body["request_id"],
        method,
        path,
        status,
        body["code"],
        body["detail"],
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]


def install(app: FastAPI) -> None:
    """The exception handlers that answer every error as a problem, and the `RequestContext` middleware."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if not detail or detail == HTTPStatus(exc.status_code).phrase:
            detail = _default_detail(request, exc.status_code)
        code = getattr(exc, "code", None)
        fields = getattr(exc, "fields", None) or {}
        return problem_response(
            request, exc.status_code, detail, headers=dict(exc.headers or {}), code=code, **fields
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):  # RFC 9110: a body that is not JSON is a 400
            first = next(e for e in errors if e["type"] == "json_invalid")
            ctx = next((e.get("ctx") or {} for e in exc.errors() if e.get("type") == "json_invalid"), {})
            where = f" at position {first['loc'][1]}" if len(first["loc"]) > 1 else ""
            detail = f"the request body is not valid JSON{where}: {ctx.get('error', first['msg'])}"
            return problem_response(request, 400, detail[:500], code="malformed_json", errors=errors[:20])
        head = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(head['loc'])}: {head['msg']}".lstrip(": ")
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(request, 422, detail[:500], code="validation_error", errors=errors[:20])

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Last resort, in every environment: the body names the request id, never the error (it may quote
        SQL, parameters or paths); the log has the traceback under that id."""
        rid = request_id_of(request)
        body = problem_body(
            500,
            f"internal error (request id {rid}): the server log has the details",
            instance=request.url.path,
            request_id=rid,
            code="internal_error",
        )
        _log(request.method, request.url.path, body, exc)
        # answered by Starlette's outermost middleware, past RequestContext: the headers are set here
        return JSONResponse(body, status_code=500, media_type=MEDIA_TYPE, headers={REQUEST_ID_HEADER: rid})

    app.add_middleware(RequestContext)


def _default_detail(request: Request, status: int) -> str:
    if status == 404:
        return f"no such path: {request.url.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return HTTPStatus(status).phrase


class RequestContext:
    """ASGI middleware: a request id per request (in the state, the log and ``X-Request-ID``), the rate-limit
    headers of the request state on the response, and any JSON error answered past the exception handlers
    rewritten as a problem."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = next((v for k, v in scope.get("headers") or [] if k == b"x-request-id"), b"")
        try:
            rid = incoming.decode("ascii")
        except UnicodeDecodeError:
            rid = ""
        if not REQUEST_ID_PATTERN.match(rid):
            rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        pending: dict[str, Any] = {}

        async def send_with_context(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or [] if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                for name, value in (state.get("ratelimit_headers") or {}).items():
                    if not any(k.lower() == name.lower().encode() for k, _ in headers):
                        headers.append((name.lower().encode(), str(value).encode()))
                message = {**message, "headers": headers}
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if (
                    message["status"] >= 400
                    and ctype.startswith((b"application/json", b"text/plain"))
                    and scope.get("method") != "HEAD"
                ):
                    pending["start"], pending["body"] = message, b""  # rewritten once the body is in
                    return
            elif message["type"] == "http.response.body" and "start" in pending:
                pending["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                start, body = _as_problem(scope, rid, pending.pop("start"), pending.pop("body"))
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_with_context)


def _as_problem(
    scope: dict[str, Any], rid: str, start: dict[str, Any], raw: bytes
) -> tuple[dict[str, Any], bytes]:
    """An error answered outside the handlers (a JSON ``{"detail": …}``, or plain text such as Starlette's
    400 and 416 for a bad ``Range``) as a problem."""
    status = int(start["status"])
    try:
        old = json.loads(raw)
    except ValueError:  # plain text: the text is the detail
        old = {"detail": raw.decode("utf-8", "replace").strip()[:500]}
    if not isinstance(old, dict) or "code" in old:
        return start, raw
    detail = old.get("detail")
    if not isinstance(detail, str) or not detail:
        detail = HTTPStatus(status).phrase
        where = next(
            (v.decode("latin-1") for k, v in start["headers"] if k.lower() == b"content-range"), None
        )
        if status == 416 and where:
            detail = f"range not satisfiable: the file is {where.removeprefix('bytes */')} bytes"
    extra = {k: v for k, v in old.items() if k != "detail"}
    body = problem_body(status, detail, instance=scope.get("path", ""), request_id=rid, **extra)
    _log(scope.get("method", ""), scope.get("path", ""), body)
    out = json.dumps(body).encode()
    headers = [(k, v) for k, v in start["headers"] if k.lower() not in (b"content-type", b"content-length")]
    headers += [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(out)).encode())]
    return {**start, "headers": headers}, out


def document(app: FastAPI, *, api_prefix: str, rate_limit_headers: dict[str, dict[str, Any]]) -> None:
    """The error model in the OpenAPI schema: every 4xx/5xx response of every operation is a `Problem`
    as ``application/problem+json``; every response documents ``X-Request-ID``; the API's operations
    document a 429 and the rate-limit headers on their 2xx and 429."""
    base = app.openapi
    request_id = {
        REQUEST_ID_HEADER: {
            "description": "the request's id (the one sent when sane, else a new one); errors repeat it",
            "schema": {"type": "string"},
        }
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                if path.startswith(api_prefix):
                    responses.setdefault(
                        "429", {"description": "over a rate limit: retry after `Retry-After` seconds"}
                    )
                for code, response in responses.items():
                    status = int(code) if code.isdigit() else 0
                    headers = response.setdefault("headers", {})
                    headers.update(request_id)
                    if status >= 400:
                        response["content"] = problem
                    if path.startswith(api_prefix) and (200 <= status < 300 or status == 429):
                        headers.update(rate_limit_headers)
                    if status == 429:
                        headers["Retry-After"] = {
                            "description": "seconds to wait before trying again",
                            "schema": {"type": "integer"},
                        }
        _drop_unused(schema, ("HTTPValidationError", "ValidationError", "Message", "ValidationMessage"))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_unused(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the former error models once nothing refers to them (a generated client would carry them)."""
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name not in components:
            continue
        ref = f'"#/components/schemas/{name}"'
        rest = {k: v for k, v in components.items() if k != name}
        if ref not in json.dumps(schema.get("paths", {})) and ref not in json.dumps(rest):
            del components[name]
