"""Updates a channel skipped because it could not handle them (the dead-letter table)."""

from __future__ import annotations

from datetime import datetime

from bot.storage.db import Database, Row, iso


class DeadUpdates:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, channel: str, update_id: int, at: datetime, error: str,
                     shape: str) -> None:
        """Kept once per update: a re-delivered update does not add a second row."""
        await self.db.execute(
            "INSERT INTO dead_updates(channel, update_id, received_at, error, shape) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, update_id, iso(at), error, shape))

    async def all(self, channel: str) -> list[Row]:
        return await self.db.fetchall(
            "SELECT * FROM dead_updates WHERE channel = ? ORDER BY id", (channel,))
