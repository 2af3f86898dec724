"""The error dialects the fakes speak, one per family of real servers.

=============  ==================================================================================
``LLAMACPP``   ``{"error": {"code": 500, "message", "type"}}`` (``code`` first, as llama-server's
               handlers write it; last on 404 and 503, which its HTTP layer writes)
``OPENAI``     ``{"error": {"message", "type", "param": null, "code"}}`` (OpenAI, LM Studio and
               Ollama's ``/v1``)
``OLLAMA``     ``{"error": "message"}``
``ANTHROPIC``  ``{"type": "error", "error": {"type", "message"}}`` (the type follows the status)
=============  ==================================================================================

Stream errors follow the same dialects: an SSE ``data: {"error": {...}}`` event for the OpenAI
family, a named ``event: error`` for Anthropic, an NDJSON ``{"error": "..."}`` line for Ollama.
"""

from __future__ import annotations

import enum
from typing import Any

JSONDict = dict[str, Any]


class Wire(enum.StrEnum):
    """The error dialect of one path of one kind of server."""

    LLAMACPP = "llamacpp"
    OPENAI = "openai"
    OLLAMA = "ollama"
    ANTHROPIC = "anthropic"


ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(
    wire: Wire, status: int, message: str, error_type: str = "", code: str | int | None = None
) -> JSONDict:
    """The JSON error document of ``wire`` for ``status``.

    ``error_type`` is used by the llama.cpp and OpenAI dialects (Anthropic derives its type
    from the status, Ollama has none); ``code`` only by the OpenAI dialect.
    """
    if wire is Wire.OLLAMA:
        return {"error": message}
    if wire is Wire.ANTHROPIC:
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    if wire is Wire.OPENAI:
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    if status in (404, 503):
        return {"error": {"message": message, "type": error_type, "code": status}}
    return {"error": {"code": status, "message": message, "type": error_type}}


def stream_error_event(wire: Wire, message: str) -> tuple[JSONDict, str | None]:
    """The ``(data, event name)`` a server of ``wire`` sends when a stream fails mid-way."""
    if wire is Wire.ANTHROPIC:
        return error_body(wire, 500, message), "error"
    return error_body(wire, 500, message, "server_error"), None
