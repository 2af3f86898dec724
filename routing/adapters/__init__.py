"""One adapter per API style: openai (llama.cpp, LM Studio, OpenAI), ollama, anthropic.

Everything routing knows of an API style lives in its module: wire conversions, chat and
stream, probes (health, model list, what is loaded, load), headers, server kinds with their
default ports, URL suffix, model-name tags.  Adding a style is one module and one
:func:`register` call; config validation, probing, routing and the doors read the registry.
``get_adapter(api)`` returns the shared, stateless adapter for an API style.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from routing.adapters.anthropic import AnthropicAdapter
from routing.adapters.base import Adapter
from routing.adapters.ollama import OllamaAdapter
from routing.adapters.openai import OpenAIAdapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AnthropicAdapter",
    "OllamaAdapter",
    "OpenAIAdapter",
    "default_port",
    "get_adapter",
    "known_kinds",
    "register",
]

_REGISTRY: dict[str, Adapter] = {}

#: API style -> its adapter (adapters hold no state, so one of each serves every request).
ADAPTERS: Mapping[str, Adapter] = MappingProxyType(_REGISTRY)


def register(adapter: Adapter) -> None:
    """Make ``adapter`` the one serving API style ``adapter.api`` (configs may name it)."""
    _REGISTRY[adapter.api] = adapter


def default_port(kind: str) -> int | None:
    """The port a server of ``kind`` listens on by default, or None."""
    for adapter in _REGISTRY.values():
        port = adapter.kinds.get(kind)
        if port is not None:
            return port
    return None


def known_kinds() -> tuple[str, ...]:
    """Every server kind some registered style speaks, in registration order."""
    return tuple(dict.fromkeys(k for a in _REGISTRY.values() for k in a.kinds))


for _adapter in (OpenAIAdapter(), OllamaAdapter(), AnthropicAdapter()):
    register(_adapter)


def get_adapter(api: str) -> Adapter:
    """The adapter for API style ``api``; ``KeyError`` naming the known styles otherwise."""
    try:
        return ADAPTERS[api]
    except KeyError:
        raise KeyError(f"no adapter for API style {api!r}; known: {', '.join(ADAPTERS)}") from None
