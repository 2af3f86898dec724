"""Health and model-list probes, one strategy per server kind.

| kind      | health                         | model list                          |
|-----------|--------------------------------|-------------------------------------|
| llamacpp  | GET /health (503 = LOADING)    | GET /v1/models: data[].id, models[] |
| ollama    | GET /api/tags                  | /api/tags models[].name; /api/ps    |
| lmstudio, openai, generic | GET /v1/models | data[].id                           |
| anthropic | GET /v1/models (x-api-key)     | data[].id, else static ``models``   |

A probe never raises: every failure becomes a :class:`ProbeResult` whose state
says what went wrong (DOWN: refused or timed out; UNHEALTHY: 5xx, bad JSON,
wrong shape, refused credentials; LOADING: llama.cpp still loading).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp

from routing.config import Instance
from routing.decision import State
from routing.health import ProbeResult

__all__ = ["probe_instance"]


class _Failed(Exception):
    def __init__(self, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail


def _headers(instance: Instance) -> dict[str, str]:
    key = instance.api_key()
    if key is None:
        return {}
    if instance.api == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return {"Authorization": f"Bearer {key}"}


async def _get(
    session: aiohttp.ClientSession, instance: Instance, path: str, timeout: aiohttp.ClientTimeout
) -> tuple[int, Any]:
    """GET ``path``; return (status, parsed JSON or None for a non-JSON body)."""
    try:
        async with session.get(
            instance.url + path, headers=_headers(instance), timeout=timeout,
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            status = resp.status
    except TimeoutError as exc:
        raise _Failed(State.DOWN, f"no answer within {timeout.total:g}s") from exc
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        why = "connection refused" if refused else f"cannot connect: {exc.os_error or exc}"
        raise _Failed(State.DOWN, why) from exc
    except aiohttp.ClientError as exc:
        raise _Failed(State.DOWN, f"connection failed: {type(exc).__name__}") from exc
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def _check(status: int, body: Any, what: str) -> Any:
    if status in (401, 403):
        raise _Failed(State.UNHEALTHY, f"{what}: HTTP {status}, credentials refused")
    if status == 503:
        raise _Failed(State.LOADING if _is_loading(body) else State.UNHEALTHY,
                      f"{what}: HTTP 503 {_message(body)}".rstrip())
    if status >= 400:
        raise _Failed(State.UNHEALTHY, f"{what}: HTTP {status} {_message(body)}".rstrip())
    if body is None:
        raise _Failed(State.UNHEALTHY, f"{what}: reply is not JSON")
    return body


def _message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message", ""))
        if isinstance(err, str):
            return err
    return ""


def _is_loading(body: Any) -> bool:
    return "loading" in _message(body).lower()


def _openai_ids(body: Any, what: str) -> tuple[str, ...]:
    """Model ids from an OpenAI-style list: ``data[].id``, else llama.cpp's ``models[]``."""
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, list) and data:
            ids = [m.get("id") for m in data if isinstance(m, dict)]
            if all(isinstance(i, str) for i in ids):
                return tuple(ids)  # type: ignore[arg-type]
        models = body.get("models")
        if isinstance(models, list) and models:
            names = [m.get("model") or m.get("name") for m in models if isinstance(m, dict)]
            if all(isinstance(n, str) for n in names):
                return tuple(names)  # type: ignore[arg-type]
        if isinstance(data, list):
            return ()
    raise _Failed(State.UNHEALTHY, f"{what}: not a model list")


async def _probe_llamacpp(
    session: aiohttp.ClientSession, instance: Instance, timeout: aiohttp.ClientTimeout
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    status, body = await _get(session, instance, "/health", timeout)
    if status != 404:  # old servers and proxies lack /health: the model list then decides
        _check(status, body, "GET /health")
    status, body = await _get(session, instance, "/v1/models", timeout)
    return _openai_ids(_check(status, body, "GET /v1/models"), "GET /v1/models"), ()


async def _probe_openai(
    session: aiohttp.ClientSession, instance: Instance, timeout: aiohttp.ClientTimeout
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    status, body = await _get(session, instance, "/v1/models", timeout)
    if status == 404 and instance.models:
        return instance.models, ()
    return _openai_ids(_check(status, body, "GET /v1/models"), "GET /v1/models"), ()


async def _probe_ollama(
    session: aiohttp.ClientSession, instance: Instance, timeout: aiohttp.ClientTimeout
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    status, body = await _get(session, instance, "/api/tags", timeout)
    body = _check(status, body, "GET /api/tags")
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        raise _Failed(State.UNHEALTHY, "GET /api/tags: no models[] list")
    names = tuple(str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict))
    loaded: tuple[str, ...] = ()
    try:
        status, ps = await _get(session, instance, "/api/ps", timeout)
        if status == 200 and isinstance(ps, dict) and isinstance(ps.get("models"), list):
            loaded = tuple(str(m.get("name")) for m in ps["models"] if isinstance(m, dict))
    except _Failed:
        pass  # /api/ps is a nicety: the tags list alone decides readiness
    return names, loaded


_Strategy = Callable[
    [aiohttp.ClientSession, Instance, aiohttp.ClientTimeout],
    Any,
]

_STRATEGIES: dict[str, _Strategy] = {
    "llamacpp": _probe_llamacpp,
    "ollama": _probe_ollama,
}


async def probe_instance(
    session: aiohttp.ClientSession, instance: Instance, now: Callable[[], float]
) -> ProbeResult:
    """Probe one instance; never raises (cancellation aside)."""
    if not instance.local and instance.api_key_env and instance.api_key() is None:
        return ProbeResult(State.UNHEALTHY, instance.models,
                           detail=f"API key missing: set {instance.api_key_env}", at=now())
    strategy = _STRATEGIES.get(instance.kind)
    if strategy is None:
        strategy = _probe_ollama if instance.api == "ollama" else _probe_openai
    # Only the total bounds a probe: with hundreds of probes starting at once, the event loop
    # itself may take longer than connect_timeout to get to a socket (seen at 1,000 instances).
    timeout = aiohttp.ClientTimeout(total=instance.probe_timeout)
    try:
        models, loaded = await strategy(session, instance, timeout)
    except _Failed as failed:
        return ProbeResult(failed.state, detail=failed.detail, at=now())
    if not models and instance.models:
        models = instance.models
    return ProbeResult(State.READY, tuple(models), tuple(loaded), at=now())
