"""Per-person workers: one person's work in order, different people's concurrently (the
WeCom inbox and outbox, the Telegram webhook inbox)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Lanes:
    """One worker task per key (a person), started on demand: a person's work runs in
    order, different people's concurrently. `poke` after new work; the worker loops until
    no poke arrived while it ran, so nothing poked is left behind."""

    def __init__(self, work: Callable[[str], Awaitable[None]], limit: int = 0,
                 what: str = "worker") -> None:
        self._work = work
        self._what = what
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # At most `limit` people's work at once (0: no limit). The work is mostly the core's
        # CPU time: more in flight only queues more ahead of the callback acknowledgements
        # that share the event loop and the database.
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None

    def poke(self, key: str) -> None:
        self._dirty.add(key)
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._run(key))

    async def _run(self, key: str) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                try:
                    if self._slots is None:
                        await self._work(key)
                    else:
                        async with self._slots:
                            await self._work(key)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the next poke or sweep tries again
                    log.exception("%s for %s failed", self._what, key)
        finally:
            self._tasks.pop(key, None)

    def busy(self) -> bool:
        return bool(self._tasks)

    async def idle(self) -> None:
        """Wait until every worker has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        self._tasks.clear()
