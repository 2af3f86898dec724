"""The fakes' strategy knobs: llama.cpp router mode, a busy knob and held requests on
``/slots``, Ollama's ``/api/ps`` content; from Python, over HTTP and on the command line.

Router-mode shapes follow the captures of a real ``llama-server --models-dir``
(``shared/wire/llamacpp/router_*.txt``), quoted below where the tests compare with them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fakes_support import wait_until

from fake_servers.pytest_plugin import FakeServerFactory

# Keys of one model entry of router mode's /v1/models, in the captured order.
ROUTER_ENTRY_KEYS = [
    "id",
    "aliases",
    "tags",
    "object",
    "owned_by",
    "created",
    "status",
    "architecture",
    "source",
    "can_remove",
]
# router_slots.txt and router_chat_unknown_model.txt, verbatim bodies.
ROUTER_SLOTS_400 = (
    '{"error":{"code":400,"message":"model name is missing from the request",'
    '"type":"invalid_request_error"}}'
)
UNKNOWN_MODEL_400 = {
    "error": {"code": 400, "message": "model 'nope' not found", "type": "invalid_request_error"}
}


def _chat(client: httpx.Client, url: str, model: str | None) -> httpx.Response:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    if model is not None:
        body["model"] = model
    return client.post(url + "/v1/chat/completions", json=body)


def _statuses(client: httpx.Client, url: str) -> dict[str, str]:
    body = client.get(url + "/v1/models").json()
    return {m["id"]: m["status"]["value"] for m in body["data"]}


def test_router_mode_lists_every_model_with_its_status(fake_server: FakeServerFactory) -> None:
    """Router mode: /v1/models is {data, object} with each model's status, keys in the
    captured order, `meta` only on loaded ones; health stays 200 with nothing loaded."""
    fake = fake_server("llamacpp", ["gemma-a", "gemma-b", "gemma-c"])
    fake.set_router_mode(loaded=["gemma-b"], loading=["gemma-c"])
    with httpx.Client(timeout=5) as client:
        body = client.get(fake.url + "/v1/models").json()
        fake.set_router_mode(loaded=[])
        health = client.get(fake.url + "/health")
        none_loaded = _statuses(client, fake.url)
    assert list(body) == ["data", "object"] and body["object"] == "list"
    a, b, c = body["data"]
    assert list(a) == ROUTER_ENTRY_KEYS and list(b) == [*ROUTER_ENTRY_KEYS, "meta"]
    assert [e["status"]["value"] for e in (a, b, c)] == ["unloaded", "loaded", "loading"]
    assert (a["source"], a["owned_by"], a["aliases"]) == ("models_dir", "llamacpp", [])
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert none_loaded == dict.fromkeys(("gemma-a", "gemma-b", "gemma-c"), "unloaded")


def test_router_mode_chat_loads_what_it_names(fake_server: FakeServerFactory) -> None:
    """A chat naming an unloaded model loads it (counted once), is answered by it, and a
    chat naming a loaded one loads nothing."""
    fake = fake_server("llamacpp", ["gemma-a", "gemma-b"], router_mode=True, loaded=["gemma-a"])
    with httpx.Client(timeout=5) as client:
        warm = _chat(client, fake.url, "gemma-a").json()
        assert fake.state()["loads"] == 0
        cold = _chat(client, fake.url, "gemma-b").json()
        again = _chat(client, fake.url, "gemma-b").json()
        statuses = _statuses(client, fake.url)
    assert warm["model"] == "gemma-a" and cold["model"] == again["model"] == "gemma-b"
    assert "timings" in cold
    assert fake.state()["loads"] == 1
    assert statuses == {"gemma-a": "loaded", "gemma-b": "loaded"}
    assert fake.state()["loaded"] == ["gemma-a", "gemma-b"]


def test_router_mode_chat_to_a_loading_model_is_no_new_load(fake_server: FakeServerFactory) -> None:
    """A chat naming a model already `loading` finds it loaded: no load is counted."""
    fake = fake_server("llamacpp", ["gemma-a", "gemma-b"])
    fake.set_router_mode(loading=["gemma-b"])
    with httpx.Client(timeout=5) as client:
        reply = _chat(client, fake.url, "gemma-b").json()
        statuses = _statuses(client, fake.url)
    assert reply["model"] == "gemma-b" and fake.state()["loads"] == 0
    assert statuses == {"gemma-a": "unloaded", "gemma-b": "loaded"}


def test_router_mode_models_max_unloads_least_recently_used(fake_server: FakeServerFactory) -> None:
    """Past models_max the least recently used model is unloaded (the swap captured)."""
    fake = fake_server("llamacpp", ["gemma-a", "gemma-b", "gemma-c"])
    fake.set_router_mode(loaded=["gemma-a", "gemma-b"], models_max=2)
    with httpx.Client(timeout=5) as client:
        _chat(client, fake.url, "gemma-a")  # b is now the least recently used
        _chat(client, fake.url, "gemma-c")
        statuses = _statuses(client, fake.url)
    assert statuses == {"gemma-a": "loaded", "gemma-b": "unloaded", "gemma-c": "loaded"}
    assert fake.state()["loads"] == 1


def test_router_mode_errors_as_captured(fake_server: FakeServerFactory) -> None:
    """Router mode: an unknown model is the captured 400, no model a 400, and /slots
    without ?model= the captured 400; with ?model= of a loaded model, its slots."""
    fake = fake_server("llamacpp", ["gemma-a"], router_mode=True)
    with httpx.Client(timeout=5) as client:
        unknown = _chat(client, fake.url, "nope")
        missing = _chat(client, fake.url, None)
        slots = client.get(fake.url + "/slots")
        _chat(client, fake.url, "gemma-a")
        named = client.get(fake.url + "/slots", params={"model": "gemma-a"})
    assert (unknown.status_code, unknown.json()) == (400, UNKNOWN_MODEL_400)
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "model name is missing from the request"
    assert (slots.status_code, slots.text) == (400, ROUTER_SLOTS_400)
    assert named.status_code == 200 and len(named.json()) == 4
    assert fake.state()["loads"] == 1


def test_router_mode_off_restores_single_model(fake_server: FakeServerFactory) -> None:
    """set_router_mode(False) gives back the single-model server (models and data lists)."""
    fake = fake_server("llamacpp", ["gemma-a", "gemma-b"], router_mode=True)
    fake.set_router_mode(False)
    with httpx.Client(timeout=5) as client:
        body = client.get(fake.url + "/v1/models").json()
        reply = _chat(client, fake.url, "other").json()
    assert set(body) == {"models", "object", "data"}
    assert "status" not in body["data"][0] and reply["model"] == "gemma-a"
    assert fake.state()["loads"] == 0


def test_busy_knob_on_slots_and_props(fake_server: FakeServerFactory) -> None:
    """set_busy(n, slots) reports n slots processing of `slots` (default 4, like the real
    fake), and /props total_slots follows."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        idle = client.get(fake.url + "/slots").json()
        fake.set_busy(3)
        busy = client.get(fake.url + "/slots").json()
        fake.set_busy(2, slots=2)
        full = client.get(fake.url + "/slots").json()
        props = client.get(fake.url + "/props").json()
    assert [s["is_processing"] for s in idle] == [False] * 4
    assert [s["is_processing"] for s in busy] == [True, True, True, False]
    assert [s["is_processing"] for s in full] == [True, True]
    assert list(full[0]) == ["id", "n_ctx", "speculative", "is_processing"]
    assert props["total_slots"] == 2
    assert (fake.state()["busy"], fake.state()["slots"]) == (2, 2)
    for bad in (-1, True, "2"):
        with pytest.raises(ValueError, match="busy must be"):
            fake.set_busy(bad)  # type: ignore[arg-type]


