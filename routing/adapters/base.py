"""The one small interface every API style implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from routing._operations import Operation
from routing.adapters._probe import Probed

if TYPE_CHECKING:
    from routing.config import Instance

__all__ = ["Adapter"]


class Adapter(Protocol):
    """Speaks one API style; requests and replies are OpenAI-shaped on our side.

    ``request`` is an OpenAI chat-completions body (``messages``, ``temperature`` …;
    its ``model`` and ``stream`` keys are ignored: ``model`` is the argument).  A stream
    carries a usage chunk (``choices: []``) only when ``stream_options.include_usage`` is
    true in ``request``, as OpenAI's own API does.
    Failures raise the :mod:`routing.errors` tree, mapped ``from`` the low-level error.

    Operations other than chat (:mod:`routing._operations`) go through :meth:`send` and
    :meth:`send_stream`, in the shapes of the doors they come from: ``completion`` an OpenAI
    ``/v1/completions`` body in, ``text_completion`` replies and chunks out; ``embedding`` an
    OpenAI ``/v1/embeddings`` body in and out (never streamed); ``messages`` and
    ``count_tokens`` Anthropic bodies in and out, stream events as dicts whose ``type`` is
    the event name (only where :meth:`passthrough` says so: elsewhere the gateway translates
    messages to chat).
    """

    api: str
    #: The operations this style can serve at all (messages: natively or translated to chat).
    operations: frozenset[Operation]
    #: Server kinds speaking this style -> default port (None: hosted, always a URL).
    kinds: Mapping[str, int | None]
    #: Appended to an instance's root URL for the style's official client (``/v1``); a
    #: configured URL ending in it is stored without it.
    url_suffix: str
    #: A trailing part of a configured URL that is not the server's root (``/v1``: stripped).
    strip_suffix: str
    #: A tag a model name may omit (Ollama: ``:latest``), or None.
    implicit_tag: str | None

    def headers(self, instance: Instance) -> dict[str, str]:
        """The headers every request and probe to ``instance`` carries (credentials)."""
        ...

    async def probe(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        timeout: aiohttp.ClientTimeout,
        *,
        load: bool = False,
    ) -> Probed:
        """Ask the server what it serves, what it has loaded and (``load``) how busy it is.

        Raises :class:`routing.adapters._probe.ProbeFailed` (with the state it means) when
        the answer says the instance cannot serve.
        """
        ...

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

    async def chat_raw(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[dict[str, Any], bytes | None]:
        """:meth:`chat`, plus the reply's bytes when they encode exactly that dict (the
        backend speaks OpenAI's format: the gateway forwards them as sent), else ``None``."""
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

    def passthrough(self, instance: Instance) -> frozenset[Operation]:
        """The operations ``instance`` takes in the door's own protocol (Anthropic Messages on
        an Anthropic API or a llama.cpp server); anything else is translated."""
        ...

    async def send(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        operation: Operation,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], bytes | None]:
        """Send a non-streaming ``operation`` (not chat); the reply and, when they encode it
        exactly, its bytes as the backend sent them (else ``None``).

        ``extra_headers`` go with the request (the door's own, for a request passed through:
        ``anthropic-beta``); they replace the style's headers of the same name but never its
        credentials (:func:`routing.adapters._http.with_extra`)."""
        ...

    def send_stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        operation: Operation,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming ``operation`` (completion, messages); yield chunks or events
        (``extra_headers`` as in :meth:`send`)."""
        ...
