"""free_reminders rows, each with its push as a reminders row (planned in one transaction:
a reminder saved is a reminder sent, once; see 0022_visits_free_reminders.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import User
from bot.storage.batch import Batch, Ref
from bot.storage.db import Database, Read, Row, from_iso, iso
from bot.storage.reminders import PlannedFor, PlannedRung, Reminders

SUBJECT = "free_reminder"
OPEN, DONE, CANCELLED = "open", "done", "cancelled"


@dataclass(frozen=True)
class FreeReminder:
    id: int
    user_id: int
    what: str
    remind_at: datetime
    urgent: bool
    state: str


def _row(r: Row) -> FreeReminder:
    return FreeReminder(r["id"], r["user_id"], r["what"], from_iso(r["remind_at"]),
                        bool(r["urgent"]), r["state"])


async def add(db: Database, user: User, what: str, at: datetime, urgent: bool, now: datetime,
              token: str) -> int:
    """Save it and plan its push; a second save of the same form returns the first id."""
    batch = Batch()
    rid = add_into(batch, user, what, at, urgent, now, token)
    return int((await db.write_batch(batch)).id_of(rid) or 0)


def add_into(batch: Batch, user: User, what: str, at: datetime, urgent: bool, now: datetime,
             token: str) -> Ref:
    """`add` as a batch's writes (the form's 确认, with its close: one round trip)."""
    rid = batch.insert(
        "INSERT INTO free_reminders(team_id, user_id, what, remind_at, urgent, created_at, "
        "form_token) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (form_token) DO NOTHING",
        (user.team_id, user.id, what, iso(at), int(urgent), iso(now), token),
        existing=("SELECT id FROM free_reminders WHERE form_token = ?", (token,)))
    Reminders.plan_rows_into(batch, [PlannedFor(user.id, PlannedRung("due", at, urgent, False))],
                             team_id=user.team_id, subject=SUBJECT, subject_id=rid, now=now,
                             if_new=rid)
    return rid


async def get(db: Database, user_id: int, rid: int) -> FreeReminder | None:
    """One's own reminder only: nobody else's id opens anything."""
    row = await db.fetchone("SELECT * FROM free_reminders WHERE id = ? AND user_id = ?",
                            (rid, user_id))
    return _row(row) if row else None


async def open_ones(db: Database, user_id: int, by: datetime | None = None,
                    limit: int = 100) -> list[FreeReminder]:
    """The person's open reminders, soonest first (those due by `by`, if given)."""
    return reminders_of(await db.fetchall(*open_ones_read(user_id, by, limit)))


def open_ones_read(user_id: int, by: datetime | None = None, limit: int = 100) -> Read:
    until = "" if by is None else " AND remind_at <= ?"
    params: tuple[object, ...] = (user_id, OPEN) + (() if by is None else (iso(by),))
    return (f"SELECT * FROM free_reminders WHERE user_id = ? AND state = ?{until} "
            "ORDER BY remind_at, id LIMIT ?", (*params, limit))


def reminders_of(rows: list[Row]) -> list[FreeReminder]:
    return [_row(r) for r in rows]


def count_open_read(user_id: int) -> Read:
    return "SELECT count(*) FROM free_reminders WHERE user_id = ? AND state = ?", (user_id, OPEN)


def count_in(rows: list[Row]) -> int:
    return int(rows[0][0]) if rows else 0


async def close(db: Database, user_id: int, rid: int, state: str, now: datetime) -> str | None:
    """完成 or 取消 one's own open reminder; its pending push (or snooze) goes with it, in
    one round trip. What it was, or None when it is not open (pressed twice, or someone
    else's id). A row held for the digest stays: it renders as nothing once closed."""
    batch = Batch()
    closed = batch.update(
        "UPDATE free_reminders SET state = ?, closed_at = ? WHERE id = ? AND user_id = ? "
        "AND state = ?", (state, iso(now), rid, user_id, OPEN), rid)
    Reminders.cancel_into(batch, SUBJECT, rid, if_new=closed)
    what = batch.read("SELECT (SELECT what FROM free_reminders WHERE id = ? AND user_id = ?)",
                      (rid, user_id))  # one row, whoever's id it is
    return str(what.value) if (await db.write_batch(batch)).changed(closed) else None
