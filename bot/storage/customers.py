"""特殊客户档案: records, categories, search and the audit trail that goes with every change."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from bot.deadlines import OVERDUE_SQL
from bot.models import Role, User
from bot.router import Person, one_person
from bot.storage import audit
from bot.storage.batch import Batch, Ref, Unchanged
from bot.storage.db import Database, Read, Row, Tx, from_iso, iso
from bot.storage.people import LEADS_OF_TEAM
from bot.storage.reminders import Reminders
from bot.visibility import Subject, scope

log = logging.getLogger(__name__)
ENTITY = "customer"
REVEAL_LIMIT_SUBJECT = "reveal_limit"  # the reminder that tells the leads
VISIT_SUBJECT = "customer_visit"  # the to-do items of visits due (no reminders of its own)


class RevealLimited(Exception):
    """The person has revealed `limit` numbers within the window already: refused.
    `leads_told` is True for the first refusal of a window (the leads were told then)."""

    def __init__(self, limit: int, leads_told: bool) -> None:
        super().__init__(limit)
        self.limit = limit
        self.leads_told = leads_told


# audit.record of a reveal, unless the person has made `limit` reveals since `since`
# (parameters: team, user, actor, entity, customer, detail, at, user, since, limit).
_REVEAL_WITHIN_LIMIT = (
    "INSERT INTO audit_log(team_id, user_id, actor, entity, entity_id, action, detail, at) "
    "SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), "
    "CAST(? AS BIGINT), 'reveal', CAST(? AS TEXT), CAST(? AS TEXT) "
    "WHERE (SELECT count(*) FROM audit_log WHERE user_id = ? AND action = 'reveal' "
    "AND at > ?) < ?")


@dataclass(frozen=True)
class CustomerData:
    """What a form or an import row provides."""

    account_no: str
    name: str
    area_id: int
    address: str
    phone: str
    categories: tuple[str, ...]
    situation: str | None = None
    emergency_name: str | None = None
    emergency_phone: str | None = None
    visit_every_days: int | None = None
    notify_first: bool = False
    proxy_pay: bool = False


@dataclass(frozen=True)
class Customer(CustomerData):
    id: int = 0
    team_id: int = 0
    area_name: str = ""
    last_visit_at: datetime | None = None
    active: bool = True
    deactivated_reason: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def visit_due(self) -> datetime | None:
        """When the next visit is due by the visit cycle: a cycle after the last visit, or at
        once (from registration) if never visited; None without a cycle. The SQL twin is
        VISIT_DUE_SQL; both are compared with bot.deadlines' one "overdue" definition."""
        if not self.visit_every_days:
            return None
        if self.last_visit_at is None:
            return self.created_at
        return self.last_visit_at + timedelta(days=self.visit_every_days)

    def data(self) -> CustomerData:
        return CustomerData(**{f.name: getattr(self, f.name) for f in fields(CustomerData)})


@dataclass(frozen=True)
class VisitCounts:
    """One manager's visits in a report period (see visit_counts_read)."""

    name: str
    due: int  # visited in the period, plus still due by its end
    done: int
    overdue: int

    @property
    def any(self) -> bool:
        return bool(self.due or self.done or self.overdue)


@dataclass(frozen=True)
class Query:
    """kind: all | account | area | category | due | text | inactive (the deactivated ones).
    For category, value is one key or several joined by ',' (customers in any of them)."""

    kind: str
    value: str = ""


_SELECT = """
SELECT c.*, a.name AS area_name, u.name AS creator,
       (SELECT group_concat(category, ',') FROM customer_categories WHERE customer_id = c.id)
         AS cats
FROM customers c JOIN areas a ON a.id = c.area_id LEFT JOIN users u ON u.id = c.created_by
"""


# Customer.visit_due, due by the moment `?`, in SQL. datetime() normalises both sides to
# UTC 'YYYY-MM-DD HH:MM:SS' text, so the comparison is exact (no julianday floats).
VISIT_DUE_SQL = (
    "c.visit_every_days IS NOT NULL AND (c.last_visit_at IS NULL OR "
    f"datetime(c.last_visit_at, printf('+%d days', c.visit_every_days)) {OVERDUE_SQL} "
    "datetime(?))")


