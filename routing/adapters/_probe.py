"""Probe plumbing shared by the API styles: one bounded GET, status checks, model-list shapes.

Each style's module owns its probe (which endpoints, what "loaded" means); they all read
answers through :func:`get_json` and :func:`check`, so a state is classified the same way
everywhere and from data only:

=======================================  ==============
answer                                   state
=======================================  ==============
refused, unreachable, timed out          DOWN
401, 403                                 MISCONFIGURED
503 with ``unavailable_error`` (llama)   LOADING
3xx (never followed), other 4xx/5xx      UNHEALTHY
not JSON, not the expected shape         UNHEALTHY
=======================================  ==============
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from routing._decision import State

__all__ = ["ProbeFailed", "Probed", "check", "get_json", "model_states", "openai_ids", "slots_load"]


@dataclass(frozen=True, slots=True)
class Probed:
    """What a successful probe learnt: the models served, and what the server says of
    them and of itself (``loaded`` None: it does not say; ``busy``/``slots`` None: same)."""

    models: tuple[str, ...]
    loaded: tuple[str, ...] | None = None
    loading: tuple[str, ...] = ()
    busy: int | None = None
    slots: int | None = None


class ProbeFailed(Exception):
    """A probe's answer means the instance cannot serve: ``state`` and a short ``detail``."""

    def __init__(self, state: State, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> tuple[int, Any]:
    """GET ``url`` (redirects never followed); (status, parsed JSON or None if not JSON)."""
    try:
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as resp:
            body = await resp.read()
            status = resp.status
    except TimeoutError as exc:
        raise ProbeFailed(State.DOWN, f"no answer within {timeout.total:g}s") from exc
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        why = "connection refused" if refused else f"cannot connect: {exc.os_error or exc}"
        raise ProbeFailed(State.DOWN, why) from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise ProbeFailed(State.DOWN, f"connection failed: {type(exc).__name__}") from exc
    try:
        return status, json.loads(body) if body else None
    except (ValueError, RecursionError):
        return status, None


def check(status: int, body: Any, what: str) -> Any:
    """``body`` when ``status`` is a success, else :class:`ProbeFailed` with its state."""
    if 300 <= status < 400:
        raise ProbeFailed(State.UNHEALTHY, f"{what}: HTTP {status} redirect (not followed)")
    if status in (401, 403):
        raise ProbeFailed(State.MISCONFIGURED, f"{what}: HTTP {status}, credentials refused")
    if status == 503:
        loading = _error_type(body) == "unavailable_error"
        raise ProbeFailed(
            State.LOADING if loading else State.UNHEALTHY,
            f"{what}: HTTP 503" + (" loading model" if loading else ""),
        )
    if status >= 400:
        raise ProbeFailed(State.UNHEALTHY, f"{what}: HTTP {status}")
    if body is None:
        raise ProbeFailed(State.UNHEALTHY, f"{what}: reply is not JSON")
    return body


def _error_type(body: Any) -> Any:
    err = body.get("error") if isinstance(body, dict) else None
    return err.get("type") if isinstance(err, dict) else None


def openai_ids(body: Any, what: str) -> tuple[str, ...]:
    """Model ids from an OpenAI-style list: ``data[].id``, else llama.cpp's ``models[]``."""
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, list) and data:
            ids = [m.get("id") for m in data if isinstance(m, dict)]
            if ids and all(isinstance(i, str) for i in ids):
                return tuple(str(i) for i in ids)
        models = body.get("models")
        if isinstance(models, list) and models:
            names = [m.get("model") or m.get("name") for m in models if isinstance(m, dict)]
            if names and all(isinstance(n, str) for n in names):
                return tuple(str(n) for n in names)
        if isinstance(data, list):
            return ()
    raise ProbeFailed(State.UNHEALTHY, f"{what}: not a model list")


def model_states(body: Any) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(loaded, loading) from an OpenAI-style list whose entries carry llama.cpp router
    mode's ``status.value``; (None, ()) when no entry says (every model is loaded)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None, ()
    loaded: list[str] = []
    loading: list[str] = []
    said = False
    for entry in data:
        status = entry.get("status") if isinstance(entry, dict) else None
        value = status.get("value") if isinstance(status, dict) else None
        if not isinstance(value, str) or not isinstance(entry.get("id"), str):
            continue
        said = True
        if value == "loaded":
            loaded.append(entry["id"])
        elif value == "loading":
            loading.append(entry["id"])
    return (tuple(loaded), tuple(loading)) if said else (None, ())


def slots_load(body: Any) -> tuple[int | None, int | None]:
    """(busy, slots) from llama.cpp's ``GET /slots`` list; (None, None) for anything else."""
    if not isinstance(body, list) or not body or not all(isinstance(s, dict) for s in body):
        return None, None
    return sum(1 for s in body if s.get("is_processing") is True), len(body)
