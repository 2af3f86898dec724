"""One adapter per API style: openai (llama.cpp, LM Studio, OpenAI), ollama, anthropic.

``get_adapter(api)`` returns the shared, stateless adapter for an API style.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from routing.adapters.anthropic import AnthropicAdapter
from routing.adapters.base import Adapter
from routing.adapters.ollama import OllamaAdapter
from routing.adapters.openai import OpenAIAdapter

__all__ = ["ADAPTERS", "Adapter", "AnthropicAdapter", "OllamaAdapter", "OpenAIAdapter",
           "get_adapter"]

#: API style -> its adapter (adapters hold no state, so one of each serves every request).
ADAPTERS: Mapping[str, Adapter] = MappingProxyType({
    "openai": OpenAIAdapter(),
    "ollama": OllamaAdapter(),
    "anthropic": AnthropicAdapter(),
})


def get_adapter(api: str) -> Adapter:
    """The adapter for API style ``api``; ``KeyError`` naming the known styles otherwise."""
    try:
        return ADAPTERS[api]
    except KeyError:
        raise KeyError(f"no adapter for API style {api!r}; known: {', '.join(ADAPTERS)}") from None
