"""``routing demo``: bundled fakes, a gateway, a handful of requests, a table of where each went.

Starts four fake servers in-process on free ports (two llama.cpp instances with different
models, one Ollama, one LM Studio), loads ``configs/demo.yaml`` with their ports in the
``DEMO_*_PORT`` variables, starts the gateway on a free port, sends requests through it
(over plain HTTP, as any client would), prints where each one went and why, and stops
everything.  The demo checks itself: the exit code is 1 when a request did not land where
expected.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from routing._gateway_server import Gateway
from routing.config import Config, load_config, parse_config

__all__ = ["DEMO_CONFIG", "demo_config", "run_demo"]

#: The demo config shipped inside the package, used when ``configs/demo.yaml`` (next to the
#: package in a source checkout) is absent; a test keeps the two identical.
DEMO_CONFIG = """\
# yaml-language-server: $schema=../schemas/routing.schema.json
# Used by `routing demo`: the ports are placeholders that the demo replaces with
# the free ports its bundled fake servers got (DEMO_* variables).
version: 1
defaults:
  connect_timeout: 0.5
  request_timeout: 10
  probe: {timeout: 0.5, ttl: 2}
providers:
  llamacpp:
    api: openai
    instances:
      qwen3-coder-30b: {port: "${DEMO_LLAMACPP_A_PORT:-11435}"}
      qwen25-coder-7b: {port: "${DEMO_LLAMACPP_B_PORT:-11436}"}
  ollama:
    api: ollama
    instances:
      default: {port: "${DEMO_OLLAMA_PORT:-11434}"}
  lmstudio:
    api: openai
    instances:
      default: {port: "${DEMO_LMSTUDIO_PORT:-1234}"}
rules:
  - match: {model: "*.gguf"}
    route: llamacpp
  - match: {model_regex: "qwen2\\\\.5-.*-instruct"}
    route: lmstudio
  - route: ollama
"""

#: The checked-out copy, when running from a source tree.
CONFIG_FILE = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"

MODEL_A = "qwen3-coder-30b-a3b-instruct-q8_0.gguf"
MODEL_B = "qwen2.5-coder-7b-instruct-q8_0.gguf"
MODEL_OLLAMA = "llama3.2:latest"
MODEL_LMSTUDIO = "qwen2.5-7b-instruct"

# fake name -> (kind, models, port variable, the instance it is in the config)
FAKES = {
    "llamacpp-a": ("llamacpp", MODEL_A, "DEMO_LLAMACPP_A_PORT", "llamacpp:qwen3-coder-30b"),
    "llamacpp-b": ("llamacpp", MODEL_B, "DEMO_LLAMACPP_B_PORT", "llamacpp:qwen25-coder-7b"),
    "ollama": ("ollama", MODEL_OLLAMA, "DEMO_OLLAMA_PORT", "ollama:default"),
    "lmstudio": ("lmstudio", MODEL_LMSTUDIO, "DEMO_LMSTUDIO_PORT", "lmstudio:default"),
}
_ANSWER = re.compile(r"I am (?P<model>.+) on (?P<kind>\w+) port (?P<port>\d+)")


@dataclass(frozen=True, slots=True)
class Step:
    """One demo request and where it must land (``expect_instance`` None: no instance)."""

    label: str
    model: str | None
    expect_status: int
    expect_instance: str | None
    stream: bool = False
    provider: str | None = None
    stop_first: str | None = None  # the fake to stop before sending


STEPS = (
    Step(f"{MODEL_A}", MODEL_A, 200, "llamacpp:qwen3-coder-30b"),
    Step(f"{MODEL_B}", MODEL_B, 200, "llamacpp:qwen25-coder-7b"),
    Step("llama3.2 (Ollama name)", "llama3.2", 200, "ollama:default"),
    Step(MODEL_LMSTUDIO, MODEL_LMSTUDIO, 200, "lmstudio:default"),
    Step(f"{MODEL_B} streamed", MODEL_B, 200, "llamacpp:qwen25-coder-7b", stream=True),
    Step(
        "no model, X-Routing-Provider: llamacpp:qwen3-coder-30b",
        None,
        200,
        "llamacpp:qwen3-coder-30b",
        provider="llamacpp:qwen3-coder-30b",
    ),
    Step("mistral-7b (nobody serves it)", "mistral-7b", 404, None),
    Step("llama3.2 after stopping the Ollama fake", "llama3.2", 503, None, stop_first="ollama"),
)


@dataclass(slots=True)
class Row:
    """What happened to one step."""

    step: Step
    status: int
    routed_to: str
    answered_by: str
    why: str
    ok: bool


def demo_config(ports: Mapping[str, int]) -> Config:
    """The demo config with the fakes' ``DEMO_*_PORT`` variables substituted."""
    environ = {**os.environ, **{FAKES[name][2]: str(port) for name, port in ports.items()}}
    if CONFIG_FILE.is_file():
        return load_config(CONFIG_FILE, environ)
    return parse_config(DEMO_CONFIG, file="<routing._demo:DEMO_CONFIG>", environ=environ)


