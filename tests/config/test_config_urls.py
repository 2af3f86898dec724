"""Addresses: every OLLAMA_HOST form and URL users write becomes one canonical root URL."""

from __future__ import annotations

import pytest

from routing._urls import AddressError, is_local, normalise_url


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("0.0.0.0", "ollama", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "ollama", "http://127.0.0.1:11434"),
        (":11434", "ollama", "http://127.0.0.1:11434"),
        ("127.0.0.1", "ollama", "http://127.0.0.1:11434"),
        ("127.0.0.1:11500", "ollama", "http://127.0.0.1:11500"),
        ("localhost", "ollama", "http://localhost:11434"),
        ("gpu-box.lan:11434", "ollama", "http://gpu-box.lan:11434"),
        ("http://0.0.0.0:11434/", "ollama", "http://127.0.0.1:11434"),
        ("http://127.0.0.1", "ollama", "http://127.0.0.1:11434"),
        ("https://ollama.example.com", "ollama", "https://ollama.example.com"),
        ("  HTTP://Box:80  ", "ollama", "http://box:80"),
        ("[::]:11434", "ollama", "http://127.0.0.1:11434"),
        ("::", "ollama", "http://127.0.0.1:11434"),
        ("::1", "ollama", "http://[::1]:11434"),
        ("[::1]:9000", "ollama", "http://[::1]:9000"),
        ("0.0.0.0", "llamacpp", "http://127.0.0.1:8080"),
        ("localhost", "lmstudio", "http://localhost:1234"),
        ("0.0.0.0", "generic", "http://127.0.0.1"),
        ("https://api.openai.com/v1/", "openai", "https://api.openai.com/v1"),
    ],
)
def test_normalise_url(raw: str, kind: str, expected: str) -> None:
    """An address form normalises to scheme://host:port with bind-all mapped to loopback."""
    assert normalise_url(raw, kind=kind) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty address"),
        ("ftp://127.0.0.1", "unsupported scheme 'ftp'"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://127.0.0.1:11434/?x=1", "must not carry a query"),
        ("http://h:port", "invalid address"),
    ],
)
def test_normalise_url_refuses(raw: str, message: str) -> None:
    """Addresses that cannot be connected to raise AddressError with a reason."""
    with pytest.raises(AddressError, match=message.replace("?", r"\?")):
        normalise_url(raw, kind="ollama")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:11434", True),
        ("http://localhost:8080", True),
        ("http://[::1]:9000", True),
        ("http://192.168.1.20:11434", True),
        ("http://studio.local:1234", True),
        ("https://api.openai.com", False),
        ("http://8.8.8.8", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    """Loopback, private and .local hosts are local (no API key demanded); others are not."""
    assert is_local(url) is local
