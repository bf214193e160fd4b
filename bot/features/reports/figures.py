"""Every number of a report, computed in one place from the database for a scope (a team, or
one person in it) and a period. The chat message, the XLSX and the chart all read a Figures
object, so they cannot disagree.

Counting rules (the XLSX 汇总 sheet states them too):
- log entries, work items, special-customer visits: entries whose time lies in the period;
  an entry ticking two items counts once for each item and once in `entries`.
- a deadline (complaint first contact and reply, outage notice, supply restored within 24 h
  after arrears are paid, repair crew arrival) counts in the period in which it falls due;
  an outage's notice counts with the outage, in the period the outage starts. It is on time
  when done by the due moment, late when done after it or still not done once it has passed,
  and not yet judged otherwise (left out of every percentage).
- complaints new: accepted in the period; closed: replied in the period; overdue: deadlines
  of the period that were missed.
- arrears new / collected / notices delivered: registered / paid / notice served in the
  period; outstanding: registered before the period's end and not paid by then (or by now,
  for a period still running).
- outages: not cancelled, starting in the period; special customers told: ticked on the
  checklist before the outage began.
- reminders that went overdue: distinct items whose due/overdue reminder was sent to the
  person in the period.
- 台区 not patrolled: no entry ticking 巡视 in that 台区 in the period, by anyone.
- overdue now: open items past a deadline at the moment the report is made, whatever the
  period."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.deadlines import OVERDUE_SQL, is_overdue
from bot.features.reports.ranges import Period
from bot.router import Person, ReportPart, one_person, person_sql
from bot.rules import work_item_keys
from bot.storage.db import Database, Into, Read, Row, from_iso, iso


@dataclass(frozen=True)
class Scope:
    """Whose figures: the whole team, or one person of it. Built only from the asking
    user's own team (handlers) or an admin's explicit --team (CLI), never from chat text."""

    team_id: int
    team_name: str
    user_id: int | None = None
    user_name: str | None = None
    # The person is known by name alone (user_id None): the reads find them among the team's
    # active members by `user_name` (bot.router.ReportScope.named).
    by_name: bool = False

    @property
    def team_wide(self) -> bool:
        return self.user_id is None and not self.by_name

    def person(self) -> Person | None:
        """SQL (and its parameters) for the person's id; None for the team."""
        return person_sql(self.team_id, self.user_id, self.user_name if self.by_name else None)


@dataclass
class Tally:
    on_time: int = 0
    late: int = 0

    @property
    def judged(self) -> int:
        return self.on_time + self.late

    @property
    def pct(self) -> float | None:
        """Share on time, 0..1; None when nothing was judged (shown as '—', never 0 %)."""
        return self.on_time / self.judged if self.judged else None

    def judge(self, due: datetime | None, done: datetime | None, now: datetime) -> bool | None:
        """Count one deadline; returns True on time, False late, None not judged yet."""
        if due is None:
            return None
        if done is not None and done <= due:
            self.on_time += 1
            return True
        if done is not None or is_overdue(due, now):
            self.late += 1
            return False
        return None

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.on_time + other.on_time, self.late + other.late)


