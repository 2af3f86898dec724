"""The conversion fixes the fidelity table found, pinned as pure-function tests."""

from __future__ import annotations

from typing import Any

from routing.adapters import ollama

CALLS = [
    {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
]
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "weather and time?"},
    {"role": "assistant", "content": None, "tool_calls": CALLS},
    {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
    {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
]


def test_ollama_tool_results_named_by_the_call_they_answer() -> None:
    """An OpenAI tool result reaches Ollama named (tool_name) after the call it answers."""
    results = [m for m in ollama.messages_to_wire(HISTORY) if m["role"] == "tool"]
    assert results == [
        {"role": "tool", "content": "14:05", "tool_name": "get_time"},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


def test_ollama_tool_result_keeps_a_given_name() -> None:
    """A tool result that names its tool (``name``) keeps that name."""
    history = [
        *HISTORY[:2],
        {"role": "tool", "tool_call_id": "call_a", "name": "custom", "content": "sunny"},
    ]
    assert ollama.messages_to_wire(history)[2]["tool_name"] == "custom"


def test_ollama_call_only_message_has_no_content() -> None:
    """A call-only assistant message (content null) reaches Ollama without content."""
    call_only, with_text = ollama.messages_to_wire(
        [HISTORY[1], {"role": "assistant", "content": "let me look", "tool_calls": CALLS}]
    )
    assert "content" not in call_only
    assert call_only["tool_calls"][0] == {
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}
    }
    assert with_text["content"] == "let me look"
