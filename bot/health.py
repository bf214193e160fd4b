"""GET /healthz for the load balancer in front of several instances: 200 when this instance
can reach the store and every channel it serves is up, else 503; the body says which part
failed. Served by `taiqu-bot run` on TAIQU_HEALTH_PORT (off when unset)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from bot.channel import Channel
from bot.services import Services

log = logging.getLogger(__name__)
PATH = "/healthz"


class HealthServer:
    def __init__(self, services: Services, channels: Sequence[Channel], instance: str,
                 scanning: Callable[[], bool] | None = None) -> None:
        """`scanning()`: whether this instance runs the reminder scan now (for the body)."""
        self.services = services
        self.channels = channels
        self.instance = instance
        self.scanning = scanning
        self.port: int | None = None  # as bound (TAIQU_HEALTH_PORT=0: any free port)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.services.settings
        app = web.Application()
        app.router.add_get(PATH, self._healthz)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, settings.health_host, settings.health_port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("health check on http://%s:%s%s", settings.health_host, self.port, PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def report(self) -> dict[str, Any]:
        channels = {c.name: "up" if c.up else "down" for c in self.channels}
        body: dict[str, Any] = {"instance": self.instance, "database": await self._database(),
                                "channels": channels}
        if self.scanning is not None:
            body["reminder_scan"] = "this instance" if self.scanning() else "another instance"
        body["ok"] = body["database"] == "ok" and all(v == "up" for v in channels.values())
        return body

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(self.services.settings.health_timeout_seconds):
                await self.services.db.fetchone("SELECT 1")
        except Exception as exc:  # any failure is the answer, not an error of this handler
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def _healthz(self, request: web.Request) -> web.Response:
        body = await self.report()
        return web.json_response(body, status=200 if body["ok"] else 503)
