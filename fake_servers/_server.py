"""The :class:`FakeServer`: one kind of fake on one port, with faults and a request log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from fake_servers import anthropic, llamacpp, ollama, openai_style
from fake_servers._core import (
    KINDS,
    STREAM_ERROR,
    DropConnection,
    FakeState,
    Fault,
    Handler,
    KindSpec,
    LoggedRequest,
    StreamEnded,
    abort_connection,
    json_response,
    parse_fault,
)
from fake_servers._faults import REDIRECT_TARGET, answer_fault, stream_error

_SPECS: dict[str, KindSpec] = {
    "llamacpp": llamacpp.SPEC,
    "ollama": ollama.SPEC,
    "lmstudio": openai_style.LMSTUDIO_SPEC,
    "openai": openai_style.OPENAI_SPEC,
    "anthropic": anthropic.SPEC,
}

_SHUTDOWN_TIMEOUT = 0.25  # seconds granted to in-flight handlers when stopping


class FakeServer:
    """A fake llama.cpp / Ollama / LM Studio / OpenAI / Anthropic server on ``host:port``.

    ``port=0`` picks a free port at :meth:`start`; afterwards :attr:`port` and :attr:`url`
    are the real ones, and a later :meth:`start` (after :meth:`stop`) reuses that port.
    ``models`` defaults to a typical model of the kind; for llama.cpp the first model is the
    loaded one, which answers requests naming any unknown model.
    """

    def __init__(
        self,
        kind: str,
        models: Sequence[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fault: str | Fault | None = None,
        loading_seconds: float = 0.0,
        api_key: str | None = None,
        tool_calls: int = 0,
        router_mode: bool = False,
        loaded: Sequence[str] | None = None,
        embeddings: bool = False,
    ) -> None:
        if kind not in _SPECS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        self._spec = _SPECS[kind]
        chosen = list(models) if models else list(self._spec.default_models)
        if self._spec.canonical is not None:
            chosen = [self._spec.canonical(m) for m in chosen]
        self._state = FakeState(
            kind=kind,
            models=chosen,
            host=host,
            port=port,
            fault=parse_fault(fault),
            api_key=api_key,
            tool_calls=_tool_call_setting(tool_calls),
            embeddings=embeddings,
        )
        self._loading_seconds = loading_seconds
        self._runner: web.AppRunner | None = None
        if router_mode:
            self.set_router_mode(loaded=loaded)
        elif loaded is not None:
            self.set_loaded(loaded)

    # -- properties -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The kind of server faked (one of :data:`fake_servers.KINDS`)."""
        return self._state.kind

    @property
    def models(self) -> list[str]:
        """The models served, first one first (the loaded one for llama.cpp)."""
        return self._state.models

    @property
    def host(self) -> str:
        """The host the server binds to."""
        return self._state.host

    @property
    def port(self) -> int:
        """The bound port (0 before the first :meth:`start` when asked for port 0)."""
        return self._state.port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        return f"http://{self._state.host}:{self._state.port}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """The request log (control endpoints under ``/_fake/`` are not logged)."""
        return self._state.requests

    @property
    def fault(self) -> Fault:
        """The current fault."""
        return self._state.fault

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._runner is not None

    def __repr__(self) -> str:
        return f"<FakeServer {self.kind} {self.url} models={self.models} fault={self.fault}>"

    # -- control ----------------------------------------------------------------------------
    def set_fault(self, fault: str | Fault | None) -> None:
        """Switch to another fault (``none``, ``hang``, ``slow:MS``, ...) at run time."""
        self._state.fault = parse_fault(fault)

    def set_tool_calls(self, count: int) -> None:
        """Answer every request offering tools with ``count`` tool calls (0: only requests
        saying ``CALL_TOOLS``)."""
        self._state.tool_calls = _tool_call_setting(count)

    def state(self) -> dict[str, Any]:
        """The ``GET /_fake/state`` document (fault, loading, counters, settings)."""
        return self._state.snapshot()

    def set_loaded(self, models: Sequence[str]) -> None:
        """Which models are loaded (Ollama's ``/api/ps``, llama.cpp router mode's status);
        each must be one the fake serves (``ValueError``)."""
        chosen = [self._spec.canonical(m) if self._spec.canonical else m for m in models]
        unknown = [m for m in chosen if m not in self._state.models]
        if unknown or isinstance(models, str):
            raise ValueError(f"loaded: {unknown or models!r} not among {self._state.models}")
        self._state.loaded = chosen

    def set_router_mode(
        self,
        enabled: bool = True,
        *,
        loaded: Sequence[str] | None = None,
        loading: Sequence[str] = (),
        models_max: int = 0,
    ) -> None:
        """llama.cpp router mode: every model listed with its status, ``loaded`` ones
        loaded (default: none), ``loading`` ones loading; a chat loads what it names,
        unloading the least recently used past ``models_max`` (0: no limit)."""
        if self.kind != "llamacpp":
            raise ValueError("router mode is a llama.cpp server mode")
        if isinstance(models_max, bool) or not isinstance(models_max, int) or models_max < 0:
            raise ValueError(f"models_max must be a whole number >= 0, not {models_max!r}")
        self.set_loaded(loaded or [])
        unknown = [m for m in loading if m not in self._state.models]
        if unknown or isinstance(loading, str):
            raise ValueError(f"loading: {unknown or loading!r} not among {self._state.models}")
        self._state.router_mode = enabled
        self._state.loading_models = list(loading)
        self._state.models_max = models_max
        if not enabled:
            self._state.loaded = None

    def set_busy(self, busy: int, slots: int | None = None) -> None:
        """Report ``busy`` slots processing (of ``slots``, default unchanged) in ``/slots``,
        besides the requests really in flight."""
        for name, value in (("busy", busy), ("slots", slots)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        self._state.busy = busy
        if slots is not None:
            self._state.slots = slots

    def hold(self, held: bool = True) -> None:
        """Hold llama.cpp chat requests open (they wait, counted busy) until ``hold(False)``."""
        self._state.held = held
        if held:
            self._state.released.clear()
        else:
            self._state.released.set()

    def set_loading(self, loading: bool) -> None:
        """Pretend to load the model (503 answers) until ``set_loading(False)``."""
        self._state.loading_forced = loading
        if not loading:
            self._state.loading_until = 0.0

    def clear(self) -> None:
        """Forget logged requests and recorded handler errors."""
        self._state.requests.clear()
        self._state.errors.clear()

    def check(self) -> None:
        """Re-raise the first exception raised inside a handler, if any (then forget it)."""
        if self._state.errors:
            error = self._state.errors[0]
            self._state.errors.clear()
            raise error

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> FakeServer:
        """Bind and serve in the running event loop; return ``self``."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already running")
        self._state.stopping = asyncio.Event()
        if self._loading_seconds > 0:
            self._state.loading_until = time.monotonic() + self._loading_seconds
        runner = web.AppRunner(
            self._build_app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._state.host, self._state.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._state.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop serving; hung requests are released and their connections closed."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._state.stopping.set()
        await runner.cleanup()

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the aiohttp application ------------------------------------------------------------
    def _build_app(self) -> web.Application:
        # Real servers take large prompts (llama.cpp has no body limit): so does the fake.
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes(
            [
                web.get("/_fake/requests", self._get_requests),
                web.delete("/_fake/requests", self._delete_requests),
                web.post("/_fake/fault", self._post_fault),
                web.post("/_fake/loading", self._post_loading),
                web.get("/_fake/state", self._get_state),
                web.post("/_fake/tool-calls", self._post_tool_calls),
                web.post("/_fake/router-mode", self._post_router_mode),
                web.post("/_fake/loaded", self._post_loaded),
                web.post("/_fake/busy", self._post_busy),
                web.post("/_fake/hold", self._post_hold),
                web.route("*", REDIRECT_TARGET, self._redirected),
            ]
        )
        app.add_routes(self._spec.routes(self._state))
        app.on_response_prepare.append(self._add_headers)
        return app

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if self._spec.server_header is not None:
            response.headers["Server"] = self._spec.server_header

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)
        state, spec = self._state, self._spec
        body = await self._log(request)
        try:
            fault = state.fault
            if fault.name == "hang":
                await state.stopping.wait()
                raise DropConnection
            if fault.name == "slow":
                await asyncio.sleep(fault.slow_ms / 1000)
            is_chat = request.path in spec.chat_paths
            streaming = is_chat and spec.wants_stream(request.path, body)
            if state.is_loading():
                return spec.error(503, "Loading model", "unavailable_error")
            if fault.name == "error500":
                return spec.error(500, "fake internal server error", "server_error")
            if (answer := answer_fault(spec, state, request, body, streaming)) is not None:
                return answer
            if fault.name == "garbage" and not streaming:
                return web.Response(text="<html>this is not JSON {{{", content_type="text/html")
            if fault.name == "drop" and is_chat and not streaming:
                raise DropConnection
            if spec.auth is not None and (denied := spec.auth(state, request)) is not None:
                return denied
            token = STREAM_ERROR.set(stream_error(spec, state, request, streaming))
            try:
                return await handler(request)
            finally:
                STREAM_ERROR.reset(token)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return spec.not_found(request)
        except web.HTTPException:
            raise
        except StreamEnded as ended:
            return ended.response
        except DropConnection:
            abort_connection(request)
            return web.Response(status=500)
        except ConnectionError:
            # The client went away mid-response (e.g. it stopped reading a stream): not a
            # fault of the fake, so it is counted, not recorded for check().
            state.disconnects += 1
            return web.Response(status=499)
        except Exception as exc:
            state.errors.append(exc)
            return spec.error(500, f"fake server handler failed: {exc!r}", "server_error")

    async def _log(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._state.requests.append(
            LoggedRequest(
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                json=body,
                time=time.time(),
            )
        )
        return body

    async def _get_requests(self, request: web.Request) -> web.Response:
        return json_response(self._state.requests)

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self._state.requests.clear()
        return json_response({"cleared": True})

    async def _get_state(self, request: web.Request) -> web.Response:
        return json_response(self._state.snapshot())

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_fault(payload["fault"])
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad fault request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _post_tool_calls(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_tool_calls(payload["count"])
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad tool-calls request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _post_router_mode(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_router_mode(
                bool(payload.get("router_mode", True)),
                loaded=payload.get("loaded"),
                loading=payload.get("loading") or (),
                models_max=payload.get("models_max", 0),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return json_response({"error": f"bad router-mode request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _post_loaded(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_loaded(payload["loaded"])
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad loaded request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _post_busy(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_busy(payload["busy"], payload.get("slots"))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad busy request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _post_hold(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.hold(bool(payload["hold"]))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad hold request: {exc}"}, status=400)
        return json_response(self._state.snapshot())

    async def _redirected(self, request: web.Request) -> web.Response:
        await self._log(request)
        self._state.redirected_hits += 1
        return json_response({"redirected": True})

    async def _post_loading(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            self.set_loading(bool(payload["loading"]))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f"bad loading request: {exc}"}, status=400)
        return json_response(self._state.snapshot())


def _tool_call_setting(count: object) -> int:
    """A valid ``tool_calls`` setting (``ValueError`` otherwise)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"tool_calls must be a whole number >= 0, not {count!r}")
    return count


async def start_fake(
    kind: str,
    models: Sequence[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    fault: str | Fault | None = None,
    loading_seconds: float = 0.0,
    api_key: str | None = None,
    tool_calls: int = 0,
    router_mode: bool = False,
    loaded: Sequence[str] | None = None,
    embeddings: bool = False,
) -> FakeServer:
    """Start a fake of ``kind`` in the running event loop and return it (``await .stop()``)."""
    server = FakeServer(
        kind,
        models,
        host=host,
        port=port,
        fault=fault,
        loading_seconds=loading_seconds,
        api_key=api_key,
        tool_calls=tool_calls,
        router_mode=router_mode,
        loaded=loaded,
        embeddings=embeddings,
    )
    return await server.start()
