"""Numbered choices waiting for a typed answer, per chat identity (see bot.shaping)."""

from __future__ import annotations

import json
from datetime import datetime

from bot.shaping import Choice
from bot.storage.db import Database, iso

Key = tuple[str, str]  # (channel, external_id)


class PendingChoices:
    """Read on every update of a shaped channel, so each identity's row is read from the
    database once per process and then known from our own writes (this process is the only
    writer: the CLI commands never touch the table)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[Key, list[Choice]] = {}

    async def get(self, channel: str, external_id: str) -> list[Choice]:
        key = (channel, external_id)
        if key not in self._known:
            row = await self.db.fetchone(
                "SELECT choices FROM pending_choices WHERE channel = ? AND external_id = ?", key)
            self.prime(channel, external_id, row[0] if row else None)
        return self._known[key]

    def prime(self, channel: str, external_id: str, stored: str | None) -> None:
        """The identity's row (its `choices`, None: no row) as another read found it (a chat
        step's, bot.storage.steps): taken unless already known, as ours is newer."""
        key = (channel, external_id)
        if key not in self._known:
            self._known[key] = ([Choice(label, data) for label, data in json.loads(stored)]
                                if stored else [])

    async def replace(self, channel: str, external_id: str, choices: list[Choice],
                      now: datetime) -> None:
        """The identity's latest reply numbered `choices` (empty: it numbered none)."""
        key = (channel, external_id)
        if not choices and not await self.get(channel, external_id):
            return  # nothing pending before or now: no write on the common path
        # Known at once; the row (for a restart) is written behind the reply, so a database
        # locked by another process does not stall it (the numbers still work here).
        self._known[key] = list(choices)
        if choices:
            self.db.write_behind(
                "INSERT INTO pending_choices(channel, external_id, choices, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(channel, external_id) DO UPDATE SET "
                "choices = excluded.choices, created_at = excluded.created_at",
                (channel, external_id,
                 json.dumps([[c.label, c.data] for c in choices], ensure_ascii=False), iso(now)),
                "numbered choices")
        else:
            self.db.write_behind(
                "DELETE FROM pending_choices WHERE channel = ? AND external_id = ?", key,
                "numbered choices")
