"""Fake llama.cpp, Ollama, LM Studio, OpenAI and Anthropic servers that speak the real wire formats.

Replies name who answered: the assistant text is ``I am MODEL on KIND port PORT`` and the
``model`` field names the model that really answered. Faults are set at start or at run time
(:meth:`FakeServer.set_fault`, or ``POST /_fake/fault {"fault": F}``); ``GET /_fake/requests``
(and :attr:`FakeServer.requests`) is the request log; ``GET /_fake/state`` the state
(``fault``, ``loading``, ``disconnects``, ``tool_calls``, ``redirected_hits``).

Faults (:data:`FAULT_NAMES`; details in :mod:`fake_servers._faults`):

- ``none``; ``hang`` (never answers); ``loading`` (503); ``error500``; ``garbage`` (non-JSON);
  ``drop`` (no answer, or a stream cut mid-way); ``slow:MS``; ``wrong-model`` (another name).
- ``error429[:SECONDS]``: chat requests answer 429 with ``Retry-After`` (default 1); probes are
  normal.
- ``error401``: every request answers 401 ``Incorrect API key provided: <the credential>``.
- ``echo-auth[:MODE]``: answers quote the full credential headers received; MODE ``401``,
  ``429``, ``500`` (default), ``200-error``, ``text``, ``stream-error`` pick how chats fail,
  ``probe`` makes the other endpoints (health, model lists) fail instead.
- ``poison``: only chats whose last user message contains ``POISON`` answer 500.
- ``redirect[:URL]``: every request answers 307 to URL (default: ``/_fake/redirected`` of the
  fake itself, counted in ``redirected_hits``).

Replies (details in :mod:`fake_servers._inputs`): a request offering ``tools`` whose last user
message contains ``CALL_TOOLS`` (``CALL_TOOLS:N``) is answered with 2 (N) parallel tool calls in
the kind's wire format; ``tool_calls=N`` (``--tool-calls N``, ``POST /_fake/tool-calls
{"count": N}``, :meth:`FakeServer.set_tool_calls`) does so for every request offering tools.
Tool results and images in a request are counted in the reply text (``; tool results: 2``,
``; images: 1``); a stop sequence found in the reply cuts it (Anthropic: ``stop_sequence``).

Async use (in a running event loop)::

    from fake_servers import start_fake, Fleet

    fake = await start_fake("llamacpp", ["qwen.gguf"])   # port 0 → a free port
    ...  # talk to fake.url
    fake.check()                                          # re-raise handler errors
    await fake.stop()

    async with Fleet.from_file("fleet.yaml") as fleet:   # or Fleet.from_specs([...])
        fleet["ollama"].url

Sync tests (pytest plugin, installed with the package)::

    def test_x(fake_server, fake_fleet):
        llama = fake_server("llamacpp", ["a.gguf"], fault="slow:50")
        llama.url, llama.port, llama.requests
        llama.set_fault("hang"); llama.set_loading(True); llama.stop(); llama.start()
        fleet = fake_fleet([{"name": "o", "kind": "ollama"}])
        fleet["o"].url

The fixtures serve every fake from one background event loop
(:class:`fake_servers.sync.LoopThread`), stop them at teardown and call ``check()`` on each.

Command line: ``python -m fake_servers KIND [--host H] [--port P] [--model ID]...
[--fault F] [--loading-seconds S] [--api-key K] [--tool-calls N]`` or
``python -m fake_servers fleet FILE.yaml``.
"""

from fake_servers._core import (
    ECHO_AUTH_MODES,
    FAULT_NAMES,
    KINDS,
    Fault,
    LoggedRequest,
    parse_fault,
)
from fake_servers._inputs import CALL_TOOLS, INTERLEAVE_TOOLS, POISON
from fake_servers._server import FakeServer, start_fake
from fake_servers.fleet import Fleet, ServerSpec
from fake_servers.sync import FakeServerHandle, FleetHandle, LoopThread

__all__ = [
    "CALL_TOOLS",
    "ECHO_AUTH_MODES",
    "FAULT_NAMES",
    "INTERLEAVE_TOOLS",
    "KINDS",
    "POISON",
    "FakeServer",
    "FakeServerHandle",
    "Fault",
    "Fleet",
    "FleetHandle",
    "LoggedRequest",
    "LoopThread",
    "ServerSpec",
    "parse_fault",
    "start_fake",
]