async def _send(session: aiohttp.ClientSession, url: str, step: Step) -> tuple[int, str, str, str]:
    """Send ``step``; its status, X-Routed-To, the answer text and why it went there."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "who are you?"}],
        "stream": step.stream,
    }
    if step.model is not None:
        body["model"] = step.model
    headers = {"X-Routing-Provider": step.provider} if step.provider else {}
    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
        text = ""
        error = ""
        if step.stream and resp.status == 200:
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    for choice in chunk.get("choices") or []:
                        text += (choice.get("delta") or {}).get("content") or ""
        else:
            reply = await resp.json()
            if resp.status == 200:
                text = reply["choices"][0]["message"]["content"] or ""
            else:
                error = reply.get("error", {}).get("message", "")
        why = error or resp.headers.get("X-Routing-Reason", "")
        return resp.status, resp.headers.get("X-Routed-To", ""), text, why


def _answered_by(text: str, ports: Mapping[int, str]) -> str:
    match = _ANSWER.search(text)
    if match is None:
        return "-"
    return f"{ports.get(int(match['port']), '?')} ({match['kind']} port {match['port']})"


async def _run(out: TextIO) -> int:
    from fake_servers import Fleet

    fleet = Fleet.from_specs(
        [
            {"name": name, "kind": kind, "models": [model]}
            for name, (kind, model, _var, _inst) in FAKES.items()
        ]
    )
    rows: list[Row] = []
    async with fleet:
        ports = {name: fleet[name].port for name in FAKES}
        by_port = {port: name for name, port in ports.items()}
        for name, port in ports.items():
            print(
                f"fake {FAKES[name][0]:<9} {name:<11} http://127.0.0.1:{port}  "
                f"serves {FAKES[name][1]}",
                file=out,
            )
        gateway = Gateway(demo_config(ports))
        await gateway.start("127.0.0.1", 0)
        print(f"gateway           {gateway.url}\n", file=out)
        try:
            timeout = aiohttp.ClientTimeout(total=20)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for step in STEPS:
                    if step.stop_first is not None:
                        await fleet[step.stop_first].stop()
                    status, routed_to, text, why = await _send(session, gateway.url, step)
                    answered = _answered_by(text, by_port) if status == 200 else "-"
                    rows.append(
                        Row(
                            step,
                            status,
                            routed_to or "-",
                            answered,
                            why or "-",
                            _landed(step, status, routed_to, text, ports),
                        )
                    )
        finally:
            await gateway.stop()
    _print_table(rows, out)
    failed = [r for r in rows if not r.ok]
    if failed:
        print(f"\ndemo FAILED: {len(failed)} request(s) did not land where expected", file=out)
        return 1
    print(f"\ndemo ok: all {len(rows)} requests landed where expected", file=out)
    return 0


def _landed(step: Step, status: int, routed_to: str, text: str, ports: Mapping[str, int]) -> bool:
    if status != step.expect_status:
        return False
    if step.expect_instance is None:
        return True
    if routed_to != step.expect_instance:
        return False
    name = next(n for n, spec in FAKES.items() if spec[3] == step.expect_instance)
    match = _ANSWER.search(text)
    return match is not None and int(match["port"]) == ports[name]


def _print_table(rows: list[Row], out: TextIO) -> None:
    headers = ("request", "status", "routed to", "answered by", "why")
    table = [
        (
            r.step.label,
            str(r.status),
            r.routed_to,
            r.answered_by,
            ("" if r.ok else "UNEXPECTED: ") + r.why,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    line = "  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths, strict=True))
    print(line + "  " + headers[-1], file=out)
    print("  ".join("-" * w for w in widths) + "  " + "-" * 3, file=out)
    for row in table:
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True))
        print(cells + "  " + row[-1], file=out)


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo, printing to ``out`` (default stdout); return the exit code."""
    return asyncio.run(_run(out if out is not None else sys.stdout))
