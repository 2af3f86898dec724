"""The fake llama.cpp server speaks llama-server's wire format (see shared/wire/llamacpp)."""

from __future__ import annotations

import httpx
from fakes_support import chat, parse_sse, stream_events, wait_until

from fake_servers.pytest_plugin import FakeServerFactory

LOADING = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


def test_health_ok_and_server_header(fake_server: FakeServerFactory) -> None:
    """GET /health is 200 {"status":"ok"} with the header Server: llama.cpp."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        response = client.get(fake.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Server"] == "llama.cpp"
    assert response.headers["Content-Type"].startswith("application/json")


def test_loading_seconds_then_ready(fake_server: FakeServerFactory) -> None:
    """--loading-seconds answers 503 "Loading model" on /health and chat, then turns ready."""
    fake = fake_server("llamacpp", loading_seconds=0.3)
    with httpx.Client(timeout=5) as client:
        health = client.get(fake.url + "/health")
        assert health.status_code == 503
        assert health.json() == LOADING
        assert chat(client, fake.url, "llamacpp", "x").status_code == 503
        wait_until(lambda: client.get(fake.url + "/health").status_code == 200)
        assert chat(client, fake.url, "llamacpp", "x").status_code == 200


def test_set_loading_toggles(fake_server: FakeServerFactory) -> None:
    """set_loading(True/False) switches /health between 503 and 200 at run time."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        fake.set_loading(True)
        assert client.get(fake.url + "/health").json() == LOADING
        fake.set_loading(False)
        assert client.get(fake.url + "/health").status_code == 200


def test_models_lists_both_keys(fake_server: FakeServerFactory) -> None:
    """/v1/models and /models carry `models` and `data`, ids are the --model names."""
    fake = fake_server("llamacpp", ["a.gguf", "b.gguf"])
    with httpx.Client(timeout=5) as client:
        for path in ("/v1/models", "/models"):
            body = client.get(fake.url + path).json()
            assert body["object"] == "list"
            assert [m["name"] for m in body["models"]] == ["a.gguf", "b.gguf"]
            assert [m["model"] for m in body["models"]] == ["a.gguf", "b.gguf"]
            assert [d["id"] for d in body["data"]] == ["a.gguf", "b.gguf"]
            first = body["data"][0]
            assert first["object"] == "model"
            assert first["owned_by"] == "llamacpp"
            assert first["aliases"] == ["a.gguf"]
            assert isinstance(first["created"], int)
            assert "n_ctx" in first["meta"]


def test_props_and_slots(fake_server: FakeServerFactory) -> None:
    """/props names the loaded model and the context; /slots lists the slots."""
    fake = fake_server("llamacpp", ["a.gguf", "b.gguf"])
    with httpx.Client(timeout=5) as client:
        props = client.get(fake.url + "/props").json()
        slots = client.get(fake.url + "/slots").json()
    assert props["model_alias"] == "a.gguf"
    assert props["model_path"].endswith("a.gguf")
    assert props["total_slots"] == len(slots) == 4
    assert props["default_generation_settings"]["n_ctx"] == 512
    assert isinstance(props["build_info"], str)
    assert slots[0] == {"id": 0, "n_ctx": 512, "speculative": False, "is_processing": False}


def test_default_model(fake_server: FakeServerFactory) -> None:
    """Without --model the fake serves model.gguf."""
    assert fake_server("llamacpp").models == ["model.gguf"]


def test_chat_non_stream_shape(fake_server: FakeServerFactory) -> None:
    """Non-stream chat has the shape of chat.txt and names who answered."""
    fake = fake_server("llamacpp", ["a.gguf"])
    with httpx.Client(timeout=5) as client:
        body = chat(client, fake.url, "llamacpp", "a.gguf").json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "a.gguf"
    assert isinstance(body["created"], int)
    assert isinstance(body["system_fingerprint"], str)
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": f"I am a.gguf on llamacpp port {fake.port}",
    }
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert {"prompt_n", "predicted_n", "predicted_per_second"} <= set(body["timings"])


