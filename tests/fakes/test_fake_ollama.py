"""The fake Ollama server follows Ollama's API: /api (NDJSON streams) and the OpenAI /v1."""

from __future__ import annotations

import httpx
from fakes_support import chat, stream_events

from fake_servers.pytest_plugin import FakeServerFactory


def test_root_version_tags_ps(fake_server: FakeServerFactory) -> None:
    """GET /, /api/version, /api/tags and /api/ps have Ollama's shapes."""
    fake = fake_server("ollama", ["llama3", "qwen2.5:7b"])
    with httpx.Client(timeout=5) as client:
        root = client.get(fake.url + "/")
        version = client.get(fake.url + "/api/version").json()
        tags = client.get(fake.url + "/api/tags").json()
        ps = client.get(fake.url + "/api/ps").json()
    assert root.text == "Ollama is running"
    assert isinstance(version["version"], str)
    assert [m["name"] for m in tags["models"]] == ["llama3:latest", "qwen2.5:7b"]
    entry = tags["models"][0]
    assert entry["model"] == "llama3:latest"
    assert {"modified_at", "size", "digest"} <= set(entry)
    assert {"format", "family", "parameter_size", "quantization_level"} <= set(entry["details"])
    assert [m["name"] for m in ps["models"]] == ["llama3:latest"]
    assert {"expires_at", "size_vram"} <= set(ps["models"][0])


def test_default_model(fake_server: FakeServerFactory) -> None:
    """Without --model the fake serves llama3:latest."""
    assert fake_server("ollama").models == ["llama3:latest"]


def test_show(fake_server: FakeServerFactory) -> None:
    """POST /api/show describes a served model and is 404 for others."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        shown = client.post(fake.url + "/api/show", json={"model": "llama3"})
        missing = client.post(fake.url + "/api/show", json={"model": "nope"})
    assert shown.status_code == 200
    assert {"modelfile", "parameters", "template", "details", "model_info"} <= set(shown.json())
    assert missing.status_code == 404
    assert missing.json() == {"error": "model 'nope' not found"}


def test_chat_streams_ndjson_by_default(fake_server: FakeServerFactory) -> None:
    """/api/chat without `stream` streams NDJSON lines, then a done line with stats."""
    fake = fake_server("ollama")
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=5) as client:
        response = client.post(fake.url + "/api/chat", json=body)
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    *parts, final = stream_events("ollama", response.text)
    assert len(parts) > 2
    for part in parts:
        assert part["done"] is False
        assert part["model"] == "llama3:latest"
        assert part["message"]["role"] == "assistant"
        assert isinstance(part["created_at"], str)
    text = "".join(p["message"]["content"] for p in parts)
    assert text == f"I am llama3:latest on ollama port {fake.port}"
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    stats = ("total_duration", "load_duration", "prompt_eval_count", "eval_count")
    assert all(isinstance(final[k], int) for k in (*stats, "eval_duration"))


def test_chat_non_stream(fake_server: FakeServerFactory) -> None:
    """/api/chat with stream:false is one JSON object with the whole message."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        body = chat(client, fake.url, "ollama", "llama3:latest").json()
    assert body["done"] is True
    assert body["model"] == "llama3:latest"
    assert body["message"]["content"] == f"I am llama3:latest on ollama port {fake.port}"
    assert body["eval_count"] > 0


def test_name_without_tag_means_latest(fake_server: FakeServerFactory) -> None:
    """`llama3` matches `llama3:latest`, and `llama3:8b` does not."""
    fake = fake_server("ollama", ["llama3:latest"])
    with httpx.Client(timeout=5) as client:
        assert chat(client, fake.url, "ollama", "llama3").json()["model"] == "llama3:latest"
        assert chat(client, fake.url, "ollama", "llama3:8b").status_code == 404


def test_unknown_model_404(fake_server: FakeServerFactory) -> None:
    """A model Ollama does not have is 404 {"error": "model 'x' not found"}."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        response = chat(client, fake.url, "ollama", "x")
        generate = client.post(fake.url + "/api/generate", json={"model": "x", "prompt": "p"})
    assert response.status_code == generate.status_code == 404
    assert response.json() == generate.json() == {"error": "model 'x' not found"}


def test_generate(fake_server: FakeServerFactory) -> None:
    """/api/generate answers in `response`, streamed by default."""
    fake = fake_server("ollama")
    url = fake.url + "/api/generate"
    with httpx.Client(timeout=5) as client:
        single = client.post(url, json={"model": "llama3", "prompt": "p", "stream": False})
        streamed = client.post(url, json={"model": "llama3", "prompt": "p"})
    assert single.json()["response"] == f"I am llama3:latest on ollama port {fake.port}"
    events = stream_events("ollama", streamed.text)
    assert "".join(e["response"] for e in events) == single.json()["response"]
    assert events[-1]["done"] is True


def test_openai_compatible_v1(fake_server: FakeServerFactory) -> None:
    """/v1/models and /v1/chat/completions speak OpenAI, with Ollama's names."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        models = client.get(fake.url + "/v1/models").json()
        reply = chat(client, fake.url, "lmstudio", "llama3").json()
        missing = chat(client, fake.url, "lmstudio", "nope")
    assert [m["id"] for m in models["data"]] == ["llama3:latest"]
    assert reply["model"] == "llama3:latest"
    assert reply["choices"][0]["message"]["content"].startswith("I am llama3:latest on ollama")
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]["message"]


def test_unknown_path(fake_server: FakeServerFactory) -> None:
    """An unknown path is Gin's plain-text 404."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        response = client.get(fake.url + "/health")
    assert response.status_code == 404
    assert response.text == "404 page not found"


def test_bad_requests(fake_server: FakeServerFactory) -> None:
    """Invalid JSON and a missing model are 400 with Ollama's error shape."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        bad = client.post(fake.url + "/api/chat", content=b"{no")
        no_model = client.post(fake.url + "/api/chat", json={"messages": []})
    assert bad.status_code == no_model.status_code == 400
    assert isinstance(bad.json()["error"], str)
    assert no_model.json() == {"error": "model is required"}
