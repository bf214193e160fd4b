"""工作日志 entries."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime

from bot.models import LogComment, User, WorkLog
from bot.storage import audit
from bot.storage.batch import Batch, Ref, Unchanged
from bot.storage.db import Database, Read, Row, Tx, from_iso, iso
from bot.visibility import Subject, may_see, scope


@dataclass(frozen=True)
class NewWorkLog:
    area_id: int
    items: tuple[str, ...]
    occurred_at: datetime
    has_time: bool
    content: str
    problems: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    photos: tuple[str, ...] = ()
    customer_id: int | None = None  # a visit to a special customer
    photo_notes: dict[str, str] | None = None  # photo ref -> its caption
    more_area_ids: tuple[int, ...] = ()  # further 台区 the entry covers, after area_id
    result: str | None = None  # 处理结果
    ticket_no: str | None = None  # 关联工单号

    @property
    def area_ids(self) -> tuple[int, ...]:
        return (self.area_id, *(a for a in self.more_area_ids if a != self.area_id))


ENTITY = "worklog"  # audit_log entity of a deleted entry
# The next log number: past every live and every deleted one (see 0015_risky_actions.sql).
# SQLite would reuse the highest rowid, so it is computed; PostgreSQL's identity sequence
# never goes back (and, unlike a computed number, two instances never draw the same one).
_NEXT_ID = {"sqlite": "(SELECT coalesce(max(top), 0) + 1 FROM (SELECT max(id) AS top FROM "
                      "worklogs UNION ALL SELECT max(id) FROM worklog_tombstones) AS tops)",
            "postgresql": "DEFAULT"}

_COLUMNS = """
SELECT w.*, a.name AS area_name, u.name AS user_name,
       (SELECT name FROM users WHERE id = w.updated_by) AS editor_name,
       (SELECT group_concat(item, ',') FROM worklog_items WHERE worklog_id = w.id) AS items,
       c.name AS customer_name, c.account_no AS customer_account"""
_FROM = """
FROM worklogs w JOIN areas a ON a.id = w.area_id JOIN users u ON u.id = w.user_id
LEFT JOIN customers c ON c.id = w.customer_id
"""
_SELECT = _COLUMNS + _FROM
# One entry with its photos, 台区 and comments, each as JSON rows (Backend.json_rows): the
# card after 保存 and every 查看 in one read instead of four.
_AREAS = """,
       (SELECT {rows_a} FROM worklog_areas wa JOIN areas wa_a ON wa_a.id = wa.area_id
        WHERE wa.worklog_id = w.id) AS area_rows"""
_CHILDREN = _AREAS + """,
       (SELECT {rows_p} FROM worklog_photos p WHERE p.worklog_id = w.id) AS photo_rows,
       (SELECT {rows_c} FROM worklog_comments wc JOIN users wc_u ON wc_u.id = wc.user_id
        WHERE wc.worklog_id = w.id) AS comment_rows"""
_AREA_ROW = "wa.position, wa_a.id, wa_a.name"


@functools.cache
def _one_sql(json_rows: str) -> str:
    children = _CHILDREN.format(
        rows_p=json_rows.format("p.position, p.channel, p.file_ref, p.caption"),
        rows_a=json_rows.format(_AREA_ROW),
        rows_c=json_rows.format("wc.id, wc_u.name, wc.body, wc.created_at"))
    return _COLUMNS + children + _FROM + " WHERE w.id = ?"


def _area_rows(row: Row) -> dict[int, list[tuple[int, str]]]:
    """An entry's 台区 in order, from its area_rows (_AREAS), for _with_areas."""
    areas = [(int(a), name) for _, a, name in sorted(json.loads(row["area_rows"]))]
    return {row["id"]: areas} if areas else {}


def _worklog(row: Row, photos: tuple[str, ...] = ()) -> WorkLog:
    return WorkLog(
        id=row["id"], team_id=row["team_id"], area_id=row["area_id"], area_name=row["area_name"],
        user_id=row["user_id"], user_name=row["user_name"],
        items=tuple(sorted((row["items"] or "").split(","))) if row["items"] else (),
        occurred_at=from_iso(row["occurred_at"]), has_time=row["time_precision"] == "minute",
        content=row["content"], problems=row["problems"], latitude=row["latitude"],
        longitude=row["longitude"], created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]) if row["updated_at"] else None,
        updated_by=row["editor_name"], photos=photos, result=row["result"],
        ticket_no=row["ticket_no"], customer_id=row["customer_id"],
        customer_name=row["customer_name"], customer_account=row["customer_account"])


def _with_areas(w: WorkLog, areas: dict[int, list[tuple[int, str]]]) -> WorkLog:
    """The entry with all its 台区 (an entry saved before they were listed: its one)."""
    mine = areas.get(w.id) or [(w.area_id, w.area_name)]
    return replace(w, area_ids=tuple(a for a, _ in mine), area_names=tuple(n for _, n in mine))


