"""Helpers of the auth tests: keys in the environment, the auth section, the doors, a clock."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

#: Client key names -> the environment variable holding each key.
KEY_ENV = {
    "alice": "ROUTING_TEST_KEY_ALICE",
    "bob": "ROUTING_TEST_KEY_BOB",
    "carol": "ROUTING_TEST_KEY_CAROL",
    "dave": "ROUTING_TEST_KEY_DAVE",
}
ADMIN_ENV = "ROUTING_TEST_ADMIN_KEY"
MODEL = "qwen-7b.gguf"
OTHER = "other.gguf"
HI = [{"role": "user", "content": "hi"}]

#: alice may use qwen* only; bob anything; carol 2 requests a minute; dave 1 at a time.
AUTH = f"""gateway:
  auth:
    keys:
      - {{name: alice, key_env: {KEY_ENV["alice"]}, models: ["qwen*"]}}
      - {{name: bob, key_env: {KEY_ENV["bob"]}}}
      - {{name: carol, key_env: {KEY_ENV["carol"]}, requests_per_minute: 2}}
      - {{name: dave, key_env: {KEY_ENV["dave"]}, max_concurrent: 1}}
    admin_key_env: {ADMIN_ENV}
"""


def secret(name: str) -> str:
    """The key of ``name`` in these tests (unique per process, never a real key)."""
    return f"rk-{name}-{os.getpid()}-0123456789abcdef"


def set_auth_env(monkeypatch: pytest.MonkeyPatch, names: Any = KEY_ENV) -> dict[str, str]:
    """Put the client keys and the admin key in the environment; return name -> key."""
    keys = {name: secret(name) for name in names}
    for name in names:
        monkeypatch.setenv(KEY_ENV.get(name, f"ROUTING_TEST_KEY_{name.upper()}"), keys[name])
    keys["admin"] = secret("admin")
    monkeypatch.setenv(ADMIN_ENV, keys["admin"])
    return keys


def bearer(key: str) -> dict[str, str]:
    """The header the OpenAI clients send."""
    return {"Authorization": f"Bearer {key}"}


def x_api_key(key: str) -> dict[str, str]:
    """The header the Anthropic clients send."""
    return {"x-api-key": key}


@dataclass(frozen=True)
class Door:
    """One endpoint of a door: how to call it and how its errors look."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None

    @property
    def style(self) -> str:
        """``openai``, ``ollama`` or ``anthropic``: the error shape of this path."""
        if self.path.startswith("/api/"):
            return "ollama"
        return "anthropic" if self.path.startswith("/v1/messages") else "openai"

    def with_model(self, model: str | None) -> dict[str, Any] | None:
        """The body naming ``model`` (none when None), or None for a GET."""
        if self.body is None:
            return None
        body = {k: v for k, v in self.body.items() if k != "model"}
        return body if model is None else {**body, "model": model}


DOORS = [
    Door("openai-chat", "POST", "/v1/chat/completions", {"model": MODEL, "messages": HI}),
    Door("openai-models", "GET", "/v1/models", None),
    Door("ollama-chat", "POST", "/api/chat", {"model": MODEL, "messages": HI, "stream": False}),
    Door("ollama-tags", "GET", "/api/tags", None),
    Door("ollama-version", "GET", "/api/version", None),
    Door(
        "anthropic-messages",
        "POST",
        "/v1/messages",
        {"model": MODEL, "max_tokens": 16, "messages": HI},
    ),
]
BODY_DOORS = [d for d in DOORS if d.body is not None]


def error_code(door: Door, body: Any) -> tuple[str, str | None]:
    """(message, code or type) of an error body, asserting it has the door's shape."""
    if door.style == "ollama":
        assert set(body) == {"error"} and isinstance(body["error"], str), body
        return body["error"], None
    if door.style == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return body["error"]["message"], body["error"]["type"]
    error = body["error"]
    assert isinstance(error["message"], str) and "type" in error, body
    return error["message"], error["code"]


def expected_code(door: Door, openai_code: str, anthropic_type: str) -> str | None:
    """What :func:`error_code` gives for an error of this door (Ollama errors have none)."""
    return {"openai": openai_code, "anthropic": anthropic_type, "ollama": None}[door.style]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
