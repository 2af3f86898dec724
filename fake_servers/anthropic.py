"""A fake Anthropic Messages API: ``POST /v1/messages`` (JSON or SSE events), ``GET /v1/models``.

Every ``/v1`` endpoint demands an ``x-api-key`` header (any non-empty key, or exactly
``api_key`` when one is configured); ``anthropic-version`` is accepted, not required.
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
    split_reply,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    500: "api_error",
    503: "overloaded_error",
}


def error(status: int, message: str, error_type: str = "") -> web.Response:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ERROR_TYPES.get(status, "api_error")
    return json_response(
        {"type": "error", "error": {"type": kind, "message": message}}, status=status
    )


def not_found(request: web.Request) -> web.Response:
    """Anthropic's answer to an unknown path."""
    return error(404, "Not Found")


def auth(state: FakeState, request: web.Request) -> web.Response | None:
    """401 unless a (matching) ``x-api-key`` is given on a ``/v1`` endpoint."""
    if not request.path.startswith("/v1/"):
        return None
    key = request.headers.get("x-api-key", "").strip()
    if key and (state.api_key is None or key == state.api_key):
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
        pieces = split_reply(state.reply_text(shown))
        n_in = prompt_tokens(body["messages"]) + _system_tokens(body.get("system"))
        message: JSONDict = {
            "id": new_id("msg_", 24),
            "type": "message",
            "role": "assistant",
            "model": shown,
            "content": [{"type": "text", "text": "".join(pieces)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": n_in, "output_tokens": len(pieces)},
        }
        if not body.get("stream"):
            return json_response(message)
        return await _stream(request, state, message, pieces)

    return [
        web.get("/v1/models", models),
        web.get("/v1/models/{name:.+}", model),
        web.post("/v1/messages", messages),
    ]


async def _stream(
    request: web.Request, state: FakeState, message: JSONDict, pieces: list[str]
) -> web.StreamResponse:
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1},
    }
    writer = StreamWriter(state, request, "sse")
    await writer.start()

    async def send(event: str, data: JSONDict) -> None:
        await writer.send({"type": event, **data}, event=event)

    await send("message_start", {"message": start})
    await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    await send("ping", {})
    for piece in pieces:
        await send(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
        )
    await send("content_block_stop", {"index": 0})
    await send(
        "message_delta",
        {
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(pieces)},
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
)
