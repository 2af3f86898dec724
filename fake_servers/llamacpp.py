"""A fake llama.cpp ``llama-server``, faithful to the captures in ``shared/wire/llamacpp``.

Like the real server it answers every chat request with its loaded (first) model and reports
that model's alias, whatever model the request names; a request naming another of its
``--model`` ids is answered by that one.

In router mode (``llama-server --models-dir DIR``, :attr:`FakeState.router_mode`) it lists
every model with ``status.value`` ``loaded``, ``loading`` or ``unloaded`` (as captured in
``router_v1_models_*.txt``); a chat naming an unloaded model loads it (counted in
``loads``, the least recently used one unloaded past ``models_max``), a chat naming no
known model is a 400, and ``/slots`` without ``?model=`` is the captured 400.  ``/slots``
reports the ``busy`` knob plus the chats in flight as processing; while ``held``, chats
wait until released (a request held open, without sleeping).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from fake_servers._core import DropConnection, FakeState, KindSpec, json_response, new_id
from fake_servers._extra_ops import (
    completions_handler,
    count_tokens_handler,
    embeddings_handler,
    llamacpp_messages_handler,
)
from fake_servers._openai_chat import OpenAIFlavor, chat_handler
from fake_servers._wire import Wire, error_body

BUILD_INFO = "b0-fake"
N_CTX = 512
TOTAL_SLOTS = 4


def error(status: int, message: str, error_type: str) -> web.Response:
    """llama.cpp's error shape: ``{"error": {"code", "message", "type"}}``.

    Key order follows the real server: ``code`` first, last on 404/503.
    """
    return json_response(error_body(Wire.LLAMACPP, status, message, error_type), status=status)


def not_found(request: web.Request) -> web.Response:
    """llama.cpp's answer to an unknown path."""
    return error(404, "File Not Found", "not_found_error")


def _resolve(state: FakeState, requested: str | None) -> str:
    return requested if requested in state.models else state.models[0]


_FLAVOR = OpenAIFlavor(
    resolve=_resolve,
    model_not_found=lambda name: not_found_model(name),
    bad_request=lambda message: error(400, message, "invalid_request_error"),
    system_fingerprint=BUILD_INFO,
    first_delta={"role": "assistant", "content": None},
    timings=True,
    missing_messages="'messages' is required",
    content_required="All non-assistant messages must contain 'content'",
    tool_call_id=lambda: new_id("", 32),
    empty_arguments=False,
    tool_call_content="",
)


def not_found_model(name: str | None) -> web.Response:
    """Never used by llama.cpp (it answers any name), kept for the flavor's contract."""
    return error(404, f"model '{name}' not found", "not_found_error")


def _router_resolve(state: FakeState, requested: str | None) -> str | None:
    """Router mode: the model named, loaded first if it is not (None: not in its dir)."""
    if requested not in state.models:
        return None
    assert requested is not None
    state.use(requested)
    return requested


def _router_not_found(name: str | None) -> web.Response:
    if name is None:
        return error(400, "model name is missing from the request", "invalid_request_error")
    return error(400, f"model '{name}' not found", "invalid_request_error")


_ROUTER_FLAVOR = OpenAIFlavor(
    resolve=_router_resolve,
    model_not_found=_router_not_found,
    bad_request=_FLAVOR.bad_request,
    system_fingerprint=BUILD_INFO,
    first_delta=_FLAVOR.first_delta,
    timings=True,
    missing_messages=_FLAVOR.missing_messages,
    content_required=_FLAVOR.content_required,
    tool_call_id=_FLAVOR.tool_call_id,
    empty_arguments=False,
    tool_call_content="",
)


def _router_models_document(state: FakeState) -> dict[str, object]:
    """Router mode's ``/v1/models``: every model of the dir with its status."""
    created = int(time.time())
    loaded = state.loaded_models()
    data: list[dict[str, object]] = []
    for model in state.models:
        value = (
            "loaded"
            if model in loaded
            else "loading"
            if model in state.loading_models
            else "unloaded"
        )
        entry: dict[str, object] = {
            "id": model,
            "aliases": [],
            "tags": [],
            "object": "model",
            "owned_by": "llamacpp",
            "created": created,
            "status": {"value": value, "args": ["llama-server"], "preset": ""},
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "source": "models_dir",
            "can_remove": False,
        }
        if value == "loaded":
            entry["meta"] = _META
        data.append(entry)
    return {"data": data, "object": "list"}


def _slots_document(state: FakeState) -> list[dict[str, object]]:
    busy = state.busy_slots()
    return [
        {"id": i, "n_ctx": N_CTX, "speculative": False, "is_processing": i < busy}
        for i in range(state.slots)
    ]


