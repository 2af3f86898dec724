"""Anthropic Messages to and from OpenAI chat, for backends that do not speak Messages.

The Anthropic door passes a request through to instances that speak Messages natively; for
every other backend it becomes an OpenAI chat request here, and the OpenAI reply (or stream
of chunks) becomes a message (or Anthropic's named events).  The request was checked first
(:data:`routing._request_specs.ANTHROPIC_MESSAGES`).

Request (Anthropic -> OpenAI)

==================================  =========================================================
Anthropic                           OpenAI chat
==================================  =========================================================
``system`` (string or text blocks)  a first ``system`` message (blocks joined by a blank line)
``messages[].content`` string       ``content`` string
text block                          text part (``citations`` are not sent)
image block (base64 / url)          ``image_url`` part (a ``data:`` URL / the URL)
``tool_use`` block (assistant)      ``tool_calls[]`` entry: ``id``, ``function.name``,
                                    ``function.arguments`` = ``input`` as JSON text
``tool_result`` block (user)        a ``tool`` message (``tool_call_id`` = ``tool_use_id``)
                                    before the user's other content; its text is the
                                    message's text (``is_error``: prefixed ``Error: ``), its
                                    images follow in the user message
``thinking`` block (assistant)      ``reasoning_content`` of that assistant message
``redacted_thinking`` block         not sent: encrypted, only Anthropic reads it
``max_tokens``                      ``max_tokens``, as sent (0 stays 0)
``temperature``, ``top_p``,         the same fields
``top_k``
``stop_sequences``                  ``stop``
``metadata.user_id``                ``user`` (also the sticky strategy's session key)
``tools[]`` (custom tools)          function tools: ``name``, ``description``,
                                    ``parameters`` = ``input_schema``
``tool_choice`` auto/any/tool/none  ``auto`` / ``required`` / the named function / ``none``;
                                    ``disable_parallel_tool_use`` -> ``parallel_tool_calls``
``thinking`` enabled/disabled       ``reasoning_effort`` (budget < 4096: low, < 16384:
                                    medium, else high); Ollama backends get ``think``
``cache_control`` anywhere,         not sent: hints about Anthropic's own service that no
``service_tier``,                   other backend has (the answer does not depend on them)
``context_management``
``stream``                          ``stream`` (with ``stream_options.include_usage``, so
                                    the final ``message_delta`` carries the token counts)
other top-level fields              passed through untouched
==================================  =========================================================

A 400 naming the field, never a silent drop, for what has no OpenAI form: any other block
(``document``, ``search_result``, ``server_tool_use``, ``web_search_tool_result``,
``container_upload``, ``mcp_tool_*`` ...), an image by ``file_id``, server tools
(``tools[].type`` such as ``web_search_20250305``, ``bash_20250124``), ``mcp_servers`` and
``container``.

The replies go back through :mod:`routing._anthropic_reply`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from routing._request_specs import OLLAMA_PRIVATE
from routing._strategies import session_key
from routing.errors import InvalidRequest

__all__ = ["estimate_tokens", "messages_session_key", "messages_to_chat", "system_text"]

_NOT_SENT = frozenset({"service_tier", "context_management"})
_CONVERTED = (
    frozenset(
        {
            "model",
            "messages",
            "system",
            "max_tokens",
            "stop_sequences",
            "metadata",
            "tools",
            "tool_choice",
            "thinking",
            "stream",
            "temperature",
            "top_p",
            "top_k",
        }
    )
    | _NOT_SENT
)
_UNMAPPABLE_FIELDS = {
    "mcp_servers": "MCP servers are run by Anthropic's API",
    "container": "code-execution containers are Anthropic's",
}


def _refuse(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} cannot be translated for this backend (it does not speak "
        f"Anthropic's Messages API): '{param}'",
        param=param,
        code="unsupported_parameter",
    )


# -- request ---------------------------------------------------------------------------------


def system_text(system: Any) -> str:
    """The system prompt as one text (text blocks joined by a blank line)."""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    return ""


def messages_to_chat(request: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request for a valid Anthropic Messages ``request``."""
    for name, why in _UNMAPPABLE_FIELDS.items():
        if request.get(name) is not None:
            raise _refuse(name, why)
    chat: dict[str, Any] = {"model": request.get("model")}
    messages: list[dict[str, Any]] = []
    system = system_text(request.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(request.get("messages") or ()):
        messages.extend(_message(message, f"messages[{i}]"))
    chat["messages"] = messages
    for name in ("max_tokens", "temperature", "top_p", "top_k"):
        if request.get(name) is not None:
            chat[name] = request[name]
    if request.get("stop_sequences") is not None:
        chat["stop"] = list(request["stop_sequences"])
    user = (request.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        chat["user"] = user
    if request.get("tools"):
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(request["tools"])]
    choice = request.get("tool_choice")
    if isinstance(choice, Mapping):
        _tool_choice(choice, chat)
    _thinking(request.get("thinking"), chat)
    if request.get("stream"):
        chat["stream"] = True
    for name, value in request.items():
        if name not in _CONVERTED and name not in _UNMAPPABLE_FIELDS:
            chat[name] = value  # unknown to us: passed through untouched
    return chat


def _message(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    role = message.get("role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = content if isinstance(content, list) else []
    if role == "assistant":
        return [_assistant(blocks, where)]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        at = f"{where}.content[{j}]"
        if kind == "tool_result":
            text, images = _tool_result(block, at)
            tool_messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
            parts.extend(images)
        else:
            parts.append(_part(block, at))
    out = tool_messages
    if parts:
        out.append({"role": role, "content": parts})
    elif not tool_messages:
        out.append({"role": role, "content": ""})
    return out


def _part(block: Mapping[str, Any], at: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block, at)}}
    if kind in ("thinking", "redacted_thinking"):
        raise _refuse(f"{at}.type", f"a {kind} block outside an assistant message")
    if kind == "tool_use":
        raise _refuse(f"{at}.type", "a tool_use block outside an assistant message")
    raise _refuse(f"{at}.type", f"a {kind!s} block")


def _image_url(block: Mapping[str, Any], at: str) -> str:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if kind == "url":
        return str(source.get("url", ""))
    raise _refuse(f"{at}.source.type", f"an image source of type {kind!s}")


def _tool_result(block: Mapping[str, Any], at: str) -> tuple[str, list[dict[str, Any]]]:
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    for k, inner in enumerate(content if isinstance(content, list) else ()):
        part = _part(inner, f"{at}.content[{k}]")
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            images.append(part)
    text = "\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"
    return text, images


def _assistant(blocks: Sequence[Mapping[str, Any]], where: str) -> dict[str, Any]:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                    },
                }
            )
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind != "redacted_thinking":
            raise _refuse(f"{where}.content[{j}].type", f"a {kind!s} block in an assistant message")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return message