def test_unknown_model_answered_by_first(fake_server: FakeServerFactory) -> None:
    """Like llama-server, an unknown model name is answered by the first (loaded) model."""
    fake = fake_server("llamacpp", ["a.gguf", "b.gguf"])
    with httpx.Client(timeout=5) as client:
        unknown = chat(client, fake.url, "llamacpp", "gpt-4").json()
        known = chat(client, fake.url, "llamacpp", "b.gguf").json()
    assert unknown["model"] == "a.gguf"
    assert unknown["choices"][0]["message"]["content"].startswith("I am a.gguf ")
    assert known["model"] == "b.gguf"
    assert known["choices"][0]["message"]["content"].startswith("I am b.gguf ")


def test_chat_also_without_v1_prefix(fake_server: FakeServerFactory) -> None:
    """POST /chat/completions is an alias of /v1/chat/completions."""
    fake = fake_server("llamacpp", ["a.gguf"])
    with httpx.Client(timeout=5) as client:
        response = client.post(
            fake.url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        )
    assert response.json()["model"] == "a.gguf"


def test_stream_chunk_sequence(fake_server: FakeServerFactory) -> None:
    """The stream follows chat_stream.txt: role chunk, content chunks, stop, usage, [DONE]."""
    fake = fake_server("llamacpp", ["a.gguf"])
    body = {
        "model": "a.gguf",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.Client(timeout=5) as client:
        response = client.post(fake.url + "/v1/chat/completions", json=body)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    raw = parse_sse(response.text)
    assert all(event is None for event, _ in raw)
    events = stream_events("llamacpp", response.text)
    ids = {e["id"] for e in events}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == "a.gguf" for e in events)
    first, *content, stop, usage = events
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert len(content) > 2
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert text == f"I am a.gguf on llamacpp port {fake.port}"
    assert stop["choices"][0] == {"finish_reason": "stop", "index": 0, "delta": {}}
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(content)


def test_stream_without_usage(fake_server: FakeServerFactory) -> None:
    """Without stream_options.include_usage no usage chunk; timings ride on the last chunk."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        response = chat(client, fake.url, "llamacpp", "x", stream=True)
    events = stream_events("llamacpp", response.text)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert "timings" in events[-1]
    assert all(e["choices"] and "usage" not in e for e in events)


def test_bad_requests_are_400(fake_server: FakeServerFactory) -> None:
    """Invalid JSON, missing, non-array or content-less messages are 400s like llama-server's."""
    fake = fake_server("llamacpp")
    url = fake.url + "/v1/chat/completions"
    with httpx.Client(timeout=5) as client:
        bad_json = client.post(url, content=b"{no", headers={"Content-Type": "application/json"})
        missing = client.post(url, json={"model": "x"})
        not_array = client.post(url, json={"messages": "hi"})
        no_content = client.post(url, json={"messages": ["hi"]})
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"

    def expected(message: str) -> dict[str, object]:
        return {"error": {"code": 400, "message": message, "type": "invalid_request_error"}}

    assert missing.status_code == not_array.status_code == no_content.status_code == 400
    assert missing.json() == expected("'messages' is required")
    assert not_array.json() == expected("Expected 'messages' to be an array")
    assert no_content.json() == expected("All non-assistant messages must contain 'content'")


def test_unknown_path_is_404(fake_server: FakeServerFactory) -> None:
    """/api/tags (an Ollama path) is llama.cpp's 404 File Not Found."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        response = client.get(fake.url + "/api/tags")
        wrong_method = client.get(fake.url + "/v1/chat/completions")
    expected = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
    assert response.status_code == 404
    assert response.json() == expected
    assert response.headers["Server"] == "llama.cpp"
    assert wrong_method.status_code == 404
