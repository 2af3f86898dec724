"""The gateway path of a case: :class:`routing._gateway_server.Gateway` on 127.0.0.1:0, over HTTP.

The request goes to its door (``POST /v1/chat/completions`` unless ``request.door`` names
another, see :mod:`routing.conformance.doors`; ``X-Routing-Provider`` when the case names a
provider). The outcome is read from the wire: status, ``X-Routed-To``, the reply or the
stream (broken when it ends unfinished or with an in-band error), the error with its
``candidates``, and the failover and wrong-model counters of ``GET /metrics``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import aiohttp

from routing._operations import Operation
from routing.config import parse_config
from routing.conformance.cases import Case
from routing.conformance.doors import DOORS, gateway_request, read_stream, reported_model
from routing.conformance.doors import reply_text as door_text
from routing.conformance.driver import (
    Outcome,
    Target,
    render_config,
    set_chat_faults,
    take_chunk,
)
from routing.errors import NoRouteError

__all__ = ["run_gateway", "unavailable_reason"]


def unavailable_reason() -> str | None:
    """Why the gateway path cannot run (None when it can)."""
    try:
        from routing._gateway_server import Gateway
    except ImportError as exc:
        return f"routing._gateway_server is not importable ({exc})"
    if not hasattr(Gateway, "start") or not hasattr(Gateway, "stop"):
        return "routing._gateway_server.Gateway has no start/stop"
    return None


async def run_gateway(case: Case, targets: Mapping[str, Target]) -> Outcome:
    """Start a gateway for the case's config, send the request, read the outcome."""
    from routing._gateway_server import Gateway

    config = parse_config(
        render_config(case, targets), file=f"<{case.name}>", environ=dict(case.env)
    )
    gateway = Gateway(config)
    await gateway.start("127.0.0.1", 0)
    try:
        if any(t.member.chat_fault for t in targets.values()):
            with suppress(NoRouteError):  # probe through the gateway's own router first
                await gateway.router.resolve(
                    provider=case.request.provider, model=case.request.model
                )
            set_chat_faults(targets)
        headers = {}
        if case.request.provider is not None:
            headers["X-Routing-Provider"] = case.request.provider
        async with aiohttp.ClientSession() as session:
            outcome = Outcome()
            started = time.perf_counter()
            door = DOORS[case.request.door]
            async with session.post(
                gateway.url + door.path, json=gateway_request(case), headers=headers
            ) as resp:
                outcome.http_status = resp.status
                outcome.instance = resp.headers.get("X-Routed-To")
                if resp.status != 200:
                    _read_error(outcome, await resp.read())
                elif case.request.stream and door.name == "openai":
                    await _read_stream(outcome, resp)
                elif case.request.stream and door.operation is not Operation.EMBEDDING:
                    await read_stream(door, resp, outcome)
                else:
                    reply = json.loads(await resp.read())
                    outcome.reply_model = reported_model(door.operation, reply)
                    outcome.text = door_text(door.operation, door.shape, reply)
            outcome.elapsed = time.perf_counter() - started
            async with session.get(gateway.url + "/metrics") as resp:
                _read_metrics(outcome, await resp.text())
        return outcome
    finally:
        await gateway.stop()


def _read_error(outcome: Outcome, raw: bytes) -> None:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):  # the Ollama door's shape
        error = {"message": error}
    if not isinstance(error, dict):
        outcome.error = f"HTTP {outcome.http_status}"
        outcome.message = raw[:300].decode(errors="replace")
        return
    outcome.error = str(error.get("code") or error.get("type") or f"HTTP {outcome.http_status}")
    outcome.message = str(error.get("message", ""))
    for c in error.get("candidates") or ():
        if isinstance(c, dict) and "instance" in c:
            outcome.candidates[str(c["instance"])] = str(c.get("state"))


async def _read_stream(outcome: Outcome, resp: aiohttp.ClientResponse) -> None:
    done = False
    try:
        async for line in resp.content:
            text = line.decode().strip()
            if not text.startswith("data:"):
                continue
            data = text[len("data:") :].strip()
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                outcome.stream_broken = True
                outcome.message = str(chunk["error"])
            else:
                take_chunk(outcome, chunk)
    except aiohttp.ClientPayloadError as exc:
        outcome.message = str(exc)
    outcome.stream_broken = outcome.stream_broken or not done


def _read_metrics(outcome: Outcome, text: str) -> None:
    failovers = wrong = 0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("routing_failovers_total{"):
            failovers += int(float(value))
        elif name.startswith("routing_wrong_model_replies_total{"):
            wrong += int(float(value))
    if outcome.http_status == 200:
        outcome.failovers = failovers
    outcome.warnings = ("wrong-model reply",) * wrong