class WorkLogs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, user: User, entry: NewWorkLog, now: datetime,
                  form_token: str | None = None) -> int:
        """Save one entry; a second save with the same form token returns the first entry's id."""
        batch = Batch()
        wid = self.add_to(batch, user, entry, now, form_token)
        return int((await self.db.write_batch(batch)).id_of(wid) or 0)

    def add_to(self, batch: Batch, user: User, entry: NewWorkLog, now: datetime,
               form_token: str | None = None) -> Ref:
        """The writes of `add` (the 保存 step adds the form's close to them): the entry's id
        as a Ref; the first entry's when this form token saved one already."""
        wid = batch.insert(
            "INSERT INTO worklogs(id, team_id, area_id, user_id, occurred_at, time_precision, "
            "content, problems, latitude, longitude, created_at, form_token, customer_id, "
            "result, ticket_no) "
            f"VALUES ({_NEXT_ID[self.db.dialect]}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(form_token) WHERE form_token IS NOT NULL DO NOTHING",
            (user.team_id, entry.area_id, user.id, iso(entry.occurred_at),
             "minute" if entry.has_time else "day", entry.content, entry.problems,
             entry.latitude, entry.longitude, iso(now), form_token,
             entry.customer_id, entry.result, entry.ticket_no),
            existing=("SELECT id FROM worklogs WHERE form_token = ?", (form_token,)))
        self._children(batch, user, wid, entry, if_new=wid)
        return wid

    @staticmethod
    def _children(batch: Batch, user: User, wid: Ref | int, entry: NewWorkLog,
                  if_new: Ref | None = None) -> None:
        """An entry's visit, items, photos and 台区 (`if_new`: only if it was inserted)."""
        if entry.customer_id is not None:  # 最近走访日期 moves with the visit (never back)
            batch.execute(
                "UPDATE customers SET last_visit_at = ? WHERE id = ? AND team_id = ? AND "
                "(last_visit_at IS NULL OR last_visit_at < ?)",
                (iso(entry.occurred_at), entry.customer_id, user.team_id,
                 iso(entry.occurred_at)), if_new=if_new)
        batch.executemany(
            "INSERT INTO worklog_areas(worklog_id, area_id, position) VALUES (?, ?, ?) "
            "ON CONFLICT(worklog_id, area_id) DO UPDATE SET position = excluded.position",
            [(wid, a, i) for i, a in enumerate(entry.area_ids)], if_new=if_new)
        batch.executemany("INSERT INTO worklog_items(worklog_id, item) VALUES (?, ?) "
                          "ON CONFLICT DO NOTHING",
                          [(wid, item) for item in entry.items], if_new=if_new)
        batch.executemany(
            "INSERT INTO worklog_photos(worklog_id, channel, file_ref, position, caption) "
            "VALUES (?, ?, ?, ?, ?)",
            [(wid, ref.split(":", 1)[0], ref.split(":", 1)[-1], i,
              (entry.photo_notes or {}).get(ref)) for i, ref in enumerate(entry.photos)],
            if_new=if_new)

    async def update(self, user: User, worklog_id: int, entry: NewWorkLog,
                     now: datetime) -> bool:
        """Replace an entry's contents (who and when created stay); False if not allowed."""
        batch = Batch()
        self.update_into(batch, user, worklog_id, entry, now)
        try:
            await self.db.write_batch(batch)
        except Unchanged:
            return False
        return True

    def update_into(self, batch: Batch, user: User, worklog_id: int, entry: NewWorkLog,
                    now: datetime) -> None:
        """The writes of `update` (an edit's 保存 adds the form's close to them): the entry
        must still be there and the user's to see (else Unchanged: nothing is written); its
        台区, items and photos are replaced."""
        mine, mine_params = scope(user, Subject.LOG, "worklogs")
        batch.update(
            "UPDATE worklogs SET area_id = ?, occurred_at = ?, time_precision = ?, "
            "content = ?, problems = ?, latitude = ?, longitude = ?, updated_at = ?, "
            "updated_by = ?, result = ?, ticket_no = ?, "
            f"customer_id = ? WHERE id = ? AND {mine}",
            (entry.area_id, iso(entry.occurred_at), "minute" if entry.has_time else "day",
             entry.content, entry.problems, entry.latitude, entry.longitude, iso(now),
             user.id, entry.result, entry.ticket_no, entry.customer_id, worklog_id,
             *mine_params), worklog_id, needed=True)
        # The rows the edit drops; those it keeps are written again over themselves (their
        # keys conflict), the photos anew: never a row that a statement here deletes and
        # another writes, so on PostgreSQL they run as one statement (bot.storage.batch).
        for table, column, kept in (("worklog_areas", "area_id", entry.area_ids),
                                    ("worklog_items", "item", entry.items),
                                    ("worklog_photos", "", ())):
            keep = f" AND {column} NOT IN ({', '.join('?' for _ in kept)})" if kept else ""
            batch.execute(f"DELETE FROM {table} WHERE worklog_id = ?{keep}",
                          (worklog_id, *kept), sees_before=True)
        self._children(batch, user, worklog_id, entry)

    async def delete(self, user: User, entry: WorkLog, now: datetime, how: str) -> bool:
        """Delete an entry with its items and photos, audited (`how`: the author's undo or
        the lead's delete; the caller decided it is allowed). A special customer's 最近走访
        falls back to its latest remaining visit if this entry had set it. False when it was
        gone already (two taps)."""
        async with self.db.tx() as tx:
            row = await tx.fetchone("SELECT customer_id, occurred_at FROM worklogs WHERE id = ?",
                                    (entry.id,))
            if row is None:
                return False
            await tx.execute("DELETE FROM worklog_photos WHERE worklog_id = ?", (entry.id,))
            await tx.execute("DELETE FROM worklog_items WHERE worklog_id = ?", (entry.id,))
            await tx.execute("DELETE FROM worklog_areas WHERE worklog_id = ?", (entry.id,))
            await tx.execute("DELETE FROM worklog_comments WHERE worklog_id = ?", (entry.id,))
            await tx.execute("DELETE FROM worklogs WHERE id = ?", (entry.id,))
            await tx.execute("INSERT INTO worklog_tombstones(id, deleted_at) "
                             "VALUES (?, ?) ON CONFLICT DO NOTHING", (entry.id, iso(now)))
            if row["customer_id"] is not None:
                await tx.execute(
                    "UPDATE customers SET last_visit_at = (SELECT max(occurred_at) FROM worklogs "
                    "WHERE customer_id = customers.id) WHERE id = ? AND last_visit_at = ?",
                    (row["customer_id"], row["occurred_at"]))
            await audit.record(tx, team_id=entry.team_id, user_id=user.id, actor=user.name,
                               entity=ENTITY, entity_id=entry.id, action="delete", at=now,
                               detail={"how": how, "author": entry.user_name,
                                       "area": entry.area_name, "items": list(entry.items),
                                       "occurred_at": iso(entry.occurred_at),
                                       "created_at": iso(entry.created_at),
                                       "content": entry.content, "photos": len(entry.photos)})
        return True

    def page_reads(self, user: User, limit: int = 10, offset: int = 0) -> list[Read]:
        """How many entries the user sees, and a page of them newest first (a manager's own,
        the whole team's for a lead or admin) with their 台区: read together
        (Backend.fetch_many), then `page_of`."""
        where, params = scope(user, Subject.LOG, "w")
        areas = _AREAS.format(rows_a=self.db.json_rows.format(_AREA_ROW))
        return [(f"SELECT count(*) FROM worklogs w WHERE {where}", params),
                (_COLUMNS + areas + _FROM
                 + f" WHERE {where} ORDER BY w.occurred_at DESC, w.id DESC LIMIT ? OFFSET ?",
                 (*params, limit, offset))]

    @staticmethod
    def page_of(rows: list[Row]) -> tuple[int, list[WorkLog]]:
        """(how many in all, the page) from the rows of `page_reads`."""
        (count,), page = rows
        return int(count[0]), [_with_areas(_worklog(r), _area_rows(r)) for r in page]

    @staticmethod
    async def add_comment(tx: Tx, user: User, worklog_id: int, body: str, now: datetime,
                          form_token: str | None = None) -> int | None:
        """A lead's 批注; None when this form token saved one already (a second 保存)."""
        if form_token and await tx.fetchone(
                "SELECT id FROM worklog_comments WHERE form_token = ?", (form_token,)):
            return None
        return int(await tx.execute(
            "INSERT INTO worklog_comments(worklog_id, user_id, body, created_at, form_token) "
            "VALUES (?, ?, ?, ?, ?)", (worklog_id, user.id, body, iso(now), form_token)) or 0)

    async def get_for(self, user: User, worklog_id: int) -> WorkLog | None:
        """One entry, or None when it does not exist or the user may not see it."""
        return self.seen_by(user, await self.db.fetchone_point(*self.get_read(worklog_id)))

    def get_read(self, worklog_id: int) -> Read:
        """get_for declared, for a read run with others (Backend.fetch_many): `seen_by`."""
        return _one_sql(self.db.json_rows), (worklog_id,)

    @staticmethod
    def seen_by(user: User, row: Row | None) -> WorkLog | None:
        if row is None:
            return None
        if not may_see(user, Subject.LOG, row["team_id"], row["user_id"]):
            return None
        photos = [(f"{channel}:{ref}", caption) for _, channel, ref, caption
                  in sorted(json.loads(row["photo_rows"]))]
        w = _worklog(row, tuple(ref for ref, _ in photos))
        comments = tuple(LogComment(int(i), name, body, from_iso(at)) for i, name, body, at
                         in sorted(json.loads(row["comment_rows"])))
        return replace(_with_areas(w, _area_rows(row)),
                       photo_notes={ref: caption for ref, caption in photos if caption},
                       comments=comments)
