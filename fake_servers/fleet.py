"""A :class:`Fleet`: many named fakes started and stopped together, from Python or YAML.

```yaml
servers:
  - {name: qwen-a, kind: llamacpp, models: [qwen3-coder-30b.gguf], port: 0}
  - {name: ollama, kind: ollama, models: ["llama3:latest"], fault: none}
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from fake_servers._core import KINDS, parse_fault
from fake_servers._server import FakeServer

_FIELDS = (
    "name",
    "kind",
    "models",
    "host",
    "port",
    "fault",
    "loading_seconds",
    "api_key",
    "tool_calls",
    "embeddings",
)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One fake of a fleet, as written in the fleet's YAML file."""

    name: str
    kind: str
    models: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    fault: str = "none"
    loading_seconds: float = 0.0
    api_key: str | None = None
    tool_calls: int = 0
    embeddings: bool = False
    """A llama.cpp fake started with ``--embeddings``."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"server {self.name!r}: unknown kind {self.kind!r}")
        parse_fault(self.fault)
        if self.tool_calls < 0:
            raise ValueError(f"server {self.name!r}: tool_calls must be >= 0")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], index: int = 0) -> ServerSpec:
        """Build a spec from a YAML mapping (``ValueError`` on unknown keys or bad values)."""
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"servers[{index}]: unknown keys {unknown}; allowed: {_FIELDS}")
        if "kind" not in data:
            raise ValueError(f"servers[{index}]: 'kind' is required")
        kind = str(data["kind"])
        models = data.get("models") or ()
        if isinstance(models, str):
            models = (models,)
        return cls(
            name=str(data.get("name") or f"{kind}-{index}"),
            kind=kind,
            models=tuple(str(m) for m in models),
            host=str(data.get("host", "127.0.0.1")),
            port=int(data.get("port", 0)),
            fault=str(data.get("fault") or "none"),
            loading_seconds=float(data.get("loading_seconds", 0.0)),
            api_key=None if data.get("api_key") is None else str(data["api_key"]),
            tool_calls=int(data.get("tool_calls", 0)),
            embeddings=data.get("embeddings") is True,
        )

    def build(self) -> FakeServer:
        """A (not yet started) :class:`FakeServer` for this spec."""
        return FakeServer(
            self.kind,
            self.models or None,
            host=self.host,
            port=self.port,
            fault=self.fault,
            loading_seconds=self.loading_seconds,
            api_key=self.api_key,
            tool_calls=self.tool_calls,
            embeddings=self.embeddings,
        )


@dataclass(slots=True)
class Fleet:
    """Named fakes started concurrently by ``async with fleet:`` and stopped together."""

    specs: tuple[ServerSpec, ...]
    servers: dict[str, FakeServer] = field(init=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for spec in self.specs:
            if spec.name in seen:
                raise ValueError(f"duplicate server name {spec.name!r} in fleet")
            seen.add(spec.name)
        self.servers = {spec.name: spec.build() for spec in self.specs}

    @classmethod
    def from_specs(cls, specs: Iterable[ServerSpec | Mapping[str, Any]]) -> Fleet:
        """A fleet from :class:`ServerSpec` objects or mappings like the YAML entries."""
        built = [
            s if isinstance(s, ServerSpec) else ServerSpec.from_mapping(s, i)
            for i, s in enumerate(specs)
        ]
        return cls(tuple(built))

    @classmethod
    def from_file(cls, path: str | Path) -> Fleet:
        """A fleet from a YAML file with a top-level ``servers`` list."""
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("servers"), list):
            raise ValueError(f"{path}: expected a mapping with a 'servers' list")
        return cls.from_specs(document["servers"])

    def __getitem__(self, name: str) -> FakeServer:
        return self.servers[name]

    def __iter__(self) -> Iterator[FakeServer]:
        return iter(self.servers.values())

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def urls(self) -> dict[str, str]:
        """``{name: url}`` of every server."""
        return {name: server.url for name, server in self.servers.items()}

    async def start(self) -> Fleet:
        """Start every server concurrently; if one fails, stop the others and re-raise."""
        results = await asyncio.gather(
            *(server.start() for server in self.servers.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]
        return self

    async def stop(self) -> None:
        """Stop every running server concurrently."""
        await asyncio.gather(*(server.stop() for server in self.servers.values()))

    async def __aenter__(self) -> Fleet:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
