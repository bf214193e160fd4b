"""A round-robin HTTP proxy for the benchmarks: each POST goes to the next upstream in turn,
body and headers as they came, the upstream's status back (as nginx's default upstream
balancing does). Its own process, so its CPU is counted apart.

    python -m bench.rrproxy --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9001,...
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys

import aiohttp
from aiohttp import web

FORWARDED = ("Content-Type", "X-Telegram-Bot-Api-Secret-Token")


async def serve(listen: str, upstreams: list[str]) -> None:
    turn = itertools.cycle(upstreams)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        try:
            async with session.post(next(turn) + request.path_qs, data=body,
                                    headers=headers) as resp:
                return web.Response(status=resp.status, body=await resp.read())
        except aiohttp.ClientError:
            return web.Response(status=502)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    await web.TCPSite(runner, host, int(port)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rrproxy")
    p.add_argument("--listen", required=True)
    p.add_argument("--upstream", required=True, help="comma-separated base URLs")
    args = p.parse_args()
    asyncio.run(serve(args.listen, args.upstream.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
