"""Fixtures of the fidelity suite: one gateway over one fake of every kind, for the session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fidelity_support import KEY_ENV, Rig, api_keys

from fake_servers import LoopThread


@pytest.fixture(scope="session")
def rig(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """A gateway over one fake of each kind; the keyed kinds' keys are in the environment."""
    with pytest.MonkeyPatch.context() as env:
        keys = api_keys()
        for kind, name in KEY_ENV.items():
            env.setenv(name, keys[kind])
        started = Rig.start(fake_loop, tmp_path_factory.mktemp("fidelity"), keys)
        try:
            yield started
        finally:
            started.stop()
