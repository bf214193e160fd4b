"""The open form of each user, read and written on every step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.db import Database, from_iso, iso


@dataclass
class Draft:
    """A form in progress: which form, its token (stamped into its buttons) and its state."""

    user_id: int
    form: str
    token: str
    state: dict[str, Any]
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Finished:
    """A saved form: which form, and the id of the record it saved (None: not a record)."""

    form: str
    record_id: int | None


class Conversations:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> Draft | None:
        row = await self.db.fetchone("SELECT * FROM conversations WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        return Draft(row["user_id"], row["form"], row["token"], json.loads(row["state"]),
                     from_iso(row["started_at"]), from_iso(row["updated_at"]))

    async def put(self, draft: Draft) -> None:
        await self.db.execute(
            "INSERT INTO conversations(user_id, form, token, state, started_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET form = excluded.form, "
            "token = excluded.token, state = excluded.state, updated_at = excluded.updated_at, "
            "started_at = excluded.started_at",
            (draft.user_id, draft.form, draft.token, json.dumps(draft.state, ensure_ascii=False),
             iso(draft.started_at), iso(draft.updated_at)))

    async def delete(self, user_id: int) -> None:
        await self.db.execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))

    async def finish(self, draft: Draft, record_id: int | None, now: datetime,
                     forget_before: datetime) -> None:
        """Close a saved form, remembering its token -> what it saved (a second press of
        保存 can then say so); entries finished before `forget_before` are pruned."""
        async with self.db.tx() as tx:
            await tx.execute("DELETE FROM conversations WHERE user_id = ?", (draft.user_id,))
            await tx.execute("DELETE FROM finished_forms WHERE finished_at < ?",
                             (iso(forget_before),))
            await tx.execute(
                "INSERT OR REPLACE INTO finished_forms(token, user_id, form, record_id, "
                "finished_at) VALUES (?, ?, ?, ?, ?)",
                (draft.token, draft.user_id, draft.form, record_id, iso(now)))

    async def finished(self, user_id: int, token: str, since: datetime) -> Finished | None:
        """The user's form with this token, if it was saved at or after `since`."""
        row = await self.db.fetchone(
            "SELECT form, record_id FROM finished_forms WHERE token = ? AND user_id = ? "
            "AND finished_at >= ?", (token, user_id, iso(since)))
        return None if row is None else Finished(row["form"], row["record_id"])
