"""Hostile-request corpus: every request ends in an answer (or a closed connection), never a
500, a traceback, a held connection or a memory jump (hostile_requests.yaml, raw_http.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import raw_http
import yaml
from gateway_support import GatewayHandle, config_text, wait_until

from fake_servers import FakeServerHandle, LoopThread

CORPUS = yaml.safe_load((Path(__file__).parent / "hostile_requests.yaml").read_text("utf-8"))
DOORS = ("openai", "ollama")


class _Records(logging.Handler):
    """Every log record of the module, whatever test was running."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Hostile:
    """The gateway under attack, its backend, and what was logged meanwhile."""

    gateway: GatewayHandle
    fake: FakeServerHandle
    log: _Records = field(default_factory=_Records)

    @property
    def port(self) -> int:
        """The gateway's port."""
        return self.gateway.gateway.port

    def open_connections(self) -> int:
        """Client connections the gateway's server holds open right now."""
        runner = self.gateway.gateway._runner
        assert runner is not None and runner.server is not None
        return int(runner.server.open)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def hostile(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """One gateway (read_timeout 0.5 s, 10 MiB bodies) in front of a llama.cpp fake."""
    fake = FakeServerHandle.start_new(fake_loop, "llamacpp", [raw_http.HOSTILE_MODEL])
    path = tmp_path_factory.mktemp("hostile") / "gateway.yaml"
    path.write_text(
        config_text(
            {"llamacpp:a": fake}, extra=("gateway: {read_timeout: 0.5, max_body_bytes: 10485760}\n")
        ),
        "utf-8",
    )
    gateway = GatewayHandle.start(fake_loop, path)
    setup = Hostile(gateway, fake)
    root = logging.getLogger()
    root.addHandler(setup.log)
    try:
        yield setup
    finally:
        root.removeHandler(setup.log)
        gateway.stop()
        fake.stop()
        fake.check()


def _expand() -> list[Any]:
    """One param per case and door; xfail cases marked strict."""
    out = []
    for case in CORPUS["cases"]:
        doors = case.get("doors", [case.get("door", "openai")])
        for door in doors:
            marks = (
                [pytest.mark.xfail(strict=True, reason=" ".join(case["xfail"].split()))]
                if "xfail" in case
                else []
            )
            name = case["id"] if len(doors) == 1 else f"{case['id']}@{door}"
            out.append(pytest.param({**case, "door": door}, id=name, marks=marks))
    return out


CASES = _expand()


def _status_kb(field: str) -> int:
    """A memory figure of this process (the gateway serves from a thread of it), in kB."""
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, field
    return int(match.group(1))


def _reset_peak() -> str:
    """Reset the peak resident size (VmHWM) when the kernel lets us; the figure to read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return "VmRSS"  # no reset: compare resident sizes before and after instead
    return "VmHWM"


def _loud(records: list[logging.LogRecord]) -> list[str]:
    """Records at ERROR or above, or carrying a traceback."""
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR or r.exc_info]


def _check_shape(reply: raw_http.Reply, case: dict[str, Any]) -> None:
    """The answer's body is what the case's ``shape`` says."""
    shape = case.get("shape", "chat" if reply.status == 200 else "door")
    if shape in ("any", "text"):
        assert reply.status != 500, reply.body[:300]
        return
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    payload = reply.json()
    ollama = raw_http.target(case).startswith("/api/")  # the Ollama door's error shape
    if shape == "chat":
        assert ("message" in payload) if ollama else ("choices" in payload), payload
        return
    if ollama:
        assert set(payload) == {"error"} and isinstance(payload["error"], str), payload
        if "param" in case:
            assert f"'{case['param']}'" in payload["error"], payload
    else:
        error = payload["error"]
        assert isinstance(error, dict) and isinstance(error["message"], str), payload
        if "param" in case:
            assert error["param"] == case["param"], error


def test_corpus_is_large_enough() -> None:
    """At least 100 hostile requests, each with a unique id and an expectation."""
    assert len(CASES) >= 100
    ids = [p.id for p in CASES]
    assert len(set(ids)) == len(ids)
    assert all("status" in p.values[0] for p in CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_request_is_answered(
    hostile: Hostile, caplog: pytest.LogCaptureFixture, case: dict[str, Any]
) -> None:
    """The gateway answers as the case expects; quietly; no connection stays open."""
    head, body = raw_http.build(case)
    peak = _reset_peak()
    rss_before = _status_kb("VmRSS")
    logged = len(hostile.log.records)
    try:
        with caplog.at_level(logging.DEBUG):
            exchange = raw_http.exchange(
                hostile.port, head, body, timeout=10.0, half_close=bool(case.get("half_close"))
            )
            wait_until(lambda: hostile.open_connections() == 0, 5.0, "connections to close")
    finally:
        if "xfail" in case:  # a known bug's records are this case's failure, not the corpus's
            del hostile.log.records[logged:]
    if "rss_mb" in case:
        grown_mb = (_status_kb(peak) - rss_before) / 1024
        assert grown_mb < case["rss_mb"], f"the gateway's {peak} grew by {grown_mb:.0f} MB"
    finals = [r for r in exchange.replies if r.status >= 200]
    expected = case["status"]
    if expected == "closed":
        assert not finals, exchange.raw[:300]
    elif str(expected).startswith("each "):
        status = int(expected.split()[1])
        assert finals and all(r.status == status for r in finals), exchange.raw[:500]
    elif isinstance(expected, list):
        assert [r.status for r in finals] == expected, exchange.raw[:500]
    else:
        assert [r.status for r in finals] == [expected], exchange.raw[:500]
    if case.get("interim") != "any":
        assert exchange.interim == case.get("interim", [])
    for reply in finals:
        _check_shape(reply, case)
    assert not _loud(caplog.records)


def test_gateway_still_serves_after_the_corpus(hostile: Hostile) -> None:
    """After the corpus a normal chat works at both doors, nothing was loud, none left open."""
    for door in DOORS:
        head, body = raw_http.build({"door": door, "body": "{$CHAT}"})
        reply = raw_http.exchange(hostile.port, head, body).final
        assert reply is not None and reply.status == 200, door
    wait_until(lambda: hostile.open_connections() == 0, 5.0, "connections to close")
    assert not _loud(hostile.log.records)
