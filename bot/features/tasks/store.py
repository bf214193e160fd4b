"""The tasks' and their messages' SQL, and the team's managers a task can go to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from bot.config import DATA_DIR
from bot.records import runtime as rt
from bot.reminders import in_quiet_sql
from bot.router import Person, one_person
from bot.services import Ctx
from bot.storage.batch import Batch, Ref
from bot.storage.db import Database, Read, Row, iso
from bot.storage.reminders import LEADS_OF_TEAM, PlannedFor, PlannedRung, Reminders
from bot.storage.team_managers import MANAGERS

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


def message_read(mid: int) -> Read:
    return ("SELECT m.*, u.name AS sender FROM task_messages m "
            "JOIN users u ON u.id = m.sender_id WHERE m.id = ?", (mid,))


def message_in(rows: list[Row]) -> Message | None:
    if not rows:
        return None
    row = rows[0]
    return Message(row["id"], row["team_id"], row["kind"], row["task_id"], row["sender_id"],
                   row["sender"], row["reply_to"], row["body"], json.loads(row["photos"]))


async def load_message(db: Database, mid: int) -> Message | None:
    return message_in(await db.fetchall(*message_read(mid)))


def seen_by(ctx: Ctx, msg: Message | None) -> Message | None:
    """A message its sender, and the leads of its team, may act on (answer, reply, make a
    task of); nobody in another team."""
    if msg is None or msg.team_id != ctx.user.team_id:
        return None
    return msg if ctx.user.sees_whole_team or msg.sender_id == ctx.user.id else None


async def visible_message(ctx: Ctx, mid: int) -> Message | None:
    return seen_by(ctx, await load_message(ctx.services.db, mid))


def quiet_sql(ctx: Ctx, person: str = "r.user_id") -> tuple[str, tuple[Any, ...]]:
    """Whether `person` (by default reminder row `r`'s) is in quiet hours now, for Reminders'
    `quiet=`: an urgent push outside them must not be folded into a morning digest that does
    not list it; inside them it is held for the digest, which shows it (no night-time buzz).
    Decided by the write, as it finds their settings: no read of them first (issue #12)."""
    return in_quiet_sql(ctx.services.settings, person, ctx.local_now)


def in_quiet_read(ctx: Ctx, ids: Sequence[int] | None) -> Read:
    """Who among `ids` (None: the team's managers) is in quiet hours now, as the write that
    plans their pushes finds it (read with it, quiet_sql): the reply says whose push waits."""
    quiet, quiet_params = quiet_sql(ctx, "u.id")
    who, params = ((f"u.id IN (SELECT m.id {MANAGERS.format(team='?')})", (ctx.user.team_id,))
                   if ids is None
                   else (f"u.id IN ({', '.join('?' * len(ids))})", tuple(ids)))
    return (f"SELECT u.id, u.name FROM users u WHERE {who} AND {quiet} = 1 ORDER BY u.id",
            (*params, *quiet_params))


def send_message_into(batch: Batch, ctx: Ctx, kind: str, body: str,
                      recipients: Sequence[int], *, token: str, task_id: int | None = None,
                      reply_to: int | None = None, photos: list[str] | None = None) -> Ref:
    """Store a message once per form token and plan its push to each recipient with it: a
    reminder row, delivered by the next scan, retried, never doubled; at once or at their
    digest by their quiet hours (quiet_sql)."""
    mid = _message_into(batch, ctx, kind, body, token, task_id, reply_to, photos)
    Reminders.plan_rows_into(batch, [PlannedFor(uid, PlannedRung(kind, ctx.now, True, False))
                                     for uid in recipients],
                             team_id=ctx.user.team_id, subject=MESSAGE_SUBJECT, subject_id=mid,
                             now=ctx.now, if_new=mid, quiet=quiet_sql(ctx))
    return mid


def send_up_into(batch: Batch, ctx: Ctx, body: str, *, token: str, photos: list[str]) -> Read:
    """上报: the matter stored as send_message_into does, pushed to the team's leads (but the
    sender) as the write finds them: with none, nothing is written and the user is told
    (up.no_lead). Their names, read with it, for the reply (no read before the write)."""
    mid = _message_into(batch, ctx, "report", body, token, None, None, photos)
    Reminders.plan_into(batch, [PlannedRung("report", ctx.now, True, True)],
                        team_id=ctx.user.team_id, owner_id=ctx.user.id, subject=MESSAGE_SUBJECT,
                        subject_id=mid, now=ctx.now, quiet=quiet_sql(ctx, "u.id"),
                        declined="up.no_lead")
    return batch.read_rows(f"SELECT u.name FROM users u WHERE {LEADS_OF_TEAM} AND u.id <> ? "
                           "ORDER BY u.id", (ctx.user.team_id, ctx.user.id))


def _message_into(batch: Batch, ctx: Ctx, kind: str, body: str, token: str,
                  task_id: int | None, reply_to: int | None, photos: list[str] | None) -> Ref:
    """A message stored once per form token: a second save of the form finds it."""
    return batch.insert(
        "INSERT INTO task_messages(team_id, kind, task_id, sender_id, reply_to, body, photos, "
        "created_at, form_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (form_token) DO NOTHING",
        (ctx.user.team_id, kind, task_id, ctx.user.id, reply_to, body,
         json.dumps(photos or [], ensure_ascii=False), iso(ctx.now), token),
        existing=("SELECT id FROM task_messages WHERE form_token = ?", (token,)))


async def team_managers(ctx: Ctx) -> list[tuple[int, str]]:
    """The managers of the user's team (id, name), the people a task can go to: a lead's
    step read brings them (or finds the ones held current), so the sentence, its parsing,
    the summary and the save read nothing more (Ctx.team_managers)."""
    return await ctx.team_managers()


def counts_read(team_id: int, person: Person | None, start: datetime, end: datetime,
                now: datetime) -> Read:
    """(manager, given, done, overdue) in [start, end): given = created, done = finished,
    overdue = due in the period and not done by then (still open, or done late). `person`:
    one manager's (SQL for the id and its parameters, bot.router.ReportScope.person)."""
    cut = iso(min(end, now))
    who, who_params = one_person("t.user_id", person)
    params: tuple[Any, ...] = (iso(start), iso(end), iso(start), iso(end), iso(start), cut,
                               team_id, *who_params)
    return ("SELECT u.name, "
            "SUM(CASE WHEN t.created_at >= ? AND t.created_at < ? THEN 1 ELSE 0 END) AS given, "
            "SUM(CASE WHEN t.done_at >= ? AND t.done_at < ? THEN 1 ELSE 0 END) AS done, "
            "SUM(CASE WHEN t.due_at >= ? AND t.due_at < ? AND (t.done_at IS NULL "
            "OR t.done_at > t.due_at) THEN 1 ELSE 0 END) AS overdue "
            "FROM tasks t JOIN users u ON u.id = t.user_id "
            f"WHERE t.team_id = ?{who} GROUP BY u.id, u.name ORDER BY u.id", params)


def counts_by_manager(rows: list[Row]) -> list[tuple[str, int, int, int]]:
    """counts_read's rows, the managers with none of the three left out."""
    return [(r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows
            if (r[1] or 0) + (r[2] or 0) + (r[3] or 0)]
