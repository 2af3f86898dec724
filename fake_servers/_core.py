"""Shared machinery of the fakes: faults, state, request log, reply text and streaming.

Every kind module (``llamacpp``, ``ollama``, ``openai_style``, ``anthropic``) builds a
:class:`KindSpec` from these pieces; :class:`fake_servers.FakeServer` wires a spec, a
:class:`FakeState` and the fault middleware into one aiohttp application.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from aiohttp import web

from fake_servers._wire import JSONDict as JSONDict
from fake_servers._wire import Wire

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
    "error429",
    "error401",
    "echo-auth",
    "poison",
    "redirect",
)
"""Fault names; ``slow`` is written ``slow:MS``, ``error429`` takes an optional ``:SECONDS``,
``echo-auth`` an optional ``:MODE`` (one of :data:`ECHO_AUTH_MODES`), ``redirect`` an optional
``:URL``."""

ECHO_AUTH_MODES: tuple[str, ...] = (
    "401",
    "429",
    "500",
    "200-error",
    "text",
    "stream-error",
    "probe",
)
"""How an ``echo-auth`` fake quotes the credentials it got (``echo-auth:MODE``)."""

DEFAULT_ECHO_AUTH_MODE = "500"
DEFAULT_RETRY_AFTER = 1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Fault:
    """A parsed fault: ``name`` is one of :data:`FAULT_NAMES`.

    The other fields are the fault's argument: ``slow_ms`` for ``slow``, ``retry_after``
    (seconds) for ``error429``, ``mode`` for ``echo-auth``, ``location`` for ``redirect``
    (empty: the fake's own ``/_fake/redirected``).
    """

    name: str = "none"
    slow_ms: int = 0
    retry_after: int = DEFAULT_RETRY_AFTER
    mode: str = DEFAULT_ECHO_AUTH_MODE
    location: str = ""

    def __str__(self) -> str:
        if self.name == "slow":
            return f"slow:{self.slow_ms}"
        if self.name == "error429":
            return f"error429:{self.retry_after}"
        if self.name == "echo-auth":
            return f"echo-auth:{self.mode}"
        if self.name == "redirect" and self.location:
            return f"redirect:{self.location}"
        return self.name


def parse_fault(text: str | Fault | None) -> Fault:
    """Parse ``none``, ``hang``, ``slow:250``, ``error429:3``, ... into a :class:`Fault`.

    Raises ``ValueError`` for an unknown name or a bad argument.
    """
    if isinstance(text, Fault):
        return text
    if text is None or text == "":
        return Fault()
    name, sep, arg = text.partition(":")
    if name == "slow":
        if not sep or not arg.isdigit():
            raise ValueError(f"fault {text!r}: expected slow:MS with MS a whole number")
        return Fault("slow", int(arg))
    if name == "error429":
        if sep and not arg.isdigit():
            raise ValueError(f"fault {text!r}: expected error429:SECONDS, a whole number")
        return Fault("error429", retry_after=int(arg) if sep else DEFAULT_RETRY_AFTER)
    if name == "echo-auth":
        mode = arg if sep else DEFAULT_ECHO_AUTH_MODE
        if mode not in ECHO_AUTH_MODES:
            raise ValueError(
                f"fault {text!r}: expected echo-auth:MODE, MODE one of {', '.join(ECHO_AUTH_MODES)}"
            )
        return Fault("echo-auth", mode=mode)
    if name == "redirect":
        if sep and not arg:
            raise ValueError(f"fault {text!r}: expected redirect or redirect:URL")
        return Fault("redirect", location=arg)
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
    tool_calls: int = 0
    """When above 0, every request offering tools and carrying no tool results is answered
    with this many tool calls (else only requests saying ``CALL_TOOLS``, with 2)."""
    redirected_hits: int = 0
    """Requests that reached ``/_fake/redirected`` (the default target of ``redirect``)."""
    router_mode: bool = False
    """llama.cpp router mode (``--models-dir``): every model listed with its ``status``."""
    loaded: list[str] | None = None
    """Models loaded, least recently used first (llama.cpp router mode's ``status``, Ollama's
    ``/api/ps``); None: the kind's default, its first model."""
    loading_models: list[str] = field(default_factory=list)
    """Models llama.cpp router mode reports ``loading`` (until a request loads them)."""
    models_max: int = 0
    """Loaded models kept at most (router mode's ``--models-max``; 0: no limit); past it
    the least recently used one is unloaded."""
    loads: int = 0
    """Models loaded because a request named one that was not loaded."""
    busy: int = 0
    """Slots reported processing (llama.cpp ``/slots``) besides the requests in flight."""
    slots: int = 4
    """Slots of a llama.cpp server (``/slots``, ``/props`` ``total_slots``)."""
    processing: int = 0
    """Chat requests being answered right now (llama.cpp counts them busy in ``/slots``)."""
    held: bool = False
    """While True, llama.cpp chat requests wait (processing) until released."""
    released: asyncio.Event = field(default_factory=asyncio.Event)
    embeddings: bool = False
    """llama.cpp started with ``--embeddings``: it serves embeddings (else they are a 501)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of this fake."""
        return f"http://{self.host}:{self.port}"

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

    def loaded_models(self) -> list[str]:
        """The models loaded now (the first model unless :attr:`loaded` says otherwise)."""
        return list(self.models[:1] if self.loaded is None else self.loaded)

    def use(self, model: str) -> None:
        """A request for ``model``: load it if it is neither loaded nor loading (counted in
        :attr:`loads`; the least recently used unloaded past :attr:`models_max`), else mark
        it used."""
        loaded = self.loaded_models()
        if model in loaded:
            loaded.remove(model)
        elif model in self.loading_models:  # already on its way: no new load
            self.loading_models.remove(model)
        else:
            self.loads += 1
        loaded.append(model)
        if self.models_max > 0:
            loaded = loaded[-self.models_max :]
        self.loaded = loaded

    def busy_slots(self) -> int:
        """Slots reported processing: the ``busy`` knob plus requests in flight, capped."""
        return min(self.slots, self.busy + self.processing)

    def snapshot(self) -> JSONDict:
        """The ``GET /_fake/state`` document."""
        return {
            "kind": self.kind,
            "port": self.port,
            "models": list(self.models),
            "fault": str(self.fault),
            "loading": self.is_loading(),
            "disconnects": self.disconnects,
            "tool_calls": self.tool_calls,
            "redirected_hits": self.redirected_hits,
            "router_mode": self.router_mode,
            "loaded": self.loaded_models(),
            "loads": self.loads,
            "busy": self.busy_slots(),
            "slots": self.slots,
            "held": self.held,
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
    wire: Wire = Wire.OPENAI
    """The error dialect of the kind's own endpoints."""
    wire_prefixes: tuple[tuple[str, Wire], ...] = ()
    """Paths under a prefix that speak another dialect (Ollama's ``/v1/`` speaks OpenAI's)."""

    def wire_at(self, path: str) -> Wire:
        """The error dialect spoken at ``path``."""
        for prefix, wire in self.wire_prefixes:
            if path.startswith(prefix):
                return wire
        return self.wire

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


STREAM_ERROR: contextvars.ContextVar[tuple[Any, str | None] | None] = contextvars.ContextVar(
    "fake_servers_stream_error", default=None
)
"""``(data, event)`` to send after the first content event of the stream being answered."""


class StreamWriter:
    """Writes a stream (SSE or NDJSON), honouring the ``slow``, ``drop`` and ``garbage`` faults.

    When :data:`STREAM_ERROR` is set for the request (by the ``echo-auth:stream-error`` fault),
    the first event sent with ``content=True`` is followed by that error event and the
    stream ends (:class:`StreamEnded`).
    """

    def __init__(
        self, state: FakeState, request: web.Request, fmt: Literal["sse", "ndjson"]
    ) -> None:
        self.state = state
        self.request = request
        self.fmt = fmt
        self.response = web.StreamResponse(status=200)
        self.sent = 0
        self.error_event = STREAM_ERROR.get()

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

    async def send(self, data: Any, event: str | None = None, *, content: bool = False) -> None:
        """Send one event (a JSON value, or a raw string such as ``[DONE]``).

        ``content``: the event carries generated output (text or a tool-call fragment).
        """
        await self._write(data, event)
        if content and self.error_event is not None:
            await self._write(*self.error_event)
            await self.response.write_eof()
            raise StreamEnded(self.response)

    async def _write(self, data: Any, event: str | None) -> None:
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


class StreamEnded(Exception):
    """Raised by :class:`StreamWriter` once it has ended a stream early on purpose."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("stream ended by a stream-error fault")
        self.response = response


class DropConnection(Exception):
    """Raised by a handler to close the connection without (the rest of) a response."""


def abort_connection(request: web.Request) -> None:
    """Close the client connection at once (no response, or a cut-off stream)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
