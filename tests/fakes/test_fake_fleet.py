"""Fleets start many fakes concurrently and stop them all; the fixtures work from sync tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import httpx
import pytest
from fakes_support import wait_until

from fake_servers import Fleet, ServerSpec
from fake_servers.pytest_plugin import FakeFleetFactory, FakeServerFactory


def test_from_file(tmp_path: Path) -> None:
    """Fleet.from_file reads the YAML servers list into specs."""
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "servers:\n"
        "  - {name: qwen-a, kind: llamacpp, models: [qwen3-coder-30b.gguf], port: 0}\n"
        '  - {name: ollama, kind: ollama, models: ["llama3"], fault: "slow:5"}\n',
        encoding="utf-8",
    )
    fleet = Fleet.from_file(config)
    assert [s.name for s in fleet.specs] == ["qwen-a", "ollama"]
    assert fleet["ollama"].models == ["llama3:latest"]
    assert str(fleet["ollama"].fault) == "slow:5"


def test_from_specs_new_fields() -> None:
    """Fleet specs take the new faults with arguments and a tool_calls setting."""
    fleet = Fleet.from_specs(
        [{"name": "o", "kind": "ollama", "fault": "echo-auth:probe", "tool_calls": 3}]
    )
    assert str(fleet["o"].fault) == "echo-auth:probe"
    assert fleet["o"].state()["tool_calls"] == 3


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([{"name": "a", "kind": "llamacpp"}, {"name": "a", "kind": "ollama"}], "duplicate"),
        ([{"name": "a", "kind": "vllm"}], "unknown kind"),
        ([{"name": "a", "kind": "ollama", "colour": "red"}], "unknown keys"),
        ([{"name": "a", "kind": "ollama", "fault": "explode"}], "unknown fault"),
        ([{"name": "a", "kind": "ollama", "fault": "error429:x"}], "error429:SECONDS"),
        ([{"name": "a", "kind": "ollama", "tool_calls": -2}], "tool_calls"),
        ([{"name": "a"}], "'kind' is required"),
    ],
)
def test_bad_specs(specs: list[dict[str, str]], message: str) -> None:
    """Bad fleet specs are ValueErrors that say what is wrong."""
    with pytest.raises(ValueError, match=message):
        Fleet.from_specs(specs)


def test_async_fleet_serves_each_kind() -> None:
    """`async with fleet` starts every server; each answers as itself."""
    specs = [ServerSpec(name=kind, kind=kind) for kind in ("llamacpp", "ollama", "lmstudio")]

    async def scenario() -> dict[str, str]:
        async with Fleet.from_specs(specs) as fleet, aiohttp.ClientSession() as session:
            seen = {}
            for name, path in (("llamacpp", "/health"), ("ollama", "/api/version")):
                async with session.get(fleet[name].url + path) as response:
                    seen[name] = str(response.status)
            async with session.get(fleet["lmstudio"].url + "/v1/models") as response:
                seen["lmstudio"] = (await response.json())["data"][0]["id"]
        assert all(not server.running for server in fleet)
        return seen

    assert asyncio.run(scenario()) == {
        "llamacpp": "200",
        "ollama": "200",
        "lmstudio": "qwen2.5-7b-instruct",
    }


def test_two_hundred_fakes() -> None:
    """200 fakes start on port 0 in one process, all answer, and all stop cleanly."""
    kinds = ("llamacpp", "ollama", "lmstudio", "openai", "anthropic")
    specs = [{"name": f"fake-{i}", "kind": kinds[i % 5]} for i in range(200)]
    fleet = Fleet.from_specs(specs)

    async def scenario() -> tuple[float, float, int]:
        started = time.perf_counter()
        await fleet.start()
        start_seconds = time.perf_counter() - started
        try:
            ports = {server.port for server in fleet}
            async with aiohttp.ClientSession() as session:
                statuses = await asyncio.gather(
                    *(session.get(server.url + "/_fake/state") for server in fleet)
                )
                for response in statuses:
                    response.release()
            assert all(response.status == 200 for response in statuses)
        finally:
            started = time.perf_counter()
            await fleet.stop()
            stop_seconds = time.perf_counter() - started
        return start_seconds, stop_seconds, len(ports)

    start_seconds, stop_seconds, distinct_ports = asyncio.run(scenario())
    print(f"\n200 fakes: start {start_seconds:.3f} s, stop {stop_seconds:.3f} s")
    assert distinct_ports == 200
    assert not any(server.running for server in fleet)


def test_fake_fleet_fixture(fake_fleet: FakeFleetFactory) -> None:
    """The fake_fleet fixture starts named fakes reachable from sync code."""
    fleet = fake_fleet(
        [{"name": "a", "kind": "llamacpp", "models": ["a.gguf"]}, {"name": "o", "kind": "ollama"}]
    )
    with httpx.Client(timeout=5) as client:
        assert client.get(fleet["a"].url + "/v1/models").json()["data"][0]["id"] == "a.gguf"
        assert client.get(fleet["o"].url + "/api/tags").status_code == 200
    assert fleet["o"].requests[0]["path"] == "/api/tags"
    assert len(fleet) == 2


def test_fake_server_fixture_restart_same_port(fake_server: FakeServerFactory) -> None:
    """A fake stopped and started again by its handle comes back on the same port."""
    fake = fake_server("llamacpp")
    port = fake.port
    fake.stop()
    with httpx.Client(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(fake.url + "/health")
        fake.start()
        assert fake.port == port
        wait_until(lambda: client.get(fake.url + "/health").status_code == 200)


def test_fake_server_fixture_handle(fake_server: FakeServerFactory) -> None:
    """The handle exposes the request log, clear(), set_fault() and set_loading()."""
    fake = fake_server("lmstudio", fault="error500")
    with httpx.Client(timeout=5) as client:
        assert client.get(fake.url + "/v1/models").status_code == 500
        fake.set_fault("none")
        assert client.get(fake.url + "/v1/models").status_code == 200
        fake.set_loading(True)
        assert client.get(fake.url + "/v1/models").status_code == 503
        fake.set_loading(False)
    assert [r["path"] for r in fake.requests] == ["/v1/models"] * 3
    fake.clear()
    assert fake.requests == []
    assert fake.kind == "lmstudio" and fake.models == ["qwen2.5-7b-instruct"]


def test_public_api_is_documented() -> None:
    """Every name in fake_servers.__all__ exists and has a docstring."""
    import fake_servers

    for name in fake_servers.__all__:
        obj = getattr(fake_servers, name)
        if callable(obj):
            assert obj.__doc__, name
    assert {"FakeServer", "start_fake", "Fleet", "KINDS"} <= set(fake_servers.__all__)
