"""Reminder rows: the database is the source of truth for what is sent, to whom, and when."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.batch import Batch, IfNew, Ref
from bot.storage.db import Database, Read, Row, Tx, from_iso, iso

# last_error of a row whose last push may have reached the user (an answer lost, or a process
# that died mid-push): its next push says it may be a repeat. Kept through later retries.
MAYBE_SENT = "outcome unknown"
# last_error of a row for someone who has not opened the bot yet: it waits for their first
# visit (People.link_identity releases it), not failed and not handed to anyone else.
WAITING = "waiting: has not opened the bot yet"


# Rows of a plan in one statement, 8 parameters each: under SQLite's 32,766 parameters per
# statement and asyncpg's 32,767 (a task to a team of 1,000 managers is 4,000 rows).
_MOST_ROWS = 4000

# A team's leads (users u; one parameter, the team): People.leads_of, and escalations.
LEADS_OF_TEAM = "u.team_id = ? AND u.role = 'lead' AND u.active = 1"


@dataclass(frozen=True)
class PlannedRung:
    """One reminder of a deadline ladder as planned: its kind, when, to the leads or not."""

    kind: str
    due_at: datetime
    urgent: bool
    to_leads: bool
    # Planned only if (True) or unless (False) the plan's `condition` holds as the write
    # finds it (Reminders.plan_into): a rung that depends on a read, decided in SQL.
    only_if: bool | None = None
    key_end: str | None = None  # its dedupe key's end after `:kind:person` (else the round's)


@dataclass(frozen=True)
class PlannedFor:
    """A rung planned for one person (`Reminders.plan_rows_into`): `key_tail` ends its
    dedupe key after `subject:id` (default `:kind:person`, as `plan` keys it)."""

    user_id: int
    rung: PlannedRung
    key_tail: str = ""
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reminder:
    id: int
    team_id: int
    user_id: int
    subject: str
    subject_id: int
    kind: str
    due_at: datetime
    urgent: bool
    state: str
    attempts: int
    detail: dict[str, Any]
    maybe_sent: bool = False  # an earlier push of it may have arrived


def _reminder(r: Row) -> Reminder:
    return Reminder(r["id"], r["team_id"], r["user_id"], r["subject"], r["subject_id"],
                    r["kind"], from_iso(r["due_at"]), bool(r["urgent"]), r["state"],
                    r["attempts"], json.loads(r["detail"]),
                    (r["last_error"] or "").startswith(MAYBE_SENT))


_CANCEL = ("UPDATE reminders SET state = 'cancelled' WHERE subject = ? AND subject_id = ? "
           "AND state = 'pending' AND kind LIKE ?")
# Due, pending, not claimed by a live scan: urgent = ?, due_at <= ?, claim ended before ?.
_DUE = ("state IN ('pending', 'sending') AND state = 'pending' AND urgent = ? AND due_at <= ? "
        "AND (claimed_until IS NULL OR claimed_until <= ?)")


def _urgent(quiet: tuple[str, tuple[Any, ...]] | None) -> tuple[str, tuple[Any, ...]]:
    """A planned rung's urgent column: urgent only outside the person's quiet hours (`quiet`,
    bot.reminders.in_quiet_sql) if given, as the write finds them."""
    if quiet is None:
        return "r.urgent", ()
    return f"CASE WHEN r.urgent = 0 THEN 0 ELSE 1 - {quiet[0]} END", quiet[1]


class Reminders:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def plan(tx: Tx, *, team_id: int, user_id: int, subject: str, subject_id: int,
                   kind: str, due_at: datetime, now: datetime, urgent: bool = False,
                   key: str | None = None, detail: dict[str, Any] | None = None) -> bool:
        """Add a reminder unless one with the same key exists (planning twice plans once)."""
        dedupe = key or f"{subject}:{subject_id}:{kind}:{user_id}"
        await tx.execute(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, "
            "urgent, dedupe_key, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (team_id, user_id, subject, subject_id, kind, iso(due_at), int(urgent), dedupe,
             json.dumps(detail or {}, ensure_ascii=False), iso(now)))
        return tx.rowcount > 0

    @staticmethod
    def plan_into(batch: Batch, rungs: Sequence[PlannedRung], *, team_id: int, owner_id: int,
                  subject: str, subject_id: Ref | int, now: datetime, round_: str = "",
                  leads_but: Sequence[int] | None = None, if_new: Ref | None = None,
                  quiet: tuple[str, tuple[Any, ...]] | None = None,
                  declined: str | None = None,
                  leads: tuple[str, tuple[Any, ...]] | None = None,
                  condition: tuple[str, tuple[Any, ...]] | None = None) -> None:
        """`plan` in a batch: each rung to the owner or to the team's leads but `leads_but`
        (the owner by default; read here, not before), keyed as `plan` keys them (`round_`
        as its `key` ends, or the rung's `key_end`), for a record the batch inserts (a Ref:
        only if it inserted it) or changes (`if_new`: only if that update changed it). One
        statement, its rows in the order `plan` would write them (rung by rung, leads by
        id): on PostgreSQL the rows of separate statements in one would be numbered in no
        set order. `quiet`: as in plan_records_into, of person `u.id`; `declined`: planning
        none (no lead) rolls the batch back and says so (Batch.execute). `leads`: who the
        leads are instead, as SQL over users `u` and its parameters; `condition`: SQL (and
        parameters) deciding the rungs marked `only_if`."""
        if not rungs:
            return
        urgent, urgent_params = _urgent(quiet)
        but = list(leads_but if leads_but is not None else (owner_id,)) or [0]
        who, who_params = leads or (LEADS_OF_TEAM, (team_id,))
        cond, cond_params = condition or ("1 = 1", ())
        one = "SELECT ?, ?, ?, ?, ?, ?, ?"
        first = ("SELECT CAST(? AS INTEGER) AS n, CAST(? AS INTEGER) AS leads, ? AS kind, "
                 "? AS due_at, CAST(? AS INTEGER) AS urgent, CAST(? AS INTEGER) AS c, "
                 "CAST(? AS TEXT) AS tail")
        rows = " UNION ALL ".join([first, *[one] * (len(rungs) - 1)])
        batch.execute(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, "
            "urgent, dedupe_key, detail, created_at) "
            "SELECT CAST(? AS INTEGER), u.id, ?, CAST(? AS INTEGER), r.kind, r.due_at, "
            f"{urgent}, ? || ':' || CAST(CAST(? AS INTEGER) AS TEXT) || ':' || r.kind || ':' || "
            "CAST(u.id AS TEXT) || r.tail, "
            f"'{{}}', ? FROM ({rows}) AS r JOIN users u ON (r.leads = 0 AND u.id = ?) OR "
            f"(r.leads = 1 AND {who} AND u.id NOT IN ({', '.join('?' * len(but))})) "
            f"WHERE r.c = 0 OR r.c = CASE WHEN {cond} THEN 1 ELSE 2 END "
            "ORDER BY r.n, u.id ON CONFLICT DO NOTHING",
            (team_id, subject, subject_id, *urgent_params,
             # a cast's parameter keeps its type (PG): an integer, as a Ref's id is once
             # known (a batch run statement by statement)
             subject, subject_id,
             iso(now), *(v for n, r in enumerate(rungs)
                         for v in (n, int(r.to_leads), r.kind, iso(r.due_at), int(r.urgent),
                                   {None: 0, True: 1, False: 2}[r.only_if],
                                   r.key_end if r.key_end is not None
                                   else f":{round_}" if round_ else "")),
             owner_id, *who_params, *but, *cond_params),
            if_new=subject_id if isinstance(subject_id, Ref) else if_new, declined=declined)

    @staticmethod
    def plan_rows_into(batch: Batch, rows: Sequence[PlannedFor], *, team_id: int, subject: str,
                       subject_id: Ref | int, now: datetime, if_new: Ref | None = None,
                       quiet: tuple[str, tuple[Any, ...]] | None = None) -> None:
        """`plan` for each row (a person, their rung, the end of its key after
        `subject:id`), in a batch: one statement, its rows in this order (`plan` one by
        one would number them so; on PostgreSQL separate rows of one statement would not)."""
        Reminders.plan_records_into(batch, [(subject_id, p) for p in rows], team_id=team_id,
                                    subject=subject, now=now, if_new=if_new, quiet=quiet)

    @staticmethod
    def plan_records_into(batch: Batch, rows: Sequence[tuple[Ref | IfNew | int, PlannedFor]],
                          *, team_id: int, subject: str, now: datetime,
                          if_new: Ref | None = None,
                          quiet: tuple[str, tuple[Any, ...]] | None = None) -> None:
        """plan_rows_into for rows of several records of one subject (each row's record
        first): still one statement, whatever their number (the tasks one 派任务 gives). A
        record given as IfNew that the batch did not insert gets none of its rows.
        `quiet`: whether person `r.user_id` is in quiet hours now, as SQL and its parameters
        (bot.reminders.in_quiet_sql): an urgent rung is then urgent only outside them, as
        the write finds them (no read of them before it)."""
        if len(rows) > _MOST_ROWS:  # several statements (on PostgreSQL then one by one)
            for start in range(0, len(rows), _MOST_ROWS):
                Reminders.plan_records_into(
                    batch, rows[start:start + _MOST_ROWS], team_id=team_id, subject=subject,
                    now=now, if_new=if_new, quiet=quiet)
            return
        if not rows:
            return
        # A VALUES list, not a UNION of SELECTs: SQLite allows 500 terms in a compound SELECT
        # and exempts a VALUES list; the columns are column1, column2 ... on both backends.
        first = ("(CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER), "
                 "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT), "
                 "CAST(? AS TEXT))")
        values = ", ".join([first, *["(?, ?, ?, ?, ?, ?, ?, ?)"] * (len(rows) - 1)])
        urgent, urgent_params = _urgent(quiet)
        batch.execute(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, "
            "urgent, dedupe_key, detail, created_at) "
            "SELECT CAST(? AS INTEGER), r.user_id, ?, r.subject_id, r.kind, r.due_at, "
            f"{urgent}, ? || ':' || CAST(r.subject_id AS TEXT) || r.tail, r.detail, ? "
            "FROM (SELECT column1 AS n, column2 AS subject_id, column3 AS user_id, "
            "column4 AS kind, column5 AS due_at, column6 AS urgent, column7 AS tail, "
            f"column8 AS detail FROM (VALUES {values}) AS v) AS r "
            "WHERE r.subject_id IS NOT NULL ORDER BY r.n ON CONFLICT DO NOTHING",
            (team_id, subject, *urgent_params, subject, iso(now),
             *(v for n, (rid, p) in enumerate(rows)
               for v in (n, rid, p.user_id, p.rung.kind, iso(p.rung.due_at), int(p.rung.urgent),
                         p.key_tail or f":{p.rung.kind}:{p.user_id}",
                         json.dumps(p.detail or {}, ensure_ascii=False)))),
            if_new=if_new)

    @staticmethod
    async def cancel(tx: Tx, subject: str, subject_id: int, kind_prefix: str = "") -> None:
        """Drop the pending reminders of a record (all, or those whose kind starts so)."""
        await tx.execute(_CANCEL, (subject, subject_id, kind_prefix + "%"))

    @staticmethod
    def cancel_into(batch: Batch, subject: str, subject_id: int, *kind_prefixes: str,
                    if_new: Ref | None = None, unless: Read | None = None) -> None:
        """`cancel` in a batch (those whose kind starts with any of `kind_prefixes`; all
        without), before the batch plans the record's next ones (`if_new`: only if that
        update changed the record); `unless`: not when this SELECT finds a row."""
        prefixes = kind_prefixes or ("",)
        unless_sql, unless_params = (f" AND NOT EXISTS ({unless[0]})", unless[1]) if unless \
            else ("", ())
        batch.execute(
            "UPDATE reminders SET state = 'cancelled' WHERE subject = ? AND subject_id = ? "
            f"AND state = 'pending' AND ({' OR '.join('kind LIKE ?' for _ in prefixes)})"
            + unless_sql, (subject, subject_id, *(p + "%" for p in prefixes), *unless_params),
            if_new=if_new, sees_before=True)

    @staticmethod
    async def release_waiting(tx: Tx, user_id: int, when: datetime,
                              held_too: bool = False) -> None:
        """The person can be reached now: what waited for them falls due at `when`. On their
        first visit also what quiet hours held for a digest they never got (still in quiet
        hours, it is held again)."""
        await tx.execute(
            "UPDATE reminders SET state = 'pending', due_at = ? WHERE user_id = ? AND "
            "((state = 'pending' AND last_error LIKE ?) OR (? = 1 AND state = 'held'))",
            (iso(when), user_id, f"%{WAITING}", int(held_too)))

    async def due(self, now: datetime, limit: int = 1000,
                  claim_until: datetime | None = None) -> list[Reminder]:
        """Pending rows whose time has come (urgent ones first). Never 'sending' ones: a live
        process may be pushing them (see recover). Two index ranges (urgent, then the rest)
        rather than one sort of all due rows; the IN term repeats the partial index's WHERE
        so SQLite still uses reminders_due.

        With `claim_until`, the rows are this instance's until then: rows another instance
        claimed are passed over (on PostgreSQL `SKIP LOCKED` while it is still claiming them,
        its live claim after), so instances on one store share a backlog, not send it twice.
        Nothing due (the usual case) is found on the reader, with no write."""
        rows: list[Row] = []
        for urgent in (1, 0):
            rows += await self.db.fetchall(
                f"SELECT * FROM reminders WHERE {_DUE} ORDER BY due_at, id LIMIT ?",
                (urgent, iso(now), iso(now), limit - len(rows)))
            if len(rows) >= limit:
                break
        if claim_until is not None and rows:
            rows = await self._claim_batch(now, limit, claim_until)
        return [_reminder(r) for r in rows]

    async def _claim_batch(self, now: datetime, limit: int, until: datetime) -> list[Row]:
        rows: list[Row] = []
        async with self.db.tx() as tx:
            for urgent in (1, 0):
                claimed = await tx.fetchall(
                    "UPDATE reminders SET claimed_until = ? WHERE id IN (SELECT id FROM "
                    f"reminders WHERE {_DUE} ORDER BY due_at, id LIMIT ?{self.db.skip_locked})"
                    " RETURNING *", (iso(until), urgent, iso(now), iso(now), limit - len(rows)))
                # RETURNING gives no order: the scan's order is due time, then id.
                rows += sorted(claimed, key=lambda r: (r["due_at"], r["id"]))
                if len(rows) >= limit:
                    break
        return rows

    async def get(self, reminder_id: int) -> Reminder | None:
        row = await self.db.fetchone(*self.get_read(reminder_id))
        return _reminder(row) if row else None

    @staticmethod
    def get_read(reminder_id: int) -> Read:
        """`get` declared (a button's read, Router.button(reads=...))."""
        return "SELECT * FROM reminders WHERE id = ?", (reminder_id,)

    async def claim(self, reminder_id: int, until: datetime) -> bool:
        """Mark one row in flight until `until`; False if another scan got it or it was
        settled meanwhile. A 'sending' row is never claimed again while its claim lasts:
        only recover() (at start-up) or recover_expired() (its holder died) frees it."""
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE reminders SET state = 'sending', attempts = attempts + 1, "
                "claimed_until = ? WHERE id = ? AND state = 'pending'",
                (iso(until), reminder_id))
            return tx.rowcount > 0

    async def unclaim(self, ids: list[int]) -> None:
        """A stopping scan's rows it did not get to: any instance may take them at once."""
        marks = ", ".join("?" for _ in ids)
        await self.db.execute(f"UPDATE reminders SET claimed_until = NULL "
                              f"WHERE id IN ({marks}) AND state = 'pending'", ids)

    async def recover(self) -> int:
        """At start-up of the database's lease holder only: rows left 'sending' by a process
        that stopped mid-push go back to 'pending', marked as possibly sent already."""
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE reminders SET state = 'pending', last_error = ? WHERE state = 'sending'",
                (f"{MAYBE_SENT}: interrupted while sending",))
            return tx.rowcount

    async def recover_expired(self, now: datetime) -> int:
        """Rows whose sender's claim ran out (an instance died mid-push): back to 'pending',
        marked as possibly sent already, for any instance to send (the one possible repeat).
        Looked for on the reader first: usually there are none, and then nothing is written."""
        expired = ("state IN ('pending', 'sending') AND state = 'sending' "
                   "AND claimed_until < ?")
        if await self.db.fetchone(f"SELECT 1 FROM reminders WHERE {expired} LIMIT 1",
                                  (iso(now),)) is None:
            return 0
        async with self.db.tx() as tx:
            await tx.execute(
                f"UPDATE reminders SET state = 'pending', claimed_until = NULL, last_error = ? "
                f"WHERE {expired}", (f"{MAYBE_SENT}: its sender stopped while sending", iso(now)))
            return tx.rowcount

    async def settle(self, reminder_id: int, state: str, now: datetime,
                     error: str | None = None) -> None:
        await self.db.execute(
            "UPDATE reminders SET state = ?, sent_at = ?, last_error = ? WHERE id = ?",
            (state, iso(now) if state in ("sent", "digested") else None, error, reminder_id))

    async def retry_at(self, reminder_id: int, when: datetime, error: str) -> None:
        """Back to 'pending' at `when`; a possibly-sent mark survives a later plain error.
        A row already settled ('sent' ...) stays so: an error after the push must not
        send it again."""
        await self.db.execute(
            "UPDATE reminders SET state = 'pending', due_at = ?, claimed_until = NULL, "
            "last_error = CASE "
            "WHEN last_error LIKE ? || '%' AND ? NOT LIKE ? || '%' THEN ? || '; ' || ? "
            "ELSE ? END WHERE id = ? AND state IN ('pending', 'sending')",
            (iso(when), MAYBE_SENT, error, MAYBE_SENT, MAYBE_SENT, error, error, reminder_id))

    async def follow(self, ids: list[int], leader_id: int) -> str | None:
        """Rows folded into the row `leader_id` take its state and time (sent, held, retried
        or cancelled with it); noted so, never sent on their own. Returns that state."""
        marks = ", ".join("?" for _ in ids)
        async with self.db.tx() as tx:
            leader = await tx.fetchone(
                "SELECT state, due_at, sent_at, last_error FROM reminders WHERE id = ?",
                (leader_id,))
            if leader is None or leader["state"] == "sending":  # in flight: decided later
                return None
            # Still to send (retried, waiting for a first visit): its reason too, so the rows
            # are released and retried together; settled: which row carried them.
            note = (leader["last_error"] if leader["state"] == "pending"
                    else f"folded into reminder {leader_id}")
            await tx.execute(
                f"UPDATE reminders SET state = ?, due_at = ?, sent_at = ?, last_error = ?, "
                f"claimed_until = NULL WHERE id IN ({marks}) AND state = 'pending'",
                (leader["state"], leader["due_at"], leader["sent_at"], note, *ids))
        return str(leader["state"])

    async def snooze(self, user_id: int, reminder_id: int, until: datetime) -> Reminder | None:
        """Send this reminder again at `until` (only its recipient may snooze it): the row
        as changed, in one round trip (None: not theirs, or settled meanwhile)."""
        rows = await self.db.write_returning(
            "UPDATE reminders SET state = 'pending', due_at = ?, sent_at = NULL "
            "WHERE id = ? AND user_id = ? AND state IN ('sent', 'digested', 'pending', 'held') "
            "RETURNING *", (iso(until), reminder_id, user_id))
        return _reminder(rows[0]) if rows else None

    async def hold(self, reminder_id: int) -> None:
        """Quiet hours: keep it for the recipient's next morning digest."""
        await self.db.execute("UPDATE reminders SET state = 'held' WHERE id = ?", (reminder_id,))

    async def release_held_of_deactivated(self) -> int:
        """Rows held for the morning digest of a user deactivated since: that user gets no
        digest any more, so they go back to 'pending' and are forwarded to the lead."""
        held = "state = 'held' AND user_id IN (SELECT id FROM users WHERE active = 0)"
        if await self.db.fetchone(f"SELECT 1 FROM reminders WHERE {held} LIMIT 1") is None:
            return 0  # the usual case, read on the reader: no write per scan
        async with self.db.tx() as tx:
            await tx.execute(f"UPDATE reminders SET state = 'pending' WHERE {held}")
            return tx.rowcount

    async def held_users(self) -> set[int]:
        """Who has rows held for a digest (from reminders_held, migration 0034: only the held
        rows, not the table)."""
        rows = await self.db.fetchall("SELECT DISTINCT user_id FROM reminders "
                                      "WHERE state = 'held'")
        return {int(r[0]) for r in rows}

    async def release_held(self, user_id: int) -> int:
        """The user's held rows go back to 'pending' (still due: the next batch sends them)."""
        async with self.db.tx() as tx:
            await tx.execute("UPDATE reminders SET state = 'pending' "
                             "WHERE user_id = ? AND state = 'held'", (user_id,))
            return tx.rowcount

    async def held_for(self, user_id: int) -> list[Reminder]:
        rows = await self.db.fetchall(
            "SELECT * FROM reminders WHERE user_id = ? AND state = 'held' ORDER BY due_at, id",
            (user_id,))
        return [_reminder(r) for r in rows]
