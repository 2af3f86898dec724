"""What the per-request path makes once and reuses: the same result as made afresh, never
past the request's deadline, and bounded whatever clients send."""

from __future__ import annotations

import pytest

from routing import _gateway, _gateway_http
from routing._gateway_http import RouteInfo, routing_headers
from routing.adapters import _http
from routing.adapters._http import client_timeout
from routing.config import Instance, parse_config

CONFIG = """
version: 1
defaults:
  connect_timeout: 2
providers:
  llamacpp:
    api: openai
    instances:
      a: {url: "http://127.0.0.1:9"}
"""


@pytest.fixture
def instance() -> Instance:
    return next(iter(parse_config(CONFIG).instances.values()))


@pytest.mark.parametrize("remaining", [600.0, 599.99996, 1.5, 0.0123456, 0.0004, -3.0])
def test_client_timeout_is_never_past_the_deadline(instance: Instance, remaining: float) -> None:
    timeout = client_timeout(instance, remaining)
    assert timeout.total is not None and timeout.connect is not None
    assert timeout.total <= max(remaining, 0.001)
    assert timeout.total >= min(max(remaining, 0.001), remaining - 0.001)
    assert timeout.connect == timeout.sock_connect == min(2.0, timeout.total)


def test_client_timeout_of_a_first_attempt_is_made_once(instance: Instance) -> None:
    # The deadline was set microseconds ago: the same whole milliseconds remain.
    assert client_timeout(instance, 599.99991) is client_timeout(instance, 599.99974)


def test_client_timeouts_kept_are_bounded(instance: Instance) -> None:
    for n in range(3000):
        client_timeout(instance, 1 + n / 1000)
    assert 0 < _http._timeout.cache_info().currsize <= 1024


def test_routing_reason_header_is_ascii_one_line_and_bounded() -> None:
    info = RouteInfo()
    info.instance, info.reason = "llamacpp:a", "é served\n" + "x" * 600
    first = routing_headers(info)
    assert routing_headers(info) == first  # made once, the same the second time
    assert first["X-Routing-Reason"] == ("\\xe9 served " + "x" * 600)[:500]
    for n in range(3000):
        info.reason = f"reason {n}"
        assert routing_headers(info)["X-Routing-Reason"] == f"reason {n}"
    assert _gateway_http._header_text.cache_info().currsize <= 1024


def test_access_line_heads_are_quoted_and_bounded() -> None:
    head = _gateway._access_head("POST", "/v1/a b", 200, None, 'm"1')
    assert head == 'method=POST path="/v1/a b" status=200 instance=- model="m\\"1"'
    assert _gateway._access_head("POST", "/v1/a b", 200, None, 'm"1') is head
    for n in range(5000):
        _gateway._access_head("GET", f"/p{n}", 404, None, None)
    assert _gateway._access_head.cache_info().currsize <= 4096
