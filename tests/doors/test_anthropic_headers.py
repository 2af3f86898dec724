"""The Anthropic door forwards the client's `anthropic-beta` and `anthropic-version` to the
servers that take Messages as sent, never to those it translates for, and never a client's
credentials."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from doors_support import HI, KINDS, MODELS, NATIVE, Door, run
from multidict import CIMultiDict

from routing import Router
from routing._operations import Operation
from routing.adapters._http import with_extra
from routing.config import load_config

VERSION = "2099-01-01"  # not the adapters' default (2023-06-01): shows whose value went
BETAS = ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
TRANSLATED = [kind for kind in KINDS if kind not in NATIVE]


def _sent(door: Door, kind: str) -> dict[str, str]:
    """The headers of the last POST the fake of ``kind`` received, names lower-cased."""
    return {k.lower(): v for k, v in door.upstream_request(kind)["headers"].items()}


def _ask(door: Door, kind: str, how: str) -> None:
    """One beta request of ``how`` (create, stream, count_tokens) through the anthropic SDK,
    with the client's own ``anthropic-version``."""
    with door.client() as plain:
        client = plain.with_options(default_headers={"anthropic-version": VERSION})
        if how == "create":
            message = client.beta.messages.create(
                model=MODELS[kind], max_tokens=16, messages=HI, betas=BETAS
            )  # type: ignore[arg-type]
            assert message.content
        elif how == "stream":
            with client.beta.messages.stream(
                model=MODELS[kind], max_tokens=16, messages=HI, betas=BETAS
            ) as stream:  # type: ignore[arg-type]
                assert stream.get_final_message().content
        else:
            counted = client.beta.messages.count_tokens(
                model=MODELS[kind], messages=HI, betas=BETAS
            )  # type: ignore[arg-type]
            assert counted.input_tokens > 0


@pytest.mark.parametrize("how", ["create", "stream", "count_tokens"])
@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_betas_and_version_reach_native_servers(door: Door, kind: str, how: str) -> None:
    """Passed through (Anthropic, llama.cpp), a request carries the client's anthropic-beta
    values and anthropic-version, the instance's key and not the client's."""
    _ask(door, kind, how)
    sent = _sent(door, kind)
    path = door.upstream_request(kind)["path"]
    assert path == ("/v1/messages/count_tokens" if how == "count_tokens" else "/v1/messages")
    betas = BETAS + (["token-counting-2024-11-01"] if how == "count_tokens" else [])
    assert sent["anthropic-beta"] == ",".join(betas)
    assert sent["anthropic-version"] == VERSION
    if kind == "anthropic":
        assert sent["x-api-key"] == door.keys["anthropic"]
    assert "unused" not in " ".join(sent.values())  # the client's key stays at the gateway


@pytest.mark.parametrize("how", ["create", "stream"])
@pytest.mark.parametrize("kind", TRANSLATED)
def test_translated_requests_carry_no_anthropic_headers(door: Door, kind: str, how: str) -> None:
    """Translated to OpenAI chat or Ollama, a beta request is answered and sends no
    anthropic-* header upstream."""
    door.fakes[kind].clear()
    _ask(door, kind, how)
    sent = _sent(door, kind)
    assert [name for name in sent if name.startswith("anthropic-")] == []


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_repeated_beta_headers_are_joined(door: Door, kind: str) -> None:
    """Repeated anthropic-beta headers and comma-separated values go on as one
    comma-separated value; without a client version the adapter's default goes (Anthropic)
    or none (llama.cpp, which sends none of its own)."""
    headers = CIMultiDict(
        [("anthropic-beta", "a-1, b-2"), ("anthropic-beta", "c-3"), ("x-api-key", "unused")]
    )
    body = {"model": MODELS[kind], "max_tokens": 8, "messages": HI}

    async def go() -> list[int]:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for path in ("/v1/messages", "/v1/messages/count_tokens"):
                async with session.post(door.gateway.url + path, json=body, headers=headers) as r:
                    statuses.append(r.status)
                    await r.read()
                sent = _sent(door, kind)
                assert sent["anthropic-beta"] == "a-1,b-2,c-3"
                if kind == "anthropic":
                    assert sent["anthropic-version"] == "2023-06-01"
                else:
                    assert "anthropic-version" not in sent
            return statuses

    assert run(go()) == [200, 200]


def test_library_extra_headers_never_replace_credentials(door: Door) -> None:
    """Router.complete and open_stream send extra_headers to an Anthropic instance, but an
    x-api-key or Authorization among them never replaces the instance's key."""
    extra = {"X-Api-Key": "evil", "authorization": "Bearer evil", "Anthropic-Beta": "b-1"}
    request: dict[str, Any] = {"model": MODELS["anthropic"], "max_tokens": 8, "messages": HI}

    async def go() -> None:
        async with Router(load_config(door.gateway.path)) as router:
            await router.complete(request, operation=Operation.MESSAGES, extra_headers=extra)
            whole = _sent(door, "anthropic")
            async with await router.open_stream(
                {**request, "stream": True}, operation=Operation.MESSAGES, extra_headers=extra
            ) as handle:
                assert [e async for e in handle][-1]["type"] == "message_stop"
            for sent in (whole, _sent(door, "anthropic")):
                assert sent["x-api-key"] == door.keys["anthropic"]
                assert "authorization" not in sent
                assert sent["anthropic-beta"] == "b-1"

    run(go())


def test_library_message_helpers_take_extra_headers(door: Door) -> None:
    """Router.message, stream_message and count_tokens send extra_headers to an Anthropic
    instance as complete does."""
    extra = {"anthropic-beta": "b-2"}
    model = MODELS["anthropic"]

    async def go() -> list[str]:
        betas = []
        async with Router(load_config(door.gateway.path)) as router:
            await router.message(HI, model=model, max_tokens=8, extra_headers=extra)
            betas.append(_sent(door, "anthropic").get("anthropic-beta"))
            events = router.stream_message(HI, model=model, max_tokens=8, extra_headers=extra)
            assert [e async for e in events][-1]["type"] == "message_stop"
            betas.append(_sent(door, "anthropic").get("anthropic-beta"))
            await router.count_tokens(HI, model=model, extra_headers=extra)
            betas.append(_sent(door, "anthropic").get("anthropic-beta"))
        return betas

    assert run(go()) == ["b-2", "b-2", "b-2"]


def test_with_extra_merges_by_name_and_keeps_credentials() -> None:
    """An extra header replaces an own one of the same name in any case; credential and
    body-framing headers are never set by extras."""
    own = {"anthropic-version": "2023-06-01", "x-api-key": "k", "Authorization": "Bearer k"}
    extra = {
        "Anthropic-Version": "2099-01-01",
        "anthropic-beta": "b",
        "X-API-KEY": "client",
        "authorization": "Bearer client",
        "Content-Type": "text/plain",
        "Host": "elsewhere",
    }
    assert with_extra(own, extra) == {
        "anthropic-version": "2099-01-01",
        "anthropic-beta": "b",
        "x-api-key": "k",
        "Authorization": "Bearer k",
    }
    assert with_extra(own, None) is own and with_extra(own, {}) is own
