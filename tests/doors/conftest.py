"""Fixtures for the door tests: a gateway over fakes, served from the fakes' event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).parent))

from doors_support import Door, GatewayHandle, config_text, keyed_fakes, set_keys, stop_all

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


@pytest.fixture(scope="module")
def door(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    """A gateway over one fake of each kind (keyed kinds get their key), for one module."""
    with pytest.MonkeyPatch.context() as patch:
        keys = set_keys(patch)
        fakes = keyed_fakes(fake_loop, keys)
        path = Path(tmp_path_factory.mktemp("door")) / "gateway.yaml"
        path.write_text(config_text({f"{k}:one": f for k, f in fakes.items()}), "utf-8")
        gateway = GatewayHandle.start(fake_loop, path)
        try:
            yield Door(gateway, fakes, keys)
        finally:
            stop_all(gateway, fakes)
