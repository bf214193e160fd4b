"""After an import: which 台区 have an abnormal run (data/lineloss.json: N abnormal days one
after another), which open items the new days extend or close.

One item per run: an area has at most one item not closed (a unique index), and a closed
item's run never opens another: a new item needs a run that starts after the last one's
last abnormal day (and after the normal day that closed it). So the same file imported
again, or two imports at once, open nothing twice and plan no reminder twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot.deadlines import due_after
from bot.features.lineloss.limits import Threshold, limits
from bot.records import runtime as rt
from bot.records.common import calendar, ruleset
from bot.services import Services
from bot.storage.batch import Batch, Ref, play
from bot.storage.db import Row, Tx, iso
from bot.storage.reminders import Reminders

SUBJECT = "lineloss"
CHUNK_AREAS = 200  # areas looked at per read and per (short) transaction
# A run is read back at most this far before the file's last day for the area: an older
# start is shown as this far back (an item already open keeps its own first day).
RUN_LOOKBACK = timedelta(days=92)


@dataclass
class FollowUp:
    opened: list[int] = field(default_factory=list)  # item ids
    extended: int = 0
    closed: list[int] = field(default_factory=list)
    no_owner: list[str] = field(default_factory=list)  # areas with a run and nobody to tell


@dataclass(frozen=True)
class Day:
    day: date
    rate: float | None


def beyond(th: Threshold, rate: float) -> float:
    """How far outside the normal band a rate is (0 inside it)."""
    return max(rate - th.above, th.below - rate, 0.0)


def worst(th: Threshold, days: Iterable[Day]) -> float | None:
    rates = [d.rate for d in days if d.rate is not None]
    return max(rates, key=lambda r: beyond(th, r)) if rates else None


def current_run(days: list[Day], th: Threshold) -> list[Day]:
    """The abnormal days one after another that end at the latest day with data; [] when
    that day is normal (or has no rate). A missing day ends a run."""
    run: list[Day] = []
    for d in reversed(days):
        if not th.abnormal(d.rate) or (run and (run[-1].day - d.day).days != 1):
            break
        run.append(d)
    return run[::-1]


def first_normal_after(days: list[Day], th: Threshold, after: date) -> Day | None:
    return next((d for d in days if d.day > after and d.rate is not None
                 and not th.abnormal(d.rate)), None)


def is_new_run(run: list[Day], last_day: str | None, closed_day: str | None) -> bool:
    """A run not already followed by the area's latest item (open, accepted or closed): it
    starts after that item's last abnormal day and after the normal day that closed it."""
    start = run[0].day.isoformat()
    return (last_day is None or start > last_day) and (closed_day is None or start > closed_day)


# --- reminders --------------------------------------------------------------------------
async def plan_check(tx: Tx, rid: int, team_id: int, owner_id: int, due: datetime,
                     leads: list[int], now: datetime) -> None:
    """The owner hears at once, is reminded before the deadline and at it; then the leads."""
    await rt.plan_ladder(tx, SUBJECT, rid, team_id, owner_id, "opened", [
        rt.Rung("notice", now, skip_if_past=False)], leads, now)
    await rt.plan_ladder(tx, SUBJECT, rid, team_id, owner_id, "check", [
        rt.Rung("soon", due - limits().remind_before.delta),
        rt.Rung("due", due, skip_if_past=False),
        rt.Rung("escalate", due, to_leads=True, skip_if_past=False)], leads, now)


async def close(tx: Tx, item: Row, how: str, now: datetime, *, closed_day: str | None = None,
                accepted_by: int | None = None) -> bool:
    """Close an item once (two imports, or an import and the lead's tap, close it once):
    its reminders stop, the owner is told."""
    batch = Batch()
    closed = close_into(batch, int(item["id"]), int(item["team_id"]), int(item["user_id"]),
                        how, now, closed_day=closed_day, accepted_by=accepted_by)
    return (await play(tx, batch)).changed(closed)


def close_into(batch: Batch, item_id: int, team_id: int, owner_id: int, how: str,
               now: datetime, *, closed_day: str | None = None, accepted_by: int | None = None,
               needed: bool = False) -> Ref:
    """`close` as a batch's writes (the lead's 接受原因: one round trip); its Ref changed
    only if the item was still open (`needed`: else nothing is written)."""
    closed = batch.update(
        "UPDATE lineloss_items SET status = 'closed', closed_how = ?, closed_at = ?, "
        "closed_day = ?, accepted_by = ?, updated_at = ? WHERE id = ? AND status <> 'closed'",
        (how, iso(now), closed_day, accepted_by, iso(now), item_id), item_id, needed=needed)
    Reminders.cancel_into(batch, SUBJECT, item_id, if_new=closed)
    rt.plan_ladders_into(batch, SUBJECT, item_id, team_id, owner_id, [
        ("closed", [rt.Rung("notice", now, skip_if_past=False)])], now, if_new=closed)
    return closed


# --- the scan ---------------------------------------------------------------------------
@dataclass
class _Chunk:
    areas: dict[int, Row]
    days: dict[int, list[Day]]
    last_item: dict[int, Row]
    owners: dict[int, int]


