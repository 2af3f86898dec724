"""Render :class:`routing._metrics.Metrics` (and instance states) as Prometheus text.

Text exposition format 0.0.4, written by hand: the engine already keeps plain counters on
its hot path, so rendering them is a few lines and ``routing`` needs no metrics library at
run time.  The output is checked with ``prometheus_client``'s own parser in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from routing._auth import KeyUsage
from routing._decision import State
from routing._metrics import LATENCY_BUCKETS, Metrics

__all__ = ["CONTENT_TYPE", "render"]

#: The Content-Type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_STATES = tuple(State)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def render(
    metrics: Metrics,
    status: Iterable[Mapping[str, Any]] = (),
    http: Mapping[tuple[str, str, int], int] | None = None,
    keys: KeyUsage | None = None,
) -> str:
    """The Prometheus text for ``metrics``, the instance ``status`` rows, gateway ``http``
    counts (``(method, route, status) -> n``) and per-client-key ``keys`` usage (by key
    name; the key itself never appears)."""
    out: list[str] = []
    _family(
        out,
        "routing_requests_total",
        "counter",
        "Requests sent to a backend, by instance, model and outcome.",
    )
    for (inst, model, outcome), n in sorted(metrics.requests.items()):
        out.append(
            "routing_requests_total"
            f"{_labels([('instance', inst), ('model', model), ('outcome', outcome)])} {n}"
        )

    name = "routing_request_duration_seconds"
    _family(out, name, "histogram", "Backend request latency in seconds, by instance.")
    for inst in sorted(metrics.latency_count):
        running = 0
        for bound in LATENCY_BUCKETS:
            running += metrics.latency_buckets.get((inst, bound), 0)
            le = _labels([("instance", inst), ("le", _number(bound))])
            out.append(f"{name}_bucket{le} {running}")
        count = metrics.latency_count[inst]
        out.append(f"{name}_bucket{_labels([('instance', inst), ('le', '+Inf')])} {count}")
        out.append(
            f"{name}_sum{_labels([('instance', inst)])} {_number(metrics.latency_sum[inst])}"
        )
        out.append(f"{name}_count{_labels([('instance', inst)])} {count}")

    _family(out, "routing_probes_total", "counter", "Probe results, by instance and state.")
    for (inst, state), n in sorted(metrics.probes.items()):
        out.append(f"routing_probes_total{_labels([('instance', inst), ('state', state)])} {n}")

    _family(
        out,
        "routing_failovers_total",
        "counter",
        "Requests moved away from a failed instance, by instance and reason.",
    )
    for (inst, reason), n in sorted(metrics.failovers.items()):
        out.append(
            f"routing_failovers_total{_labels([('instance', inst), ('reason', reason)])} {n}"
        )

    _family(
        out,
        "routing_wrong_model_replies_total",
        "counter",
        "Replies naming another model than the one routed to.",
    )
    for (inst, expected, got), n in sorted(metrics.wrong_model.items()):
        labels = _labels([("instance", inst), ("expected", expected), ("got", got)])
        out.append(f"routing_wrong_model_replies_total{labels} {n}")

    _family(
        out,
        "routing_instance_state",
        "gauge",
        "1 for the current state of each instance (READY, LOADING, DOWN, UNHEALTHY, "
        "MISCONFIGURED).",
    )
    for row in status:
        for state in _STATES:
            value = 1 if row.get("state") == state else 0
            labels = _labels([("instance", str(row["instance"])), ("state", state)])
            out.append(f"routing_instance_state{labels} {value}")

    _family(
        out,
        "routing_instance_inflight",
        "gauge",
        "Requests this gateway has in flight on each instance (what least-busy weighs).",
    )
    for row in status:
        out.append(
            f"routing_instance_inflight{_labels([('instance', str(row['instance']))])} "
            f"{int(row.get('inflight') or 0)}"
        )

    _family(
        out,
        "routing_model_loaded",
        "gauge",
        "1 for each model an instance has loaded, 0 for one it could load (warm routing).",
    )
    for row in status:
        loaded = set(row.get("loaded") or ())
        for model in row.get("models") or ():
            labels = _labels([("instance", str(row["instance"])), ("model", str(model))])
            out.append(f"routing_model_loaded{labels} {1 if model in loaded else 0}")

    if http is not None:
        _family(
            out,
            "routing_gateway_responses_total",
            "counter",
            "Gateway responses, by method, route and HTTP status.",
        )
        for (method, route, code), n in sorted(http.items()):
            labels = _labels([("method", method), ("route", route), ("status", str(code))])
            out.append(f"routing_gateway_responses_total{labels} {n}")
    if keys is not None:
        _render_keys(out, keys)
    return "\n".join(out) + "\n"


def _render_keys(out: list[str], keys: KeyUsage) -> None:
    _family(
        out,
        "routing_key_requests_total",
        "counter",
        "Gateway responses to each client key (gateway.auth), by key name and HTTP status.",
    )
    for (key, code), n in sorted(keys.requests.items()):
        out.append(
            f"routing_key_requests_total{_labels([('key', key), ('status', str(code))])} {n}"
        )
    for kind, counts in (("prompt", keys.prompt_tokens), ("completion", keys.completion_tokens)):
        name = f"routing_key_{kind}_tokens_total"
        _family(
            out,
            name,
            "counter",
            f"{kind.capitalize()} tokens reported in the usage of answers to each client key.",
        )
        for key, n in sorted(counts.items()):
            out.append(f"{name}{_labels([('key', key)])} {n}")