@dataclass
class PersonFigures:
    user_id: int
    name: str
    role: str
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(work_item_keys(), 0))
    entries: int = 0
    special_visits: int = 0
    complaints_new: int = 0
    complaints_closed: int = 0
    complaint_deadlines: Tally = field(default_factory=Tally)
    arrears_new: int = 0
    arrears_new_cents: int = 0
    arrears_collected: int = 0
    arrears_collected_cents: int = 0
    arrears_outstanding: int = 0
    arrears_outstanding_cents: int = 0
    notices_served: int = 0
    restore: Tally = field(default_factory=Tally)
    outages: int = 0
    outage_notice: Tally = field(default_factory=Tally)
    special_to_tell: int = 0
    special_told: int = 0
    repair_arrival: Tally = field(default_factory=Tally)
    reminders_overdue: int = 0
    areas: list[str] = field(default_factory=list)  # the 台区 this person looks after
    unpatrolled: list[str] = field(default_factory=list)

    @property
    def complaints_overdue(self) -> int:
        return self.complaint_deadlines.late

    @property
    def on_time(self) -> Tally:
        """Every deadline of the person's records in the period, together."""
        return (self.complaint_deadlines + self.outage_notice + self.restore
                + self.repair_arrival)

    @property
    def has_records(self) -> bool:
        return bool(self.entries or self.complaints_new or self.complaints_closed
                    or self.on_time.judged or self.arrears_new or self.arrears_collected
                    or self.arrears_outstanding or self.notices_served or self.outages
                    or self.reminders_overdue)

    def add(self, other: PersonFigures) -> None:
        for k, v in other.items.items():
            self.items[k] += v
        for name in ("entries", "special_visits", "complaints_new", "complaints_closed",
                     "arrears_new", "arrears_new_cents", "arrears_collected",
                     "arrears_collected_cents", "arrears_outstanding",
                     "arrears_outstanding_cents", "notices_served", "outages",
                     "special_to_tell", "special_told", "reminders_overdue"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("complaint_deadlines", "restore", "outage_notice", "repair_arrival"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class OverdueItem:
    kind: str  # complaint, arrears, outage, repair
    record_id: int
    user_id: int
    owner: str
    step: str  # contact, reply, restore, notice, arrival, repair_restore
    due: datetime


@dataclass(frozen=True)
class UnpatrolledArea:
    name: str
    owners: tuple[str, ...]


# --- detail rows (the XLSX sheets); times are aware UTC datetimes ------------------------
@dataclass(slots=True)
class LogRow:
    id: int
    at: datetime
    has_time: bool
    user_id: int
    owner: str
    area: str
    items: tuple[str, ...]
    content: str
    problems: str | None
    customer_id: int | None
    customer_account: str | None
    customer_name: str | None
    photos: int
    result: str | None = None  # 处理结果
    ticket_no: str | None = None  # 关联工单号
    comments: str | None = None  # the lead's 批注, one a line ('王班长：…')


@dataclass
class Detail:
    logs: list[LogRow] = field(default_factory=list)
    complaints: list[dict[str, Any]] = field(default_factory=list)
    arrears: list[dict[str, Any]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    categories: dict[int, list[str]] = field(default_factory=dict)  # customer id -> categories

    @property
    def visits(self) -> list[LogRow]:
        return [w for w in self.logs if w.customer_id is not None]


@dataclass
class Figures:
    scope: Scope
    period: Period
    now: datetime
    people: list[PersonFigures]
    total: PersonFigures
    unpatrolled: list[UnpatrolledArea]
    overdue: list[OverdueItem]
    detail: Detail | None = None
    # The features' own report sections (router.report_section), in the root's order.
    parts: list[ReportPart] = field(default_factory=list)

    @property
    def silent(self) -> list[PersonFigures]:
        """Managers with no log entry in the period."""
        return [p for p in self.people if p.role == "manager" and p.entries == 0]

    def person(self, user_id: int) -> PersonFigures:
        return next(p for p in self.people if p.user_id == user_id)

    def overdue_of(self, user_id: int) -> int:
        """The person's share of `overdue` (one definition of overdue in every view)."""
        return sum(1 for o in self.overdue if o.user_id == user_id)


# Finds (or adds: moved, inactive) the person a record belongs to: (user id, name) -> figures.
PersonFn = Callable[[int, str | None], PersonFigures]


def _t(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


class _Q:
    """SQL fragments for the scope and period, with their parameters in order."""

    def __init__(self, scope: Scope, period: Period, now: datetime) -> None:
        self.scope = scope
        self.period = period
        self.start = iso(period.start)
        self.end = iso(period.end)
        self.now = iso(now)
        # A period still running is judged up to now: outstanding arrears as of now.
        self.cut = min(self.end, self.now)

    def who(self, alias: str = "") -> tuple[str, list[Any]]:
        a = f"{alias}." if alias else ""
        one, params = one_person(f"{a}user_id", self.scope.person())
        if not one:
            return f"{a}team_id = ?", [self.scope.team_id]
        # "+": not the team's index (every record of the team) but the person's (issue #12).
        return f"+{a}team_id = ?{one}", [self.scope.team_id, *params]

    def within(self, column: str) -> tuple[str, list[Any]]:
        return f"({column} >= ? AND {column} < ?)", [self.start, self.end]

    def inside(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= iso(moment) < self.end


def reads(scope: Scope, period: Period, now: datetime, *, detail: bool = False) -> list[Read]:
    """Every SELECT the figures need (Making's)."""
    return Making(scope, period, now, detail=detail).reads


class Making:
    """The figures of a scope and period in the making: their reads, each with what takes
    its rows in as they come (`into`: Backend.fetch_groups', on SQLite on the reader's
    thread), then `made()`. So the one trip of a lead's team report never holds a read's
    rows as a list besides what they become (issue #12: 3 trips were needed before, the
    team's XLSX entries apart, as all the rows held at once were +43-80 MB at the peak).

    The reads: every SELECT the figures need, none needing another's result (what one
    depends on is a subquery on the same scope and period conditions), run in one round
    trip with the features' sections' reads (handlers.gather; statement by statement was
    12-16). Each reads only the scope's rows: a person's, that person's. `detail`: the
    XLSX's rows too, its entries (Entries) and categories (log_reads)."""

    def __init__(self, scope: Scope, period: Period, now: datetime, *,
                 detail: bool = False) -> None:
        q = self.q = _Q(scope, period, now)
        self.scope, self.period, self.now = scope, period, now
        self.det = Detail() if detail else None
        self.people: list[PersonFigures] = []
        self.by_id: dict[int, PersonFigures] = {}
        self.names: dict[int, str] = {}
        self.users: list[Row] = []
        self.unpatrolled: list[UnpatrolledArea] = []
        self.overdue: list[OverdueItem] = []
        owned = self._owned
        # In this order: the people first, whom the records after them are counted for.
        takes: list[tuple[Read, Into]] = [
            (_users_read(q), self._users), (_areas_read(q), self._areas),
            *zip(_worklog_reads(q), (owned(_items), owned(_entries)), strict=True),
            (_patrols_read(q), self._patrols),
            (_complaints_read(q), self._records(_complaints)),
            (_arrears_read(q), self._records(_arrears)),
            (_outages_read(q), self._records(_outages)),
            (_repairs_read(q), self._records(_repairs)), (_reminders_read(q), owned(_reminders))]
        if self.det is not None:
            logs = log_reads(scope, period, now)
            takes += zip(logs, [*Entries().into(self.det), self._categories], strict=True)
        self.reads = [read for read, _ in takes]
        self.into = [into for _, into in takes]

    def made(self) -> Figures:
        """The figures, once every read's rows are in."""
        shown = [p for p in self.people if p.role in ("manager", "other") or p.has_records
                 or not self.scope.team_wide]
        shown.sort(key=lambda p: (-p.entries, p.user_id))
        total = PersonFigures(0, self.scope.user_name or self.scope.team_name, "total")
        for p in shown:
            total.add(p)
        self.overdue.sort(key=lambda o: (o.due, o.kind, o.record_id))
        return Figures(self.scope, self.period, self.now, shown, total, self.unpatrolled,
                       self.overdue, self.det)

    def person(self, user_id: int, name: str | None = None) -> PersonFigures:
        """Someone with records in the period who is not in the list yet (moved, inactive)."""
        if user_id not in self.by_id:
            self.by_id[user_id] = PersonFigures(user_id, name or f"#{user_id}", "other")
            self.people.append(self.by_id[user_id])
        return self.by_id[user_id]

    def _users(self, rows: Iterator[Row]) -> None:
        self.users = list(rows)

    def _areas(self, rows: Iterator[Row]) -> None:
        self.people, self.names = _people(self.q, self.users, rows)
        self.by_id = {p.user_id: p for p in self.people}
        self.users = []

    def _patrols(self, rows: Iterator[Row]) -> None:
        self.unpatrolled = _patrols(rows, self.by_id)

    def _owned(self, count: Callable[[Iterable[Row], PersonFn, dict[int, str]], None]
               ) -> Into:
        return lambda rows: count(rows, self.person, self.names)

    def _records(self, count: Callable[[_Q, Iterable[Row], PersonFn, dict[int, str],
                                        list[OverdueItem], Detail | None], None]) -> Into:
        return lambda rows: count(self.q, rows, self.person, self.names, self.overdue,
                                  self.det)

    def _categories(self, rows: Iterator[Row]) -> None:
        assert self.det is not None
        self.det.categories = _categories(rows)


def log_reads(scope: Scope, period: Period, now: datetime) -> list[Read]:
    """The XLSX's entries' 批注 and the entries (Entries), and the categories of every
    customer its sheets name (the visits show them, and a sensitive one is masked further:
    bot.privacy.MASKS)."""
    q = _Q(scope, period, now)
    return [*_log_reads(q), _categories_read(q, [
        _logs_customers(q), _customers_of("complaints", _complaints_where(q)),
        _customers_of("arrears", _arrears_where(q))])]


async def compute(db: Database, scope: Scope, period: Period, now: datetime, *,
                  detail: bool = False) -> Figures:
    """The figures alone, in one round trip (the WeCom robot, the CLI, tests)."""
    making = Making(scope, period, now, detail=detail)
    await db.fetch_into(making.reads, making.into)
    return making.made()


def _read(sql: str, params: Iterable[Any]) -> Read:
    return sql, tuple(params)


def _users_read(q: _Q) -> Read:
    """The team's members (a person's report: that person), active or not: the active ones
    are the people of the report, and any of them may own a record of the period."""
    mine, params = one_person("id", q.scope.person())
    return _read(f"SELECT id, name, role, active FROM users WHERE team_id = ?{mine} ORDER BY id",
                 (q.scope.team_id, *params))


def _areas_read(q: _Q) -> Read:
    mine, params = one_person("ua.user_id", q.scope.person())
    return _read("SELECT ua.user_id, a.name FROM user_areas ua JOIN areas a ON a.id = ua.area_id "
                 f"WHERE a.team_id = ?{mine} ORDER BY a.id", [q.scope.team_id, *params])


def _people(q: _Q, users: list[Row], areas: Iterable[Row]
            ) -> tuple[list[PersonFigures], dict[int, str]]:
    """Active members in scope (a team's leads only if they have records), with their 台区;
    and the name of everyone who may own a record in scope (a person's records are all
    that person's)."""
    people = [PersonFigures(r["id"], r["name"], r["role"]) for r in users
              if r["active"] or not q.scope.team_wide]
    by_id = {p.user_id: p for p in people}
    for r in areas:
        if r["user_id"] in by_id:
            by_id[r["user_id"]].areas.append(r["name"])
    return people, {r["id"]: r["name"] for r in users}


def _worklog_reads(q: _Q) -> list[Read]:
    who, wp = q.who("w")
    span, sp = q.within("w.occurred_at")
    return [_read(f"SELECT w.user_id, i.item, count(*) AS n FROM worklogs w "
                  f"JOIN worklog_items i ON i.worklog_id = w.id WHERE {who} AND {span} "
                  f"GROUP BY w.user_id, i.item", wp + sp),
            _read(f"SELECT w.user_id, count(*) AS n, count(w.customer_id) AS visits "
                  f"FROM worklogs w WHERE {who} AND {span} GROUP BY w.user_id", wp + sp)]


def _items(items: Iterable[Row], person: PersonFn, names: dict[int, str]) -> None:
    for r in items:
        p = person(r["user_id"], names.get(r["user_id"]))
        p.items[r["item"]] = p.items.get(r["item"], 0) + r["n"]


def _entries(entries: Iterable[Row], person: PersonFn, names: dict[int, str]) -> None:
    for r in entries:
        p = person(r["user_id"], names.get(r["user_id"]))
        p.entries = r["n"]
        p.special_visits = r["visits"]


def _patrols_read(q: _Q) -> Read:
    """台区 of the scope with no 巡视 entry in the period, by anyone of the team, each with its
    active managers (a row each; none: one row, no owner): each 台区 is probed through
    worklogs(area_id, occurred_at), so a person's report reads only that person's 台区 and
    a team's reads a few entries per 台区, not all the period's entries."""
    team = q.scope.team_id
    # A person's 台区: those the person looks after as an active manager (as before).
    mine, mp, team_areas = "", [], "a.team_id = ?"
    person = q.scope.person()
    if person is not None:
        mine = (" AND a.id IN (SELECT ua.area_id FROM user_areas ua JOIN users u "
                "ON u.id = ua.user_id WHERE u.team_id = ? AND u.active = 1 "
                f"AND u.role = 'manager' AND u.id = {person[0]})")
        team_areas = "+a.team_id = ?"  # the person's 台区 by id, not all the team's
        mp = [team, *person[1]]
    span, sp = q.within("w.occurred_at")
    return _read(
        "SELECT a.id, a.name, u.id AS owner_id, u.name AS owner FROM areas a "
        "LEFT JOIN user_areas ua ON ua.area_id = a.id LEFT JOIN users u ON u.id = ua.user_id "
        "AND u.team_id = ? AND u.active = 1 AND u.role = 'manager' "
        f"WHERE {team_areas}{mine} AND NOT EXISTS ("
        "SELECT 1 FROM worklogs w JOIN worklog_items i ON i.worklog_id = w.id "
        # "+": always the 台区's index; a planner guess for the team's index would read every
        # entry of the team once per 台区.
        f"AND i.item = 'patrol' WHERE w.area_id = a.id AND {span} AND +w.team_id = ?) "
        # An entry covering several 台区 patrolled each of them (worklog_areas).
        "AND NOT EXISTS (SELECT 1 FROM worklog_areas wa JOIN worklogs w "
        "ON w.id = wa.worklog_id JOIN worklog_items i ON i.worklog_id = w.id "
        f"AND i.item = 'patrol' WHERE wa.area_id = a.id AND {span} AND +w.team_id = ?) "
        "ORDER BY a.id, u.id", [team, team, *mp, *sp, team, *sp, team])


def _patrols(rows: Iterable[Row], by_id: dict[int, PersonFigures]) -> list[UnpatrolledArea]:
    names: dict[int, str] = {}
    owners: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        names.setdefault(r["id"], r["name"])
        if r["owner_id"] is not None:  # a manager of it (not someone else linked to it)
            owners[r["id"]].append(r["owner"])
            if r["owner_id"] in by_id:
                by_id[r["owner_id"]].unpatrolled.append(r["name"])
    return [UnpatrolledArea(name, tuple(owners[aid])) for aid, name in names.items()]


def _complaints_where(q: _Q) -> tuple[str, list[Any]]:
    """The scope's complaints with a moment in the period, or overdue now."""
    who, wp = q.who()
    parts, params = [], list(wp)
    for col in ("accepted_at", "replied_at", "contact_due", "reply_due"):
        s, p = q.within(col)
        parts.append(s)
        params += p
    late = f"{OVERDUE_SQL} ?"
    parts.append(f"(status != 'closed' AND ((contacted_at IS NULL AND contact_due {late}) OR "
                 f"(replied_at IS NULL AND reply_due {late})))")
    params += [q.now, q.now]
    return f"{who} AND ({' OR '.join(parts)})", params


def _complaints_read(q: _Q) -> Read:
    where, params = _complaints_where(q)
    return _read(
        "SELECT *, (SELECT name FROM areas WHERE areas.id = complaints.area_id) AS area_name "
        f"FROM complaints WHERE {where} ORDER BY accepted_at, id", params)


def _complaints(q: _Q, rows: Iterable[Row], person: PersonFn, names: dict[int, str],
                overdue: list[OverdueItem], det: Detail | None) -> None:
    now = from_iso(q.now)
    for r in rows:
        p = person(r["user_id"], names.get(r["user_id"]))
        accepted, contacted = _t(r["accepted_at"]), _t(r["contacted_at"])
        replied = _t(r["replied_at"])
        contact_due, reply_due = _t(r["contact_due"]), _t(r["reply_due"])
        row = dict(r)
        row["owner"] = p.name
        if q.inside(accepted):
            p.complaints_new += 1
        if r["status"] == "closed" and q.inside(replied):
            p.complaints_closed += 1
        for step, due, done in (("contact", contact_due, contacted), ("reply", reply_due, replied)):
            row[f"{step}_ok"] = Tally().judge(due, done, now)
            if q.inside(due):
                p.complaint_deadlines.judge(due, done, now)
        if r["status"] != "closed":
            if contacted is None and contact_due is not None and is_overdue(contact_due, now):
                overdue.append(OverdueItem("complaint", r["id"], r["user_id"], p.name, "contact",
                                           contact_due))
            elif replied is None and reply_due is not None and is_overdue(reply_due, now):
                overdue.append(OverdueItem("complaint", r["id"], r["user_id"], p.name, "reply",
                                           reply_due))
        if det is not None:
            det.complaints.append(row)


def _arrears_where(q: _Q) -> tuple[str, list[Any]]:
    """The scope's arrears with a moment in the period, unpaid at its end, or overdue now."""
    who, wp = q.who()
    parts, params = [], list(wp)
    for col in ("created_at", "paid_at", "notice_served_at", "restore_due"):
        s, p = q.within(col)
        parts.append(s)
        params += p
    unpaid = ("(created_at < ? AND ((paid_at IS NULL AND status NOT IN ('paid', 'restored')) "
              "OR paid_at >= ?))")
    parts.append(unpaid)
    params += [q.cut, q.cut]
    parts.append("(paid_at IS NOT NULL AND restored_at IS NULL AND status != 'restored' "
                 f"AND restore_due {OVERDUE_SQL} ?)")
    params.append(q.now)
    return f"{who} AND ({' OR '.join(parts)})", params


def _arrears_read(q: _Q) -> Read:
    where, params = _arrears_where(q)
    return _read(f"SELECT * FROM arrears WHERE {where} ORDER BY created_at, id", params)


def _arrears(q: _Q, rows: Iterable[Row], person: PersonFn, names: dict[int, str],
             overdue: list[OverdueItem], det: Detail | None) -> None:
    now = from_iso(q.now)
    for r in rows:
        p = person(r["user_id"], names.get(r["user_id"]))
        created, paid = _t(r["created_at"]), _t(r["paid_at"])
        due, restored = _t(r["restore_due"]), _t(r["restored_at"])
        row = dict(r)
        row["owner"] = p.name
        if q.inside(created):
            p.arrears_new += 1
            p.arrears_new_cents += r["amount_cents"]
        if q.inside(paid):
            p.arrears_collected += 1
            p.arrears_collected_cents += r["amount_cents"]
        if q.inside(_t(r["notice_served_at"])):
            p.notices_served += 1
        is_unpaid = (r["created_at"] < q.cut and (
            (r["paid_at"] is None and r["status"] not in ("paid", "restored"))
            or (r["paid_at"] is not None and r["paid_at"] >= q.cut)))
        row["outstanding"] = is_unpaid
        if is_unpaid:
            p.arrears_outstanding += 1
            p.arrears_outstanding_cents += r["amount_cents"]
        row["restore_ok"] = Tally().judge(due, restored, now)
        if q.inside(due):
            p.restore.judge(due, restored, now)
        if (paid is not None and restored is None and r["status"] != "restored"
                and due is not None and is_overdue(due, now)):
            overdue.append(OverdueItem("arrears", r["id"], r["user_id"], p.name, "restore", due))
        if det is not None:
            det.arrears.append(row)


def _outages_read(q: _Q) -> Read:
    who, wp = q.who("o")
    span, sp = q.within("o.starts_at")
    return _read(
        "SELECT o.*, "
        "(SELECT count(*) FROM outage_notices n WHERE n.outage_id = o.id) AS to_tell, "
        "(SELECT count(*) FROM outage_notices n WHERE n.outage_id = o.id "
        " AND n.told_at IS NOT NULL AND n.told_at <= o.starts_at) AS told, "
        "(SELECT group_concat(a.name, '、') FROM outage_areas oa JOIN areas a "
        " ON a.id = oa.area_id WHERE oa.outage_id = o.id) AS area_names "
        f"FROM outages o WHERE {who} AND o.status != 'cancelled' AND ({span} OR "
        f"(o.status = 'planned' AND o.notice_posted_at IS NULL AND o.notice_due {OVERDUE_SQL} ? "
        "AND o.starts_at > ?)) ORDER BY o.starts_at, o.id",
        wp + sp + [q.now, q.now])


def _outages(q: _Q, rows: Iterable[Row], person: PersonFn, names: dict[int, str],
             overdue: list[OverdueItem], det: Detail | None) -> None:
    now = from_iso(q.now)
    for r in rows:
        p = person(r["user_id"], names.get(r["user_id"]))
        due, posted = _t(r["notice_due"]), _t(r["notice_posted_at"])
        row = dict(r)
        row["owner"] = p.name
        row["counted"] = q.inside(_t(r["starts_at"]))
        row["notice_ok"] = Tally().judge(due, posted, now)
        if row["counted"]:
            p.outages += 1
            p.outage_notice.judge(due, posted, now)
            p.special_to_tell += r["to_tell"]
            p.special_told += r["told"]
        if (r["status"] == "planned" and posted is None and due is not None and is_overdue(due, now)
                and r["starts_at"] > q.now):
            overdue.append(OverdueItem("outage", r["id"], r["user_id"], p.name, "notice", due))
        if det is not None and row["counted"]:
            det.outages.append(row)


def _repairs_read(q: _Q) -> Read:
    who, wp = q.who("r")
    span, sp = q.within("r.arrival_due")
    return _read(
        f"SELECT r.*, a.name AS area_name FROM repairs r JOIN areas a ON a.id = r.area_id "
        f"WHERE {who} AND ({span} OR "
        f"(r.arrived_at IS NULL AND r.status = 'open' AND r.arrival_due {OVERDUE_SQL} ?) OR "
        f"(r.restored_at IS NULL AND r.status != 'restored' AND r.restore_due {OVERDUE_SQL} ?)) "
        "ORDER BY r.received_at, r.id", wp + sp + [q.now, q.now])


def _repairs(q: _Q, rows: Iterable[Row], person: PersonFn, names: dict[int, str],
             overdue: list[OverdueItem], det: Detail | None) -> None:
    now = from_iso(q.now)
    for r in rows:
        p = person(r["user_id"], names.get(r["user_id"]))
        due, arrived = _t(r["arrival_due"]), _t(r["arrived_at"])
        if det is not None:
            det.repairs.append({**dict(r), "owner": p.name,
                                "arrival_ok": Tally().judge(due, arrived, now),
                                "restore_ok": Tally().judge(_t(r["restore_due"]),
                                                            _t(r["restored_at"]), now)})
        if q.inside(due):
            p.repair_arrival.judge(due, arrived, now)
        restore_due = _t(r["restore_due"])
        if arrived is None and r["status"] == "open" and due is not None and is_overdue(due, now):
            overdue.append(OverdueItem("repair", r["id"], r["user_id"], p.name, "arrival", due))
        elif (r["restored_at"] is None and r["status"] != "restored"
              and restore_due is not None and is_overdue(restore_due, now)):
            overdue.append(OverdueItem("repair", r["id"], r["user_id"], p.name,
                                       "repair_restore", restore_due))


def _reminders_read(q: _Q) -> Read:
    who, wp = q.who()
    span, sp = q.within("sent_at")
    return _read(
        f"SELECT DISTINCT user_id, subject, subject_id, kind FROM reminders WHERE {who} "
        f"AND state = 'sent' AND {span} AND (kind LIKE '%.due' OR kind LIKE '%overdue')",
        wp + sp)


def _reminders(rows: Iterable[Row], person: PersonFn, names: dict[int, str]) -> None:
    seen: set[tuple[int, str, int, str]] = set()
    for r in rows:
        stem = r["kind"].removesuffix(".due").removesuffix("overdue").rstrip("._")
        key = (r["user_id"], r["subject"], r["subject_id"], stem)
        if key not in seen:
            seen.add(key)
            person(r["user_id"], names.get(r["user_id"])).reminders_overdue += 1



def _ordered(items: str | None) -> tuple[str, ...]:
    """The ticked items in the paper form's order."""
    got = set((items or "").split(","))
    return tuple(k for k in work_item_keys() if k in got)


def _logs_where(q: _Q, limit: int | None = None) -> tuple[str, list[Any]]:
    """The scope's log entries in the period (oldest first, the first `limit` of them)."""
    who, wp = q.who("w")
    span, sp = q.within("w.occurred_at")
    if limit is None:
        return f"{who} AND {span}", wp + sp
    return f"{who} AND {span} ORDER BY w.occurred_at, w.id LIMIT ?", [*wp, *sp, limit]


def _log_reads(q: _Q, limit: int | None = None) -> list[Read]:
    """The entries' 批注 (oldest first, by the entries' own conditions), then the entries
    (the XLSX and the paper form), each with all its 台区 (the first one first): Entries
    makes them LogRows in this order."""
    where, params = _logs_where(q, limit)
    ids = f"SELECT w.id FROM worklogs w WHERE {where}"
    return [
        _read("SELECT c.worklog_id, u.name, c.body FROM worklog_comments c JOIN users u "
              f"ON u.id = c.user_id WHERE c.worklog_id IN ({ids}) ORDER BY c.worklog_id, c.id",
              params),
        _read("SELECT w.id, w.occurred_at, w.time_precision, w.user_id, u.name AS owner, "
              "a.name AS area, w.content, w.problems, w.customer_id, c.account_no, "
              "c.name AS customer_name, w.result, w.ticket_no, "
              "(SELECT group_concat(item, ',') FROM worklog_items i "
              "WHERE i.worklog_id = w.id) AS items, "
              "(SELECT count(*) FROM worklog_photos p WHERE p.worklog_id = w.id) AS photos, "
              # A column, not a read of its own: every entry has a row there, and a team's
              # week (~200,000 entries) would be held twice over in the one trip.
              "(SELECT group_concat(name, '、') FROM (SELECT an.name FROM worklog_areas wa "
              "JOIN areas an ON an.id = wa.area_id WHERE wa.worklog_id = w.id "
              "ORDER BY wa.position) AS wan) AS areas "
              "FROM worklogs w JOIN users u ON u.id = w.user_id JOIN areas a ON a.id = w.area_id "
              "LEFT JOIN customers c ON c.id = w.customer_id "
              f"WHERE {where if limit else where + ' ORDER BY w.occurred_at, w.id'}", params)]


class Entries:
    """The entries of `_log_reads` made LogRows as their rows come (Backend.fetch_into), the
    批注 read first: a team's week (~200,000 entries) is never held as rows besides its
    LogRows (issue #12: so the figures' reads and the XLSX's fit in one trip)."""

    def __init__(self) -> None:
        self.notes: dict[int, list[str]] = {}

    def into(self, det: Detail) -> list[Into]:
        """What takes in the rows of `_log_reads`' two reads (the 批注, the entries): the
        entries go to `det`."""
        def logs(rows: Iterator[Row]) -> None:
            det.logs = self.logs(rows)
        return [self.comments, logs]

    def comments(self, rows: Iterator[Row]) -> dict[int, list[str]]:
        for r in rows:
            self.notes.setdefault(r["worklog_id"], []).append(f"{r['name']}：{r['body']}")
        return self.notes

    def logs(self, rows: Iterator[Row]) -> list[LogRow]:
        notes = self.notes
        return [LogRow(r["id"], from_iso(r["occurred_at"]), r["time_precision"] == "minute",
                       r["user_id"], r["owner"], r["areas"] or r["area"],
                       _ordered(r["items"]), r["content"], r["problems"], r["customer_id"],
                       r["account_no"], r["customer_name"], r["photos"], r["result"],
                       r["ticket_no"], "\n".join(notes[r["id"]]) if r["id"] in notes else None)
                for r in rows]


def _logs_customers(q: _Q, limit: int | None = None) -> tuple[str, list[Any]]:
    where, params = _logs_where(q, limit)
    return f"SELECT w.customer_id FROM worklogs w WHERE {where}", params


def _customers_of(table: str, where: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    return f"SELECT customer_id FROM {table} WHERE {where[0]}", where[1]


def _categories_read(q: _Q, sources: list[tuple[str, list[Any]]]) -> Read:
    """The categories of the customers the `sources` (SELECTs of customer ids) name, to mask
    the sensitive ones further (bot.privacy.MASKS)."""
    # Each source in parentheses: one with its own ORDER BY ... LIMIT may join a UNION so.
    union = " UNION ".join(f"SELECT customer_id FROM ({sql}) AS s{n}"
                           for n, (sql, _) in enumerate(sources))
    return _read("SELECT customer_id, category FROM customer_categories WHERE customer_id IN "
                 f"({union}) ORDER BY category, customer_id",
                 [p for _, params in sources for p in params])


def _categories(rows: Iterable[Row]) -> dict[int, list[str]]:
    """customer id -> category keys."""
    found: dict[int, list[str]] = {}
    for c in rows:
        found.setdefault(c["customer_id"], []).append(c["category"])
    return found


def _count_read(q: _Q) -> Read:
    who, wp = q.who()
    span, sp = q.within("occurred_at")
    return _read(f"SELECT count(*) AS n FROM worklogs WHERE {who} AND {span}", wp + sp)


@dataclass
class PaperLogs:
    """What a printable log needs: how many entries there are, the first `limit` of them
    and the categories of the customers they name."""

    count: int
    logs: list[LogRow]
    categories: dict[int, list[str]]
    also: list[list[Row]] = field(default_factory=list)  # the rows of load_paper's `also`


async def load_paper(db: Database, scope: Scope, period: Period, *,
                     limit: int | None = None, also: Sequence[Read] = ()) -> PaperLogs:
    """The scope's entries of the period for the paper form (/export 日志, the CLI), in one
    round trip (issue #12: the count, the entries, their 台区, 批注 and customers'
    categories were a trip each, and more in chunks of ids). `limit`: at most so many
    entries read (a bigger file is the CLI's job), `count` all the same; `also`: reads
    run in the same trip (the team's members for /export 日志 张三)."""
    q = _Q(scope, period, period.end)
    entries = Entries()
    count, _, logs, cats, *more = await db.fetch_into(
        [_count_read(q), *_log_reads(q, limit), _categories_read(q, [_logs_customers(q, limit)]),
         *also], [list, entries.comments, entries.logs, _categories, *[list] * len(also)])
    return PaperLogs(int(count[0]["n"]), logs, cats, more)


async def load_logs(db: Database, scope: Scope, period: Period) -> list[LogRow]:
    """The log entries of the scope in the period, oldest first (the XLSX and the paper form)."""
    return (await load_paper(db, scope, period)).logs


async def count_logs(db: Database, scope: Scope, period: Period) -> int:
    row, = await db.fetch_many([_count_read(_Q(scope, period, period.end))])
    return int(row[0]["n"])
