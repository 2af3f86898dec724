"""GET /v1/models and /v1/models/{id}: Anthropic's shapes for Anthropic clients (they send
`anthropic-version`), OpenAI's for everyone else."""

from __future__ import annotations

import datetime

import anthropic
import openai
import pytest
from doors_support import KINDS, MODELS, Door, http

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def test_anthropic_models_list(door: Door) -> None:
    """models.list() gives every READY model as an Anthropic model object, one page."""
    with door.client() as client:
        page = client.models.list()
    assert sorted(m.id for m in page.data) == sorted(MODELS.values())
    assert all((m.type, m.display_name, m.created_at) == ("model", m.id, EPOCH) for m in page.data)
    assert (page.has_more, page.first_id, page.last_id) == (
        False,
        page.data[0].id,
        page.data[-1].id,
    )
    reply = http("GET", door.gateway.url + "/v1/models", headers=ANTHROPIC)
    assert set(reply.json()) == {"data", "has_more", "first_id", "last_id"}
    assert set(reply.json()["data"][0]) == {"type", "id", "display_name", "created_at"}


def test_anthropic_models_pages(door: Door) -> None:
    """limit, after_id and before_id page through the list as Anthropic's API does; the
    SDK's auto-paging walks every page."""
    everything = [
        m["id"]
        for m in http("GET", door.gateway.url + "/v1/models", headers=ANTHROPIC).json()["data"]
    ]
    with door.client() as client:
        assert [m.id for m in client.models.list(limit=2)] == everything
        first = client.models.list(limit=2)
        assert (first.has_more, first.last_id) == (True, everything[1])
        last = client.models.list(limit=2, after_id=everything[3])
        assert ([m.id for m in last.data], last.has_more) == (everything[4:], False)
        before = client.models.list(limit=2, before_id=everything[3])
        assert ([m.id for m in before.data], before.has_more) == (everything[1:3], True)
        with pytest.raises(anthropic.BadRequestError) as bad:
            client.models.list(limit=0)
        with pytest.raises(anthropic.BadRequestError) as unknown:
            client.models.list(after_id="nobody-serves-this")
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "limit" in bad.value.message and "after_id" in unknown.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_anthropic_models_retrieve(door: Door, kind: str) -> None:
    """models.retrieve(id) is one Anthropic model object, routed to the instance serving it."""
    with door.client() as client:
        raw = client.models.with_raw_response.retrieve(MODELS[kind])
        model = raw.parse()
    assert (model.type, model.id, model.display_name) == ("model", MODELS[kind], MODELS[kind])
    assert model.created_at == EPOCH
    assert raw.headers["X-Routed-To"] == f"{kind}:one"


def test_anthropic_models_retrieve_unknown(door: Door) -> None:
    """An unknown model is a NotFoundError in Anthropic's error shape."""
    with door.client() as client, pytest.raises(anthropic.NotFoundError) as missing:
        client.models.retrieve("nobody-serves-this")
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_openai_clients_keep_the_openai_shape(door: Door) -> None:
    """Without anthropic-version: the openai SDK's list and retrieve, and its 404, as before."""
    with openai.OpenAI(base_url=door.gateway.url + "/v1", api_key="unused") as client:
        listed = client.models.list()
        one = client.models.retrieve(MODELS["ollama"])
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("nobody-serves-this")
    assert {(m.id, m.owned_by) for m in listed} == {(MODELS[k], f"{k}:one") for k in KINDS}
    assert (one.object, one.owned_by) == ("model", "ollama:one")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    plain = http("GET", door.gateway.url + "/v1/models").json()
    assert plain["object"] == "list" and set(plain["data"][0]) == {
        "id",
        "object",
        "created",
        "owned_by",
    }