def _customer(r: Row) -> Customer:
    return Customer(
        account_no=r["account_no"], name=r["name"], area_id=r["area_id"], address=r["address"],
        phone=r["phone"], categories=tuple(sorted(r["cats"].split(","))) if r["cats"] else (),
        situation=r["situation"], emergency_name=r["emergency_name"],
        emergency_phone=r["emergency_phone"], visit_every_days=r["visit_every_days"],
        notify_first=bool(r["notify_first"]), proxy_pay=bool(r["proxy_pay"]), id=r["id"],
        team_id=r["team_id"], area_name=r["area_name"],
        last_visit_at=from_iso(r["last_visit_at"]) if r["last_visit_at"] else None,
        active=bool(r["active"]), deactivated_reason=r["deactivated_reason"],
        created_at=from_iso(r["created_at"]), created_by=r["creator"])


def _scope(user: User) -> tuple[str, list[Any]]:
    return scope(user, Subject.CUSTOMER, "c")


_COLUMNS = ("account_no", "name", "area_id", "address", "phone", "situation", "emergency_name",
            "emergency_phone", "visit_every_days", "notify_first", "proxy_pay")


def _values(d: CustomerData) -> list[Any]:
    return [getattr(d, c) if not isinstance(getattr(d, c), bool) else int(getattr(d, c))
            for c in _COLUMNS]


def _as_kept(kept: CustomerData) -> tuple[str, list[Any]]:
    """SQL: the record (an UPDATE's row of customers) still holds `kept`, its categories too
    (an edit's guard: the audit names the changes from what its form opened on)."""
    terms, params = [], []
    for column, value in zip(_COLUMNS, _values(kept), strict=True):
        if value is None:
            terms.append(f"{column} IS NULL")
        else:
            terms.append(f"{column} = ?")
            params.append(value)
    cats = tuple(dict.fromkeys(kept.categories))
    terms.append("(SELECT count(*) FROM customer_categories WHERE customer_id = customers.id) "
                 "= ?")
    params.append(len(cats))
    if cats:
        terms.append("NOT EXISTS (SELECT 1 FROM customer_categories WHERE customer_id = "
                     f"customers.id AND category NOT IN ({', '.join('?' for _ in cats)}))")
        params += cats
    return " AND ".join(terms), params


def still_as_kept(record: CustomerData, kept: CustomerData) -> bool:
    """Whether `record` still holds `kept`, as `_as_kept` asks in SQL (its categories as a
    set): an edit's guard, answered from the record read with the 保存 tap."""
    return (_values(record) == _values(kept)
            and set(record.categories) == set(kept.categories))


