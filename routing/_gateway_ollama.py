"""The gateway's Ollama door: ``POST /api/chat``, ``GET /api/tags``, ``GET /api/version``.

Ollama clients (``ollama.Client(host=gateway_url)``) talk to the gateway as to an Ollama
server, whatever backend really serves the model: the Ollama request becomes an OpenAI one,
goes through the same router, and the OpenAI-shaped reply or chunks come back as Ollama's
JSON object or NDJSON lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._gateway_http import (
    POOL,
    dumps,
    provider_header,
    route_info,
    session_header,
    stream_response,
)
from routing._ollama_request import ollama_chat_to_openai
from routing._request_read import read_json_object
from routing._request_specs import validate_request
from routing.errors import BackendError

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["OLLAMA_VERSION", "add_routes", "to_ollama_reply", "to_openai_request"]

#: The version ``/api/version`` reports (clients only check that the server answers).
OLLAMA_VERSION = "0.9.0"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def to_openai_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An Ollama ``/api/chat`` body as an OpenAI chat-completions body.

    Raises :class:`~routing.errors.InvalidRequest` (a 400 naming the field) when the body
    does not follow Ollama's API; see :mod:`routing._ollama_request` for what maps where.
    """
    validate_request("ollama.chat", body)
    return ollama_chat_to_openai(body)


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                arguments = {}
        out.append({"function": {"name": function.get("name"), "arguments": arguments or {}}})
    return out


def _final(model: str, finish: str | None, usage: Any, started: float) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    return {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": finish or "stop",
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": 0,
        "prompt_eval_count": usage.get("prompt_tokens", 0),
        "prompt_eval_duration": 0,
        "eval_count": usage.get("completion_tokens", 0),
        "eval_duration": 0,
    }


def to_ollama_reply(reply: Mapping[str, Any], model: str, started: float) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as Ollama's non-streaming ``/api/chat`` reply."""
    choice = (reply.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    out_message: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if calls := _tool_calls(message.get("tool_calls")):
        out_message["tool_calls"] = calls
    final = _final(
        str(reply.get("model") or model),
        _DONE_REASON.get(str(choice.get("finish_reason") or "stop"), "stop"),
        reply.get("usage"),
        started,
    )
    return {
        "model": final.pop("model"),
        "created_at": final.pop("created_at"),
        "message": out_message,
        **final,
    }


async def _chat(request: web.Request) -> web.StreamResponse:
    pool = request.app[POOL]
    async with pool.use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        openai_request = to_openai_request(body)
        model = openai_request["model"]
        info = route_info(request)
        info.model = model
        provider = provider_header(request)
        started = time.perf_counter()
        if openai_request["stream"]:
            return await _stream_ndjson(request, router, openai_request, provider, started)
        completion = await router.complete(
            openai_request, provider=provider, session=session_header(request)
        )
        info.decided(completion.decision, completion.failovers)
        info.count_usage(completion.reply.get("usage"))
        reply = to_ollama_reply(completion.reply, model, started)
        return web.Response(body=dumps(reply), content_type="application/json")


class ToolCallAssembler:
    """Reassembles streamed OpenAI tool-call deltas by ``index`` into whole calls.

    OpenAI-style servers send a call's name first and its arguments in fragments, several
    calls interleaved by ``index``; Ollama clients expect each call whole, once.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: Any) -> None:
        """Fold one chunk's ``delta.tool_calls`` in."""
        for position, delta in enumerate(deltas if isinstance(deltas, list) else ()):
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", position)
            call = self._calls.setdefault(
                index if isinstance(index, int) else position, {"name": "", "arguments": ""}
            )
            function = delta.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call["name"] += function["name"]
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    call["arguments"] += arguments
                elif isinstance(arguments, dict):
                    call["arguments"] = arguments

    def pending(self) -> bool:
        """True when calls have been started and not yet taken."""
        return bool(self._calls)

    def take(self) -> list[dict[str, Any]]:
        """The calls so far, whole, in Ollama's shape (arguments as an object); then reset."""
        out = [
            {"function": {"name": c["name"], "arguments": _arguments(c["arguments"])}}
            for _, c in sorted(self._calls.items())
        ]
        self._calls.clear()
        return out


def _arguments(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value or "{}")
    except (ValueError, RecursionError):
        return {"_raw": value}
    return parsed if isinstance(parsed, dict) else {"_raw": value}


async def _stream_ndjson(
    request: web.Request, router: Router, body: dict[str, Any], provider: str | None, started: float
) -> web.StreamResponse:
    # The door's own request asks for usage: Ollama's final line reports the token counts.
    body = {**body, "stream_options": {"include_usage": True}}
    handle = await router.open_stream(body, provider=provider, session=session_header(request))
    try:
        route_info(request).decided(handle.decision, handle.failovers)
        response = await stream_response(request, "application/x-ndjson")
        model, finish, usage = body["model"], None, None
        calls = ToolCallAssembler()
        try:
            async for chunk in handle:
                model = chunk.get("model") or model
                usage = chunk.get("usage") or usage
                choices = chunk.get("choices") or [{}]
                choice = choices[0] if isinstance(choices[0], dict) else {}
                delta = choice.get("delta") or {}
                finish = choice.get("finish_reason") or finish
                calls.add(delta.get("tool_calls"))
                content = delta.get("content") or ""
                if content:
                    line = {
                        "model": model,
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": content},
                        "done": False,
                    }
                    await response.write(dumps(line) + b"\n")
        except BackendError as exc:  # after the first byte: in-band, as Ollama does
            await response.write(dumps({"error": str(exc)}) + b"\n")
        else:
            if calls.pending():  # whole calls in one line before the final one, as Ollama
                line = {
                    "model": model,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "tool_calls": calls.take()},
                    "done": False,
                }
                await response.write(dumps(line) + b"\n")
            route_info(request).count_usage(usage)
            final = _final(model, _DONE_REASON.get(finish or "stop", "stop"), usage, started)
            final["message"] = {"role": "assistant", "content": ""}
            await response.write(dumps(final) + b"\n")
        await response.write_eof()
        return response
    finally:
        await handle.aclose()


# OpenAI finish_reason -> Ollama done_reason (Ollama says "stop" after tool calls too).
_DONE_REASON = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "content_filter": "stop",
    "function_call": "stop",
}


async def _tags(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    async with pool.use() as router:
        pairs = await router.models()
    seen: set[str] = set()
    models = []
    stamp = _now()
    for model, _key in pairs:
        if model in seen:  # Ollama clients pick by name: one entry per name
            continue
        seen.add(model)
        models.append(
            {
                "name": model,
                "model": model,
                "modified_at": stamp,
                "size": 0,
                "digest": "",
                "details": {
                    "format": "",
                    "family": "",
                    "parameter_size": "",
                    "quantization_level": "",
                },
            }
        )
    return web.Response(body=dumps({"models": models}), content_type="application/json")


async def _version(request: web.Request) -> web.Response:
    return web.Response(body=dumps({"version": OLLAMA_VERSION}), content_type="application/json")


def add_routes(app: web.Application, *, expect_handler: Any = None) -> None:
    """Add the Ollama door to ``app`` (whose :data:`POOL` holds the router pool)."""
    app.router.add_post("/api/chat", _chat, expect_handler=expect_handler)
    app.router.add_get("/api/tags", _tags)
    app.router.add_get("/api/version", _version)
