"""The fidelity suite's tables: backend kinds, scenarios, and each scenario as a request in
every API style (OpenAI, Ollama, Anthropic), plus a gateway over one fake of every kind.

A scenario is written once; :func:`openai_request`, :func:`ollama_request` and
:func:`anthropic_request` say it in each style the way a client of that style would, so the
gateway's conversion can be compared with a client talking to the backend directly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fake_servers import FakeServerHandle, LoopThread
from routing._gateway_server import Gateway
from routing.config import load_config

MODELS = {
    "llamacpp": "qwen-coder.gguf",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "ollama": "llama3:latest",
    "anthropic": "claude-3-5-haiku-latest",
}
KINDS = tuple(MODELS)
STYLE = {
    "llamacpp": "openai",
    "lmstudio": "openai",
    "openai": "openai",
    "ollama": "ollama",
    "anthropic": "anthropic",
}
KEY_ENV = {"openai": "ROUTING_FIDELITY_OPENAI_KEY", "anthropic": "ROUTING_FIDELITY_ANTHROPIC_KEY"}

# A 1x1 PNG, base64 (starts with PNG's magic, so the Ollama door calls it image/png).
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
    "RU5ErkJggg=="
)
SYSTEM = "You are terse and exact."
STOPS = (" port", " on ")  # the fakes' "I am MODEL on KIND port N" is cut at " on "
TOOL_NAMES = ("get_weather", "get_time")
CALL_ARGS = ({"city": "Paris", "n": 1}, {"city": "Paris", "n": 2})
"""What the fakes' tool call i carries (``{"city": "Paris", "n": i + 1}``)."""
RESULTS = ("18 C and sunny", "14:05")
_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["city"],
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row of the scenario table."""

    name: str
    system: bool = False
    stop: bool = False
    include_usage: bool | None = None
    """OpenAI ``stream_options.include_usage`` of a stream (None: not sent)."""
    tools: bool = False
    """Offer the two tools and ask for calls (``CALL_TOOLS``)."""
    tool_results: bool = False
    """A history of two calls and their two results (the tools offered again)."""
    image: bool = False
    openai_only: bool = False
    """Only the OpenAI door has the knob (``stream_options``)."""

    @property
    def user_text(self) -> str:
        """The last user message's text."""
        if self.tools:
            return "CALL_TOOLS for Paris"
        return "what is in this picture?" if self.image else "hi"

    @property
    def calls(self) -> bool:
        """The backend answers with tool calls."""
        return self.tools

    def expected_text(self, kind: str, port: int) -> str:
        """The reply text the fake of ``kind`` on ``port`` gives (empty for tool calls)."""
        if self.calls:
            return ""
        text = f"I am {MODELS[kind]} on {kind} port {port}"
        if self.tool_results:
            text += "; tool results: 2"
        if self.image:
            text += "; images: 1"
        return text.split(" on ", 1)[0] if self.stop else text


SCENARIOS = (
    Scenario("plain"),
    Scenario("system", system=True),
    Scenario("stop", stop=True),
    Scenario("usage-asked", include_usage=True, openai_only=True),
    Scenario("usage-declined", include_usage=False, openai_only=True),
    Scenario("tools", tools=True),
    Scenario("tool-results", tool_results=True),
    Scenario("image", image=True),
)
OLLAMA_SCENARIOS = tuple(s for s in SCENARIOS if not s.openai_only)

Gaps = dict[tuple[str, str, bool], str]
"""(scenario name, kind, stream) -> why that row fails."""


def table(scenarios: tuple[Scenario, ...], gaps: Gaps) -> list[Any]:
    """Every (scenario, kind, stream) row; a row in ``gaps`` is a strict xfail with its reason."""
    rows = []
    for s in scenarios:
        for kind in KINDS:
            for stream in (False, True):
                gap = gaps.get((s.name, kind, stream))
                marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
                rows.append(
                    pytest.param(
                        s,
                        kind,
                        stream,
                        marks=marks,
                        id=f"{s.name}-{kind}-{'stream' if stream else 'whole'}",
                    )
                )
    return rows


def openai_tools() -> list[dict[str, Any]]:
    """The two tools in OpenAI's shape."""
    return [
        {
            "type": "function",
            "function": {"name": name, "description": f"{name} tool", "parameters": _SCHEMA},
        }
        for name in TOOL_NAMES
    ]


