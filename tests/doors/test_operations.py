"""Operations in the engine: an instance answering not_supported is skipped and remembered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from doors_support import config_text, run, set_keys

from routing import BackendError, NoRouteError, Operation, Router
from routing.cli import main
from routing.config import parse_config

MODEL = "same-name.gguf"
EMBED = {"model": MODEL, "input": ["a", "b"]}


@pytest.fixture
def pair(fake_server: Any) -> tuple[Any, Any, str]:
    """An embeddings-only llama.cpp declared first and a chat one, both naming one model."""
    emb = fake_server("llamacpp", [MODEL], embeddings=True)
    chat = fake_server("llamacpp", [MODEL])
    return emb, chat, config_text({"llamacpp:emb": emb, "llamacpp:chat": chat})


def test_each_operation_lands_where_it_can_be_done(pair: tuple[Any, Any, str]) -> None:
    """Chat fails over from the embeddings server once, then skips it; embeddings land there."""
    emb, _, text = pair

    async def go() -> tuple[list[str], Any, Any, list[dict[str, Any]]]:
        async with Router(parse_config(text, environ={})) as router:
            first = await router.complete({"model": MODEL, "messages": [
                {"role": "user", "content": "hi"}]})
            second = await router.complete({"model": MODEL, "messages": [
                {"role": "user", "content": "hi"}]})
            vectors = await router.complete(EMBED, operation=Operation.EMBEDDING)
            decided = await router.resolve(model=MODEL, operation=Operation.CHAT)
            return ([first.decision.instance, second.decision.instance,
                     vectors.decision.instance], first, decided, router.status())

    landed, first, decided, status = run(go())
    assert landed == ["llamacpp:chat", "llamacpp:chat", "llamacpp:emb"]
    assert [key for key, _ in first.attempts] == ["llamacpp:emb", "llamacpp:chat"]
    assert first.attempts[0][1].reason == "not_supported"
    trace = {c.instance: c.why for c in decided.trace}
    assert trace["llamacpp:emb"] == "cannot do chat (not_supported)"
    states = {row["instance"]: (row["state"], row["unsupported"]) for row in status}
    assert states == {"llamacpp:emb": ("READY", ["chat"]), "llamacpp:chat": ("READY", [])}
    assert [r["path"] for r in emb.requests if r["method"] == "POST"] == [
        "/v1/chat/completions", "/v1/embeddings"]


def test_embeddings_skip_a_chat_server_after_its_501(pair: tuple[Any, Any, str]) -> None:
    """A chat-only llama.cpp first in line: embeddings fail over once, then skip it."""
    emb, chat, _ = pair
    text = config_text({"llamacpp:chat": chat, "llamacpp:emb": emb})

    async def go() -> tuple[list[list[str]], str]:
        async with Router(parse_config(text, environ={})) as router:
            tried = []
            for _ in range(2):
                done = await router.complete(EMBED, operation=Operation.EMBEDDING)
                tried.append([key for key, _ in done.attempts])
            decided = await router.resolve(model=MODEL, operation=Operation.EMBEDDING)
            why = {c.instance: c.why for c in decided.trace}["llamacpp:chat"]
            return tried, why

    tried, why = run(go())
    assert tried == [["llamacpp:chat", "llamacpp:emb"], ["llamacpp:emb"]]
    assert why == "cannot do embeddings (not_supported)"
    assert [r["path"] for r in chat.requests if r["method"] == "POST"] == ["/v1/embeddings"]


def test_style_that_cannot_do_an_operation_says_so(fake_server: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An Anthropic instance is never asked for embeddings: a NoRouteError marked unsupported."""
    keys = set_keys(monkeypatch)
    claude = fake_server("anthropic", ["claude-3-5-haiku-latest"], api_key=keys["anthropic"])
    text = config_text({"anthropic:one": claude})

    async def go() -> NoRouteError:
        async with Router(parse_config(text)) as router:
            with pytest.raises(NoRouteError) as info:
                await router.resolve(model="claude-3-5-haiku-latest",
                                     operation=Operation.EMBEDDING)
            return info.value

    error = run(go())
    assert error.unsupported and not error.unavailable
    assert error.candidates[0].why == "cannot do embeddings (API style anthropic)"
    assert "can do embeddings" in error.headline
    assert [r["path"] for r in claude.requests if r["method"] == "POST"] == []


def test_memory_is_forgotten_when_the_instance_is_seen_down(fake_server: Any) -> None:
    """A server restarted (seen DOWN in between) is asked again: flags may have changed."""
    chat = fake_server("llamacpp", [MODEL])
    text = config_text({"llamacpp:chat": chat})

    async def go() -> tuple[list[str], list[str]]:
        async with Router(parse_config(text, environ={})) as router:
            with pytest.raises(BackendError) as info:
                await router.complete(EMBED, operation=Operation.EMBEDDING)
            assert info.value.reason == "not_supported"
            before = router.status()[0]["unsupported"]
            chat.stop()
            await router.refresh()
            chat.start()
            await router.refresh()
            return before, router.status()[0]["unsupported"]

    before, after = run(go())
    assert (before, after) == (["embedding"], [])


def test_explain_takes_an_operation(pair: tuple[Any, Any, str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`routing explain --operation embedding` shows the decision for that operation."""
    text = pair[2]
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["explain", str(path), "--model", MODEL, "--json",
                 "--operation", "embedding"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instance"] == "llamacpp:emb"
    anthropic_only = path.with_name("claude.yaml")
    anthropic_only.write_text(text.replace("api: openai", "api: anthropic").replace(
        "kind: llamacpp", "kind: anthropic"), encoding="utf-8")
    assert main(["explain", str(anthropic_only), "--model", MODEL,
                 "--operation", "embedding"]) == 3
    assert "cannot do embeddings (API style anthropic)" in capsys.readouterr().out
