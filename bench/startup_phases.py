"""Start-up phases of `taiqu-bot run`, timed inside a fresh interpreter (run by bench_forms).

Mirrors bot.cli._run step by step against the Bot API in TAIQU_* and prints one JSON object:
the wall-clock time this module began (for the caller to work out interpreter start-up) and
the seconds each phase took.
"""

from __future__ import annotations

import time

T0_WALL = time.time()
T0 = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402


async def _main() -> None:
    phases: dict[str, float] = {}
    last = T0

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = now - last
        last = now

    import bot.cli  # noqa: F401

    lap("import bot.cli")
    from bot.assistant import Assistant
    from bot.channels.telegram import TelegramChannel
    from bot.services import Services

    lap("import bot.assistant, bot.channels.telegram, bot.services")
    from bot.config import load_settings

    settings = load_settings()
    lap("load_settings()")
    services = await Services.open(settings)
    lap("Services.open()")
    channel = TelegramChannel(Assistant(services), settings)
    lap("Assistant + TelegramChannel()")
    await channel.start()
    lap("channel.start(): getMe, 3x setMyCommands, deleteWebhook, polling")
    await channel.stop()
    await services.close()
    print(json.dumps({"t0_wall": T0_WALL, "phases": phases}))


if __name__ == "__main__":
    asyncio.run(_main())
