"""Fake llama.cpp, Ollama, LM Studio, OpenAI and Anthropic servers that speak the real wire formats.

Replies name who answered: the assistant text is ``I am MODEL on KIND port PORT`` and the
``model`` field names the model that really answered. Faults (``none``, ``hang``, ``loading``,
``error500``, ``garbage``, ``drop``, ``slow:MS``, ``wrong-model``) are set at start or at run time
(:meth:`FakeServer.set_fault`, or ``POST /_fake/fault {"fault": F}``). ``GET /_fake/requests``
(and :attr:`FakeServer.requests`) is the request log; ``GET /_fake/state`` the state.

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
[--fault F] [--loading-seconds S] [--api-key K]`` or ``python -m fake_servers fleet FILE.yaml``.
"""

from fake_servers._core import FAULT_NAMES, KINDS, Fault, LoggedRequest, parse_fault
from fake_servers._server import FakeServer, start_fake
from fake_servers.fleet import Fleet, ServerSpec
from fake_servers.sync import FakeServerHandle, FleetHandle, LoopThread

__all__ = [
    "FAULT_NAMES",
    "KINDS",
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
