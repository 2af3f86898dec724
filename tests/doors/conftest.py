"""Fixtures for the door tests: a gateway over fakes, served from the fakes' event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).parent))

from doors_support import GatewayHandle

from fake_servers import LoopThread


@pytest.fixture
def gateway(fake_loop: LoopThread, tmp_path: Path) -> Iterator[Callable[..., GatewayHandle]]:
    """Factory: ``gateway(config_text)`` -> a running gateway on 127.0.0.1, port 0."""
    started: list[GatewayHandle] = []

    def factory(text: str) -> GatewayHandle:
        path = tmp_path / f"gateway{len(started)}.yaml"
        path.write_text(text, encoding="utf-8")
        handle = GatewayHandle.start(fake_loop, path)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()
