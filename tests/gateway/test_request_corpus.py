"""Request corpus: a field of the wrong type or range is a 400 naming it, at both doors,
before any backend is asked, whatever API style serves the model (request_corpus.yaml)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_support import GatewayHandle, Reply, config_text, http, set_keys, stop_all

from fake_servers import FakeServerHandle, LoopThread

CORPUS = yaml.safe_load((Path(__file__).parent / "request_corpus.yaml").read_text("utf-8"))
#: API style -> (fake kind, the model it serves).
STYLES = {
    "openai": ("llamacpp", "corpus-llama.gguf"),
    "ollama": ("ollama", "corpus-ollama:latest"),
    "anthropic": ("anthropic", "claude-corpus"),
}
DOOR_PATH = {"openai": "/v1/chat/completions", "ollama": "/api/chat"}
CHAT_PATHS = frozenset({"/v1/chat/completions", "/api/chat", "/v1/messages"})


@dataclass
class Doors:
    """One gateway in front of one fake per API style."""

    gateway: GatewayHandle
    fakes: dict[str, FakeServerHandle]

    def chat_calls(self) -> int:
        """How many chat requests the fakes have received so far, together."""
        return sum(
            1 for fake in self.fakes.values() for r in fake.requests if r["path"] in CHAT_PATHS
        )

    def send(self, door: str, body: dict[str, Any]) -> Reply:
        """POST ``body`` to ``door``'s chat endpoint."""
        return http("POST", self.gateway.url + DOOR_PATH[door], body)


@pytest.fixture(scope="module")
def doors(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    """A gateway (read_timeout 0.5, 10 MB bodies) routing to llama.cpp, Ollama, Anthropic."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_keys(monkeypatch)
        fakes = {
            style: FakeServerHandle.start_new(fake_loop, kind, [model])
            for style, (kind, model) in STYLES.items()
        }
        path = tmp_path_factory.mktemp("request-corpus") / "gateway.yaml"
        path.write_text(
            config_text(
                {f"{kind}:x": fakes[style] for style, (kind, _) in STYLES.items()},
                extra="gateway: {read_timeout: 0.5, max_body_bytes: 10485760}\n",
            ),
            "utf-8",
        )
        gateway = GatewayHandle.start(fake_loop, path)
        try:
            yield Doors(gateway, fakes)
        finally:
            stop_all(gateway, fakes)


def _body(door: str, case: dict[str, Any], model: str) -> dict[str, Any]:
    """The door's base body with the case's patch, ``$MODEL`` replaced by ``model``."""
    body: dict[str, Any] = copy.deepcopy(CORPUS["base"][door])
    body["model"] = model
    body.update(copy.deepcopy(case.get("set", {})))
    for name in case.get("drop", ()):
        body.pop(name, None)
    return body


def _cases(door: str) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in CORPUS[door]]


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No record at ERROR or above, none carrying a traceback."""
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]


def _refused(
    doors: Doors, caplog: pytest.LogCaptureFixture, door: str, case: dict[str, Any], style: str
) -> dict[str, Any]:
    """Send the case to ``door`` naming the model ``style`` serves; check what every door
    must: 400, the backend never asked, nothing loud logged. Returns the error body."""
    before = doors.chat_calls()
    with caplog.at_level(logging.DEBUG):
        reply = doors.send(door, _body(door, case, STYLES[style][1]))
    assert reply.status == 400, reply.body[:300]
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    assert doors.chat_calls() == before, "the backend was asked"
    _quiet(caplog)
    payload: dict[str, Any] = reply.json()
    return payload


def test_corpus_is_large_enough() -> None:
    """Each door has at least 40 wrong bodies, ids unique, every one naming a param."""
    for door in ("openai", "ollama"):
        ids = [case["id"] for case in CORPUS[door]]
        assert len(ids) >= 40 and len(set(ids)) == len(ids), door
        assert all(case.get("param") for case in CORPUS[door])


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("case", _cases("openai"))
def test_openai_door_names_the_wrong_field(
    doors: Doors, caplog: pytest.LogCaptureFixture, case: dict[str, Any], style: str
) -> None:
    """A wrong field at /v1/chat/completions is 400 with error.param, whoever serves."""
    error = _refused(doors, caplog, "openai", case, style)["error"]
    assert error["param"] == case["param"], error
    assert error["type"] == "invalid_request_error" and error["code"], error
    assert f"'{case['param']}'" in error["message"], error


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("case", _cases("ollama"))
def test_ollama_door_names_the_wrong_field(
    doors: Doors, caplog: pytest.LogCaptureFixture, case: dict[str, Any], style: str
) -> None:
    """A wrong field at /api/chat is 400 whose Ollama-shaped message names it."""
    payload = _refused(doors, caplog, "ollama", case, style)
    assert set(payload) == {"error"} and isinstance(payload["error"], str), payload
    assert f"'{case['param']}'" in payload["error"], payload


def _valid() -> list[Any]:
    return [
        pytest.param(door, case, style, id=f"{door}-door-{case['id']}-{style}")
        for door in ("openai", "ollama")
        for case in CORPUS["valid"][door]
        for style in STYLES
    ]


@pytest.mark.parametrize(("door", "case", "style"), _valid())
def test_unusual_but_valid_bodies_reach_the_backend(
    doors: Doors, caplog: pytest.LogCaptureFixture, door: str, case: dict[str, Any], style: str
) -> None:
    """Valid-but-unusual bodies pass the edge; same-protocol backends get unknown fields."""
    body = _body(door, case, STYLES[style][1])
    fake = doors.fakes[style]
    before = len(fake.requests)
    with caplog.at_level(logging.DEBUG):
        reply = doors.send(door, body)
    assert reply.status == 200, reply.body[:300]
    received = [r["json"] for r in fake.requests[before:] if r["path"] in CHAT_PATHS]
    assert len(received) == 1, "the backend serving the model got the request once"
    if style == door:  # the backend speaks the door's protocol: unknown fields untouched
        for name in case.get("forwarded", ()):
            assert received[0].get(name) == body[name], (name, received[0])
    _quiet(caplog)
