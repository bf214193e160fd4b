"""Invite-code guessing, throttled in the database (so a restart does not reset it): wrong
codes per chat identity, and wrong codes per minute from everyone together, beyond which every
code attempt is refused for a while. Written by hand: rate-limit libraries (e.g. `limits`)
keep their counters in memory, Redis or Memcached, not in this SQLite file, and a window count
over an indexed table is all it takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings
from bot.storage.db import Database, from_iso, iso

_GLOBAL_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Refusal:
    """Why a code attempt is refused before it is checked: 'identity' (this chat guessed too
    often) or 'paused' (too many wrong codes overall); `minutes` until it may try again."""

    reason: str
    minutes: int


def _minutes_until(until: datetime, now: datetime) -> int:
    return max(1, -(-int((until - now).total_seconds()) // 60))  # rounded up


class InviteThrottle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.max_failures = settings.invite_max_failures
        self.window = timedelta(minutes=settings.invite_failure_window_minutes)
        self.global_limit = settings.invite_global_failures_per_minute
        self.lockout = timedelta(minutes=settings.invite_lockout_minutes)

    async def refusal(self, channel: str, external_id: str, now: datetime) -> Refusal | None:
        """None when this chat may try a code now."""
        row = await self.db.fetchone("SELECT until FROM invite_lockout WHERE id = 1")
        if row is not None and from_iso(row["until"]) > now:
            return Refusal("paused", _minutes_until(from_iso(row["until"]), now))
        rows = await self.db.fetchall(
            "SELECT at FROM invite_failures WHERE channel = ? AND external_id = ? AND at > ? "
            "ORDER BY at", (channel, external_id, iso(now - self.window)))
        if len(rows) >= self.max_failures:
            # Free again once the oldest failure that still counts leaves the window.
            oldest = from_iso(rows[len(rows) - self.max_failures]["at"])
            return Refusal("identity", _minutes_until(oldest + self.window, now))
        return None

    async def failed(self, channel: str, external_id: str, now: datetime) -> int | None:
        """Record a wrong code. Returns the overall count of the last minute when this failure
        starts a pause of all code attempts (once per pause), else None."""
        keep = max(self.window, _GLOBAL_WINDOW)
        async with self.db.tx() as tx:
            await tx.execute("DELETE FROM invite_failures WHERE at <= ?", (iso(now - keep),))
            await tx.execute(
                "INSERT INTO invite_failures(channel, external_id, at) VALUES (?, ?, ?)",
                (channel, external_id, iso(now)))
            row = await tx.fetchone("SELECT count(*) FROM invite_failures WHERE at > ?",
                                    (iso(now - _GLOBAL_WINDOW),))
            recent = int(row[0]) if row else 0
            if recent < self.global_limit:
                return None
            lock = await tx.fetchone("SELECT until FROM invite_lockout WHERE id = 1")
            if lock is not None and from_iso(lock["until"]) > now:
                return None  # paused already (attempts that were under way meanwhile)
            await tx.execute(
                "INSERT INTO invite_lockout(id, until, failures) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET until = excluded.until, "
                "failures = excluded.failures", (iso(now + self.lockout), recent))
        return recent
