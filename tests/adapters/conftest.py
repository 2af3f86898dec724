"""Adapter tests: every test gets the remote fakes' API key in the environment."""

from __future__ import annotations

import pytest
from adapter_support import KEY_ENV


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-key")
