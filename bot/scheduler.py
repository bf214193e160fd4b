"""The reminder scan loop; the database, not the loop, holds what is due, so a restart loses
nothing.

An asyncio task sleeping on the event loop's monotonic clock, not APScheduler's wall-clock
IntervalTrigger: a wall clock stepped back 10 minutes (NTP, a VM resumed, an operator) stopped
that trigger for 10 minutes. Due times are still judged on the wall clock (Services.clock)
inside the scan; a step either way is logged and the next scan simply uses the new time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from bot.reminders import ReminderService

log = logging.getLogger(__name__)


class ReminderScheduler:
    def __init__(self, service: ReminderService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self.runs = 0
        self.clock_jumps = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def _tick(self) -> None:
        try:
            result = await self.service.scan_once()
            self.runs += 1
            if result.sent or result.digests or result.failed or result.unknown:
                log.info("reminders: %s", result)
        except Exception:  # the next tick tries again; the rows are still there
            log.exception("reminder scan failed")

    def _check_jump(self, wall0: datetime, mono0: float) -> None:
        """Warn when the wall clock moved differently from the monotonic one since mono0."""
        wall = (self.service.services.clock.now() - wall0).total_seconds()
        mono = asyncio.get_running_loop().time() - mono0
        if abs(wall - mono) > self.service.services.settings.clock_jump_warn_seconds:
            self.clock_jumps += 1
            log.warning("wall clock jumped by %+.0f s between reminder scans (%.0f s passed); "
                        "due times now follow the new clock", wall - mono, mono)

    async def _loop(self) -> None:
        try:
            # Rows left 'sending' by a previous holder that died mid-push (this process holds
            # the lease, so nobody else is sending them): re-send, marked as possibly repeated.
            await self.service.recover()
        except Exception:
            log.exception("recovering interrupted reminders failed")
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            wall0, mono0 = self.service.services.clock.now(), loop.time()
            await self._tick()
            # Scans start an interval apart: a long scan (the Monday report, paced by the
            # send budget) is followed by the next one at once, not a whole interval later.
            rest = max(0.0, self.interval - (loop.time() - mono0))
            with contextlib.suppress(TimeoutError):  # the interval passed: scan again
                await asyncio.wait_for(self._stopping.wait(), rest)
            self._check_jump(wall0, mono0)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="reminder-scan")

    async def stop(self, drain_seconds: float | None = None) -> None:
        """Claim nothing new, let the pushes in flight finish and be recorded (at most
        drain_seconds, default TAIQU_SHUTDOWN_DRAIN_SECONDS), then end the loop. A push still
        unanswered after that is cut off; its row stays 'sending' and the next start re-sends
        it (the documented crash duplicate)."""
        if self._task is None:
            return
        if drain_seconds is None:
            drain_seconds = self.service.services.settings.shutdown_drain_seconds
        self._stopping.set()
        self.service.closing = True
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(asyncio.shield(task), drain_seconds)
        except TimeoutError:
            log.warning("reminder pushes still in flight after %.0f s; cut off", drain_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self.service.closing = False
