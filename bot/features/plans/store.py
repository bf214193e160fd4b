"""The plans' SQL and dates: a manager's plan of a month and its items, which of them are done
(read from the work log when shown: a patrol entry for the 台区, a visit to the customer), and
the month's planned days on the working-day calendar."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import DATA_DIR
from bot.router import Person, one_person
from bot.storage.batch import Batch, Ref
from bot.storage.db import Database, Read, Row, from_iso, iso
from bot.storage.reminders import LEADS_OF_TEAM
from bot.workcal import WorkCalendar

SUBJECT = "plan"
Part = tuple[str, tuple[Any, ...]]  # a piece of SQL and its parameters
EDITABLE = ("draft", "returned")  # the manager may still add, change and remove items
CLOSED = ("reported", "evaluated")  # the result is in: done items are kept, not read again
KINDS = ("visit", "patrol", "free")


@cache
def plan_rules() -> dict[str, Any]:
    """data/plans.json: patrols per 台区 a month, the result reminder's time, the grades."""
    rules: dict[str, Any] = json.loads((DATA_DIR / "plans.json").read_text(encoding="utf-8"))
    return rules


def grades() -> list[str]:
    return [str(g) for g in plan_rules()["grades"]]


# --- the month ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, key: str) -> Month:
        year, month = key.split("-")
        return cls(int(year), int(month))

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def prev(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def last(self) -> date:
        return self.next().first - timedelta(days=1)

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        """Exclusive: the next month's first local midnight."""
        return self.next().start(tz)


def working_day_on_or_before(cal: WorkCalendar, day: date, month: Month) -> date:
    """The working day on or before `day` within the month (its first day if there is none)."""
    d = day
    while d >= month.first:
        if cal.is_workday(d):
            return d
        d -= timedelta(days=1)
    return day


def last_working_day(cal: WorkCalendar, month: Month) -> date:
    return working_day_on_or_before(cal, month.last, month)


def spread(cal: WorkCalendar, month: Month, n: int) -> list[date]:
    """n days spread over the month, each the working day ending its share of the month
    (two patrols: mid-month and the month's last working day)."""
    days = month.last.day
    return [working_day_on_or_before(cal, date(month.year, month.month, -(-k * days // n)),
                                     month) for k in range(1, n + 1)]


# --- plans and items ----------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    id: int
    team_id: int
    user_id: int
    owner: str
    month: Month
    status: str
    rounds: int
    comment: str | None
    decided_by: str | None
    done_count: int | None
    total_count: int | None
    grade: str | None
    evaluation: str | None
    evaluator: str | None

    @property
    def editable(self) -> bool:
        return self.status in EDITABLE

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    def kept(self) -> dict[str, Any]:
        """The plan as a form keeps it (its opener's read, for the save: Plan.of_kept)."""
        return {**asdict(self), "month": self.month.key}

    @classmethod
    def of_kept(cls, kept: dict[str, Any]) -> Plan:
        return cls(**{**kept, "month": Month.parse(str(kept["month"]))})


@dataclass(frozen=True)
class Item:
    id: int
    plan_id: int
    kind: str
    area_id: int | None
    area_name: str | None
    customer_id: int | None
    customer_name: str | None
    body: str
    due_on: date
    carried: bool
    ticked_at: datetime | None
    done_at: datetime | None  # when it was done (read from the work log, or kept)
    note: str | None
    removed: bool = False
    position: int = 0  # its place in the plan (ORDER BY position, id)


_PLAN = ("SELECT p.*, u.name AS owner, d.name AS decider, e.name AS evaluator FROM plans p "
         "JOIN users u ON u.id = p.user_id LEFT JOIN users d ON d.id = p.decided_by "
         "LEFT JOIN users e ON e.id = p.evaluated_by")
_ITEM = ("SELECT i.*, a.name AS area_name, c.name AS customer_name FROM plan_items i "
         "LEFT JOIN areas a ON a.id = i.area_id LEFT JOIN customers c ON c.id = i.customer_id")


def _plan(r: Row) -> Plan:
    return Plan(r["id"], r["team_id"], r["user_id"], r["owner"], Month.parse(r["month"]),
                r["status"], r["rounds"], r["comment"], r["decider"], r["done_count"],
                r["total_count"], r["grade"], r["evaluation"], r["evaluator"])


def _item(r: Row) -> Item:
    return Item(r["id"], r["plan_id"], r["kind"], r["area_id"], r["area_name"],
                r["customer_id"], r["customer_name"], r["body"], date.fromisoformat(r["due_on"]),
                bool(r["carried"]), from_iso(r["ticked_at"]) if r["ticked_at"] else None,
                from_iso(r["done_at"]) if r["done_at"] else None, r["note"], bool(r["removed"]),
                int(r["position"]))


def plan_read(plan_id: int) -> Read:
    return _PLAN + " WHERE p.id = ?", (plan_id,)


async def load_plan(db: Database, plan_id: int) -> Plan | None:
    row = await db.fetchone(*plan_read(plan_id))
    return _plan(row) if row else None


def plan_of_read(user_id: int, month: Month) -> Read:
    return _PLAN + " WHERE p.user_id = ? AND p.month = ?", (user_id, month.key)


def plan_in(rows: list[Row]) -> Plan | None:
    return _plan(rows[0]) if rows else None


def plans_waiting_read(team_id: int, statuses: tuple[str, ...]) -> Read:
    """The team's plans in these states (a lead's decisions to take), oldest month first."""
    marks = ", ".join("?" for _ in statuses)
    return (_PLAN + f" WHERE p.team_id = ? AND p.status IN ({marks}) ORDER BY p.month, u.name",
            (team_id, *statuses))


def plans_in(rows: list[Row]) -> list[Plan]:
    return [_plan(r) for r in rows]


def managers_read(team_id: int, person: Person | None = None) -> Read:
    """The team's active managers (or the one `person`: SQL for the id and its parameters,
    bot.router.ReportScope.person), by name: whose plans a lead or a report lists."""
    one, params = one_person("id", person)
    return ("SELECT id, name FROM users WHERE team_id = ? AND role = 'manager' AND active = 1"
            f"{one} ORDER BY name, id", (team_id, *params))


def items_in(rows: list[Row]) -> list[Item]:
    return [_item(r) for r in rows]


# --- which plans a read is of -------------------------------------------------------------
@dataclass(frozen=True)
class Which:
    """The plans a read is of, as a condition on `plans` (a manager's of a month, one by id,
    the team's of a month): every read keys off it in SQL (issue #12), so that plans, items
    and what ticks them are read in ONE round trip before the plans' ids or owners are
    known, for one plan or a team's as alike. `months`: the month whose work log ticks the
    items; a plan by id may be of one of several (see `window`)."""

    where: str
    params: tuple[Any, ...]
    months: tuple[Month, ...]

    def of(self, column: str, closed: bool = True) -> tuple[str, tuple[Any, ...]]:
        """A subquery of the plans' `column`; without the closed plans (`closed=False`)."""
        keep = "" if closed else " AND status NOT IN ('reported', 'evaluated')"
        return f"(SELECT {column} FROM plans WHERE {self.where}{keep})", self.params

    def unless(self, other: Which) -> Which:
        """These plans only where `other`'s is none (last month's, read to draft this
        month's, when there is no plan of this month yet)."""
        return Which(f"{self.where} AND NOT EXISTS (SELECT 1 FROM plans WHERE {other.where})",
                     (*self.params, *other.params), self.months)

    def window(self, tz: ZoneInfo) -> tuple[str, str, tuple[Any, ...]]:
        """The work log's time window that ticks the items, [start, end) in SQL and its
        parameters: the month's, or (one plan, several months) the one of the plan's month
        (none if it is of another: nothing ticks)."""
        if len(self.months) == 1:
            month = self.months[0]
            return "?", "?", (iso(month.start(tz)), iso(month.end(tz)))
        plan_month, params = self.of("month")
        whens = " ".join("WHEN CAST(? AS TEXT) THEN CAST(? AS TEXT)" for _ in self.months)
        start = tuple(v for m in self.months for v in (m.key, iso(m.start(tz))))
        end = tuple(v for m in self.months for v in (m.key, iso(m.end(tz))))
        return (f"CASE {plan_month} {whens} END", f"CASE {plan_month} {whens} END",
                (*params, *start, *params, *end))


def mine(user_id: int, month: Month) -> Which:
    return Which("user_id = ? AND month = ?", (user_id, month.key), (month,))


def by_id(plan_id: int, team_id: int, *months: Month) -> Which:
    """The plan with this id if it is of the team (another team's is not read), its items
    ticked by the work log if it is of one of `months`."""
    return Which("id = ? AND team_id = ?", (plan_id, team_id), months)


def of_team(team_id: int, month: Month, person: Person | None = None) -> Which:
    """The team's plans of `month`, or one manager's (`person` as managers_read's)."""
    one, params = one_person("user_id", person)
    return Which(f"team_id = ? AND month = ?{one}", (team_id, month.key, *params), (month,))


PLANS_READS = 4


def plans_reads(which: Which, tz: ZoneInfo, closed_items: bool = True) -> list[Read]:
    """The plans (by their manager's name), their items in order (the closed plans' too
    unless `closed_items` is False: their kept counts may be all that is wanted), then
    tick_reads."""
    ids, params = which.of("id", closed_items)
    return [(_PLAN + f" WHERE p.id IN {which.of('id')[0]} ORDER BY u.name, p.id", params),
            (_ITEM + f" WHERE i.plan_id IN {ids} AND i.removed = 0 ORDER BY i.position, i.id",
             params), *tick_reads(which, tz, closed_items)]


def month_items_reads(user_id: int, month: Month, tz: ZoneInfo) -> list[Read]:
    """The items of the manager's plan of `month`, then tick_reads: read with others (/todo's
    one round trip)."""
    return plans_reads(mine(user_id, month), tz)[1:]


def tick_reads(which: Which, tz: ZoneInfo, closed: bool = True) -> list[Read]:
    """What ticks the plans' items: the first visit to each planned customer (by anyone of
    the team), and the plans' managers' patrol entries by 台区, in order."""
    ids, params = which.of("id", closed)
    customers = (f"SELECT customer_id FROM plan_items WHERE plan_id IN {ids} AND kind = "
                 "'visit' AND removed = 0", params)
    return _ticks(customers, which.of("team_id", closed), which.of("user_id", closed),
                  which.window(tz))


def _ticks(customers: Part, team: Part, users: Part,
           window: tuple[str, str, tuple[Any, ...]]) -> list[Read]:
    """tick_reads' two reads: the first visits to `customers` (a list's SQL) by the team
    `team`, the patrol entries of `users` (each `(SELECT …)`), within `window`."""
    start, end, times = window
    return [(
        f"SELECT w.customer_id, min(w.occurred_at) AS done FROM worklogs w WHERE w.team_id IN "
        f"{team[0]} AND w.customer_id IN ({customers[0]}) AND w.occurred_at >= {start} "
        f"AND w.occurred_at < {end} GROUP BY w.customer_id", (*team[1], *customers[1], *times)), (
        "SELECT w.user_id, wa.area_id, w.occurred_at FROM worklogs w "
        "JOIN worklog_areas wa ON wa.worklog_id = w.id "
        "JOIN worklog_items wi ON wi.worklog_id = w.id AND wi.item = 'patrol' "
        f"WHERE w.user_id IN {users[0]} AND w.occurred_at >= {start} AND w.occurred_at < {end} "
        "ORDER BY w.occurred_at", (*users[1], *times))]


def drafted_tick_reads(team_id: int, user_id: int, month: Month, items: list[NewItem],
                       tz: ZoneInfo) -> list[Read]:
    """tick_reads of a plan being drafted, by the items it will hold: read in the draft's
    write, where (on PostgreSQL) a read does not see the plan written with it."""
    customers = sorted({it.customer_id for it in items
                        if it.kind == "visit" and it.customer_id is not None})
    return _ticks((", ".join("?" for _ in customers) or "NULL", tuple(customers)),
                  ("(?)", (team_id,)), ("(?)", (user_id,)), mine(user_id, month).window(tz))


def plans_with_items(rows: list[list[Row]]) -> list[tuple[Plan, list[Item]]]:
    """plans_reads' rows: each plan with its items, each with when it was done (kept once
    the result is in, otherwise read from what was recorded that month)."""
    raw: dict[int, list[Item]] = {}
    for it in items_in(rows[1]):
        raw.setdefault(it.plan_id, []).append(it)
    out = []
    for plan in plans_in(rows[0]):
        items = raw.get(plan.id, [])
        if not plan.closed:
            items = ticked(items, rows[2], [r for r in rows[3]
                                            if int(r["user_id"]) == plan.user_id])
        out.append((plan, items))
    return out


def ticked(items: list[Item], visits: list[Row], patrol_rows: list[Row]) -> list[Item]:
    """The items with when each was done (`visits`, `patrol_rows`: tick_reads' rows)."""
    visited = {int(r["customer_id"]): str(r["done"]) for r in visits if r["done"]}
    entries: dict[int, list[datetime]] = {}
    for r in patrol_rows:
        entries.setdefault(int(r["area_id"]), []).append(from_iso(r["occurred_at"]))
    out: dict[int, Item] = {}
    patrols: dict[int, list[Item]] = {}
    for it in items:
        if it.kind == "free":
            out[it.id] = replace(it, done_at=it.ticked_at)
        elif it.kind == "visit":
            done_at = visited.get(it.customer_id) if it.customer_id is not None else None
            out[it.id] = replace(it, done_at=from_iso(done_at) if done_at else None)
        elif it.area_id is not None:
            patrols.setdefault(it.area_id, []).append(it)
    for area_id, area_items in patrols.items():
        # The k-th patrol item of a 台区 (last month's carried first) is done by its k-th
        # patrol entry this month.
        done = entries.get(area_id, [])
        ordered = sorted(area_items, key=lambda i: (not i.carried, i.due_on, i.id))
        for k, it in enumerate(ordered):
            out[it.id] = replace(it, done_at=done[k] if k < len(done) else None)
    return [out.get(it.id, it) for it in items]


def item_read(item_id: int) -> Read:
    """An item (removed or not) by id, with its plan's owner and month (`plan_user`,
    `plan_month`) to know which plan's view it belongs to."""
    return (_ITEM.replace(" FROM plan_items i", ", p.user_id AS plan_user, p.month AS plan_month "
                          "FROM plan_items i JOIN plans p ON p.id = i.plan_id")
            + " WHERE i.id = ?", (item_id,))


def leads_read(team_id: int, which: Which) -> Read:
    """The team's leads but the plan's manager (People.leads_of), by id: who it goes to."""
    owner, params = which.of("user_id")
    return (f"SELECT u.id, u.name FROM users u WHERE {LEADS_OF_TEAM} AND u.id NOT IN {owner} "
            "ORDER BY u.id", (team_id, *params))


@dataclass(frozen=True)
class View:
    """A manager's plan of a month as its card shows it, read in ONE round trip (issue #12):
    the plan, its items and what ticks them, the calendar (whether the result is due) and
    the team's leads (who it is submitted to). A change is applied to it (`with_raw`), not
    read back."""

    plan: Plan | None
    raw: list[Item]  # the items not removed, in order, as stored
    visits: list[Row]
    patrols: list[Row]
    cal: WorkCalendar
    leads: list[tuple[int, str]]

    @property
    def items(self) -> list[Item]:
        """Each with when it was done, kept once the result is in."""
        if self.plan is not None and self.plan.closed:
            return self.raw
        return ticked(self.raw, self.visits, self.patrols)

    def put(self, it: Item) -> View:
        """The view with this item as it was just written, whether the view was read before
        the write (PostgreSQL, a batch's reads) or after it (SQLite)."""
        return self.with_raw([*(x for x in self.raw if x.id != it.id), it])

    def with_raw(self, raw: list[Item]) -> View:
        return replace(self, raw=sorted((it for it in raw if not it.removed),
                                        key=lambda it: (it.position, it.id)))


VIEW_READS = PLANS_READS + 2


def view_reads(which: Which, team_id: int, tz: ZoneInfo) -> list[Read]:
    """A plan's view (`which` one plan, of the team `team_id`): plans_reads, the calendar,
    the leads."""
    return [*plans_reads(which, tz), (WorkCalendar.SQL, ()), leads_read(team_id, which)]


def view_in(rows: list[list[Row]], cal: WorkCalendar | None = None) -> View:
    """view_reads' rows (or plans_reads', with the calendar read apart: `cal`)."""
    leads = [(int(r[0]), str(r[1])) for r in rows[5]] if cal is None else []
    return View(plan_in(rows[0]), items_in(rows[1]), rows[2], rows[3],
                cal or WorkCalendar.from_rows(rows[4]), leads)


async def read_view(db: Database, which: Which, team_id: int, tz: ZoneInfo,
                    *more: Read) -> tuple[View, list[list[Row]]]:
    """The view of the plan `which` (of the team `team_id`), and the rows of `more`, in one
    round trip (a read both ask for, the calendar, read once)."""
    view, rows = await db.fetch_groups([view_reads(which, team_id, tz), more])
    return view_in(view), rows


@dataclass(frozen=True)
class NewItem:
    kind: str
    due_on: date
    area_id: int | None = None
    customer_id: int | None = None
    body: str = ""
    carried: bool = False
    # Words for the card (not written): the names its read would join in.
    area_name: str | None = None
    customer_name: str | None = None


def create_plan_into(batch: Batch, team_id: int, user_id: int, month: Month,
                     items: list[NewItem], now: datetime) -> tuple[Ref, list[Ref]]:
    """The manager's plan of the month with its first items, in order (their ids as Refs);
    a second one (a double tap, another instance) finds the first one's plan and adds
    nothing (its items' Refs then stand for nothing)."""
    pid = batch.insert(
        "INSERT INTO plans(team_id, user_id, month, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, month) DO NOTHING", (team_id, user_id, month.key, iso(now)),
        existing=("SELECT id FROM plans WHERE user_id = ? AND month = ?",
                  (user_id, month.key)))
    refs = batch.insert_rows("plan_items", "position", [
        {"plan_id": pid, "kind": it.kind, "area_id": it.area_id,
         "customer_id": it.customer_id, "body": it.body, "due_on": it.due_on.isoformat(),
         "carried": int(it.carried), "position": n, "created_at": iso(now)}
        for n, it in enumerate(items, 1)], unique=False, if_new=pid)
    return pid, refs


def drafted_items(plan_id: int, items: list[NewItem], ids: list[int]) -> list[Item]:
    """create_plan_into's items as written (`ids` theirs, in order), as a read would give
    them: nothing read back."""
    return [Item(rid, plan_id, it.kind, it.area_id, it.area_name, it.customer_id,
                 it.customer_name, it.body, it.due_on, it.carried, None, None, None,
                 position=n) for n, (it, rid) in enumerate(zip(items, ids, strict=True), 1)]


def editable_of(which: Which) -> Part:
    """The id of `which` plan if the manager may still change it (a subquery), as a guard."""
    return (f"(SELECT id FROM plans WHERE {which.where} AND status IN "
            f"({', '.join(repr(s) for s in EDITABLE)}))", which.params)


def add_item_into(batch: Batch, which: Which, it: NewItem, now: datetime) -> Ref:
    """An item at the end of the plan `which` (its position the next one, found as it is
    written), if the plan is still editable: else nothing is written (the Ref not set)."""
    plan, params = editable_of(which)
    return batch.insert(
        "INSERT INTO plan_items(plan_id, kind, area_id, customer_id, body, due_on, carried, "
        "position, created_at) SELECT p.id, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?, "
        "CAST(? AS INTEGER), (SELECT coalesce(max(position), 0) + 1 FROM plan_items "
        f"WHERE plan_id = p.id), ? FROM plans p WHERE p.id IN {plan}",
        (it.kind, it.area_id, it.customer_id, it.body, it.due_on.isoformat(), int(it.carried),
         iso(now), *params))


def change_nth_into(batch: Batch, which: Which, n: int, values: dict[str, Any],
                    guard: str = "") -> Ref:
    """Change the n-th item (from 1, as the card numbers them) of `which` plan while it is
    editable (and `guard`, SQL on the item, holds): the Ref set only if it did. Which item
    that was is read with it (the view), not known before."""
    plan, params = editable_of(which)
    sets = ", ".join(f"{k} = ?" for k in values)
    return batch.update(
        f"UPDATE plan_items SET {sets} WHERE id = (SELECT id FROM plan_items WHERE plan_id IN "
        f"{plan} AND removed = 0 ORDER BY position, id LIMIT 1 OFFSET ?){guard}",
        (*values.values(), *params, n - 1), 0)  # 0: the row is found by the guard


def change_item_into(batch: Batch, item_id: int, which: Which, values: dict[str, Any],
                     guard: str = "", editable: bool = True) -> Ref:
    """Change an item of `which` plan (editable, or only not closed: `editable=False`) if
    `guard` (SQL on the item) holds: the Ref set only if it did."""
    plan, params = editable_of(which) if editable else which.of("id", closed=False)
    sets = ", ".join(f"{k} = ?" for k in values)
    return batch.update(f"UPDATE plan_items SET {sets} WHERE id = ? AND plan_id IN {plan}{guard}",
                        (*values.values(), item_id, *params), item_id)


def view_into(batch: Batch, which: Which, team_id: int, tz: ZoneInfo) -> Callable[[], View]:
    """The view of `which` plan read after the batch's writes, in its round trip: on
    PostgreSQL as before them (word the card with the change applied: `View.put`)."""
    reads = [batch.read_rows(sql, params) for sql, params in view_reads(which, team_id, tz)]
    return lambda: view_in([r.value for r in reads])


async def set_item(db: Database, item_id: int, **values: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in values)
    await db.execute(f"UPDATE plan_items SET {cols} WHERE id = ?", (*values.values(), item_id))


def move_status_into(batch: Batch, plan_id: int, from_: tuple[str, ...], to: str,
                     values: dict[str, Any], declined: str | None = None,
                     rounds: int | None = None, needed: bool = False, **why: Any) -> Ref:
    """Change the plan's state if it is still in one of `from_` (and, given `rounds`, still
    of that round: not sent again since it was seen); a second tap, or a lead deciding at
    the same time as another, changes nothing: a Ref set only if this did it (with
    `declined`, the batch writes nothing otherwise: Declined(declined, **why); `needed`:
    Unchanged)."""
    sets = ", ".join(["status = ?", *(f"{k} = ?" for k in values)])
    marks = ", ".join("?" for _ in from_)
    of_round = "" if rounds is None else " AND rounds = ?"
    return batch.update(
        f"UPDATE plans SET {sets} WHERE id = ? AND status IN ({marks}){of_round}",
        (to, *values.values(), plan_id, *from_, *(() if rounds is None else (rounds,))),
        plan_id, needed=needed, declined=declined, **why)


def submit_into(batch: Batch, plan: Plan, now: datetime) -> Ref:
    """Send a draft or returned plan to the lead (its round: plan.rounds + 1); a Ref set only
    if it was still as read (not sent by a second tap meanwhile)."""
    return batch.update(
        "UPDATE plans SET status = 'submitted', rounds = rounds + 1, submitted_at = ? "
        "WHERE id = ? AND status IN ('draft', 'returned') AND rounds = ?",
        (iso(now), plan.id, plan.rounds), plan.id)


def keep_result_into(batch: Batch, items: list[Item], if_new: Ref) -> None:
    """Keep each item's done moment as the result was submitted: later edits of the log do
    not change a submitted result."""
    batch.executemany("UPDATE plan_items SET done_at = ? WHERE id = ?",
                      [(iso(it.done_at) if it.done_at else None, it.id) for it in items],
                      if_new=if_new)
