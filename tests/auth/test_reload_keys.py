"""Hot reload with auth: keys added or removed apply to the next request, a request let in
before the reload finishes, and a reload cannot drop auth from a non-loopback gateway."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from auth_support import KEY_ENV, MODEL, bearer, set_auth_env
from gateway_support import GatewayHandle, Reply, chat, config_text, http, wait_until

from fake_servers import LoopThread
from routing._gateway_auth import GATEKEEPER
from routing._gateway_server import Gateway
from routing.config import parse_config
from routing.errors import ConfigError

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


def _auth(*names: str) -> str:
    keys = "".join(f"      - {{name: {n}, key_env: {KEY_ENV[n]}}}\n" for n in names)
    return "gateway:\n  auth:\n    keys:\n" + keys


def test_keys_added_and_removed_by_reload(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reloads add bob and remove alice at once; alice's request let in before finishes with 200."""
    keys = set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL])
    gw = gateway(config_text({"llamacpp:a": fake}, extra=_auth("alice")))
    assert chat(gw.url, MODEL, headers=bearer(keys["alice"])).status == 200
    assert chat(gw.url, MODEL, headers=bearer(keys["bob"])).status == 401

    gw.path.write_text(
        config_text({"llamacpp:a": fake}, extra=_auth("alice", "bob")), encoding="utf-8"
    )
    assert gw.reload_check() is True
    assert chat(gw.url, MODEL, headers=bearer(keys["bob"])).status == 200

    fake.set_fault("slow:1000")
    replies: list[Reply] = []
    slow = threading.Thread(
        target=lambda: replies.append(chat(gw.url, MODEL, headers=bearer(keys["alice"])))
    )
    slow.start()
    keeper = gw.gateway.app[GATEKEEPER]
    wait_until(lambda: keeper.inflight("alice") == 1, what="alice's request in flight")
    gw.path.write_text(config_text({"llamacpp:a": fake}, extra=_auth("bob")), encoding="utf-8")
    assert gw.reload_check() is True
    assert slow.is_alive(), "the request must still be in flight when alice is removed"
    fake.set_fault("none")
    assert chat(gw.url, MODEL, headers=bearer(keys["alice"])).status == 401
    assert chat(gw.url, MODEL, headers=bearer(keys["bob"])).status == 200
    slow.join(10)
    assert replies[0].status == 200, replies[0].body
    assert keeper.inflight("alice") == 0


def test_reload_removing_auth_on_loopback_opens_the_doors(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 127.0.0.1 a reload may remove gateway.auth: requests without a key are served."""
    set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL])
    gw = gateway(config_text({"llamacpp:a": fake}, extra=_auth("alice")))
    assert http("GET", gw.url + "/v1/models").status == 401
    gw.path.write_text(config_text({"llamacpp:a": fake}), encoding="utf-8")
    assert gw.reload_check() is True
    assert http("GET", gw.url + "/v1/models").status == 200


def test_reload_cannot_remove_auth_off_loopback(
    fake_loop: LoopThread, fake_server: FakeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway bound to 0.0.0.0 refuses a config without gateway.auth (located error)."""
    set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL])
    with_auth = parse_config(
        config_text({"llamacpp:a": fake}, extra=_auth("alice")), file="new.yaml"
    )
    without = parse_config(config_text({"llamacpp:a": fake}), file="new.yaml")

    async def go() -> None:
        gateway = Gateway(with_auth)
        gateway.host = "0.0.0.0"  # as after start(); never bound in this test
        try:
            with pytest.raises(ConfigError) as refused:
                gateway.apply(without)
            assert str(refused.value.issues[0]).startswith("new.yaml:1:1: $.gateway: ")
            assert "restart" in refused.value.issues[0].message
            assert gateway.pool.generation == 0
            gateway.apply(with_auth)  # keeping auth is fine
            assert gateway.pool.generation == 1
        finally:
            await gateway.pool.aclose()

    fake_loop.run(go())


def test_watcher_keeps_serving_when_a_new_key_variable_is_unset(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload naming an unset key variable is refused (logged, located); keys stay."""
    keys = set_auth_env(monkeypatch, ["alice"])
    fake = fake_server("llamacpp", [MODEL])
    gw = gateway(config_text({"llamacpp:a": fake}, extra=_auth("alice")))
    monkeypatch.delenv(KEY_ENV["bob"], raising=False)
    gw.path.write_text(
        config_text({"llamacpp:a": fake}, extra=_auth("alice", "bob")), encoding="utf-8"
    )
    assert gw.reload_check() is False
    watcher = gw.gateway.watcher
    assert watcher is not None and watcher.last_error is not None
    assert (
        f"$.gateway.auth.keys[1].key_env: environment variable {KEY_ENV['bob']} is not "
        "set" in watcher.last_error
    )
    assert chat(gw.url, MODEL, headers=bearer(keys["alice"])).status == 200
