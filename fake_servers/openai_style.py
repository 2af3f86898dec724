"""Fake LM Studio and OpenAI servers: the OpenAI wire format on ``/v1``.

Both answer an unknown model with a 404 ``model_not_found`` error. The OpenAI fake demands
``Authorization: Bearer <key>`` on every ``/v1`` endpoint (any non-empty key, or exactly
``api_key`` when one is configured); LM Studio, a local server, demands none.
"""

from __future__ import annotations

import time

from aiohttp import web

from fake_servers._core import FakeState, KindSpec, json_response
from fake_servers._extra_ops import completions_handler, embeddings_handler
from fake_servers._openai_chat import OpenAIFlavor, chat_handler, openai_error

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


def error(status: int, message: str, error_type: str) -> web.Response:
    """OpenAI's error shape, with ``code`` null."""
    return openai_error(status, message, error_type)


def model_not_found(name: str | None) -> web.Response:
    """404 for a model the server does not serve."""
    return openai_error(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def bad_request(message: str) -> web.Response:
    """400 in OpenAI's shape."""
    return openai_error(400, message, "invalid_request_error")


def _resolve(state: FakeState, requested: str | None) -> str | None:
    return requested if requested in state.models else None


def lmstudio_not_found(request: web.Request) -> web.Response:
    """LM Studio's answer to an unknown path."""
    return json_response(
        {"error": f"Unexpected endpoint or method. ({request.method} {request.path})"},
        status=404,
    )


def openai_not_found(request: web.Request) -> web.Response:
    """OpenAI's answer to an unknown path."""
    return openai_error(
        404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
    )


def openai_auth(state: FakeState, request: web.Request) -> web.Response | None:
    """401 unless a (matching) bearer key is given on a ``/v1`` endpoint."""
    if not request.path.startswith("/v1/"):
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() == "bearer" and key and (state.api_key is None or key == state.api_key):
        return None
    shown = (key[:3] + "*" * 4 + key[-4:]) if key else "<none>"
    return openai_error(
        401,
        f"Incorrect API key provided: {shown}. "
        "You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _routes(state: FakeState, owned_by: str, fingerprint: str | None) -> list[web.RouteDef]:
    flavor = OpenAIFlavor(
        resolve=_resolve,
        model_not_found=model_not_found,
        bad_request=bad_request,
        system_fingerprint=fingerprint,
        require_model=True,
        missing_messages="Missing required parameter: 'messages'.",
    )

    async def models(request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": owned_by}
            for m in state.models
        ]
        return json_response({"object": "list", "data": data})

    async def model(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in state.models:
            return model_not_found(name)
        return json_response(
            {"id": name, "object": "model", "created": int(time.time()), "owned_by": owned_by}
        )

    return [
        web.get("/v1/models", models),
        web.get("/v1/models/{name:.+}", model),
        web.post("/v1/chat/completions", chat_handler(state, flavor)),
        web.post("/v1/completions", completions_handler(state, error, _resolve)),
        web.post("/v1/embeddings", embeddings_handler(state, error, _resolve)),
    ]


def lmstudio_routes(state: FakeState) -> list[web.RouteDef]:
    """The routes of a fake LM Studio server."""
    return _routes(state, "organization_owner", None)


def openai_routes(state: FakeState) -> list[web.RouteDef]:
    """The routes of a fake OpenAI server."""
    return _routes(state, "system", "fp_fake0000")


LMSTUDIO_SPEC = KindSpec(
    kind="lmstudio",
    default_models=("qwen2.5-7b-instruct",),
    routes=lmstudio_routes,
    error=error,
    not_found=lmstudio_not_found,
    chat_paths=_CHAT_PATHS,
)

OPENAI_SPEC = KindSpec(
    kind="openai",
    default_models=("gpt-4o-mini",),
    routes=openai_routes,
    error=error,
    not_found=openai_not_found,
    chat_paths=_CHAT_PATHS,
    auth=openai_auth,
)
