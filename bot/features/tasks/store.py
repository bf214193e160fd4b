"""The tasks' and their messages' SQL, and the team's managers a task can go to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from bot.config import DATA_DIR
from bot.records import runtime as rt
from bot.reminders import in_quiet, quiet_window
from bot.services import Ctx
from bot.storage.db import Database, Tx, iso
from bot.storage.reminders import Reminders

SUBJECT = "task"
MESSAGE_SUBJECT = "taskmsg"


@cache
def task_rules() -> dict[str, Any]:
    """data/tasks.json: the reminder before a deadline (working hours)."""
    rules: dict[str, Any] = json.loads((DATA_DIR / "tasks.json").read_text(encoding="utf-8"))
    return rules


@dataclass(frozen=True)
class Task:
    id: int
    team_id: int
    user_id: int  # the assignee
    owner: str  # the assignee's name
    lead_id: int
    lead: str
    content: str
    area_name: str | None
    customer: str | None
    due_at: datetime
    status: str
    accepted_at: datetime | None
    done_at: datetime | None
    result: str | None
    photos: str
    created_at: datetime

    @property
    def photo_refs(self) -> list[str]:
        refs: list[str] = json.loads(self.photos or "[]")
        return refs


STORE = rt.Store(Task, "tasks", "SELECT t.*, u.name AS owner, l.name AS lead, "
                 "a.name AS area_name FROM tasks t JOIN users u ON u.id = t.user_id "
                 "JOIN users l ON l.id = t.lead_id LEFT JOIN areas a ON a.id = t.area_id", "t")


@dataclass(frozen=True)
class Message:
    """A question, an answer, a result, a matter sent up (上报) or a lead's reply to one."""

    id: int
    team_id: int
    kind: str
    task_id: int | None
    sender_id: int
    sender: str
    reply_to: int | None
    body: str
    photos: list[str]


async def load_message(db: Database, mid: int) -> Message | None:
    row = await db.fetchone(
        "SELECT m.*, u.name AS sender FROM task_messages m JOIN users u ON u.id = m.sender_id "
        "WHERE m.id = ?", (mid,))
    if row is None:
        return None
    return Message(row["id"], row["team_id"], row["kind"], row["task_id"], row["sender_id"],
                   row["sender"], row["reply_to"], row["body"], json.loads(row["photos"]))


async def visible_message(ctx: Ctx, mid: int) -> Message | None:
    """A message its sender, and the leads of its team, may act on (answer, reply, make a
    task of); nobody in another team."""
    msg = await load_message(ctx.services.db, mid)
    if msg is None or msg.team_id != ctx.user.team_id:
        return None
    return msg if ctx.user.sees_whole_team or msg.sender_id == ctx.user.id else None


async def push_now(ctx: Ctx, user_ids: list[int]) -> dict[int, bool]:
    """Whether a push to each person goes out at the next scan (urgent) rather than waiting:
    outside their quiet hours it must not be folded into a morning digest that does not
    list it; inside them it is held for the digest, which shows it (no night-time buzz)."""
    out = {}
    for uid in user_ids:
        window = await quiet_window(ctx.services, uid)
        out[uid] = not (window and in_quiet(ctx.local_now, *window))
    return out


async def send_message(tx: Tx, ctx: Ctx, kind: str, body: str, recipients: dict[int, bool], *,
                       token: str, task_id: int | None = None, reply_to: int | None = None,
                       photos: list[str] | None = None) -> int:
    """Store a message once per form token and plan its push to each recipient (id ->
    push_now) at once: a reminder row, delivered by the next scan, retried, never doubled."""
    existing = await tx.fetchone("SELECT id FROM task_messages WHERE form_token = ?", (token,))
    if existing:
        return int(existing["id"])
    mid = int(await tx.execute(
        "INSERT INTO task_messages(team_id, kind, task_id, sender_id, reply_to, body, photos, "
        "created_at, form_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ctx.user.team_id, kind, task_id, ctx.user.id, reply_to, body,
         json.dumps(photos or [], ensure_ascii=False), iso(ctx.now), token)) or 0)
    for user_id, urgent in recipients.items():
        await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=user_id,
                             subject=MESSAGE_SUBJECT, subject_id=mid, kind=kind,
                             due_at=ctx.now, now=ctx.now, urgent=urgent)
    return mid


async def team_managers(ctx: Ctx) -> list[tuple[int, str]]:
    """The managers of the user's team (id, name), the people a task can go to."""
    rows = await ctx.services.db.fetchall(
        "SELECT id, name FROM users WHERE team_id = ? AND role = 'manager' AND active = 1 "
        "ORDER BY id", (ctx.user.team_id,))
    return [(int(r["id"]), str(r["name"])) for r in rows]


async def counts_by_manager(db: Database, team_id: int, user_id: int | None, start: datetime,
                            end: datetime, now: datetime) -> list[tuple[str, int, int, int]]:
    """(manager, given, done, overdue) in [start, end): given = created, done = finished,
    overdue = due in the period and not done by then (still open, or done late)."""
    cut = iso(min(end, now))
    who = "" if user_id is None else " AND t.user_id = ?"
    params: tuple[Any, ...] = (iso(start), iso(end), iso(start), iso(end), iso(start), cut,
                               team_id, *(() if user_id is None else (user_id,)))
    rows = await db.fetchall(
        "SELECT u.name, "
        "SUM(CASE WHEN t.created_at >= ? AND t.created_at < ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN t.done_at >= ? AND t.done_at < ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN t.due_at >= ? AND t.due_at < ? AND (t.done_at IS NULL "
        "OR t.done_at > t.due_at) THEN 1 ELSE 0 END) "
        "FROM tasks t JOIN users u ON u.id = t.user_id "
        f"WHERE t.team_id = ?{who} GROUP BY u.id, u.name ORDER BY u.id", params)
    return [(r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows
            if (r[1] or 0) + (r[2] or 0) + (r[3] or 0)]