async def _read(services: Services, ids: list[int], since: date) -> _Chunk:
    db = services.db
    marks = ", ".join("?" for _ in ids)
    areas = {int(r["id"]): r for r in await db.fetchall(
        f"SELECT id, team_id, name, kind FROM areas WHERE id IN ({marks})", ids)}
    items = {int(r["area_id"]): r for r in await db.fetchall(
        "SELECT * FROM lineloss_items WHERE id IN (SELECT max(id) FROM lineloss_items "
        f"WHERE area_id IN ({marks}) GROUP BY area_id)", ids)}
    oldest = min([since, *(date.fromisoformat(r["last_day"]) for r in items.values()
                           if r["status"] != "closed")])
    days: dict[int, list[Day]] = {}
    for r in await db.fetchall(
            f"SELECT area_id, day, rate FROM lineloss_days WHERE area_id IN ({marks}) "
            "AND day >= ? ORDER BY area_id, day", (*ids, oldest.isoformat())):
        days.setdefault(int(r["area_id"]), []).append(
            Day(date.fromisoformat(r["day"]), r["rate"]))
    owners: dict[int, int] = {}
    for r in await db.fetchall(
            "SELECT ua.area_id, u.id FROM user_areas ua JOIN users u ON u.id = ua.user_id "
            f"WHERE ua.area_id IN ({marks}) AND u.active = 1 AND u.role = 'manager' "
            "ORDER BY u.id", ids):
        owners.setdefault(int(r["area_id"]), int(r["id"]))
    return _Chunk(areas, days, items, owners)


async def follow_up(services: Services, latest: dict[int, str], now: datetime) -> FollowUp:
    """Look at the imported areas (id -> the file's last day for it) in chunks, each chunk
    read first and written in one short transaction."""
    out = FollowUp()
    today = now.astimezone(services.settings.tz).date()
    rules = ruleset(services)
    due = due_after(now, limits().check_deadline, await calendar(services),
                    rules.working_hours).due
    leads: dict[int, list[int]] = {}
    ids = sorted(latest)
    for start in range(0, len(ids), CHUNK_AREAS):
        part = ids[start:start + CHUNK_AREAS]
        since = min(date.fromisoformat(latest[i]) for i in part) - RUN_LOOKBACK
        chunk = await _read(services, part, since)
        for team_id in {int(a["team_id"]) for a in chunk.areas.values()} - leads.keys():
            leads[team_id] = [u.id for u in await services.people.leads_of(team_id)]
        async with services.db.tx() as tx:
            for area_id in part:
                area = chunk.areas.get(area_id)
                if area is not None:
                    await _follow_area(tx, area, chunk, leads[int(area["team_id"])], today,
                                       due, now, out)
    return out


async def _follow_area(tx: Tx, area: Row, chunk: _Chunk, team_leads: list[int], today: date,
                       due: datetime, now: datetime, out: FollowUp) -> None:
    area_id = int(area["id"])
    th = limits().threshold(area["kind"])
    days = chunk.days.get(area_id, [])
    last = chunk.last_item.get(area_id)
    last_day = last["last_day"] if last is not None else None
    closed_day = last["closed_day"] if last is not None else None
    if last is not None and last["status"] != "closed":
        normal = first_normal_after(days, th, date.fromisoformat(last["last_day"]))
        if normal is None:
            await _extend(tx, last, current_run(days, th), th, now, out)
            return
        closed_day = normal.day.isoformat()
        if await close(tx, last, "normal", now, closed_day=closed_day):
            out.closed.append(int(last["id"]))
    run = current_run(days, th)
    if len(run) < limits().days_in_a_row or not is_new_run(run, last_day, closed_day):
        return
    if run[-1].day < today - timedelta(days=limits().open_within_days):
        return  # an old run (last year's file): nothing to check now
    owner = chunk.owners.get(area_id) or next(iter(team_leads), None)
    if owner is None:
        out.no_owner.append(area["name"])
        return
    rid = await tx.execute(
        "INSERT INTO lineloss_items(team_id, user_id, area_id, first_day, last_day, worst_rate, "
        "opened_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (int(area["team_id"]), owner, area_id, run[0].day.isoformat(),
         run[-1].day.isoformat(), worst(th, run), iso(now), iso(due)))
    if tx.rowcount == 0:
        return  # another import opened it a moment ago
    others = [u for u in team_leads if u != owner]
    await plan_check(tx, int(rid or 0), int(area["team_id"]), owner, due, others, now)
    out.opened.append(int(rid or 0))


async def _extend(tx: Tx, item: Row, run: list[Day], th: Threshold, now: datetime,
                  out: FollowUp) -> None:
    """The open item's run goes on: its last day and worst rate follow the new days."""
    later = [d for d in run if d.day.isoformat() > item["last_day"]]
    if not later:
        return
    known = [Day(date.fromisoformat(item["last_day"]), item["worst_rate"])]
    values: tuple[Any, ...] = (later[-1].day.isoformat(), worst(th, [*known, *later]),
                               iso(now), int(item["id"]))
    await tx.execute("UPDATE lineloss_items SET last_day = ?, worst_rate = ?, updated_at = ? "
                     "WHERE id = ? AND status <> 'closed'", values)
    out.extended += tx.rowcount
