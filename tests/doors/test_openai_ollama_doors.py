"""The real `openai` and `ollama` clients on the new OpenAI and Ollama door endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest
from doors_support import (
    KINDS,
    MODELS,
    GatewayHandle,
    config_text,
    http,
    keyed_fakes,
    set_keys,
    stop_all,
)

from fake_servers import FakeServerHandle, LoopThread
from fake_servers._extra_ops import vector

EMBEDDERS = ("llamacpp", "lmstudio", "openai", "ollama")  # kinds that can embed
ROUTED = {"llamacpp": "llamacpp:embed"}  # where embeddings land (chat lands on llamacpp:one)


class Doors:
    """The module's gateway over one fake of each kind, plus an embeddings llama.cpp."""

    def __init__(self, gateway: GatewayHandle, fakes: dict[str, FakeServerHandle]) -> None:
        self.gateway = gateway
        self.fakes = fakes

    def openai(self) -> openai.OpenAI:
        """An OpenAI client on the gateway (Continue's ``apiBase``)."""
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0)

    def ollama(self) -> ollama.Client:
        """An Ollama client on the gateway (Open WebUI's Ollama URL)."""
        return ollama.Client(host=self.gateway.url)

    def posts(self, name: str) -> list[dict[str, Any]]:
        """The POSTs fake ``name`` received."""
        return [r for r in self.fakes[name].requests if r["method"] == "POST"]


@pytest.fixture(scope="module")
def doors(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    """A gateway over every kind; llama.cpp twice, the same model name, chat and embeddings."""
    with pytest.MonkeyPatch.context() as patch:
        keys = set_keys(patch)
        fakes = keyed_fakes(fake_loop, keys)
        fakes["embed"] = FakeServerHandle.start_new(
            fake_loop, "llamacpp", [MODELS["llamacpp"]], embeddings=True
        )
        named = {f"{k}:one": f for k, f in fakes.items() if k != "embed"}
        named["llamacpp:embed"] = fakes["embed"]
        path = Path(tmp_path_factory.mktemp("doors")) / "gateway.yaml"
        path.write_text(config_text(named), "utf-8")
        gateway = GatewayHandle.start(fake_loop, path)
        try:
            yield Doors(gateway, fakes)
        finally:
            stop_all(gateway, fakes)


def _close(got: list[float], text: str) -> bool:
    return len(got) == len(vector(text)) and all(
        abs(a - b) < 1e-6 for a, b in zip(got, vector(text), strict=True)
    )


def _names(text: str, kind: str) -> None:
    assert text.startswith(f"I am {MODELS[kind]} on {kind} port "), text


@pytest.mark.parametrize("kind", EMBEDDERS)
@pytest.mark.parametrize("encoding", ["default", "float"])
def test_openai_embeddings(doors: Doors, kind: str, encoding: str) -> None:
    """embeddings.create gets each input's own vector (base64, what the client asks for by
    default, or floats); llama.cpp's land on the server started with --embeddings."""
    asked: dict[str, Any] = {} if encoding == "default" else {"encoding_format": encoding}
    with doors.openai() as client:
        raw = client.embeddings.with_raw_response.create(
            model=MODELS[kind], input=["alpha", "beta"], **asked
        )
        reply = raw.parse()
    assert raw.headers["X-Routed-To"] == ROUTED.get(kind, f"{kind}:one")
    assert [d.index for d in reply.data] == [0, 1]
    assert _close(reply.data[0].embedding, "alpha") and _close(reply.data[1].embedding, "beta")


def test_openai_embeddings_where_no_instance_can(doors: Doors) -> None:
    """Embeddings of a model only an Anthropic instance serves: 501 not_supported."""
    with doors.openai() as client, pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model=MODELS["anthropic"], input="x")
    assert info.value.status_code == 501
    assert info.value.body["code"] == "not_supported"  # type: ignore[index]


@pytest.mark.parametrize("kind", EMBEDDERS)
def test_openai_completions(doors: Doors, kind: str) -> None:
    """completions.create answers from each kind, streamed and not, the same text."""

    async def go() -> tuple[str, str, str]:
        async with openai.AsyncOpenAI(
            base_url=doors.gateway.url + "/v1", api_key="unused", max_retries=0
        ) as client:
            raw = await client.completions.with_raw_response.create(
                model=MODELS[kind], prompt="def add(a, b):", max_tokens=16
            )
            whole = raw.parse()
            stream = await client.completions.create(
                model=MODELS[kind], prompt="def add(a, b):", max_tokens=16, stream=True
            )
            parts = [c.choices[0].text async for c in stream if c.choices]
            return whole.choices[0].text, "".join(parts), raw.headers["X-Routed-To"]

    whole, streamed, routed = asyncio.run(asyncio.wait_for(go(), 20))
    assert routed == f"{kind}:one"
    _names(whole, kind)
    assert streamed == whole
    if kind == "ollama":
        sent = doors.posts("ollama")[-1]
        assert sent["path"] == "/api/generate"
        assert sent["json"]["raw"] is True and sent["json"]["prompt"] == "def add(a, b):"
        assert sent["json"]["options"]["num_predict"] == 16


