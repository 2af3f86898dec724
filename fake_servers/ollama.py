"""A fake Ollama server: the native ``/api`` (NDJSON streams) and the OpenAI-compatible ``/v1``.

Names follow Ollama: ``llama3`` means ``llama3:latest``; the tag list shows names with their
tag. A model it does not have is a 404 ``{"error": "model 'x' not found"}``.

Replies follow :func:`fake_servers._inputs.plan_reply`. Tool calls come whole, in one line:
``message.tool_calls: [{"function": {"name", "arguments": {...}}}]`` with ``content: ""`` (a
stream sends that line, then the final ``done`` line), and ``done_reason`` stays ``"stop"``.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
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
from fake_servers._extra_ops import ollama_embed_handler
from fake_servers._inputs import Shape, plan_reply
from fake_servers._openai_chat import OpenAIFlavor, chat_handler, openai_error
from fake_servers._wire import Wire, error_body

VERSION = "0.6.5"


def canonical(name: str) -> str:
    """``llama3`` → ``llama3:latest``; names with a tag are kept."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def error(status: int, message: str, error_type: str = "") -> web.Response:
    """Ollama's error shape: ``{"error": "message"}``."""
    return json_response(error_body(Wire.OLLAMA, status, message), status=status)


def not_found(request: web.Request) -> web.Response:
    """Ollama's (Gin's) answer to an unknown path."""
    return web.Response(status=404, text="404 page not found", content_type="text/plain")


def _resolve(state: FakeState, requested: str | None) -> str | None:
    if not requested:
        return None
    wanted = canonical(requested)
    return wanted if wanted in state.models else None


