"""Group fsync of a SQLite write-ahead log: a form step's durability without a sync on the
event loop (issue #12, TAIQU_SQLITE_STEP_SYNCHRONOUS=FULL).

SQLite's documentation (pragma.html#pragma_synchronous): "With synchronous=FULL in WAL mode,
an additional sync operation of the WAL file happens after each transaction commit"; with
NORMAL "no sync operations occur during most transactions" (the WAL is synced before each
checkpoint, the WAL header when the file is reused). So a commit made with NORMAL followed by
one sync of the `-wal` file is as durable as FULL's. A step commits on the event loop with
NORMAL, then awaits `synced()`: one fdatasync in a worker thread, shared by every step that
committed before it began (group commit); a step that commits while one runs waits for the
next. At 50 users one sync covers many steps, and the loop never waits for the disk.

A lone step (no other chat step in flight, no sync running) syncs on the loop instead: there is
nobody to share the sync with or to stall, and the two thread hops cost more than the sync
itself (measured on this machine: ~0.2 ms inline, ~0.4 ms through the thread; 1 user's step
p50 1.4-1.7x the bare echo bot through the thread, about 1x inline; BENCHMARKS.md, issue #12
sixth pass). A disk that turns slow sends the syncs back to the thread for a while, so a slow
sync never holds the loop twice in a row; they come back to the loop once the thread has timed
several quick syncs in a row.

Why this is enough: the WAL is one file written in commit order, so its sync covers every
earlier commit; it is never deleted while a connection is open (only after a checkpoint of all
of it into the synced database file), and when a checkpoint resets it, what it held is already
in the database file, synced. The file is opened by path for each sync, so a new WAL (another
inode) is never missed. Until the sync, the commit is visible to other connections but not yet
durable: a later commit made durable covers it too (same file, later position)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# fdatasync is what SQLite's unix VFS uses on Linux for the WAL; fsync where it is missing
# (macOS has no os.fdatasync).
_sync = getattr(os, "fdatasync", os.fsync)
# A lone step's sync on the loop slower than this (the disk busy: an import, a backup) sends
# the syncs to the thread for AWAY_S: another chat arriving meanwhile must not wait for it.
INLINE_MOST_S = 0.005
AWAY_S = 60.0
# ... or until this many syncs in a row, timed in the thread, were each under INLINE_MOST_S:
# the disk is quick again. One slow sync is often the host's scheduler, not the disk (a busy
# machine sent 350 of 480 syncs to the thread for nothing), and each one through the thread
# costs a lone step two hops (~0.2 ms).
BACK_AFTER = 8


class NotDurable(Exception):
    """The WAL could not be synced: the step's commit may not survive a power cut (the step
    fails, as a commit with synchronous=FULL would have)."""


class WalSync:
    def __init__(self, database: Path, on_sync: Callable[[], None] = lambda: None) -> None:
        self.wal = Path(f"{database}-wal")
        self._on_sync = on_sync  # counts syncs (Trips.fsyncs)
        # The sync that commits made since the running one began wait for (None: none asked).
        self._next: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        # Its own thread: a sync never queues behind other work of the default executor.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="taiqu-walsync")
        self._thread_until = 0.0  # time.monotonic() before which every sync takes the thread
        self._quick = 0  # syncs in a row in the thread under INLINE_MOST_S while away

    async def synced(self, alone: bool = False) -> None:
        """Returns once a sync begun after this call has completed: call it right after a
        commit, with no await in between. Raises NotDurable if that sync failed. `alone`: no
        other chat step is in flight, so the sync may run on the loop (see the module's
        docstring)."""
        if alone and self._next is None and (self._runner is None or self._runner.done()) \
                and time.monotonic() >= self._thread_until:
            self._sync_inline()
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._runner is None or self._runner.done():
                self._runner = asyncio.get_running_loop().create_task(
                    self._run(), name="walsync")
        # Shared by every step of the batch: one step cancelled must not cancel the others'.
        await asyncio.shield(self._next)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (batch := self._next) is not None:
            self._next = None  # commits from now on wait for the next sync
            try:
                took = await loop.run_in_executor(self._pool, self._timed_sync)
            except OSError as exc:
                batch.set_exception(NotDurable(f"{self.wal}: {exc}"))
            except BaseException:  # cancelled (shutdown): nobody may wait forever
                for waiting in (batch, self._next):
                    if waiting is not None and not waiting.done():
                        waiting.set_exception(NotDurable("closed before the WAL was synced"))
                self._next = None  # a later step starts a sync of its own, not this failure
                raise
            else:
                batch.set_result(None)
                self._back_when_quick(took)
            self._on_sync()

    def _timed_sync(self) -> float:
        """In the worker thread: the sync, and how long the disk took (no loop in it)."""
        started = time.monotonic()
        self.sync_file()
        return time.monotonic() - started

    def _back_when_quick(self, took: float) -> None:
        if time.monotonic() >= self._thread_until:
            return  # not away
        self._quick = self._quick + 1 if took <= INLINE_MOST_S else 0
        if self._quick >= BACK_AFTER:
            self._thread_until, self._quick = 0.0, 0

    def _sync_inline(self) -> None:
        started = time.monotonic()
        try:
            self.sync_file()
        except OSError as exc:
            raise NotDurable(f"{self.wal}: {exc}") from exc
        finally:
            if time.monotonic() - started > INLINE_MOST_S:
                self._thread_until, self._quick = time.monotonic() + AWAY_S, 0
        self._on_sync()

    def sync_file(self) -> None:
        """In the worker thread (or on the loop for a lone step)."""
        try:
            fd = os.open(self.wal, os.O_RDONLY)
        except FileNotFoundError:  # no WAL (not in WAL mode, or all of it checkpointed into
            return  # the database file and synced: the last connection closed)
        try:
            _sync(fd)
        finally:
            os.close(fd)

    async def close(self) -> None:
        """The syncs asked for so far complete, then the thread ends."""
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        self._pool.shutdown(wait=True)