def test_openai_models_retrieve(doors: Doors) -> None:
    """models.retrieve names the instance serving a model; an unknown one is a 404."""
    with doors.openai() as client:
        model = client.models.retrieve(MODELS["lmstudio"])
        with pytest.raises(openai.NotFoundError) as info:
            client.models.retrieve("nobody-serves-this")
    assert (model.id, model.owned_by) == (MODELS["lmstudio"], "lmstudio:one")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize("kind", EMBEDDERS)
def test_ollama_embed(doors: Doors, kind: str) -> None:
    """ollama embed (and the legacy embeddings) give each input's own vector."""
    with doors.ollama() as client:
        reply = client.embed(model=MODELS[kind], input=["alpha", "beta"])
        legacy = client.embeddings(model=MODELS[kind], prompt="alpha")
    assert len(reply.embeddings) == 2
    assert _close(list(reply.embeddings[0]), "alpha") and _close(list(reply.embeddings[1]), "beta")
    assert _close(list(legacy.embedding), "alpha")


@pytest.mark.parametrize("kind", KINDS)
def test_ollama_generate(doors: Doors, kind: str) -> None:
    """ollama generate answers from every kind, streamed and not; system and images arrive."""
    with doors.ollama() as client:
        whole = client.generate(model=MODELS[kind], prompt="hi", system="Be brief.")
        parts = list(client.generate(model=MODELS[kind], prompt="hi", stream=True))
        seen = client.generate(model=MODELS[kind], prompt="look", images=["iVBORw0KGgo="])
    _names(whole.response or "", kind)
    assert whole.done and whole.done_reason == "stop" and (whole.eval_count or 0) > 0
    assert parts[-1].done and "".join(p.response or "" for p in parts) == whole.response
    assert (seen.response or "").endswith("; images: 1")


def test_ollama_generate_raw_and_refusals(doors: Doors) -> None:
    """raw goes out as a text completion; what cannot be mapped is a 400 naming the field."""
    with doors.ollama() as client:
        raw = client.generate(model=MODELS["llamacpp"], prompt="x = ", raw=True)
        refused = {}
        for field, value in (("context", [1, 2]), ("template", "{{ .Prompt }}")):
            with pytest.raises(ollama.ResponseError) as info:
                client.generate(model=MODELS["ollama"], prompt="hi", **{field: value})
            refused[field] = (info.value.status_code, info.value.error)
        with pytest.raises(ollama.ResponseError) as both:
            client.generate(model=MODELS["ollama"], prompt="hi", raw=True, format="json")
    _names(raw.response or "", "llamacpp")
    assert doors.posts("llamacpp")[-1]["path"] == "/v1/completions"
    assert all(status == 400 and f"'{f}'" in error for f, (status, error) in refused.items())
    assert both.value.status_code == 400 and "'format'" in both.value.error


def test_ollama_show_ps_and_root(doors: Doors) -> None:
    """show answers for a served model (404 otherwise); ps lists every instance's loaded
    models with their owner; GET and HEAD / say Ollama is running."""
    with doors.ollama() as client:
        shown = client.show(MODELS["openai"])
        with pytest.raises(ollama.ResponseError) as info:
            client.show("nobody-serves-this")
        loaded = client.ps()
    assert shown.capabilities == ["completion"] and shown.details is not None
    assert info.value.status_code == 404
    assert {MODELS[k] for k in KINDS} == {m.model for m in loaded.models}
    listed = http("GET", doors.gateway.url + "/api/ps").json()["models"]
    owners = {(m["model"], m["owned_by"]) for m in listed}  # the client keeps no extra field
    assert {(MODELS[k], f"{k}:one") for k in KINDS} <= owners
    assert (MODELS["llamacpp"], "llamacpp:embed") in owners
    root = http("GET", doors.gateway.url + "/")
    head = http("HEAD", doors.gateway.url + "/")
    assert (root.status, root.body) == (200, b"Ollama is running")
    assert head.status == 200 and head.body == b""
