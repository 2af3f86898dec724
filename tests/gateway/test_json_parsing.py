"""routing._json.loads gives json.loads's values and errors, with msgspec (extra ``speed``)
and without it; the request parser's errors do not depend on the extra."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from routing import _json
from routing._request_body import parse_json_object
from routing.errors import InvalidRequest

# Texts where a fast parser could differ from the standard one.
CORPUS: list[bytes] = [
    b'{"model":"m","messages":[{"role":"user","content":"hi"}]}',
    b"123456789012345678901234567890",  # beyond 64 bits: an exact int, never a float
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1" * 5000,  # beyond Python's 4300 digits: the standard error
    b"9007199254740993",
    b"9007199254740993.0",
    b"1.00000000000000011102230246251565404236316680908203125",
    b"2.4703282292062328e-324",
    b"1e-400",
    b"-1e-400",
    b"-0",
    b"-0.0",
    b"1E2",
    b"1e+2",
    b"1.7976931348623157e308",
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'{"a":1,"b":2,"a":3}',  # the last value, in the first one's place
    b'"\\ud800"',  # a lone surrogate escape
    b'"\\udc00\\ud800"',
    b'"\\ud83d\\ude00"',
    b'"\\u0000"',
    b'"a\x01b"',  # a raw control character
    b"\xef\xbb\xbf{}",  # byte order mark
    '{"a": "é"}'.encode("utf-16"),
    b'{"a":"\xff"}',  # not UTF-8
    b" \t\r\n{} \n",
    b"{} x",
    b"{",
    b"",
    b"[" * 600 + b"]" * 600,
    b"[" * 3000 + b"]" * 3000,  # past every parser's nesting limit
    b'{"\\u0061":1}',
    b"[1,2,]",
    b"01",
    b'{"a":true,"b":false,"c":null}',
]


def _outcome(parse: Callable[[Any], Any], data: bytes | str) -> tuple[str, Any]:
    try:
        return "value", _shape(parse(data))
    except (ValueError, RecursionError) as exc:
        return "error", (type(exc), str(exc))


def _shape(value: Any) -> Any:
    """The value with every leaf's type and exact spelling: 1 != 1.0, -0.0 != 0.0."""
    if isinstance(value, dict):
        return ("dict", [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_shape(v) for v in value])
    if isinstance(value, float):
        return ("float", value.hex() if math.isfinite(value) else repr(value))
    return (type(value).__name__, value)


@pytest.fixture(params=["fast", "standard"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with msgspec when installed (else the test is the standard path twice) and
    with it switched off."""
    if request.param == "standard":
        monkeypatch.setattr(_json, "_fast", None)
    return str(request.param)


def test_fast_parser_is_used_when_the_extra_is_installed() -> None:
    installed = importlib.util.find_spec("msgspec") is not None
    assert installed is _json.FAST


def _texts() -> list[bytes | str]:
    """Each text of the corpus as bytes, and as str where it is UTF-8."""
    texts: list[bytes | str] = []
    for data in CORPUS:
        texts.append(data)
        with contextlib.suppress(UnicodeDecodeError):
            texts.append(data.decode("utf-8"))
    return texts


@pytest.mark.parametrize("text", _texts(), ids=lambda t: repr(t[:24]))
def test_values_and_errors_are_the_standard_ones(parser: str, text: bytes | str) -> None:
    assert _outcome(_json.loads, text) == _outcome(json.loads, text)


def test_random_numbers_parse_as_the_standard_parser_does(parser: str) -> None:
    rnd = random.Random(15)
    for _ in range(20_000):
        text = ("-" if rnd.random() < 0.3 else "") + str(rnd.randrange(10 ** rnd.randint(1, 25)))
        if rnd.random() < 0.7:
            text += "." + str(rnd.randrange(10 ** rnd.randint(1, 25)))
        if rnd.random() < 0.5:
            text += "e" + str(rnd.randint(-330, 310))
        assert _outcome(_json.loads, text) == _outcome(json.loads, text), text


def _char(rnd: random.Random) -> str:
    return chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0x80, 0xD800)]))


def test_random_documents_parse_as_the_standard_parser_does(parser: str) -> None:
    rnd = random.Random(16)
    leaves: list[Callable[[], Any]] = [
        lambda: rnd.randrange(-(2**70), 2**70),
        lambda: rnd.uniform(-1e300, 1e300),
        lambda: rnd.random() * 10 ** rnd.randint(-320, 300),
        lambda: "".join(_char(rnd) for _ in range(rnd.randint(0, 12))),
        lambda: rnd.choice([True, False, None]),
    ]

    def node(depth: int) -> Any:
        kind = rnd.random()
        if depth > 4 or kind < 0.5:
            return rnd.choice(leaves)()
        if kind < 0.75:
            return [node(depth + 1) for _ in range(rnd.randint(0, 5))]
        return {str(rnd.randrange(8)): node(depth + 1) for _ in range(rnd.randint(0, 5))}

    for _ in range(2_000):
        text = json.dumps(node(0), ensure_ascii=rnd.random() < 0.5)
        assert _outcome(_json.loads, text.encode()) == _outcome(json.loads, text.encode())


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"n": NaN}', "invalid_json"),
        (b'{"n": 1e999}', "invalid_json"),
        (b'{"n": ' + b"1" * 5000 + b"}", "invalid_json"),
        (b'{"s": "\\ud800"}', "invalid_unicode"),
        (b'{"a": 1,}', "invalid_json"),
        (b"[" * 3000 + b"]" * 3000, "too_deep"),
        (b"[1]", "invalid_type"),
    ],
)
def test_request_errors_do_not_depend_on_the_extra(data: bytes, code: str) -> None:
    def refusal() -> tuple[str | None, str, str | None]:
        with pytest.raises(InvalidRequest) as caught:
            parse_json_object(data)
        return caught.value.code, str(caught.value), caught.value.param

    fast = refusal()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_json, "_fast", None)
        standard = refusal()
    assert fast == standard
    assert fast[0] == code


def test_big_integers_reach_the_request_exactly(parser: str) -> None:
    body = parse_json_object(b'{"model":"m","seed":123456789012345678901234567890}')
    assert body["seed"] == 123456789012345678901234567890
    assert type(body["seed"]) is int
