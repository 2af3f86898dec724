"""The OpenAI door beyond chat: ``POST /v1/embeddings``, ``POST /v1/completions`` and
``GET /v1/models/{id}`` (asked by an Anthropic client: answered by
:func:`routing._gateway_anthropic.get_model`).

Embeddings and text completions (Continue's retrieval and autocomplete, the ``openai``
SDK's ``embeddings.create`` and ``completions.create``) are routed by model like chat, to an
instance that can do them (operations ``embedding`` and ``completion``: one that answered
``not_supported`` is skipped from then on); OpenAI-style servers get the request as sent and
their reply is forwarded as sent, Ollama servers get it converted (``/api/embed``,
``/api/generate`` with ``raw``).  A streamed completion is SSE ``data:`` chunks and ``data:
[DONE]``; a failure after the first byte an in-band ``data: {"error": ...}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._gateway_anthropic import get_model
from routing._gateway_http import (
    POOL,
    RequestError,
    anthropic_door,
    dumps,
    provider_header,
    route_info,
    session_header,
    stream_response,
)
from routing._operations import Operation
from routing._request_read import read_json_object
from routing.errors import BackendError

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["add_routes"]

_CREATED = web.AppKey("routing.openai_extra.created", int)


async def _embeddings(request: web.Request) -> web.StreamResponse:
    return await _once(request, Operation.EMBEDDING)


async def _completions(request: web.Request) -> web.StreamResponse:
    return await _once(request, Operation.COMPLETION)


async def _once(request: web.Request, operation: Operation) -> web.StreamResponse:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        info = route_info(request)
        info.model = body.get("model")
        provider = provider_header(request)
        if operation is Operation.COMPLETION and body.get("stream"):
            return await _stream(request, router, body, provider)
        completion = await router.complete(
            body, provider=provider, session=session_header(request), operation=operation
        )
        info.decided(completion.decision, completion.failovers)
        info.count_usage(completion.reply.get("usage"))
        raw = completion.raw
        return web.Response(
            body=dumps(completion.reply) if raw is None else raw, content_type="application/json"
        )


async def _stream(
    request: web.Request, router: Router, body: dict[str, Any], provider: str | None
) -> web.StreamResponse:
    handle = await router.open_stream(
        body, provider=provider, session=session_header(request), operation=Operation.COMPLETION
    )
    try:
        info = route_info(request)
        info.decided(handle.decision, handle.failovers)
        response = await stream_response(request, "text/event-stream")
        usage = None
        try:
            async for chunk in handle:
                usage = chunk.get("usage") or usage
                await response.write(b"data: " + dumps(chunk) + b"\n\n")
        except BackendError as exc:  # after the first byte: in-band, never retried
            error = {"message": str(exc), "type": "server_error", "code": "backend_error"}
            await response.write(b"data: " + dumps({"error": error}) + b"\n\n")
        else:
            await response.write(b"data: [DONE]\n\n")
        info.count_usage(usage)
        await response.write_eof()
        return response
    finally:
        await handle.aclose()


async def _model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if anthropic_door(request):
        return await get_model(request, name)
    async with request.app[POOL].use() as router:
        pairs = await router.models()
    for model, key in pairs:
        if model == name:
            route_info(request).instance = key
            return web.Response(
                body=dumps(
                    {
                        "id": model,
                        "object": "model",
                        "created": request.app[_CREATED],
                        "owned_by": key,
                    }
                ),
                content_type="application/json",
            )
    raise RequestError(
        404,
        f"The model '{name}' does not exist on any READY instance",
        code="model_not_found",
        param="model",
    )


def add_routes(app: web.Application, *, expect_handler: Any = None) -> None:
    """Add embeddings, text completions and one-model lookup to the OpenAI door."""
    app[_CREATED] = int(time.time())
    app.router.add_post("/v1/embeddings", _embeddings, expect_handler=expect_handler)
    app.router.add_post("/v1/completions", _completions, expect_handler=expect_handler)
    app.router.add_get("/v1/models/{model:.+}", _model)
