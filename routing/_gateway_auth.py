"""The gateway's door keeper: ``gateway.auth`` applied to every request (aiohttp middleware).

==========================================  ==============================================
path                                        needs
==========================================  ==============================================
``/healthz``, ``/ui`` (the page itself)     nothing, ever
``/status``, ``/metrics``, ``/ui/data``     the admin key when ``admin_key_env`` is set
every other path (all doors)                a client key when ``gateway.auth`` is set
==========================================  ==============================================

A key comes as ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (the Anthropic clients'
header), on every door.  Missing or unknown: 401; over ``requests_per_minute`` or
``max_concurrent``: 429 with ``Retry-After``; each in the door's error shape.  A model
outside the key's ``models`` is refused where the body is read (403 ``model_not_allowed``,
:func:`routing._request_read.read_json_object`), since only the body names the model.
A request announcing its body with ``Expect: 100-continue`` and no valid key gets its 401
before any ``100 Continue`` (:func:`refusal_before_body`).
The auth settings are read from the current config on every request, so a reload that adds
or removes a key applies to the next request; requests already admitted finish.
Keys never leave the gateway: the adapters build upstream headers from the instance config
alone, and nothing here logs or echoes what a client sent.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from routing._auth import Gatekeeper, Refusal
from routing._gateway_http import POOL, error_response, route_info

__all__ = [
    "ADMIN_PATHS",
    "GATEKEEPER",
    "OPEN_PATHS",
    "auth_middleware",
    "presented_keys",
    "refusal_before_body",
]

#: The app key holding the gateway's :class:`~routing._auth.Gatekeeper`.
GATEKEEPER = web.AppKey("routing.gatekeeper", Gatekeeper)

#: Paths that never need a key.
OPEN_PATHS = frozenset({"/healthz", "/ui"})
#: Paths of the admin plane: the admin key when one is configured.
ADMIN_PATHS = frozenset({"/status", "/metrics", "/ui/data"})

_MISSING = Refusal(
    401,
    "authentication_error",
    "missing_api_key",
    "this gateway needs an API key: send Authorization: Bearer KEY or x-api-key: KEY",
)
_UNKNOWN = Refusal(401, "authentication_error", "invalid_api_key", "unknown API key")
_ADMIN = Refusal(
    401,
    "authentication_error",
    "invalid_admin_key",
    "this endpoint needs the gateway's admin key: send Authorization: Bearer ADMIN_KEY",
)


def presented_keys(request: web.Request) -> list[str]:
    """The keys a request carries: a Bearer token, an ``x-api-key`` value (either, both)."""
    keys = []
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        keys.append(api_key)
    return keys


def _refuse(request: web.Request, refusal: Refusal) -> web.Response:
    response = error_response(
        request, refusal.status, refusal.message, type_=refusal.type, code=refusal.code
    )
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="routing"'
    if refusal.retry_after is not None:
        response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def refusal_before_body(request: web.Request) -> web.Response | None:
    """The 401 of a door request whose head carries no valid key, else None: the gateway's
    ``Expect: 100-continue`` handler answers it before the client sends its body."""
    auth = request.app[POOL].current.config.gateway.auth
    path = request.path
    if auth is None or path in OPEN_PATHS or path in ADMIN_PATHS:
        return None
    keys = presented_keys(request)
    if request.app[GATEKEEPER].identify(auth, keys) is not None:
        return None
    return _refuse(request, _UNKNOWN if keys else _MISSING)


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Let a request through, or answer 401/429 in its door's shape (see the module doc)."""
    auth = request.app[POOL].current.config.gateway.auth
    if auth is None or request.path in OPEN_PATHS:
        response: web.StreamResponse = await handler(request)
        return response
    path = request.path
    keeper = request.app[GATEKEEPER]
    keys = presented_keys(request)
    if path in ADMIN_PATHS:
        if keeper.is_admin(auth, keys):
            response = await handler(request)
            return response
        return _refuse(request, _ADMIN)
    client = keeper.identify(auth, keys)
    if client is None:
        return _refuse(request, _UNKNOWN if keys else _MISSING)
    route_info(request).client = client
    refusal = keeper.admit(client)
    if refusal is not None:
        return _refuse(request, refusal)
    try:
        response = await handler(request)
        return response
    finally:
        keeper.release(client)
