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
    """A chat llama.cpp declared first and one started with --embeddings, one model name."""
    chat = fake_server("llamacpp", [MODEL])
    emb = fake_server("llamacpp", [MODEL], embeddings=True)
    return chat, emb, config_text({"llamacpp:chat": chat, "llamacpp:emb": emb})


def test_each_operation_lands_where_it_can_be_done(pair: tuple[Any, Any, str]) -> None:
    """Chat, completions and messages stay on the first server; embeddings fail over from it
    once, then go straight to the embeddings server; no health penalty."""
    chat, emb, text = pair
    hi = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    async def go() -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
        async with Router(parse_config(text, environ={})) as router:
            tried: dict[str, list[str]] = {}
            for name, request, operation in (
                ("embedding 1", EMBED, Operation.EMBEDDING),
                ("embedding 2", EMBED, Operation.EMBEDDING),
                ("chat", hi, Operation.CHAT),
                ("completion", {"model": MODEL, "prompt": "x"}, Operation.COMPLETION),
                ("messages", {**hi, "max_tokens": 8}, Operation.MESSAGES),
            ):
                done = await router.complete(request, operation=operation)
                tried[name] = [key for key, _ in done.attempts]
            return tried, router.status()

    tried, status = run(go())
    assert tried == {
        "embedding 1": ["llamacpp:chat", "llamacpp:emb"],
        "embedding 2": ["llamacpp:emb"],
        "chat": ["llamacpp:chat"],
        "completion": ["llamacpp:chat"],
        "messages": ["llamacpp:chat"],
    }
    states = {row["instance"]: (row["state"], row["unsupported"]) for row in status}
    assert states == {"llamacpp:chat": ("READY", ["embedding"]), "llamacpp:emb": ("READY", [])}
    assert [r["path"] for r in emb.requests if r["method"] == "POST"] == ["/v1/embeddings"] * 2
    assert [r["path"] for r in chat.requests if r["method"] == "POST"] == [
        "/v1/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/messages",
    ]


def test_embeddings_skip_a_chat_server_after_its_501(pair: tuple[Any, Any, str]) -> None:
    """The trace of a later embeddings decision says why the chat server is skipped."""
    chat, _, text = pair

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


def test_style_that_cannot_do_an_operation_says_so(
    fake_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Anthropic instance is never asked for embeddings: a NoRouteError marked unsupported."""
    keys = set_keys(monkeypatch)
    claude = fake_server("anthropic", ["claude-3-5-haiku-latest"], api_key=keys["anthropic"])
    text = config_text({"anthropic:one": claude})

    async def go() -> NoRouteError:
        async with Router(parse_config(text)) as router:
            with pytest.raises(NoRouteError) as info:
                await router.resolve(model="claude-3-5-haiku-latest", operation=Operation.EMBEDDING)
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


def test_explain_takes_an_operation(
    fake_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`routing explain --operation` decides for that operation and says why not the others."""
    keys = set_keys(monkeypatch)
    claude = fake_server("anthropic", [MODEL], api_key=keys["anthropic"])
    emb = fake_server("llamacpp", [MODEL], embeddings=True)
    path = tmp_path / "routing.yaml"
    path.write_text(config_text({"anthropic:claude": claude, "llamacpp:emb": emb}), "utf-8")
    chosen = {}
    for operation in ("chat", "embedding"):
        assert (
            main(["explain", str(path), "--model", MODEL, "--json", "--operation", operation]) == 0
        )
        out = json.loads(capsys.readouterr().out)
        chosen[operation] = out["instance"]
        why = out["candidates"][0]["why"]
    assert chosen == {"chat": "anthropic:claude", "embedding": "llamacpp:emb"}
    assert why == "cannot do embeddings (API style anthropic)"
    assert (
        main(
            [
                "explain",
                str(path),
                "--model",
                MODEL,
                "--provider",
                "anthropic",
                "--operation",
                "embedding",
            ]
        )
        == 3
    )
    assert "can do embeddings" in capsys.readouterr().out
