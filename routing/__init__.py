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

from routing.config import (
    Config,
    Defaults,
    Instance,
    Provider,
    Rule,
    load_config,
    parse_config,
)
from routing.decision import Candidate, Decision, State
from routing.engine import Router
from routing.errors import (
    BackendError,
    BackendProtocolError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ConfigIssue,
    NoRouteError,
    RoutingError,
)

__all__ = [
    "BackendError",
    "BackendProtocolError",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "Candidate",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Decision",
    "Defaults",
    "Instance",
    "NoRouteError",
    "Provider",
    "Router",
    "RoutingError",
    "Rule",
    "State",
    "load_config",
    "parse_config",
]
