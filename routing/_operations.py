"""What a request asks a backend to do: the closed set of operations the engine routes.

Every door maps its endpoints onto these (the gateway's module docstrings list which);
the engine resolves a model *for an operation*:

==============  ==============================================================================
operation       API styles that serve it
==============  ==============================================================================
chat            every style
completion      openai (text completions), ollama (generate with ``raw``)
embedding       openai, ollama
messages        Anthropic Messages: passed through to anthropic instances and llama.cpp
                servers (which speak it natively), translated to and from chat elsewhere
==============  ==============================================================================

An adapter lists what its style can serve at all in ``operations``; an instance that answers
``not_supported`` for an operation (llama.cpp's 501 for embeddings when started without
``--embeddings``) is skipped for that operation from then on (until it is seen down, or the
config reloads), with no health penalty; the trace says ``cannot do embeddings
(not_supported)``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Operation"]


class Operation(StrEnum):
    """What a request asks for: ``chat``, ``completion``, ``embedding``, ``messages``.

    ``count_tokens`` is Anthropic's token count of a messages request: routed like
    ``messages``, answered natively where messages are passed through.
    """

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"

    @property
    def noun(self) -> str:
        """How traces and errors name the operation (``embeddings``, ``text completions``)."""
        return _NOUNS[self]


_NOUNS = {
    Operation.CHAT: "chat",
    Operation.COMPLETION: "text completions",
    Operation.EMBEDDING: "embeddings",
    Operation.MESSAGES: "Anthropic messages",
    Operation.COUNT_TOKENS: "token counts",
}
