"""The moving parts of ``soak_faults.py``: fakes, the ``routing serve`` child process, chaos.

- :func:`start_fakes`: three fake llama.cpp (``soak.gguf``) and two fake Ollama
  (``soak:latest``) in this process, whose faults are switched with ``set_fault``, and a fourth
  llama.cpp as a child process, the one that is SIGKILLed and restarted on its port.
- :class:`GatewayProcess`: writes the config (two valid variants, two invalid ones, always
  replaced atomically, as an editor or a config manager does), runs ``python -m routing.cli
  serve CONFIG --port 0`` with stderr to a file, samples its RSS and open fds from ``/proc``,
  sends SIGHUP, stops it with SIGTERM and summarises its log.
- :class:`Chaos`: the three loops (faults, kill/restart, config rewrites), each stopped by one
  event and by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from _fakeproc import FakeProcess

from fake_servers import FakeServer, start_fake

LLAMA_MODEL, OLLAMA_MODEL = "soak.gguf", "soak:latest"
MODELS = (LLAMA_MODEL, LLAMA_MODEL, LLAMA_MODEL, OLLAMA_MODEL)  # drawn from at random
REQUEST_TIMEOUT, PROBE_TIMEOUT, TTL = 2.0, 0.5, 1.0
CLIENT_TIMEOUT = REQUEST_TIMEOUT + PROBE_TIMEOUT + 2.5  # only a hung gateway reaches it
# Eleven faults over five in-process fakes (coprime counts: every pair comes up in turn).
FAULTS = (
    "hang",
    "garbage",
    "drop",
    "error500",
    "loading",
    "error429",
    "poison",
    "slow:40",
    "wrong-model",
    "error401",
    "redirect",
)
FAULT_EVERY, KILL_EVERY, DOWN_FOR, RELOAD_EVERY, SAMPLE_EVERY = 0.5, 3.0, 1.0, 1.0, 0.5
FAULTED_AT_ONCE = 2
FINAL = 4  # config_text variant for the cool-down: variant 0, bytes never written before
SETTLE = 1.5  # seconds without a reload before the cool-down (longer than the poll interval)
LIVE: dict[int, str] = {}  # pid -> what, of every child process not yet reaped
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) (\S+) ")


def kill_leftovers() -> None:
    """SIGKILL every child still registered (after a second Ctrl-C broke the clean stop)."""
    for pid in list(LIVE):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        LIVE.pop(pid, None)


async def start_child(fake: FakeProcess) -> None:
    """Start ``fake`` (on its old port after the first time); never leave it half-started."""
    try:
        await fake.start()
    except BaseException:
        await fake.kill()
        raise
    if fake.proc is not None:
        LIVE[fake.proc.pid] = "fake llamacpp:k"


async def kill_child(fake: FakeProcess) -> None:
    """SIGKILL ``fake`` and reap it."""
    if fake.proc is not None:
        LIVE.pop(fake.proc.pid, None)
    await fake.kill()


async def start_fakes() -> tuple[list[FakeServer], FakeProcess]:
    """Three llama.cpp and two Ollama fakes here, one llama.cpp in a child process."""
    fakes: list[FakeServer] = []
    child = FakeProcess("llamacpp", LLAMA_MODEL)
    try:
        for kind, model in [("llamacpp", LLAMA_MODEL)] * 3 + [("ollama", OLLAMA_MODEL)] * 2:
            fakes.append(await start_fake(kind, [model]))
        await start_child(child)
    except BaseException:
        for fake in fakes:
            await fake.stop()
        raise
    return fakes, child


def config_text(fakes: list[FakeServer], child: FakeProcess, variant: int) -> str:
    """Valid variants 0 and 1 (retries and instance order differ); 2 and 3 are invalid (a
    negative timeout; a YAML syntax error) and must be refused with the old config serving;
    ``FINAL`` is variant 0 plus a comment (new bytes, so it is surely reloaded)."""
    llama = {"a": fakes[0].port, "b": fakes[1].port, "c": fakes[2].port, "k": child.port}
    ollama = {"a": fakes[3].port, "b": fakes[4].port}
    order = 1 if variant % 2 else 0
    names = [sorted(llama), sorted(llama, reverse=True)][order]
    onames = [sorted(ollama), sorted(ollama, reverse=True)][order]
    timeout = -REQUEST_TIMEOUT if variant == 2 else REQUEST_TIMEOUT
    text = (
        "version: 1\ndefaults:\n  connect_timeout: 0.5\n"
        f"  request_timeout: {timeout:g}\n  retries: {2 + order}\n"
        f"  probe: {{timeout: {PROBE_TIMEOUT:g}, ttl: {TTL:g}}}\nproviders:\n"
        "  llamacpp:\n    api: openai\n    instances:\n"
        + "".join(f"      {n}: {{port: {llama[n]}}}\n" for n in names)
        + "  ollama:\n    api: ollama\n    instances:\n"
        + "".join(f"      {n}: {{url: 'http://127.0.0.1:{ollama[n]}'}}\n" for n in onames)
        + "rules:\n  - match: {model: '*.gguf'}\n    route: llamacpp\n  - route: ollama\n"
    )
    if variant == FINAL:
        return text + "# the config of the cool-down\n"
    return text + "gateway: {read_timeout: 30\n" if variant == 3 else text


@dataclass(frozen=True, slots=True)
class Usage:
    """Resident memory (kB) and open file descriptors of a process."""

    rss_kb: int
    fds: int


@dataclass
class LogSummary:
    """What the gateway's stderr says: lines by ``LEVEL logger``, refused reloads,
    tracebacks (and the first few of them, for the report)."""

    levels: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    tracebacks: int = 0
    excerpts: list[str] = field(default_factory=list)


def summarise_log(text: str) -> LogSummary:
    """Count log lines by level and logger (access lines included), and tracebacks."""
    out = LogSummary()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            out.tracebacks += 1
            if len(out.excerpts) < 3:
                out.excerpts.append("\n".join(lines[max(i - 1, 0) : i + 25]))
        elif match := _LOG_LINE.match(line):
            out.levels[f"{match[1]} {match[2]}"] += 1
    out.refused = out.levels["ERROR routing.reload"]
    return out


class GatewayProcess:
    """``routing serve`` for the fakes' config, as a child process."""

    def __init__(self, fakes: list[FakeServer], child: FakeProcess) -> None:
        self.fakes, self.child = fakes, child
        self.dir = Path(tempfile.mkdtemp(prefix="soak-faults-"))
        self.config = self.dir / "routing.yaml"
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self.summary = LogSummary()
        self._peak = Usage(0, 0)
        self._sampler: asyncio.Task[None] | None = None
        self._log_read = 0  # bytes of the log already counted by refusals_so_far()
        self._refused = 0

    def write_config(self, variant: int) -> None:
        """Replace the config file atomically with ``variant``."""
        tmp = self.dir / "routing.yaml.new"
        tmp.write_text(config_text(self.fakes, self.child, variant), encoding="utf-8")
        os.replace(tmp, self.config)

    async def start(self) -> None:
        """Start the gateway on a free port; wait for its ``listening on`` line."""
        self.write_config(0)
        err = self._open_log()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "routing.cli",
                "serve",
                str(self.config),
                "--port",
                "0",
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        finally:
            os.close(err)
        LIVE[self.proc.pid] = "routing serve"
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode().strip()
        if not line.startswith("listening on http://127.0.0.1:"):
            raise RuntimeError(f"routing serve did not start: {line!r}; see {self.dir}")
        self.url = line.removeprefix("listening on ")
        self._sampler = asyncio.create_task(self._sample())

    def _open_log(self) -> int:
        """The gateway's stderr: a file, read once it exited (a pipe could fill up)."""
        return os.open(self.dir / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def usage(self) -> Usage:
        """RSS (``VmRSS``) and the number of open fds of the gateway, now."""
        assert self.proc is not None
        pid = self.proc.pid
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        usage = Usage(rss, len(os.listdir(f"/proc/{pid}/fd")))
        self._peak = Usage(max(self._peak.rss_kb, usage.rss_kb), max(self._peak.fds, usage.fds))
        return usage

    def peak(self) -> Usage:
        """The highest RSS and fd count seen by any sample so far (sampled twice a second)."""
        return self._peak

    async def _sample(self) -> None:
        while self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(OSError, StopIteration):
                self.usage()
            await asyncio.sleep(SAMPLE_EVERY)

    def refusals_so_far(self) -> int:
        """Reloads refused so far (``ERROR routing.reload`` lines of the log), reading
        only the complete lines written since the last call."""
        with open(self.dir / "stderr.log", "rb") as log:
            log.seek(self._log_read)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._log_read += len(complete)
        self._refused += summarise_log(complete.decode("utf-8", "replace")).refused
        return self._refused

    def hup(self) -> None:
        """SIGHUP: reload now."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGHUP)

    async def generation(self, session: aiohttp.ClientSession) -> int:
        """How many configs the gateway applied since it started (``/status`` generation)."""
        async with session.get(self.url + "/status") as resp:
            return int((await resp.json())["generation"])

    async def settled(self, session: aiohttp.ClientSession) -> int:
        """Wait (at most 10 s) until no reload happened for ``SETTLE`` seconds; return the
        generation then, so what follows runs on one router from start to end."""
        last, since = await self.generation(session), time.monotonic()
        for _ in range(100):
            if time.monotonic() - since >= SETTLE:
                break
            await asyncio.sleep(0.1)
            now = await self.generation(session)
            if now != last:
                last, since = now, time.monotonic()
        return last

    async def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 10 s), reap, summarise the log, remove the files.

        Returns the exit code (None if it never started)."""
        proc, self.proc = self.proc, None
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if proc is not None:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            LIVE.pop(proc.pid, None)
            self.exit_code = proc.returncode
        if self.dir.exists():
            log = self.dir / "stderr.log"
            if log.exists():
                self.summary = summarise_log(log.read_text("utf-8", "replace"))
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.exit_code


class Chaos:
    """Faults, a kill/restart and config rewrites, until :meth:`stop` or the deadline."""

    def __init__(
        self, fakes: list[FakeServer], child: FakeProcess, gateway: GatewayProcess, budget: float
    ) -> None:
        self.fakes, self.child, self.gateway = fakes, child, gateway
        self.budget = budget
        self.counts: Counter[str] = Counter()
        self.invalid_on_disk = False
        self._stop = asyncio.Event()
        self._deadline = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.errors: list[str] = []  # a chaos loop that crashed (the run then fails)

    def start(self) -> None:
        """Start the three loops; they end at :meth:`stop` or after ``budget`` seconds."""
        self._deadline = time.monotonic() + self.budget
        self._tasks = [
            asyncio.create_task(loop()) for loop in (self._faults, self._kills, self._configs)
        ]

    async def _tick(self, seconds: float) -> bool:
        """Wait ``seconds``; False once stopped or past the deadline."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return not self._stop.is_set() and time.monotonic() < self._deadline

    async def _faults(self) -> None:
        faulted: deque[FakeServer] = deque()
        tick = 0
        while await self._tick(FAULT_EVERY):
            if len(faulted) == FAULTED_AT_ONCE:
                faulted.popleft().set_fault("none")
            fake, fault = self.fakes[tick % len(self.fakes)], FAULTS[tick % len(FAULTS)]
            fake.set_fault(fault)
            faulted.append(fake)
            self.counts[f"fault {fault}"] += 1
            tick += 1

    async def _kills(self) -> None:
        while await self._tick(KILL_EVERY):
            await kill_child(self.child)
            self.counts["fake killed (SIGKILL)"] += 1
            await self._tick(DOWN_FOR)
            await self._restart()

    async def _restart(self) -> None:
        if self.child.proc is not None:
            return
        try:
            await start_child(self.child)
        except (RuntimeError, OSError, TimeoutError):
            self.counts["fake restart failed"] += 1
        else:
            self.counts["fake restarted"] += 1

    async def _configs(self) -> None:
        writes = valid = 0
        while await self._tick(RELOAD_EVERY):
            if writes % 4 == 2:
                self.gateway.write_config(2 + (writes // 4) % 2)
                self.invalid_on_disk = True
                self.counts["invalid configs written"] += 1
                self._hup()
                await self._refused(self.counts["invalid configs written"])
            else:
                valid += 1
                self.gateway.write_config(valid % 2)
                self.invalid_on_disk = False
                self.counts["valid configs written"] += 1
                if valid % 3 == 0:
                    self._hup()
            writes += 1

    def _hup(self) -> None:
        self.gateway.hup()
        self.counts["SIGHUP sent"] += 1

    async def _refused(self, count: int) -> None:
        """Wait (at most one reload period) until the gateway has refused ``count`` configs,
        so the next write never hides an invalid one from it."""
        for _ in range(int(RELOAD_EVERY / 0.05)):
            if self.gateway.refusals_so_far() >= count:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop the loops, clear every fault, bring the child fake back, put the ``FINAL``
        config in place (SIGHUP). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                self.errors.append(f"{type(result).__name__}: {result}")
        for fake in self.fakes:
            fake.set_fault("none")
        await self._restart()
        if self._tasks and self.gateway.proc is not None:
            self.gateway.write_config(FINAL)
            self.invalid_on_disk = False
            self._hup()

    async def close_fakes(self) -> list[str]:
        """Stop every fake; return the handler errors the in-process ones recorded."""
        errors: list[str] = []
        for fake in self.fakes:
            await fake.stop()
            for _ in range(100):  # check() re-raises one recorded error at a time
                try:
                    fake.check()
                except Exception as exc:
                    errors.append(f"{fake.kind}:{fake.port}: {type(exc).__name__}: {exc}")
                else:
                    break
        await kill_child(self.child)
        return errors
