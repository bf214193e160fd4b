"""APScheduler drives the reminder scan; the database, not the scheduler, holds what is due,
so the job itself is stateless and a restart loses nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.reminders import ReminderService

log = logging.getLogger(__name__)


class ReminderScheduler:
    def __init__(self, service: ReminderService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self.runs = 0

    async def _tick(self) -> None:
        try:
            result = await self.service.scan_once()
            self.runs += 1
            if result.sent or result.digests or result.failed:
                log.info("reminders: %s", result)
        except Exception:  # the next tick tries again; the rows are still there
            log.exception("reminder scan failed")

    def start(self) -> None:
        self._scheduler.add_job(
            self._tick, IntervalTrigger(seconds=self.interval), id="reminder-scan",
            max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
