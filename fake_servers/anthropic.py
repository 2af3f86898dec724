"""A fake Anthropic Messages API: ``POST /v1/messages`` (JSON or SSE events), ``GET /v1/models``.

Every ``/v1`` endpoint demands an ``x-api-key`` header, or ``Authorization: Bearer KEY`` (which
the ``anthropic`` client sends since its 2.x versions): any non-empty key, or exactly ``api_key``
when one is configured. ``anthropic-version`` is accepted, not required.

Replies follow :func:`fake_servers._inputs.plan_reply`: tool calls are ``tool_use`` blocks
(``stop_reason: "tool_use"``); streamed, each is a ``content_block_start`` with ``{"type":
"tool_use", "id", "name", "input": {}}``, ``content_block_delta`` events with ``input_json_delta``
(an empty ``partial_json`` first, as Anthropic sends, then fragments of 3-5 characters) and a
``content_block_stop``. A text cut at one of ``stop_sequences`` ends with ``stop_reason:
"stop_sequence"`` and ``stop_sequence`` set.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fake_servers._core import (
    FakeState,
    JSONDict,
    KindSpec,
    StreamWriter,
    json_response,
    new_id,
    prompt_tokens,
    read_json,
)
from fake_servers._inputs import Reply, Shape, fragments, plan_reply
from fake_servers._wire import Wire, error_body


def error(status: int, message: str, error_type: str = "") -> web.Response:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
    return json_response(error_body(Wire.ANTHROPIC, status, message), status=status)


def not_found(request: web.Request) -> web.Response:
    """Anthropic's answer to an unknown path."""
    return error(404, "Not Found")


def auth(state: FakeState, request: web.Request) -> web.Response | None:
    """401 unless a (matching) ``x-api-key`` or bearer key is given on a ``/v1`` endpoint."""
    if not request.path.startswith("/v1/"):
        return None
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    keys = [request.headers.get("x-api-key", "").strip()]
    if scheme.lower() == "bearer":
        keys.append(bearer.strip())
    if any(key and (state.api_key is None or key == state.api_key) for key in keys):
        return None
    return error(401, "invalid x-api-key")


def _display_name(model: str) -> str:
    return " ".join(part.capitalize() for part in model.split("-"))


def _model_entry(model: str) -> JSONDict:
    return {
        "type": "model",
        "id": model,
        "display_name": _display_name(model),
        "created_at": "2024-10-22T00:00:00Z",
    }


def _system_tokens(system: Any) -> int:
    if isinstance(system, str):
        return len(system.split())
    if isinstance(system, list):
        return sum(len(str(b.get("text", "")).split()) for b in system if isinstance(b, dict))
    return 0


def routes(state: FakeState) -> list[web.RouteDef]:
    """The routes of a fake Anthropic server."""

    async def models(request: web.Request) -> web.Response:
        data = [_model_entry(m) for m in state.models]
        return json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def model(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in state.models:
            return error(404, f"model: {name}")
        return json_response(_model_entry(name))

    async def messages(request: web.Request) -> web.StreamResponse:
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(400, problem or "request body must be a JSON object")
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                return error(400, f"{required}: Field required")
        if not isinstance(body["messages"], list):
            return error(400, "messages: Input should be a valid list")
        requested = body["model"]
        if requested not in state.models:
            return error(404, f"model: {requested}")
        shown = state.reported(str(requested))
        reply = plan_reply(state, shown, Shape.ANTHROPIC, body, lambda: new_id("toolu_01", 22))
        n_in = prompt_tokens(body["messages"]) + _system_tokens(body.get("system"))
        message: JSONDict = {
            "id": new_id("msg_", 24),
            "type": "message",
            "role": "assistant",
            "model": shown,
            "content": _content(reply),
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": {"input_tokens": n_in, "output_tokens": reply.tokens},
        }
        if not body.get("stream"):
            return json_response(message)
        return await _stream(request, state, message, reply)

    async def count_tokens(request: web.Request) -> web.Response:
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(400, problem or "request body must be a JSON object")
        if not isinstance(body.get("messages"), list):
            return error(400, "messages: Field required")
        if body.get("model") not in state.models:
            return error(404, f"model: {body.get('model')}")
        n_in = prompt_tokens(body["messages"]) + _system_tokens(body.get("system"))
        return json_response({"input_tokens": n_in})

    return [
        web.get("/v1/models", models),
        web.get("/v1/models/{name:.+}", model),
        web.post("/v1/messages", messages),
        web.post("/v1/messages/count_tokens", count_tokens),
    ]


def _content(reply: Reply) -> list[JSONDict]:
    if not reply.tool_calls:
        return [{"type": "text", "text": reply.text}]
    return [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in reply.tool_calls
    ]


def _stop_reason(reply: Reply) -> str:
    if reply.tool_calls:
        return "tool_use"
    return "end_turn" if reply.stop_sequence is None else "stop_sequence"


def _blocks(reply: Reply) -> list[tuple[JSONDict, list[JSONDict]]]:
    """Each streamed content block: its ``content_block_start`` block and its deltas."""
    if not reply.tool_calls:
        deltas = [{"type": "text_delta", "text": piece} for piece in reply.pieces]
        return [({"type": "text", "text": ""}, deltas)]
    return [
        (
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in ["", *fragments(call.arguments_json)]
            ],
        )
        for call in reply.tool_calls
    ]


async def _stream(
    request: web.Request, state: FakeState, message: JSONDict, reply: Reply
) -> web.StreamResponse:
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1},
    }
    writer = StreamWriter(state, request, "sse")
    await writer.start()

    async def send(event: str, data: JSONDict, content: bool = False) -> None:
        await writer.send({"type": event, **data}, event=event, content=content)

    await send("message_start", {"message": start})
    for index, (block, deltas) in enumerate(_blocks(reply)):
        await send("content_block_start", {"index": index, "content_block": block})
        if index == 0:
            await send("ping", {})
        for delta in deltas:
            await send("content_block_delta", {"index": index, "delta": delta}, content=True)
        await send("content_block_stop", {"index": index})
    await send(
        "message_delta",
        {
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": reply.stop_sequence},
            "usage": {"output_tokens": reply.tokens},
        },
    )
    await send("message_stop", {})
    return await writer.finish()


SPEC = KindSpec(
    kind="anthropic",
    default_models=("claude-3-5-haiku-latest",),
    routes=routes,
    error=error,
    not_found=not_found,
    chat_paths=frozenset({"/v1/messages"}),
    auth=auth,
    wire=Wire.ANTHROPIC,
)