def diff(old: CustomerData, new: CustomerData) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields that changed (the audit trail's detail)."""
    a, b = asdict(old), asdict(new)
    return {k: [list(a[k]) if isinstance(a[k], tuple) else a[k],
                list(b[k]) if isinstance(b[k], tuple) else b[k]]
            for k in a if a[k] != b[k]}



def visits_due_reads(user: User, by: datetime) -> list[Read]:
    """Customers.visits_due declared (read with others: /todo's one round trip)."""
    params: list[Any] = [iso(by), user.team_id]
    mine = ""
    if user.role is Role.MANAGER:
        mine = " AND c.area_id IN (SELECT area_id FROM user_areas WHERE user_id = ?)"
        params.append(user.id)
    due = f"SELECT * FROM ({_SELECT}) c WHERE {VISIT_DUE_SQL} AND c.team_id = ? " \
          f"AND c.active = 1{mine}"
    return [(f"{due} ORDER BY c.last_visit_at IS NOT NULL, c.last_visit_at, c.id",
             tuple(params)), _area_managers_read(user.team_id, due, params)]


def visits_due_of(rows: list[Row], managers: list[Row]) -> list[tuple[Customer, str]]:
    owners = _managers_of(managers)
    return [(_customer(r), owners.get(r["area_id"], "")) for r in rows]


def _area_managers_read(team_id: int, due: str, params: list[Any]) -> Read:
    """The managers of the 台区 of the customers due (`due`, a read of them): not of every
    台区 of the team, which a /todo in a team of thousands would read whole (issue #12)."""
    return ("SELECT ua.area_id, group_concat(u.name, '、') AS names FROM user_areas ua "
            "JOIN users u ON u.id = ua.user_id WHERE u.team_id = ? AND u.active = 1 "
            f"AND u.role = 'manager' AND ua.area_id IN (SELECT area_id FROM ({due}) d) "
            "GROUP BY ua.area_id", (team_id, *params))


def _managers_of(rows: list[Row]) -> dict[int, str]:
    return {int(r["area_id"]): str(r["names"]) for r in rows}


# Customers due for a visit by `?` in the 台区 of the manager `u` (a correlated subquery).
_DUE_IN_AREAS = (f"(SELECT count(*) FROM customers c WHERE {VISIT_DUE_SQL} AND c.team_id = ? "
                 "AND c.active = 1 AND c.area_id IN (SELECT area_id FROM user_areas "
                 "WHERE user_id = u.id))")


def visit_counts_read(team_id: int, person: Person | None, start: datetime, end: datetime,
                      now: datetime) -> Read:
    """Per manager of the team (or the one manager `person`: SQL for the id and its
    parameters, bot.router.ReportScope.person), for [start, end): special
    customers visited (by the log's author), still due by `end` in their areas, and of
    those past due at the report's moment (`end`, or now for a period still running).
    One SELECT, not three reads per manager (issue #12: the report's one round trip)."""
    one, one_params = one_person("u.id", person)
    return ("SELECT u.name, (SELECT count(DISTINCT w.customer_id) FROM worklogs w "
            "WHERE w.team_id = ? AND w.user_id = u.id AND w.customer_id IS NOT NULL "
            "AND w.occurred_at >= ? AND w.occurred_at < ?) AS visited, "
            f"{_DUE_IN_AREAS} AS pending, {_DUE_IN_AREAS} AS overdue "
            "FROM users u WHERE u.team_id = ? AND u.active = 1 "
            f"AND u.role = 'manager'{one} ORDER BY u.name, u.id",
            (team_id, iso(start), iso(end), iso(end), team_id, iso(min(end, now)), team_id,
             team_id, *one_params))


def visit_counts_of(rows: list[Row]) -> list[VisitCounts]:
    """visit_counts_read's rows: due counts the visits made and those still due."""
    return [VisitCounts(r["name"], int(r["visited"]) + int(r["pending"]), int(r["visited"]),
                        int(r["overdue"])) for r in rows]


class Customers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user: User, customer_id: int) -> Customer | None:
        """A record the user may see, or None (another team's record does not exist for them)."""
        return self.found((await self.db.fetch_many_point([self.get_read(user, customer_id)]))[0])

    @staticmethod
    def get_read(user: User, customer_id: int) -> Read:
        """`get` declared, for a read run with others (Backend.fetch_many); see `found`."""
        where, params = _scope(user)
        return _SELECT + f" WHERE c.id = ? AND {where}", (customer_id, *params)

    @staticmethod
    def of_log_read(user: User, worklog_id: int) -> Read:
        """`get_read` of the customer a work log is about (none: no row), read with the log."""
        where, params = _scope(user)
        return (_SELECT + " WHERE c.id = (SELECT customer_id FROM worklogs WHERE id = ?) "
                f"AND {where}", (worklog_id, *params))

    @staticmethod
    def found(rows: list[Row]) -> Customer | None:
        return _customer(rows[0]) if rows else None

    async def by_account(self, team_id: int, account_no: str) -> Customer | None:
        row = await self.db.fetchone(_SELECT + " WHERE c.team_id = ? AND c.account_no = ?",
                                     (team_id, account_no))
        return _customer(row) if row else None

    @staticmethod
    def owner_read(team_id: int, account_no: str) -> Read:
        """Whose a 户号 of the team is (id, name, area_name; no row: nobody's), the little a
        refused registration names, read with its tap or its write."""
        return ("SELECT c.id, c.name, a.name AS area_name FROM customers c "
                "JOIN areas a ON a.id = c.area_id WHERE c.team_id = ? AND c.account_no = ?",
                (team_id, account_no))

    async def create(self, user: User, data: CustomerData, now: datetime) -> int:
        batch = Batch()
        ref = self.create_into(batch, user, data, now)
        return int((await self.db.write_batch(batch)).id_of(ref) or 0)

    @staticmethod
    def create_into(batch: Batch, user: User, data: CustomerData, now: datetime) -> Ref:
        """`create` as a batch's writes (a form's 保存, with the form's close): the new
        record's id. A 户号 the team registered meanwhile (UNIQUE) inserts nothing: Unchanged,
        all undone (the form's save says whose it is, checked before: no read first)."""
        ref = batch.insert(
            f"INSERT INTO customers(team_id, {', '.join(_COLUMNS)}, created_by, created_at) "
            f"VALUES (?, {', '.join('?' for _ in _COLUMNS)}, ?, ?) "
            "ON CONFLICT(team_id, account_no) DO NOTHING",
            (user.team_id, *_values(data), user.id, iso(now)), needed=True)
        batch.executemany("INSERT INTO customer_categories(customer_id, category) VALUES (?, ?)",
                          [(ref, c) for c in dict.fromkeys(data.categories)])
        audit.record_into(batch, team_id=user.team_id, user_id=user.id, actor=user.name,
                          entity=ENTITY, entity_id=ref, action="create", at=now,
                          detail={"account_no": data.account_no})
        return ref

    async def update(self, user: User, customer_id: int, data: CustomerData,
                     now: datetime) -> bool:
        old = await self.get(user, customer_id)
        if old is None or not old.active:  # a deactivated record is read-only
            return False
        batch = Batch()
        self.update_into(batch, user, old, data, now)
        try:
            await self.db.write_batch(batch)
        except Unchanged:  # deactivated meanwhile
            return False
        return True

    @staticmethod
    def update_into(batch: Batch, user: User, old: Customer, data: CustomerData,
                    now: datetime) -> None:
        """`update` of the record as read (`old`: the audit keeps what changed) as a batch's
        writes (an edit's 保存, with the form's close): nothing if nothing changed; a record
        deactivated since is read-only (Unchanged: nothing is written)."""
        Customers.edit_into(batch, user, old.id, old.data(), data, now, as_read=True)

    @staticmethod
    def edit_into(batch: Batch, user: User, customer_id: int, kept: CustomerData,
                  data: CustomerData, now: datetime, *, as_read: bool = False) -> None:
        """An edit of the record as its form opened on it (`kept`: no read before the write,
        issue #12) as a batch's writes, the audit naming what changed from `kept`. Guarded in
        SQL: the record still active, in the user's team and as kept (else Unchanged, nothing
        written: the caller reads why). `as_read`: `kept` was read just now (only active)."""
        changes = diff(kept, data)
        if not changes and as_read:
            return
        guard, params = "id = ? AND active = 1", [customer_id]
        if not as_read:
            same, same_params = _as_kept(kept)
            guard += f" AND team_id = ? AND {same}"
            params += [user.team_id, *same_params]
        if not changes:  # nothing to write; still refused as an edit would be
            batch.update(f"UPDATE customers SET active = active WHERE {guard}", params,
                         customer_id, needed=True)
            return
        batch.update(
            f"UPDATE customers SET {', '.join(c + ' = ?' for c in _COLUMNS)}, "
            f"updated_at = ?, updated_by = ? WHERE {guard}",
            (*_values(data), iso(now), user.id, *params), customer_id, needed=True)
        cats = tuple(dict.fromkeys(data.categories))
        # The categories dropped; those kept conflict with themselves (one statement on PG).
        keep = f" AND category NOT IN ({', '.join('?' for _ in cats)})" if cats else ""
        batch.execute(f"DELETE FROM customer_categories WHERE customer_id = ?{keep}",
                      (customer_id, *cats), sees_before=True)
        batch.executemany("INSERT INTO customer_categories(customer_id, category) VALUES (?, ?) "
                          "ON CONFLICT DO NOTHING", [(customer_id, c) for c in cats])
        audit.record_into(batch, team_id=user.team_id, user_id=user.id, actor=user.name,
                          entity=ENTITY, entity_id=customer_id, action="edit", at=now,
                          detail=changes)

    async def set_active(self, user: User, customer_id: int, active: bool, now: datetime,
                         reason: str | None = None) -> bool:
        """Deactivate (with a reason) or reactivate; records are never deleted."""
        old = await self.get(user, customer_id)
        if old is None:
            return False
        batch = Batch()
        self.set_active_into(batch, user, old, active, now, reason)
        await self.db.write_batch(batch)
        return True

    @staticmethod
    def set_active_into(batch: Batch, user: User, old: Customer, active: bool, now: datetime,
                        reason: str | None = None) -> None:
        """`set_active` of the record as read, as a batch's writes (with the 停用 form's close,
        or alone for 恢复): the change and its audit row in one round trip."""
        Customers._switch_into(batch, user, old.team_id, old.id, active, now, reason)

    @staticmethod
    def deactivate_into(batch: Batch, user: User, customer_id: int,
                        area_ids: Sequence[int] | None, now: datetime, reason: str) -> None:
        """停用 (`set_active_into`) of a record not read first (issue #12: the 保存 step's
        read and its write), guarded in SQL: in the user's team and, unless `area_ids` is
        None (a lead's), in one of those 台区; else Unchanged, nothing written (the caller
        reads why)."""
        mine = (f" AND area_id IN ({', '.join('?' for _ in area_ids)})" if area_ids
                else " AND 1 = 0") if area_ids is not None else ""
        Customers._switch_into(batch, user, user.team_id, customer_id, False, now, reason,
                               (f"team_id = ?{mine}", (user.team_id, *(area_ids or ()))))

    @staticmethod
    def _switch_into(batch: Batch, user: User, team_id: int, customer_id: int, active: bool,
                     now: datetime, reason: str | None,
                     guard: tuple[str, Sequence[Any]] | None = None) -> None:
        sql = ("UPDATE customers SET active = ?, deactivated_at = ?, deactivated_reason = ? "
               "WHERE id = ?")
        params = (int(active), None if active else iso(now), None if active else reason,
                  customer_id)
        if guard is None:
            batch.execute(sql, params)
        else:
            batch.update(f"{sql} AND {guard[0]}", (*params, *guard[1]), customer_id,
                         needed=True)
        audit.record_into(batch, team_id=team_id, user_id=user.id, actor=user.name,
                          entity=ENTITY, entity_id=customer_id,
                          action="reactivate" if active else "deactivate", at=now,
                          detail={} if active else {"reason": reason})

    async def reveal_phone(self, user: User, customer_id: int, which: str, now: datetime, *,
                           limit: int, window: timedelta,
                           known: Customer | None = None) -> str | None:
        """The full number, once, written to the audit log; None if not visible (or the record
        is deactivated: read-only). Raises RevealLimited beyond `limit` reveals per `window`.
        `known`: the record as the user may see it, read already (`get`)."""
        c = known if known is not None else await self.get(user, customer_id)
        if c is None or not c.active:
            return None
        phone = c.emergency_phone if which == "emergency" else c.phone
        if not phone:
            return ""  # nothing to reveal, so nothing to audit
        since = iso(now - window)
        # Within the limit (the usual case): counted and recorded in one statement, one round
        # trip (issue #12); no row written means the limit was reached: see below.
        batch = Batch()
        shown = batch.insert(_REVEAL_WITHIN_LIMIT, (
            c.team_id, user.id, user.name, ENTITY, customer_id, json.dumps(audit.redact(
                {"field": "emergency_phone" if which == "emergency" else "phone"}),
                ensure_ascii=False), iso(now), user.id, since, limit))
        if shown.n in await self.db.write_batch(batch):
            return phone
        async with self.db.tx() as tx:  # count and record in one transaction: no overshoot
            row = await tx.fetchone(
                "SELECT count(*) FROM audit_log WHERE user_id = ? AND action = 'reveal' "
                "AND at > ?", (user.id, since))
            count = int(row[0]) if row else 0
            if count >= limit:
                told = await self._reveal_limited(tx, user, c, count, now, since, window)
            else:
                told = None
                await audit.record(tx, team_id=c.team_id, user_id=user.id, actor=user.name,
                                   entity=ENTITY, entity_id=customer_id, action="reveal",
                                   at=now, detail={"field": "emergency_phone"
                                                   if which == "emergency" else "phone"})
        if told is not None:
            raise RevealLimited(limit, told)
        return phone

    @staticmethod
    async def _reveal_limited(tx: Tx, user: User, c: Customer, count: int, now: datetime,
                              since: str, window: timedelta) -> bool:
        """Over the limit: the first refusal of a window is audited and tells the team's
        leads (through the reminder queue, so it survives a restart); later ones do not."""
        row = await tx.fetchone(
            "SELECT 1 FROM audit_log WHERE user_id = ? AND action = 'reveal_limited' AND at > ?",
            (user.id, since))
        if row is not None:
            return False
        await audit.record(tx, team_id=c.team_id, user_id=user.id, actor=user.name,
                           entity="user", entity_id=user.id, action="reveal_limited", at=now,
                           detail={"count": count, "customer_id": c.id})
        leads = await tx.fetchall(  # in this transaction, so the plan and audit agree
            f"SELECT u.id FROM users u WHERE {LEADS_OF_TEAM} AND u.id != ?",
            (user.team_id, user.id))
        if not leads:
            log.warning("user %s reached the reveal limit; team %s has no lead to tell",
                        user.id, user.team_id)
        for lead in leads:
            await Reminders.plan(
                tx, team_id=user.team_id, user_id=int(lead["id"]), subject=REVEAL_LIMIT_SUBJECT,
                subject_id=user.id, kind="lead", due_at=now, now=now, urgent=True,
                key=f"{REVEAL_LIMIT_SUBJECT}:{user.id}:{lead['id']}:{iso(now)}",
                detail={"name": user.name, "count": count,
                        "minutes": int(window.total_seconds() // 60)})
        return True

    async def search(self, user: User, q: Query, now: datetime, limit: int = 8,
                     offset: int = 0, active: bool | None = None) -> tuple[int, list[Customer]]:
        """Records in the user's scope matching `q`, with the total count: the active ones,
        or the deactivated ones (`active=False`, or the query 已停用)."""
        return self.search_of(await self.db.fetch_many(
            self.search_reads(user, q, now, limit, offset, active)))

    @staticmethod
    def search_reads(user: User, q: Query, now: datetime, limit: int = 8, offset: int = 0,
                     active: bool | None = None) -> list[Read]:
        """`search` declared (the count, then the page), for reads run together: `search_of`."""
        if active is None:
            active = q.kind != "inactive"
        where, params = _scope(user)
        # Literal, not a parameter: each partial index (0008, 0020) is chosen by this term.
        clauses = [where, "c.active = 1" if active else "c.active = 0"]
        order = "c.area_id, c.name, c.id"
        if q.kind == "account":
            clauses.append("c.account_no LIKE ?")
            params.append(q.value + "%")
        elif q.kind == "area":
            clauses.append("a.name = ?")
            params.append(q.value)
        elif q.kind == "category":
            # In one team (everyone's scope), probe (customer_id, category) per team row: flat
            # ~2 ms. `IN (list)` would first build the id list of that category in *every*
            # team (45k ids for 独居 at 100k customers). See bench/bench_customers.py.
            keys = q.value.split(",")
            marks = ", ".join("?" for _ in keys)
            clauses.append("EXISTS (SELECT 1 FROM customer_categories cc "
                           f"WHERE cc.customer_id = c.id AND cc.category IN ({marks}))")
            params += keys
        elif q.kind == "due":
            clauses.append(VISIT_DUE_SQL)
            params.append(iso(now))
            order = "c.last_visit_at IS NOT NULL, c.last_visit_at, c.id"
        elif q.kind == "text":
            clauses.append("(c.name LIKE ? OR c.address LIKE ?)")
            like = "%" + q.value.replace("%", "").replace("_", "") + "%"
            params += [like, like]
        sql_where = " AND ".join(clauses)
        matching = f"FROM customers c JOIN areas a ON a.id = c.area_id WHERE {sql_where}"
        # The page's ids first, from the index alone (customers_team_search); whole records
        # only for those 8, not for every match the ORDER BY has to sort.
        return [(f"SELECT count(*) {matching}", tuple(params)),
                (_SELECT + f" WHERE c.id IN (SELECT c.id {matching} ORDER BY {order} "
                 f"LIMIT ? OFFSET ?) ORDER BY {order}", (*params, limit, offset))]

    @staticmethod
    def search_of(rows: Sequence[list[Row]]) -> tuple[int, list[Customer]]:
        """(the total count, the page) from the rows of `search_reads`."""
        (total,), page = rows
        return int(total[0]), [_customer(r) for r in page]

    async def visits_due(self, user: User, by: datetime) -> list[tuple[Customer, str]]:
        """Active customers due for a visit by `by`, with the names of their area's managers:
        a manager's own areas, the whole team for a lead or an admin (for /todo)."""
        return visits_due_of(*await self.db.fetch_many(visits_due_reads(user, by)))


    @staticmethod
    def search_saved(user: User, query: str, now: datetime) -> Read:
        """The user's last search (what ◀️ ▶️ page through), declared: written with the
        search's own reads (Backend.fetch_many_after); the next step's read brings it back
        (bot.storage.steps: `last_search`)."""
        return ("INSERT INTO searches(user_id, query, at) VALUES (?, ?, ?) ON CONFLICT(user_id) "
                "DO UPDATE SET query = excluded.query, at = excluded.at",
                (user.id, query, iso(now)))

    async def last_search(self, user: User) -> str | None:
        row = await self.db.fetchone("SELECT query FROM searches WHERE user_id = ?", (user.id,))
        return str(row["query"]) if row else None