def _tool(tool: Mapping[str, Any], at: str) -> dict[str, Any]:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise _refuse(f"{at}.type", f"the server tool {kind!s} (run by Anthropic's API)")
    function: dict[str, Any] = {
        "name": tool.get("name", ""),
        "parameters": tool.get("input_schema") or {"type": "object"},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Mapping[str, Any], chat: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in ("auto", "any", "none"):
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _thinking(thinking: Any, chat: dict[str, Any]) -> None:
    if not isinstance(thinking, Mapping):
        return
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        budget = budget if isinstance(budget, int) else 0
        chat["reasoning_effort"] = (
            "low" if budget < 4096 else ("medium" if budget < 16384 else "high")
        )
        chat[OLLAMA_PRIVATE] = {"think": True}
    elif thinking.get("type") == "disabled":
        chat[OLLAMA_PRIVATE] = {"think": False}


def messages_session_key(request: Mapping[str, Any], header: str | None) -> str | None:
    """The sticky session key of a Messages request: ``X-Session-ID``, then
    ``metadata.user_id``, then the system prompt and first user message."""
    user = (
        (request.get("metadata") or {}).get("user_id")
        if isinstance(request.get("metadata"), Mapping)
        else None
    )
    view: dict[str, Any] = {"user": user, "messages": []}
    system = system_text(request.get("system"))
    if system:
        view["messages"].append({"role": "system", "content": system})
    for message in request.get("messages") or ():
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(
                    str(b.get("text", "")) for b in content or () if isinstance(b, Mapping)
                )
            )
            view["messages"].append({"role": "user", "content": text})
            break
    return session_key(view, header)


def estimate_tokens(request: Mapping[str, Any]) -> int:
    """A token count for a backend without a tokenizer endpoint: the characters of every
    text the model reads (system, messages, tool definitions), one token per 4."""
    chars = len(system_text(request.get("system")))
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        chars += (
            len(content)
            if isinstance(content, str)
            else len(json.dumps(content, ensure_ascii=False))
        )
    if request.get("tools"):
        chars += len(json.dumps(request["tools"], ensure_ascii=False))
    return max(1, math.ceil(chars / 4))
