"""Shared machinery of the fakes: faults, state, request log, reply text and streaming.

Every kind module (``llamacpp``, ``ollama``, ``openai_style``, ``anthropic``) builds a
:class:`KindSpec` from these pieces; :class:`fake_servers.FakeServer` wires a spec, a
:class:`FakeState` and the fault middleware into one aiohttp application.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from aiohttp import web

KINDS: tuple[str, ...] = ("llamacpp", "ollama", "lmstudio", "openai", "anthropic")
"""The kinds of server that can be faked, as used on the command line."""

FAULT_NAMES: tuple[str, ...] = (
    "none",
    "hang",
    "loading",
    "error500",
    "garbage",
    "drop",
    "slow",
    "wrong-model",
)
"""Fault names; ``slow`` is written ``slow:MS``."""

JSONDict = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Fault:
    """A parsed fault: ``name`` is one of :data:`FAULT_NAMES`; ``slow_ms`` only for ``slow``."""

    name: str = "none"
    slow_ms: int = 0

    def __str__(self) -> str:
        return f"slow:{self.slow_ms}" if self.name == "slow" else self.name


def parse_fault(text: str | Fault | None) -> Fault:
    """Parse ``none``, ``hang``, ``slow:250``, ... into a :class:`Fault` (``ValueError`` if bad)."""
    if isinstance(text, Fault):
        return text
    if text is None or text == "":
        return Fault()
    name, sep, arg = text.partition(":")
    if name == "slow":
        if not sep or not arg.isdigit():
            raise ValueError(f"fault {text!r}: expected slow:MS with MS a whole number")
        return Fault("slow", int(arg))
    if sep or name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {text!r}; expected one of {', '.join(FAULT_NAMES)}")
    return Fault(name)


class LoggedRequest(TypedDict):
    """One entry of the request log (``GET /_fake/requests``)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    time: float


@dataclass(slots=True)
class FakeState:
    """Mutable state of one fake, shared by its handlers and its controller."""

    kind: str
    models: list[str]
    host: str = "127.0.0.1"
    port: int = 0
    fault: Fault = field(default_factory=Fault)
    api_key: str | None = None
    loading_forced: bool = False
    loading_until: float = 0.0
    requests: list[LoggedRequest] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    disconnects: int = 0
    """Responses cut short because the client went away."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def is_loading(self) -> bool:
        """True while the fake pretends to load its model."""
        return (
            self.loading_forced
            or self.fault.name == "loading"
            or time.monotonic() < self.loading_until
        )

    def reported(self, model: str) -> str:
        """The model name to report: a wrong one under the ``wrong-model`` fault."""
        return f"wrong-{model}" if self.fault.name == "wrong-model" else model

    def reply_text(self, model: str) -> str:
        """The assistant text, naming who answered: ``I am MODEL on KIND port PORT``."""
        return f"I am {model} on {self.kind} port {self.port}"

    def snapshot(self) -> JSONDict:
        """The ``GET /_fake/state`` document."""
        return {
            "kind": self.kind,
            "port": self.port,
            "models": list(self.models),
            "fault": str(self.fault),
            "loading": self.is_loading(),
            "disconnects": self.disconnects,
        }


def split_reply(text: str) -> list[str]:
    """Split a reply into several stream pieces, one per word (spaces kept)."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


def prompt_tokens(messages: Iterable[Any]) -> int:
    """A cheap, deterministic token count for usage fields."""
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            count += len(content.split()) + 4
        elif isinstance(content, list):
            count += sum(
                len(str(part.get("text", "")).split()) + 4
                for part in content
                if isinstance(part, Mapping)
            )
    return max(count, 1)


def new_id(prefix: str, length: int = 32) -> str:
    """A random identifier like ``chatcmpl-…`` or ``msg_…``."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def json_response(body: Any, status: int = 200, **kwargs: Any) -> web.Response:
    """A compact JSON response (the real servers do not pretty-print)."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        **kwargs,
    )


ErrorFactory = Callable[[int, str, str], web.StreamResponse]
"""``(status, message, error_type) -> response`` in the kind's error shape."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What makes one kind of fake: its routes and its wire conventions."""

    kind: str
    default_models: tuple[str, ...]
    routes: Callable[[FakeState], list[web.RouteDef]]
    error: ErrorFactory
    not_found: Callable[[web.Request], web.StreamResponse]
    chat_paths: frozenset[str]
    stream_by_default: frozenset[str] = frozenset()
    server_header: str | None = None
    auth: Callable[[FakeState, web.Request], web.StreamResponse | None] | None = None
    canonical: Callable[[str], str] | None = None
    """Normalises model names (Ollama: ``llama3`` → ``llama3:latest``)."""

    def wants_stream(self, path: str, body: Any) -> bool:
        """Whether a chat request at ``path`` with ``body`` asks for a stream."""
        default = path in self.stream_by_default
        if isinstance(body, Mapping):
            return bool(body.get("stream", default))
        return default


async def read_json(request: web.Request) -> tuple[Any, str | None]:
    """The request body as JSON, or ``(None, message)`` when it is not valid JSON."""
    raw = await request.read()
    if not raw:
        return None, "empty request body"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"parse error: {exc}"


class StreamWriter:
    """Writes a stream (SSE or NDJSON), honouring the ``slow`` and ``drop`` faults."""

    def __init__(
        self, state: FakeState, request: web.Request, fmt: Literal["sse", "ndjson"]
    ) -> None:
        self.state = state
        self.request = request
        self.fmt = fmt
        self.response = web.StreamResponse(status=200)
        self.sent = 0

    async def start(self, headers: Mapping[str, str] | None = None) -> None:
        """Send the headers."""
        if self.fmt == "sse":
            self.response.content_type = "text/event-stream"
            self.response.headers["Cache-Control"] = "no-cache"
            self.response.headers["X-Accel-Buffering"] = "no"
        else:
            self.response.content_type = "application/x-ndjson"
        for key, value in (headers or {}).items():
            self.response.headers[key] = value
        await self.response.prepare(self.request)

    async def send(self, data: Any, event: str | None = None) -> None:
        """Send one event (a JSON value, or a raw string such as ``[DONE]``)."""
        fault = self.state.fault
        if fault.name == "slow" and self.sent:
            await asyncio.sleep(fault.slow_ms / 1000)
        if fault.name == "drop" and self.sent >= 3:
            raise DropConnection
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        if fault.name == "garbage" and text != "[DONE]":
            text = "<<garbage " + text[::-1] + ">>"
        if self.fmt == "sse":
            line = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        else:
            line = text + "\n"
        await self.response.write(line.encode())
        self.sent += 1

    async def finish(self) -> web.StreamResponse:
        """End the stream cleanly."""
        await self.response.write_eof()
        return self.response


class DropConnection(Exception):
    """Raised by a handler to close the connection without (the rest of) a response."""


def abort_connection(request: web.Request) -> None:
    """Close the client connection at once (no response, or a cut-off stream)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
