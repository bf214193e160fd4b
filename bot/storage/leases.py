"""Work one instance at a time does on a shared store (the reminder scan, which also sends the
morning digest and the Monday report): a row naming its holder and until when.

A row with an expiry, not a PostgreSQL advisory lock: it works on both stores, and a holder
whose connection hangs loses it by the clock instead of keeping it while it cannot work. The
holder renews it every third of its length; when the holder dies, another instance takes it
once it has run out."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from bot.storage.db import Backend, iso

SCAN = "reminder-scan"  # the lease of the scan, the digests and the periodic jobs


def instance_name() -> str:
    """This process among the instances: host and pid to read, a random part to be unique."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class InstanceLease:
    def __init__(self, db: Backend, name: str, holder: str, seconds: float) -> None:
        self.db = db
        self.name = name
        self.holder = holder
        self.length = timedelta(seconds=seconds)

    async def take(self, now: datetime) -> bool:
        """Take the lease, or renew it if ours; True if this instance holds it now."""
        async with self.db.tx() as tx:
            await tx.execute(
                "INSERT INTO instance_leases(name, holder, until) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, "
                "until = excluded.until WHERE instance_leases.holder = excluded.holder "
                "OR instance_leases.until < ?",
                (self.name, self.holder, iso(now + self.length), iso(now)))
            return tx.rowcount > 0

    async def give_up(self) -> None:
        """A graceful stop: another instance may take over at once."""
        await self.db.execute("DELETE FROM instance_leases WHERE name = ? AND holder = ?",
                              (self.name, self.holder))