def _not_found_model(name: str | None) -> web.Response:
    return error(404, f"model '{name}' not found")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _digest(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()


def _details(model: str) -> JSONDict:
    family = model.split(":", 1)[0].rsplit("/", 1)[-1].rstrip("0123456789.") or "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    }


def _model_entry(model: str) -> JSONDict:
    return {
        "name": model,
        "model": model,
        "modified_at": "2024-05-01T12:00:00.000000000Z",
        "size": 4661224676,
        "digest": _digest(model),
        "details": _details(model),
    }


def _stats(n_prompt: int, n_eval: int) -> JSONDict:
    return {
        "total_duration": 5_000_000 + 2_000_000 * n_eval,
        "load_duration": 1_000_000,
        "prompt_eval_count": n_prompt,
        "prompt_eval_duration": 1_000_000 * n_prompt,
        "eval_count": n_eval,
        "eval_duration": 2_000_000 * n_eval,
    }


async def _parse(
    request: web.Request, state: FakeState
) -> tuple[dict[str, Any], str, web.Response | None]:
    """The request body and the model answering it, or an error response."""
    body, problem = await read_json(request)
    if problem is not None or not isinstance(body, dict):
        return {}, "", error(400, problem or "request body must be a JSON object")
    requested = body.get("model") or body.get("name")
    if not isinstance(requested, str) or not requested:
        return body, "", error(400, "model is required")
    model = _resolve(state, requested)
    if model is None:
        return body, "", _not_found_model(requested)
    return body, model, None


def routes(state: FakeState) -> list[web.RouteDef]:
    """The routes of a fake Ollama server."""

    async def root(request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running", content_type="text/plain")

    async def version(request: web.Request) -> web.Response:
        return json_response({"version": VERSION})

    async def tags(request: web.Request) -> web.Response:
        return json_response({"models": [_model_entry(m) for m in state.models]})

    async def ps(request: web.Request) -> web.Response:
        expires = datetime.now(UTC) + timedelta(minutes=5)
        entries = []
        for loaded in reversed(state.loaded_models()):  # most recently used first
            entry = {
                **_model_entry(loaded),
                "expires_at": expires.isoformat().replace("+00:00", "Z"),
                "size_vram": 4661224676,
            }
            del entry["modified_at"]
            entries.append(entry)
        return json_response({"models": entries})

    async def show(request: web.Request) -> web.Response:
        _, model, problem = await _parse(request, state)
        if problem is not None:
            return problem
        return json_response(
            {
                "modelfile": f"# Modelfile generated by the fake ollama\nFROM {model}\n",
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": _details(model),
                "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
                "capabilities": ["completion"],
                "modified_at": "2024-05-01T12:00:00.000000000Z",
            }
        )

    async def chat(request: web.Request) -> web.StreamResponse:
        body, model, problem = await _parse(request, state)
        if problem is not None:
            return problem
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            return error(400, "messages must be an array")
        if state.loaded is not None:  # set_loaded: a request loads its model, as Ollama's
            state.use(model)
        return await _answer(request, state, body, model, prompt_tokens(messages), "message")

    async def generate(request: web.Request) -> web.StreamResponse:
        body, model, problem = await _parse(request, state)
        if problem is not None:
            return problem
        prompt = body.get("prompt")
        n_prompt = len(prompt.split()) + 1 if isinstance(prompt, str) else 1
        if state.loaded is not None:
            state.use(model)
        return await _answer(request, state, body, model, n_prompt, "response")

    async def v1_models(request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "library"}
            for m in state.models
        ]
        return json_response({"object": "list", "data": data})

    return [
        web.get("/", root),
        web.get("/api/version", version),
        web.get("/api/tags", tags),
        web.get("/api/ps", ps),
        web.post("/api/show", show),
        web.post("/api/chat", chat),
        web.post("/api/generate", generate),
        web.post("/api/embed", ollama_embed_handler(state, error, _resolve)),
        web.post("/api/embeddings", ollama_embed_handler(state, error, _resolve, legacy=True)),
        web.get("/v1/models", v1_models),
        web.post("/v1/chat/completions", chat_handler(state, _V1_FLAVOR)),
    ]


async def _answer(
    request: web.Request,
    state: FakeState,
    body: dict[str, Any],
    model: str,
    n_prompt: int,
    field: str,
) -> web.StreamResponse:
    """Answer ``/api/chat`` (``field="message"``) or ``/api/generate`` (``"response"``)."""
    shown = state.reported(model)
    reply = plan_reply(state, shown, Shape.OLLAMA, body, lambda: "")
    calls = [
        {"function": {"name": call.name, "arguments": call.arguments}} for call in reply.tool_calls
    ]

    def payload(text: str, with_calls: bool = False) -> Any:
        if field == "response":
            return text
        message: JSONDict = {"role": "assistant", "content": text}
        if with_calls:
            message["tool_calls"] = calls
        return message

    final: JSONDict = {
        "model": shown,
        "created_at": _now(),
        field: payload(""),
        "done_reason": "stop",
        "done": True,
        **_stats(n_prompt, reply.tokens),
    }
    if field == "response":
        final["context"] = list(range(1, n_prompt + reply.tokens + 1))
    if not body.get("stream", True):
        final[field] = payload(reply.text, with_calls=bool(calls))
        return json_response(final)
    writer = StreamWriter(state, request, "ndjson")
    await writer.start()
    lines = [payload(piece) for piece in reply.pieces]
    if calls:
        lines.append(payload("", with_calls=True))
    for line in lines:
        await writer.send(
            {"model": shown, "created_at": _now(), field: line, "done": False}, content=True
        )
    final["created_at"] = _now()
    await writer.send(final)
    return await writer.finish()


def _v1_not_found(name: str | None) -> web.Response:
    return openai_error(404, f"model '{name}' not found", "not_found_error")


_V1_FLAVOR = OpenAIFlavor(
    resolve=_resolve,
    model_not_found=_v1_not_found,
    bad_request=lambda message: openai_error(400, message, "invalid_request_error"),
    system_fingerprint="fp_ollama",
    require_model=True,
    tool_call_id=lambda: new_id("call_", 8),
)

SPEC = KindSpec(
    kind="ollama",
    default_models=("llama3:latest",),
    routes=routes,
    error=error,
    not_found=not_found,
    chat_paths=frozenset({"/api/chat", "/api/generate", "/v1/chat/completions"}),
    stream_by_default=frozenset({"/api/chat", "/api/generate"}),
    canonical=canonical,
    wire=Wire.OLLAMA,
    wire_prefixes=(("/v1/", Wire.OPENAI),),
)