def test_held_requests_are_busy_until_released(fake_server: FakeServerFactory) -> None:
    """hold(): chats wait, each counted processing in /slots; hold(False) answers them."""
    fake = fake_server("llamacpp", ["a.gguf"])
    fake.hold()
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(_chat, client, fake.url, "a.gguf") for _ in range(2)]
        wait_until(lambda: fake.state()["busy"] == 2)
        slots = client.get(fake.url + "/slots").json()
        assert not any(p.done() for p in pending)
        fake.hold(False)
        answers = [p.result(10) for p in pending]
    assert [s["is_processing"] for s in slots] == [True, True, False, False]
    assert [a.status_code for a in answers] == [200, 200]
    assert fake.state()["busy"] == 0 and fake.state()["held"] is False


def test_held_request_is_dropped_when_the_fake_stops(fake_server: FakeServerFactory) -> None:
    """A request still held when the fake stops gets its connection closed (no hang)."""
    fake = fake_server("llamacpp")
    fake.hold()
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_chat, client, fake.url, None)
        wait_until(lambda: fake.state()["busy"] == 1)
        fake.stop()
        with pytest.raises(httpx.HTTPError):
            pending.result(10)


def test_ollama_ps_follows_set_loaded(fake_server: FakeServerFactory) -> None:
    """Ollama: /api/ps lists the first model by default (chats change nothing), set_loaded
    lists exactly those, and then a chat to another model loads it (counted)."""
    fake = fake_server("ollama", ["llama3", "qwen2.5:7b", "phi3"])
    chat = {"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}], "stream": False}

    def ps(client: httpx.Client) -> list[str]:
        return [m["name"] for m in client.get(fake.url + "/api/ps").json()["models"]]

    with httpx.Client(timeout=5) as client:
        default = ps(client)
        client.post(fake.url + "/api/chat", json=chat)
        still = ps(client)
        fake.set_loaded(["phi3"])
        chosen = ps(client)
        fake.set_loaded([])
        empty = ps(client)
        client.post(fake.url + "/api/chat", json=chat)
        loaded = ps(client)
    assert default == still == ["llama3:latest"]
    assert chosen == ["phi3:latest"] and empty == []
    assert loaded == ["qwen2.5:7b"] and fake.state()["loads"] == 1
    with pytest.raises(ValueError, match="not among"):
        fake.set_loaded(["absent"])


def test_router_mode_is_llamacpp_only(fake_server: FakeServerFactory) -> None:
    """Router mode on another kind, or naming a model not served, is a ValueError."""
    with pytest.raises(ValueError, match=r"llama\.cpp"):
        fake_server("ollama").set_router_mode()
    fake = fake_server("llamacpp", ["a.gguf"])
    with pytest.raises(ValueError, match="not among"):
        fake.set_router_mode(loaded=["b.gguf"])
    with pytest.raises(ValueError, match="models_max"):
        fake.set_router_mode(models_max=-1)


def test_knobs_over_http(fake_server: FakeServerFactory) -> None:
    """POST /_fake/router-mode, /_fake/loaded, /_fake/busy and /_fake/hold set the knobs
    (the state document shows them); bad payloads are 400."""
    fake = fake_server("llamacpp", ["a.gguf", "b.gguf"])
    ollama = fake_server("ollama", ["llama3", "phi3"])
    with httpx.Client(timeout=5) as client:
        mode = client.post(
            fake.url + "/_fake/router-mode", json={"loaded": ["b.gguf"], "models_max": 1}
        ).json()
        statuses = _statuses(client, fake.url)
        busy = client.post(fake.url + "/_fake/busy", json={"busy": 1, "slots": 3}).json()
        held = client.post(fake.url + "/_fake/hold", json={"hold": True}).json()
        released = client.post(fake.url + "/_fake/hold", json={"hold": False}).json()
        loaded = client.post(ollama.url + "/_fake/loaded", json={"loaded": ["phi3"]}).json()
        bad = [
            client.post(fake.url + path, json=payload).status_code
            for path, payload in (
                ("/_fake/router-mode", {"loaded": ["zzz"]}),
                ("/_fake/router-mode", []),
                ("/_fake/busy", {"busy": -2}),
                ("/_fake/busy", {}),
                ("/_fake/hold", {}),
                ("/_fake/loaded", {"loaded": "a.gguf"}),
            )
        ]
    assert (mode["router_mode"], mode["loaded"]) == (True, ["b.gguf"])
    assert statuses == {"a.gguf": "unloaded", "b.gguf": "loaded"}
    assert (busy["busy"], busy["slots"]) == (1, 3)
    assert (held["held"], released["held"]) == (True, False)
    assert loaded["loaded"] == ["phi3:latest"]
    assert bad == [400] * 6


def test_cli_router_mode() -> None:
    """`python -m fake_servers llamacpp --router-mode --model a --model b --loaded b`
    serves router mode; --router-mode on ollama exits 2 with a message."""
    refused = subprocess.run(
        [sys.executable, "-m", "fake_servers", "ollama", "--router-mode"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "llama.cpp" in refused.stderr
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fake_servers",
            "llamacpp",
            "--router-mode",
            "--model",
            "a",
            "--model",
            "b",
            "--loaded",
            "b",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.match(r"^listening on (\S+)$", process.stdout.readline().strip())
        assert match
        with httpx.Client(timeout=5) as client:
            assert _statuses(client, match.group(1)) == {"a": "unloaded", "b": "loaded"}
    finally:
        process.terminate()
        process.wait(10)
        assert process.stdout is not None
        process.stdout.close()
