"""`python -m fake_servers` prints where it listens, serves, and exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LISTENING = re.compile(r"^listening on (http://127\.0\.0\.1:(\d+))$")


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; killed at teardown if the test left them running."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def start(spawn: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_servers", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawn.append(process)
    return process


def readline(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().rstrip("\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_single_server(spawn: list[subprocess.Popen[str]], sig: signal.Signals) -> None:
    """The first line names the URL; the server answers there; a signal stops it with 0."""
    process = start(spawn, "llamacpp", "--port", "0", "--model", "x.gguf")
    match = LISTENING.match(readline(process))
    assert match, "first line is `listening on http://127.0.0.1:PORT`"
    url, port = match.group(1), match.group(2)
    with httpx.Client(timeout=5) as client:
        reply = client.post(url + "/v1/chat/completions", json={"messages": []}).json()
    assert reply["choices"][0]["message"]["content"] == f"I am x.gguf on llamacpp port {port}"
    process.send_signal(sig)
    assert process.wait(10) == 0


def test_fault_flag_and_hung_request(spawn: list[subprocess.Popen[str]]) -> None:
    """--fault hang: requests hang, and SIGTERM still exits 0 promptly."""
    process = start(spawn, "ollama", "--fault", "hang", "--model", "llama3")
    match = LISTENING.match(readline(process))
    assert match
    with httpx.Client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(match.group(1) + "/api/tags")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_bad_arguments_exit_2(spawn: list[subprocess.Popen[str]]) -> None:
    """An unknown kind or fault, a bad fault argument or tool-call count: usage error, exit 2."""
    assert start(spawn, "nonsense").wait(10) == 2
    assert start(spawn, "llamacpp", "--fault", "explode").wait(10) == 2
    assert start(spawn, "llamacpp", "--fault", "echo-auth:418").wait(10) == 2
    assert start(spawn, "llamacpp", "--tool-calls", "-1").wait(10) == 2


def test_new_fault_and_tool_calls_flags(spawn: list[subprocess.Popen[str]]) -> None:
    """--fault error429:2 limits chats (Retry-After: 2); --tool-calls 1 makes one tool call."""
    process = start(spawn, "lmstudio", "--fault", "error429:2", "--tool-calls", "1")
    match = LISTENING.match(readline(process))
    assert match
    url = match.group(1)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    body = {"model": "qwen2.5-7b-instruct", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=5) as client:
        limited = client.post(url + "/v1/chat/completions", json=body)
        state = client.get(url + "/_fake/state").json()
        client.post(url + "/_fake/fault", json={"fault": "none"})
        called = client.post(url + "/v1/chat/completions", json=body | {"tools": [tool]}).json()
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert (state["fault"], state["tool_calls"]) == ("error429:2", 1)
    (call,) = called["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_fleet(spawn: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    """`fleet FILE` prints `NAME listening on URL` per server then `fleet ready`."""
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "servers:\n"
        "  - {name: qwen-a, kind: llamacpp, models: [qwen3-coder-30b.gguf], port: 0}\n"
        '  - {name: ollama, kind: ollama, models: ["llama3:latest"], fault: none}\n'
        "  - {name: claude, kind: anthropic}\n",
        encoding="utf-8",
    )
    process = start(spawn, "fleet", str(config))
    lines = [readline(process) for _ in range(4)]
    assert lines[-1] == "fleet ready"
    urls = {}
    for line in lines[:-1]:
        name, rest = line.split(" ", 1)
        match = LISTENING.match(rest)
        assert match, line
        urls[name] = match.group(1)
    assert list(urls) == ["qwen-a", "ollama", "claude"]
    with httpx.Client(timeout=5) as client:
        models = client.get(urls["qwen-a"] + "/v1/models").json()
        tags = client.get(urls["ollama"] + "/api/tags").json()
    assert models["data"][0]["id"] == "qwen3-coder-30b.gguf"
    assert tags["models"][0]["name"] == "llama3:latest"
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_fleet_bad_file(spawn: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    """A fleet file with an unknown kind is reported, exit 2."""
    config = tmp_path / "fleet.yaml"
    config.write_text("servers:\n  - {name: a, kind: vllm}\n", encoding="utf-8")
    process = start(spawn, "fleet", str(config))
    assert process.wait(10) == 2
    assert process.stderr is not None
    assert "vllm" in process.stderr.read()
