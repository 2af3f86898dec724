"""The least an aiohttp proxy can do: forward a chat request's bytes and the reply's bytes.

``python benchmarks/_proxy_floor.py UPSTREAM_URL [--loop asyncio|uvloop]`` prints
``listening on URL``.  No parsing, no routing, no checks, no logs: the lower bound of any
gateway built on aiohttp (server and client) on this machine, measured beside routing by
bench_workers.py.  Not a gateway: it answers only ``POST /v1/chat/completions``, and only
non-streaming.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

from routing._loop import LOOPS, run


async def _serve(upstream: str) -> None:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
    )
    url = upstream + "/v1/chat/completions"
    headers = {"Content-Type": "application/json"}

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with session.post(url, data=body, headers=headers) as reply:
            data = await reply.read()
            status = reply.status
        return web.Response(body=data, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await session.close()


def main() -> None:
    """Parse the arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream")
    parser.add_argument("--loop", choices=LOOPS, default="auto")
    args = parser.parse_args()
    run(_serve(args.upstream), args.loop)


if __name__ == "__main__":
    main()
