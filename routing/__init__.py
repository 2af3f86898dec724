"""routing: decide which local or remote LLM backend serves a chat request.

A YAML file declares providers (ollama, llamacpp, lmstudio, openai, anthropic, or
any of yours), their instances and model-match rules; :class:`Router` probes the
instances live and sends each request to the READY instance that really serves
the model, never silently to one that does not::

    from routing import Router, NoRouteError

    async with Router.from_file("configs/agentos.yaml") as router:
        decision = await router.resolve(model="qwen2.5-coder-7b-instruct-q8_0.gguf")
        reply = await router.chat([{"role": "user", "content": "hi"}], model=decision.model)
"""

from typing import TYPE_CHECKING, Any

from routing.errors import (
    BackendError,
    BackendProtocolError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ConfigIssue,
    InvalidRequest,
    NoRouteError,
    Reason,
    RoutingError,
)

if TYPE_CHECKING:
    from routing._decision import Candidate, Decision, State
    from routing._engine import Router
    from routing._failover import Completion
    from routing._failover_stream import StreamHandle
    from routing._gateway_server import BindError, Gateway
    from routing._operations import Operation
    from routing.config import (
        BreakerSettings,
        Config,
        Defaults,
        GatewaySettings,
        Instance,
        ProbeSettings,
        Provider,
        Rule,
        load_config,
        parse_config,
    )

# The engine pulls in aiohttp and the config pulls in jsonschema (together most of a second
# on a busy machine); they load on first use, so `import routing` and the CLI's error paths
# stay fast.
_LAZY = {
    "BreakerSettings": "routing.config",
    "GatewaySettings": "routing.config",
    "ProbeSettings": "routing.config",
    "Completion": "routing._failover",
    "StreamHandle": "routing._failover_stream",
    "BindError": "routing._gateway_server",
    "Gateway": "routing._gateway_server",
    "Config": "routing.config",
    "Defaults": "routing.config",
    "Instance": "routing.config",
    "Provider": "routing.config",
    "Rule": "routing.config",
    "load_config": "routing.config",
    "parse_config": "routing.config",
    "Candidate": "routing._decision",
    "Decision": "routing._decision",
    "State": "routing._decision",
    "Router": "routing._engine",
    "Operation": "routing._operations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'routing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BackendError",
    "BackendProtocolError",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "BindError",
    "BreakerSettings",
    "Candidate",
    "Completion",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Decision",
    "Defaults",
    "Gateway",
    "GatewaySettings",
    "Instance",
    "InvalidRequest",
    "NoRouteError",
    "Operation",
    "ProbeSettings",
    "Provider",
    "Reason",
    "Router",
    "RoutingError",
    "Rule",
    "State",
    "StreamHandle",
    "load_config",
    "parse_config",
]