def openai_request(s: Scenario, *, stream: bool, no_content: str | None = None) -> dict[str, Any]:
    """``s`` as keyword arguments of ``openai`` ``chat.completions.create``; ``no_content``
    is the content of the assistant message that only calls tools."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}] if s.system else []
    if s.image:
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": s.user_text},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            }
        )
    else:
        messages.append({"role": "user", "content": s.user_text})
    if s.tool_results:
        messages.append(
            {
                "role": "assistant",
                "content": no_content,
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": _json(CALL_ARGS[i])},
                    }
                    for i, name in enumerate(TOOL_NAMES)
                ],
            }
        )
        messages += [
            {"role": "tool", "tool_call_id": f"call_{i}", "content": RESULTS[i]} for i in range(2)
        ]
    request: dict[str, Any] = {"messages": messages, "stream": stream}
    if s.stop:
        request["stop"] = list(STOPS)
    if s.tools or s.tool_results:
        request["tools"] = openai_tools()
    if stream and s.include_usage is not None:
        request["stream_options"] = {"include_usage": s.include_usage}
    return request


def ollama_request(s: Scenario, *, stream: bool) -> dict[str, Any]:
    """``s`` as keyword arguments of ``ollama`` ``Client.chat``."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}] if s.system else []
    user: dict[str, Any] = {"role": "user", "content": s.user_text}
    if s.image:
        user["images"] = [PNG_B64]
    messages.append(user)
    if s.tool_results:
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": name, "arguments": CALL_ARGS[i]}}
                    for i, name in enumerate(TOOL_NAMES)
                ],
            }
        )
        messages += [
            {"role": "tool", "tool_name": TOOL_NAMES[i], "content": RESULTS[i]} for i in range(2)
        ]
    request: dict[str, Any] = {"messages": messages, "stream": stream}
    if s.stop:
        request["options"] = {"stop": list(STOPS)}
    if s.tools or s.tool_results:
        request["tools"] = openai_tools()  # Ollama's tools have OpenAI's shape
    return request


def anthropic_request(s: Scenario, *, stream: bool) -> dict[str, Any]:
    """``s`` as keyword arguments of ``anthropic`` ``messages.create``."""
    content: Any = s.user_text
    if s.image:
        content = [
            {"type": "text", "text": s.user_text},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
            },
        ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if s.tool_results:
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"call_{i}", "name": name, "input": CALL_ARGS[i]}
                    for i, name in enumerate(TOOL_NAMES)
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"call_{i}", "content": RESULTS[i]}
                    for i in range(2)
                ],
            }
        )
    request: dict[str, Any] = {"messages": messages, "max_tokens": 1024, "stream": stream}
    if s.system:
        request["system"] = SYSTEM
    if s.stop:
        request["stop_sequences"] = list(STOPS)
    if s.tools or s.tool_results:
        request["tools"] = [
            {"name": name, "description": f"{name} tool", "input_schema": _SCHEMA}
            for name in TOOL_NAMES
        ]
    return request


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def api_keys() -> dict[str, str]:
    """The API keys of the keyed kinds (the gateway reads them from :data:`KEY_ENV`)."""
    return {kind: f"sk-fidelity-{kind}-{os.getpid()}" for kind in KEY_ENV}


class Rig:
    """One fake of every kind and a gateway over them, served from the fakes' loop."""

    def __init__(
        self,
        loop: LoopThread,
        fakes: dict[str, FakeServerHandle],
        gateway: Gateway,
        keys: dict[str, str],
    ) -> None:
        self.loop = loop
        self.fakes = fakes
        self.gateway = gateway
        self.keys = keys

    @classmethod
    def start(cls, loop: LoopThread, config_dir: Path, keys: dict[str, str]) -> Rig:
        """Start the fakes (keyed kinds demand ``keys[kind]``) and a gateway on free ports."""
        fakes: dict[str, FakeServerHandle] = {}
        try:
            for kind in KINDS:
                fakes[kind] = FakeServerHandle.start_new(
                    loop, kind, [MODELS[kind]], api_key=keys.get(kind)
                )
            path = config_dir / "fidelity.yaml"
            path.write_text(config_text(fakes), encoding="utf-8")
            config = load_config(path)

            async def go() -> Gateway:
                return await Gateway(config).start("127.0.0.1", 0)

            return cls(loop, fakes, loop.run(go()), keys)
        except BaseException:
            for fake in fakes.values():
                fake.stop()
            raise

    @property
    def url(self) -> str:
        """The gateway's ``http://127.0.0.1:PORT``."""
        return self.gateway.url

    def key(self, kind: str) -> str:
        """The API key a direct client of ``kind`` sends (local servers: any)."""
        return self.keys.get(kind, "sk-local")

    def chat_bodies(self, kind: str, since: int) -> list[Any]:
        """The chat request bodies ``kind``'s fake received after its ``since``-th request."""
        fake = self.fakes[kind]
        return [
            r["json"]
            for r in fake.requests[since:]
            if r["method"] == "POST" and r["path"] in _CHAT_PATHS[kind]
        ]

    def stop(self) -> None:
        """Stop the gateway and the fakes; re-raise any error raised inside a fake."""
        try:
            self.loop.run(self.gateway.stop())
        finally:
            for fake in self.fakes.values():
                fake.stop()
            for fake in self.fakes.values():
                fake.check()


_CHAT_PATHS = {
    "llamacpp": {"/v1/chat/completions", "/chat/completions"},
    "lmstudio": {"/v1/chat/completions"},
    "openai": {"/v1/chat/completions"},
    "ollama": {"/api/chat"},
    "anthropic": {"/v1/messages"},
}
_API = {"openai": "openai", "ollama": "ollama", "anthropic": "anthropic"}


def config_text(fakes: dict[str, FakeServerHandle]) -> str:
    """A config with one provider per kind (named after it), one instance ``one`` each."""
    text = "version: 1\ndefaults:\n  probe: {timeout: 1.0, ttl: 60}\nproviders:\n"
    for kind, fake in fakes.items():
        key = f", api_key_env: {KEY_ENV[kind]}" if kind in KEY_ENV else ""
        text += (
            f"  {kind}:\n    api: {_API[STYLE[kind]]}\n    kind: {kind}\n"
            f'    instances:\n      one: {{url: "{fake.url}"{key}}}\n'
        )
    return text
