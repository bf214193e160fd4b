"""Bot processes for the benchmark, each run as its own subprocess against the fake Bot API.

    python -m bench.serve taiqu [--no-rate-limiter]   # the product: exactly `taiqu-bot run`
    python -m bench.serve echo [--rate-limiter] [--aiohttp]  # tests.fakebotapi.build_echo_app

Configuration comes from the environment like the product's (TAIQU_TELEGRAM_TOKEN,
TAIQU_TELEGRAM_BASE_URL, TAIQU_TELEGRAM_BASE_FILE_URL, TAIQU_DB_PATH). SIGTERM stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from types import SimpleNamespace


def _taiqu(rate_limiter: bool) -> int:
    if not rate_limiter:
        # The one difference from the deployed product: TelegramChannel(..., rate_limiter=False).
        from bot.channels import telegram

        telegram.TelegramChannel.__init__ = functools.partialmethod(  # type: ignore[method-assign]
            telegram.TelegramChannel.__init__, rate_limiter=False)
    from bot.cli import main

    profile_to = os.environ.get("BENCH_PROFILE")  # a path: write cProfile stats of the run
    if not profile_to:
        return main(["run"])
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(main, ["run"])
    finally:
        profiler.dump_stats(profile_to)


async def _echo(rate_limiter: bool, aiohttp: bool) -> int:
    from telegram.ext import AIORateLimiter

    from bot.channels.telegram_http import AiohttpRequest
    from tests.fakebotapi import build_echo_app, run_polling

    urls = SimpleNamespace(base_url=os.environ["TAIQU_TELEGRAM_BASE_URL"],
                           base_file_url=os.environ["TAIQU_TELEGRAM_BASE_FILE_URL"])
    limiter = AIORateLimiter(max_retries=5) if rate_limiter else None
    # As PTB's ApplicationBuilder sizes its default requests: 256 connections, 1 for polling.
    requests = (AiohttpRequest(256), AiohttpRequest(1)) if aiohttp else None
    app = build_echo_app(urls, os.environ["TAIQU_TELEGRAM_TOKEN"],  # type: ignore[arg-type]
                         rate_limiter=limiter, requests=requests)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_polling(app):
        await stop.wait()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.serve")
    p.add_argument("kind", choices=["taiqu", "echo"])
    p.add_argument("--rate-limiter", dest="rate_limiter", action="store_true", default=None)
    p.add_argument("--no-rate-limiter", dest="rate_limiter", action="store_false")
    p.add_argument("--aiohttp", action="store_true",
                   help="echo: on taiqu's Bot API transport instead of PTB's default")
    args = p.parse_args()
    if args.kind == "taiqu":
        return _taiqu(args.rate_limiter is not False)
    return asyncio.run(_echo(bool(args.rate_limiter), args.aiohttp))


if __name__ == "__main__":
    sys.exit(main())
