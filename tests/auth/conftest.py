"""Fixtures for the auth tests: gateways over fakes (the gateway tests' helpers), keys set."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).parent))

from gateway_support import GatewayHandle

from fake_servers import LoopThread


@pytest.fixture
def gateway(fake_loop: LoopThread, tmp_path: Path) -> Iterator[Callable[..., GatewayHandle]]:
    """Factory: ``gateway(config_text, **Gateway options)`` → a running gateway, port 0."""
    started: list[GatewayHandle] = []

    def factory(text: str, **options: object) -> GatewayHandle:
        path = tmp_path / f"gateway{len(started)}.yaml"
        path.write_text(text, encoding="utf-8")
        handle = GatewayHandle.start(fake_loop, path, **options)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()
