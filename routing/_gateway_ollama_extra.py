"""The rest of the Ollama door: ``POST /api/generate``, ``POST /api/embed``, ``POST
/api/embeddings``, ``POST /api/show``, ``GET /api/ps``, and ``GET``/``HEAD /``.

Open WebUI and other Ollama clients probe ``GET /`` ("Ollama is running"), list what is
loaded (``/api/ps``: the loaded models of every READY instance, each with ``owned_by`` naming
its ``provider:instance``), ask about a model (``/api/show``), generate and embed.  Requests
become OpenAI-shaped ones (:mod:`routing._ollama_generate`), are routed by model like every
other (``generate`` as chat, or as a text completion when ``raw``; ``embed`` as embeddings),
and the replies come back in Ollama's shapes, streams as NDJSON lines.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._decision import State
from routing._gateway_http import (
    POOL,
    RequestError,
    dumps,
    provider_header,
    route_info,
    session_header,
    stream_response,
)
from routing._gateway_ollama import _DONE_REASON, _final
from routing._ollama_generate import (
    embed_reply,
    embed_to_openai,
    embeddings_to_openai,
    generate_to_openai,
)
from routing._operations import Operation
from routing._request_read import read_json_object
from routing._request_specs import validate_request
from routing.errors import BackendError

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["add_routes"]

_DETAILS = {
    "parent_model": "",
    "format": "",
    "family": "",
    "families": [],
    "parameter_size": "",
    "quantization_level": "",
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _text(operation: Operation, item: dict[str, Any], whole: bool) -> tuple[str, str]:
    """The text and thinking of a reply (``whole``) or a chunk."""
    choices = item.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    if operation is Operation.COMPLETION:
        return str(choice.get("text") or ""), ""
    part = choice.get("message" if whole else "delta") or {}
    return str(part.get("content") or ""), str(part.get("reasoning_content") or "")


def _finish(item: dict[str, Any]) -> str | None:
    choices = item.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    finish = choice.get("finish_reason")
    return _DONE_REASON.get(str(finish), "stop") if finish else None


async def _generate(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        operation, openai_request = generate_to_openai(body)
        model = str(body["model"])
        info = route_info(request)
        info.model = model
        provider = provider_header(request)
        started = time.perf_counter()
        if not any(body.get(name) for name in ("prompt", "images", "suffix")):
            # Ollama's "load the model" request: nothing to generate, nothing to send.
            decision = await router.resolve(provider=provider, model=model)
            info.decided(decision, 0)
            final = _final(model, "load", None, started)
            return web.Response(
                body=dumps({**final, "response": ""}), content_type="application/json"
            )
        if openai_request["stream"]:
            return await _stream(request, router, operation, openai_request, provider, started)
        completion = await router.complete(
            openai_request, provider=provider, session=session_header(request), operation=operation
        )
        info.decided(completion.decision, completion.failovers)
        reply = completion.reply
        info.count_usage(reply.get("usage"))
        text, thinking = _text(operation, reply, whole=True)
        final = _final(
            str(reply.get("model") or model), _finish(reply) or "stop", reply.get("usage"), started
        )
        out = {
            "model": final.pop("model"),
            "created_at": final.pop("created_at"),
            "response": text,
            **({"thinking": thinking} if thinking else {}),
            **final,
        }
        return web.Response(body=dumps(out), content_type="application/json")


async def _stream(
    request: web.Request,
    router: Router,
    operation: Operation,
    body: dict[str, Any],
    provider: str | None,
    started: float,
) -> web.StreamResponse:
    # The door's own request asks for usage: the final line reports the token counts.
    body = {**body, "stream_options": {"include_usage": True}}
    handle = await router.open_stream(
        body, provider=provider, session=session_header(request), operation=operation
    )
    try:
        info = route_info(request)
        info.decided(handle.decision, handle.failovers)
        response = await stream_response(request, "application/x-ndjson")
        model, finish, usage = str(body["model"]), None, None
        try:
            async for chunk in handle:
                model = chunk.get("model") or model
                usage = chunk.get("usage") or usage
                finish = _finish(chunk) or finish
                text, thinking = _text(operation, chunk, whole=False)
                if text or thinking:
                    line: dict[str, Any] = {
                        "model": model,
                        "created_at": _now(),
                        "response": text,
                        "done": False,
                    }
                    if thinking:
                        line["thinking"] = thinking
                    await response.write(dumps(line) + b"\n")
        except BackendError as exc:  # after the first byte: in-band, as Ollama does
            await response.write(dumps({"error": str(exc)}) + b"\n")
        else:
            info.count_usage(usage)
            final = _final(model, finish or "stop", usage, started)
            await response.write(dumps({**final, "response": ""}) + b"\n")
        await response.write_eof()
        return response
    finally:
        await handle.aclose()


async def _embed(request: web.Request) -> web.Response:
    return await _embedding(request, legacy=False)


async def _embeddings(request: web.Request) -> web.Response:
    return await _embedding(request, legacy=True)


async def _embedding(request: web.Request, *, legacy: bool) -> web.Response:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        openai_request = embeddings_to_openai(body) if legacy else embed_to_openai(body)
        info = route_info(request)
        info.model = str(body["model"])
        started = time.perf_counter()
        completion = await router.complete(
            openai_request,
            provider=provider_header(request),
            session=session_header(request),
            operation=Operation.EMBEDDING,
        )
        info.decided(completion.decision, completion.failovers)
        info.count_usage(completion.reply.get("usage"))
        vectors, tokens = embed_reply(completion.reply)
        if legacy:
            out: dict[str, Any] = {"embedding": vectors[0] if vectors else []}
        else:
            out = {
                "model": completion.reply.get("model") or body["model"],
                "embeddings": vectors,
                "total_duration": int((time.perf_counter() - started) * 1e9),
                "load_duration": 0,
                "prompt_eval_count": tokens,
            }
        return web.Response(body=dumps(out), content_type="application/json")


async def _show(request: web.Request) -> web.Response:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        validate_request("ollama.show", body)
        name = body.get("model") or body.get("name")
        if not name:
            raise RequestError(
                400,
                "Missing required parameter: 'model'.",
                code="missing_required_parameter",
                param="model",
            )
        info = route_info(request)
        info.model = str(name)
        decision = await router.resolve(provider=provider_header(request), model=str(name))
        info.decided(decision, 0)
    # What the gateway knows of a model: where it is served, nothing of its files.
    out = {
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": dict(_DETAILS),
        "model_info": {},
        "capabilities": ["completion"],
        "modified_at": _now(),
    }
    return web.Response(body=dumps(out), content_type="application/json")


async def _ps(request: web.Request) -> web.Response:
    async with request.app[POOL].use() as router:
        await router.models()  # fresh probes of every instance
        rows = router.status()
    models = [
        {
            "name": model,
            "model": model,
            "size": 0,
            "digest": "",
            "details": dict(_DETAILS),
            "expires_at": None,
            "size_vram": 0,
            "owned_by": row["instance"],
        }
        for row in rows
        if row["state"] == State.READY
        for model in row["loaded"]
    ]
    return web.Response(body=dumps({"models": models}), content_type="application/json")


async def _root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running", content_type="text/plain")


def add_routes(app: web.Application, *, expect_handler: Any = None) -> None:
    """Add generate, embed, show, ps and the root probe to ``app``'s Ollama door."""
    app.router.add_post("/api/generate", _generate, expect_handler=expect_handler)
    app.router.add_post("/api/embed", _embed, expect_handler=expect_handler)
    app.router.add_post("/api/embeddings", _embeddings, expect_handler=expect_handler)
    app.router.add_post("/api/show", _show, expect_handler=expect_handler)
    app.router.add_get("/api/ps", _ps)
    app.router.add_get("/", _root)  # HEAD / too (aiohttp adds it)
