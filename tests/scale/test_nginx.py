"""Two ``routing serve`` replicas behind a real nginx configured from deploy/nginx/routing.conf."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _nginx import Nginx, check_conf, nginx_binary
from scale_support import Serve, chat, config_text, free_port, request

from fake_servers import LoopThread
from fake_servers.sync import FakeServerHandle

ROOT = Path(__file__).parents[2]
MODEL = "n.gguf"

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (Debian: nginx-light)"
)


class Site:
    """nginx and the two replicas behind it."""

    def __init__(self, nginx: Nginx, replicas: list[Serve]) -> None:
        self.nginx = nginx
        self.replicas = replicas
        self.ports = {f"127.0.0.1:{r.url.rsplit(':', 1)[1]}" for r in replicas}


@pytest.fixture(scope="module")
def site(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Two fakes serving MODEL, two sticky replicas routing to them, nginx in front."""
    fakes = [FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL]) for _ in range(2)]
    tmp = tmp_path_factory.mktemp("nginx")
    config = tmp / "routing.yaml"
    config.write_text(
        config_text({"a": fakes[0].url, "b": fakes[1].url}, strategy="sticky"), encoding="utf-8"
    )
    replicas: list[Serve] = []
    nginx: Nginx | None = None
    try:
        for _ in range(2):
            replicas.append(Serve(config, port=free_port()))
        for replica in replicas:
            replica.wait_listening()
        nginx = Nginx(tmp / "nginx", free_port(), [int(r.url.rsplit(":", 1)[1]) for r in replicas])
        yield Site(nginx, replicas)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()
        for fake in fakes:
            fake.stop()
        for fake in fakes:
            fake.check()


def test_requests_spread_over_both_replicas(site: Site) -> None:
    """Requests through nginx are answered by both replicas, every one with a 200."""
    upstreams = set()
    for _ in range(20):
        reply = chat(site.nginx.url, MODEL)
        assert reply.status == 200
        upstreams.add(reply.headers["x-upstream"])
    assert upstreams == site.ports


def test_sticky_sessions_agree_across_replicas(site: Site) -> None:
    """A session (X-Session-ID) reaches the same backend whichever replica routes it."""
    backends_seen = set()
    for n in range(6):
        routed: dict[str, set[str]] = {}
        for _ in range(6):  # nginx round robin: each replica routes some of them
            reply = chat(site.nginx.url, MODEL, {"X-Session-ID": f"session-{n}"})
            assert reply.status == 200
            routed.setdefault(reply.headers["x-upstream"], set()).add(reply.headers["x-routed-to"])
        assert set(routed) == site.ports, routed
        backends = set().union(*routed.values())
        assert len(backends) == 1, routed
        backends_seen |= backends
    assert backends_seen == {"llamacpp:a", "llamacpp:b"}  # sessions do spread over backends


def test_healthz_through_nginx(site: Site) -> None:
    """``/healthz`` answers 200 through nginx (what an outer check would call)."""
    assert request(site.nginx.url, path="/healthz").status == 200


def test_deploy_conf_is_valid_nginx(tmp_path: Path) -> None:
    """``nginx -t`` accepts deploy/nginx/routing.conf as shipped."""
    done = check_conf(tmp_path)
    assert done.returncode == 0, done.stderr


def test_soak_smoke_loses_nothing_when_a_replica_is_killed() -> None:
    """benchmarks/soak_nginx.py, short: replica SIGKILLed under load and restarted, 0 lost."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak_nginx.py"),
            "--requests",
            "400",
            "--concurrency",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: 0 lost" in done.stdout
    assert "killed at:" in done.stdout and "restarted at:" in done.stdout
