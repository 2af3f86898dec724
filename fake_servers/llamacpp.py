"""A fake llama.cpp ``llama-server``, faithful to the captures in ``shared/wire/llamacpp``.

Like the real server it answers every chat request with its loaded (first) model and reports
that model's alias, whatever model the request names; a request naming another of its
``--model`` ids is answered by that one.
"""

from __future__ import annotations

import time

from aiohttp import web

from fake_servers._core import FakeState, KindSpec, json_response, new_id
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
                "meta": {
                    "vocab_type": 1,
                    "n_vocab": 262144,
                    "n_ctx": N_CTX,
                    "n_ctx_train": 32768,
                    "n_embd": 640,
                    "n_params": 268098176,
                    "size": 246587904,
                    "ftype": "Q4_K - Medium",
                },
            }
            for model in state.models
        ],
    }


def _props(state: FakeState) -> dict[str, object]:
    loaded = state.models[0]
    return {
        "default_generation_settings": {
            "params": {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "n_predict": -1},
            "n_ctx": N_CTX,
        },
        "total_slots": TOTAL_SLOTS,
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
        return json_response(_models_document(state))

    async def props(request: web.Request) -> web.Response:
        return json_response(_props(state))

    async def slots(request: web.Request) -> web.Response:
        return json_response(
            [
                {"id": i, "n_ctx": N_CTX, "speculative": False, "is_processing": False}
                for i in range(TOTAL_SLOTS)
            ]
        )

    chat = chat_handler(state, _FLAVOR)
    return [
        web.get("/health", health),
        web.get("/v1/health", health),
        web.get("/v1/models", models),
        web.get("/models", models),
        web.get("/props", props),
        web.get("/slots", slots),
        web.post("/v1/chat/completions", chat),
        web.post("/chat/completions", chat),
    ]


SPEC = KindSpec(
    kind="llamacpp",
    default_models=("model.gguf",),
    routes=routes,
    error=error,
    not_found=not_found,
    chat_paths=frozenset({"/v1/chat/completions", "/chat/completions"}),
    server_header="llama.cpp",
    wire=Wire.LLAMACPP,
)
