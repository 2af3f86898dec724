"""The one small interface every API style implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from routing.config import Instance

__all__ = ["Adapter"]


class Adapter(Protocol):
    """Speaks one API style; requests and replies are OpenAI-shaped on our side.

    ``request`` is an OpenAI chat-completions body (``messages``, ``temperature`` …;
    its ``model`` and ``stream`` keys are ignored: ``model`` is the argument).
    Failures raise the :mod:`routing.errors` tree, mapped ``from`` the low-level error.
    """

    api: str

    async def chat(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        """Send a non-streaming request; return an OpenAI ``chat.completion`` dict."""
        ...

    def stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming request; yield OpenAI ``chat.completion.chunk`` dicts as they come."""
        ...
