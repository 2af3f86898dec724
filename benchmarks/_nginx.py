"""A real nginx in front of ``routing serve`` replicas, configured from deploy/nginx/routing.conf.

The shipped file is used as is, with three substitutions: the upstream ``server`` lines name
the replicas' ports, ``listen`` becomes ``127.0.0.1:PORT``, and each response names the replica
that answered (``X-Upstream: $upstream_addr``; after a retry it lists every attempt).  nginx
runs in the foreground (``daemon off``) with its pid file, logs and temp files in a directory
of its own.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEPLOY_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "routing.conf"


def nginx_binary() -> str | None:
    """The nginx executable, or None when nginx is not installed."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def site_conf(listen: int, upstreams: list[int]) -> str:
    """deploy/nginx/routing.conf pointed at ``upstreams`` and listening on 127.0.0.1:``listen``."""
    text = DEPLOY_CONF.read_text(encoding="utf-8")
    servers = "".join(
        f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;\n" for port in upstreams
    )
    text, n = re.subn(
        r"(?m)^    server 127\.0\.0\.1:\d+ .*\n(?:    server 127\.0\.0\.1:\d+ .*\n)*",
        lambda _: servers,
        text,
    )
    assert n == 1, "the upstream block of deploy/nginx/routing.conf changed shape"
    text, n = re.subn(r"(?m)^    listen \d+;", f"    listen 127.0.0.1:{listen};", text)
    assert n == 1, "the listen line of deploy/nginx/routing.conf changed shape"
    text = text.replace(
        "proxy_pass http://routing;",
        "proxy_pass http://routing;\n        add_header X-Upstream $upstream_addr always;",
    )
    return text


def main_conf(directory: Path, site: str) -> str:
    """A whole nginx.conf whose every path is inside ``directory``."""
    user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
    temps = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temps}{site}\n}}\n"
    )


class Nginx:
    """nginx in the foreground with a generated config; ``stop()`` ends and reaps it."""

    def __init__(self, directory: Path, listen: int, upstreams: list[int]) -> None:
        binary = nginx_binary()
        assert binary is not None, "nginx is not installed"
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.conf = directory / "nginx.conf"
        self.conf.write_text(main_conf(directory, site_conf(listen, upstreams)), encoding="utf-8")
        self.url = f"http://127.0.0.1:{listen}"
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf), "-p", str(directory), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(listen)

    def _wait_ready(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log = (self.directory / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {log[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start listening") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Quit nginx (SIGTERM: fast shutdown), SIGKILL after 10 s; reap it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check_conf(directory: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on deploy/nginx/routing.conf as shipped (inside a generated nginx.conf)."""
    binary = nginx_binary()
    assert binary is not None, "nginx is not installed"
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(main_conf(directory, DEPLOY_CONF.read_text(encoding="utf-8")), encoding="utf-8")
    return subprocess.run(
        [binary, "-t", "-c", str(conf), "-p", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
    )
