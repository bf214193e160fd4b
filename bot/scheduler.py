"""The reminder scan loop; the database, not the loop, holds what is due, so a restart loses
nothing.

An asyncio task sleeping on the event loop's monotonic clock, not APScheduler's wall-clock
IntervalTrigger: a wall clock stepped back 10 minutes (NTP, a VM resumed, an operator) stopped
that trigger for 10 minutes. Due times are still judged on the wall clock (Services.clock)
inside the scan; a step either way is logged and the next scan simply uses the new time.

Several instances on one PostgreSQL store: each runs this loop, but only the holder of the
scan's lease (bot/storage/leases.py) scans; the others keep trying to take the lease and
one of them does within a minute of the holder's death."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from bot.reminders import ReminderService
from bot.storage.leases import InstanceLease

log = logging.getLogger(__name__)


class ReminderScheduler:
    def __init__(self, service: ReminderService, interval_seconds: float,
                 lease: InstanceLease | None = None) -> None:
        """`lease`: scan only while holding it (instances sharing a store); None: this
        process is the only one (SQLite's file lease, bot/lease.py), it always scans and
        re-sends at start what a previous run left in flight."""
        self.service = service
        self.interval = interval_seconds
        self.lease = lease
        self.runs = 0
        self.clock_jumps = 0
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._gained = asyncio.Event()  # the lease was just taken: scan now, not at the tick
        self._held_until = 0.0  # event-loop time up to which this instance surely holds it

    @property
    def holds_lease(self) -> bool:
        return self.lease is None or asyncio.get_running_loop().time() < self._held_until

    async def renew(self) -> None:
        """Take or renew the lease once. Held for sure only until its length after this
        attempt began, on this loop's clock (a stalled instance then stops scanning)."""
        assert self.lease is not None
        began, was = asyncio.get_running_loop().time(), self.holds_lease
        try:
            if await self.lease.take(self.service.services.clock.now()):
                self._held_until = began + self.lease.length.total_seconds()
                if not was:
                    log.info("this instance now runs the reminder scan")
                    self._gained.set()
            else:
                self._held_until = 0.0
        except Exception:  # the store is away: renew when it is back
            log.exception("renewing the reminder scan's lease failed")

    async def _keep_lease(self) -> None:
        """Renew every third of the lease's length, beside the scan (a long scan must not
        let it lapse)."""
        assert self.lease is not None
        while not self._stopping.is_set():
            await self.renew()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       self.lease.length.total_seconds() / 3)

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
        if self.lease is None:
            try:
                # Rows left 'sending' by a previous run that died mid-push (this process holds
                # the file lease, so nobody else is sending them): re-send, marked as possibly
                # repeated. With a shared store, a scan takes them once their claim expires.
                await self.service.recover()
            except Exception:
                log.exception("recovering interrupted reminders failed")
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            wall0, mono0 = self.service.services.clock.now(), loop.time()
            if self.holds_lease:
                await self._tick()
            self._gained.clear()
            # Scans start an interval apart: a long scan (the Monday report, paced by the
            # send budget) is followed by the next one at once, not a whole interval later.
            rest = max(0.0, self.interval - (loop.time() - mono0))
            with contextlib.suppress(TimeoutError):  # the interval passed: scan again
                await asyncio.wait_for(self._wake(), rest)
            self._check_jump(wall0, mono0)

    async def _wake(self) -> None:
        """Stopping, or the lease just taken over."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self._stopping, self._gained)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def start(self) -> None:
        self._stopping.clear()
        loop = asyncio.get_running_loop()
        if self.lease is not None:
            self._keeper = loop.create_task(self._keep_lease(), name="reminder-scan-lease")
        self._task = loop.create_task(self._loop(), name="reminder-scan")

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
            await self._release_lease()

    async def _release_lease(self) -> None:
        """After the drain: another instance may take the scan over at once."""
        if self._keeper is None or self.lease is None:
            return
        keeper, self._keeper = self._keeper, None
        await keeper  # _stopping is set: it ends after its current renewal
        self._held_until = 0.0
        try:
            await self.lease.give_up()
        except Exception:  # it expires by itself
            log.exception("giving up the reminder scan's lease failed")
