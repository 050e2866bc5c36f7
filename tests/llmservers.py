"""Small local LLM servers for wire tests: the OpenAI chat-completions protocol (``POST
/v1/chat/completions``, JSON or SSE when the client streams) and the Ollama chat protocol (``POST
/api/chat``, NDJSON when streaming, else one JSON object), each replaying scripted responses in
the exact shapes those servers send, and recording every request it received.

    with LLMServer("openai") as srv:
        srv.reply(openai_tool_calls(("eq", {"params": {"bright_db": 3}})))
        ChatOpenAI(base_url=srv.url, api_key="test", model="gpt-test")...
        srv.requests[0]["json"]["tools"]

A reply is a `Reply`: a JSON body (a recorded completion), an HTTP status, and an optional delay
before answering (for client timeouts). With no reply left the server answers 500.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Protocol = Literal["openai", "ollama"]
PATHS = {"openai": "/v1/chat/completions", "ollama": "/api/chat"}
CREATED = 1_764_525_600  # 2026-11-30T18:00:00Z, as recorded


@dataclass
class Reply:
    body: dict[str, Any] | None = None
    status: int = 200
    delay_s: float = 0.0
    error: str = "internal server error"


# ------------------------------------------------------------------ recorded responses


def _arguments(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def openai_tool_calls(
    *calls: tuple[str, Any],
    content: str | None = None,
    model: str = "gpt-test",
    finish_reason: str | None = None,
) -> Reply:
    """A chat.completion whose message carries ``calls`` (name, arguments: a dict, or a raw string
    sent as is — e.g. not JSON); no calls and ``content`` is a plain-text reply."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i:02d}AbCdEf",
                "type": "function",
                "function": {"name": name, "arguments": _arguments(args)},
            }
            for i, (name, args) in enumerate(calls)
        ]
    return Reply(
        {
            "id": "chatcmpl-CR7test000000000000000000",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": 2417,
                "completion_tokens": 61,
                "total_tokens": 2478,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_test",
        }
    )


def ollama_tool_calls(
    *calls: tuple[str, Any], content: str = "", model: str = "llama3.1:8b", done_reason: str = "stop"
) -> Reply:
    """A final /api/chat response whose message carries ``calls`` (Ollama sends arguments as an
    object; a string is sent as is)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [{"function": {"name": name, "arguments": args}} for name, args in calls]
    return Reply(
        {
            "model": model,
            "created_at": "2026-11-30T18:00:00.123456Z",
            "message": message,
            "done_reason": done_reason,
            "done": True,
            "total_duration": 2_913_000_000,
            "load_duration": 41_000_000,
            "prompt_eval_count": 2380,
            "prompt_eval_duration": 1_702_000_000,
            "eval_count": 58,
            "eval_duration": 1_163_000_000,
        }
    )


def _openai_sse(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat.completion.chunk events a streaming server sends for ``body``."""
    head = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"
    choice = body["choices"][0]
    msg = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": None if msg.get("tool_calls") else "", "refusal": None})]
    for i, tc in enumerate(msg.get("tool_calls") or []):
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tc["id"],
                            "type": "function",
                            "function": {"name": tc["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        args = tc["function"]["arguments"]
        cut = max(1, len(args) // 2)
        for piece in (args[:cut], args[cut:]):
            if piece:
                out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    text = msg.get("content") or ""
    for i in range(0, len(text), 12):
        out.append(chunk({"content": text[i : i + 12]}))
    out.append(chunk({}, choice["finish_reason"]))
    return out


def _ollama_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The NDJSON lines Ollama streams for ``body``: the message, then the final done line."""
    msg = body["message"]
    first = {"model": body["model"], "created_at": body["created_at"], "message": dict(msg), "done": False}
    last = {**body, "message": {"role": "assistant", "content": ""}}
    return [first, last]


# ------------------------------------------------------------------ the server


@dataclass
class LLMServer:
    protocol: Protocol
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._send(404, b'{"error":"not found"}', "application/json")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = None
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "json": body,
                            "at": time.monotonic(),
                        }
                    )
                    reply = (
                        server.replies.pop(0)
                        if server.replies
                        else Reply(status=500, error="no reply scripted")
                    )
                if self.path != PATHS[server.protocol]:
                    self._send(
                        404, json.dumps({"error": f"no route {self.path}"}).encode(), "application/json"
                    )
                    return
                if reply.delay_s and server._stop.wait(reply.delay_s):
                    return
                if reply.status != 200 or reply.body is None:
                    err = (
                        {"error": {"message": reply.error, "type": "server_error", "code": None}}
                        if server.protocol == "openai"
                        else {"error": reply.error}
                    )
                    self._send(reply.status, json.dumps(err).encode(), "application/json")
                    return
                stream = body.get("stream", server.protocol == "ollama") if isinstance(body, dict) else False
                if not stream:
                    self._send(200, json.dumps(reply.body).encode(), "application/json")
                elif server.protocol == "openai":
                    events = "".join(f"data: {json.dumps(c)}\n\n" for c in _openai_sse(reply.body))
                    self._send(200, (events + "data: [DONE]\n\n").encode(), "text/event-stream")
                else:
                    lines = "".join(json.dumps(c) + "\n" for c in _ollama_stream(reply.body))
                    self._send(200, lines.encode(), "application/x-ndjson")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"llm-{self.protocol}", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a client is configured with (OpenAI clients append /chat/completions)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}" + ("/v1" if self.protocol == "openai" else "")

    def reply(self, *replies: Reply) -> LLMServer:
        with self._lock:
            self.replies.extend(replies)
        return self

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # what the client sent

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]["json"]

    def tool_names(self, i: int = -1) -> list[str]:
        return [t["function"]["name"] for t in self.requests[i]["json"].get("tools") or []]

    def prompt(self, i: int = -1) -> str:
        """All message texts of request ``i``, joined."""
        parts = []
        for m in self.requests[i]["json"].get("messages") or []:
            c = m.get("content")
            if isinstance(c, list):
                c = " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
            parts.append(str(c or ""))
        return "\n".join(parts)