async def _wait_released(state: FakeState) -> None:
    """Wait until the hold is released (or the server stops: the connection is dropped)."""
    waits = [
        asyncio.ensure_future(state.released.wait()),
        asyncio.ensure_future(state.stopping.wait()),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    if state.stopping.is_set():
        raise DropConnection


def _models_document(state: FakeState) -> dict[str, object]:
    created = int(time.time())
    return {
        "models": [
            {
                "name": model,
                "model": model,
                "modified_at": "",
                "size": "",
                "digest": "",
                "type": "model",
                "description": "",
                "tags": [""],
                "capabilities": ["completion"],
                "parameters": "",
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "",
                    "families": [""],
                    "parameter_size": "",
                    "quantization_level": "",
                },
            }
            for model in state.models
        ],
        "object": "list",
        "data": [
            {
                "id": model,
                "aliases": [model],
                "tags": [],
                "object": "model",
                "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
                "created": created,
                "owned_by": "llamacpp",
                "meta": _META,
            }
            for model in state.models
        ],
    }


_META = {
    "vocab_type": 1,
    "n_vocab": 262144,
    "n_ctx": N_CTX,
    "n_ctx_train": 32768,
    "n_embd": 640,
    "n_params": 268098176,
    "size": 246587904,
    "ftype": "Q4_K - Medium",
}


def _props(state: FakeState) -> dict[str, object]:
    loaded = state.models[0]
    return {
        "default_generation_settings": {
            "params": {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "n_predict": -1},
            "n_ctx": N_CTX,
        },
        "total_slots": state.slots,
        "model_alias": loaded,
        "model_ftype": "Q4_K - Medium",
        "model_path": f"/models/{loaded}",
        "modalities": {"vision": False, "video": False, "audio": False},
        "endpoint_slots": True,
        "endpoint_props": False,
        "endpoint_metrics": False,
        "chat_template": "",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "build_info": BUILD_INFO,
        "is_sleeping": False,
    }


def routes(state: FakeState) -> list[web.RouteDef]:
    """The routes of a fake llama.cpp server."""

    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def models(request: web.Request) -> web.Response:
        if state.router_mode:
            return json_response(_router_models_document(state))
        return json_response(_models_document(state))

    async def props(request: web.Request) -> web.Response:
        return json_response(_props(state))

    async def slots(request: web.Request) -> web.Response:
        if state.router_mode:
            named = request.query.get("model")
            if named is None:
                return _router_not_found(None)
            if named not in state.loaded_models():
                return _router_not_found(named)
        return json_response(_slots_document(state))

    single_chat = chat_handler(state, _FLAVOR)
    router_chat = chat_handler(state, _ROUTER_FLAVOR)

    async def chat(request: web.Request) -> web.StreamResponse:
        state.processing += 1
        try:
            if state.held:
                await _wait_released(state)
            answer: web.StreamResponse = await (router_chat if state.router_mode else single_chat)(
                request
            )
            return answer
        finally:
            state.processing -= 1

    return [
        web.get("/health", health),
        web.get("/v1/health", health),
        web.get("/v1/models", models),
        web.get("/models", models),
        web.get("/props", props),
        web.get("/slots", slots),
        web.post("/v1/chat/completions", chat),
        web.post("/chat/completions", chat),
        *_extra_routes(state),
    ]


def _extra_routes(state: FakeState) -> list[web.RouteDef]:
    """Embeddings, text completions and Anthropic Messages (see :mod:`._extra_ops`)."""
    embeddings = embeddings_handler(state, error, _resolve, llamacpp=True)
    completions = completions_handler(state, error, _resolve, llamacpp=True)
    return [
        web.post("/v1/embeddings", embeddings),
        web.post("/embeddings", embeddings),
        web.post("/v1/completions", completions),
        web.post("/v1/messages", llamacpp_messages_handler(state, error)),
        web.post("/v1/messages/count_tokens", count_tokens_handler(state, error)),
        web.post("/infill", _infill),
    ]


async def _infill(request: web.Request) -> web.Response:
    """``/infill`` as captured from a model without fill-in-the-middle tokens: a 501."""
    return error(
        501,
        "Infill is not supported by this model: prefix token is missing. suffix "
        "token is missing. middle token is missing. ",
        "not_supported_error",
    )


SPEC = KindSpec(
    kind="llamacpp",
    default_models=("model.gguf",),
    routes=routes,
    error=error,
    not_found=not_found,
    chat_paths=frozenset(
        {"/v1/chat/completions", "/chat/completions", "/v1/completions", "/v1/messages"}
    ),
    server_header="llama.cpp",
    wire=Wire.LLAMACPP,
)
