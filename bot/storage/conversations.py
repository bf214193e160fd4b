"""The open form of each user, read and written on every step.

A step must not stall, nor lose the answer, while another process (e.g. a CLI import) holds
the database's write lock: a draft that cannot be written within the short quick wait is held
in memory, served from there, and written by a background task once the lock is free."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.storage.batch import Batch, Played, Ref
from bot.storage.db import Database, DatabaseBusy, from_iso, iso

log = logging.getLogger(__name__)

PUT = ("INSERT INTO conversations(user_id, form, token, state, started_at, updated_at) "
       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET form = excluded.form, "
       "token = excluded.token, state = excluded.state, updated_at = excluded.updated_at, "
       "started_at = excluded.started_at")
DELETE = "DELETE FROM conversations WHERE user_id = ?"
RETRY_PAUSE = 0.2  # seconds between write attempts when a wait fails at once
# Saved forms older than the memory are deleted at most this often, by the reminder scan,
# not by a save (`finished` reads only those within the memory anyway).
PRUNE_EVERY = timedelta(minutes=10)

Held = tuple[Any, ...] | None  # the row to write (PUT's parameters), or None: delete it


@dataclass
class FormState:
    """Where an open form stands. Stored as the same JSON object the previous, untyped
    version wrote, so a draft saved before an upgrade opens again unchanged."""

    values: dict[str, Any] = field(default_factory=dict)  # field name -> stored answer
    history: list[str] = field(default_factory=list)  # fields answered, in order (for back)
    skipped: list[str] = field(default_factory=list)
    editing: bool = False  # one field opened from the summary: back to the summary after it
    errors: int = 0  # invalid answers in a row at this step
    notices: dict[str, str] = field(default_factory=dict)  # shown once above a field's prompt
    step: str = ""  # a field name, or the summary / edit menu
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. the id of the entry being edited
    parked: dict[str, Any] | None = None  # set while parked: the message held meanwhile
    # Optional fields not asked because the sentence said all was well ('巡视 3号台区 无异常'):
    # the summary offers them as buttons instead.
    offered: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FormState:
        return cls(values=dict(data.get("values") or {}), history=list(data.get("history") or []),
                   skipped=list(data.get("skipped") or []), editing=bool(data.get("editing")),
                   errors=int(data.get("errors") or 0), notices=dict(data.get("notices") or {}),
                   step=str(data.get("step") or ""), meta=dict(data.get("meta") or {}),
                   parked=data.get("parked"), offered=list(data.get("offered") or []))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "values": self.values, "history": self.history, "skipped": self.skipped,
            "editing": self.editing, "errors": self.errors, "notices": self.notices,
            "step": self.step, "meta": self.meta}
        if self.parked is not None:  # absent unless parked, as before
            data["parked"] = self.parked
        if self.offered:  # absent unless offered, as before
            data["offered"] = self.offered
        return data


@dataclass
class Draft:
    """A form in progress: which form, its token (stamped into its buttons) and its state."""

    user_id: int
    form: str
    token: str
    state: FormState
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
        self._held: dict[int, Held] = {}  # written in arrival order once the lock is free
        self._flusher: asyncio.Task[None] | None = None
        # A held form being written in the background vs finish() of the same form: without
        # it, a save that won the race for the freed lock was followed by the held form's
        # write, and the saved form came back as open.
        self._flush_lock = asyncio.Lock()
        self._pruned: datetime | None = None  # finished_forms last pruned (prune)

    async def get(self, user_id: int) -> Draft | None:
        if user_id in self._held:
            return self.current(user_id, None)
        row = await self.db.fetchone("SELECT * FROM conversations WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        return draft_of(row["user_id"], row["form"], row["token"], row["state"],
                        row["started_at"], row["updated_at"])

    def current(self, user_id: int, stored: Draft | None) -> Draft | None:
        """The open form, given the one read from the file (a step reads it with the rest,
        bot.storage.steps): the one held in memory is newer than the file."""
        if user_id in self._held:
            held = self._held[user_id]
            return None if held is None else draft_of(*held)
        return stored

    async def put(self, draft: Draft) -> None:
        # A snapshot, so later changes to the Draft object do not leak into what is held.
        await self._write(draft.user_id, (
            draft.user_id, draft.form, draft.token,
            json.dumps(draft.state.to_json(), ensure_ascii=False),
            iso(draft.started_at), iso(draft.updated_at)))

    async def delete(self, user_id: int) -> None:
        await self._write(user_id, None)

    @property
    def held(self) -> int:
        """How many users' forms are waiting in memory for the write lock."""
        return len(self._held)

    async def _write(self, user_id: int, row: Held) -> None:
        if not self._held:  # while anything is held the lock is known taken: do not wait
            try:
                await self._store(user_id, row)
                return
            except DatabaseBusy:
                log.warning("database busy: holding forms in memory until the lock is free")
        self._hold(user_id, row)

    def _hold(self, user_id: int, row: Held) -> None:
        self._held[user_id] = row
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="conversations-flush")

    async def _store(self, user_id: int, row: Held) -> None:
        if row is None:
            await self.db.execute_quick(DELETE, (user_id,))
        else:
            await self.db.execute_quick(PUT, row)

    async def _flush(self) -> None:
        """Write what is held until nothing is; each attempt waits the quick wait."""
        while self._held:
            if not await self.flush_once():
                await asyncio.sleep(RETRY_PAUSE)
        log.info("database free again: held forms written")

    async def flush_once(self) -> bool:
        """One attempt at every held form; False if the lock was still taken."""
        for user_id, row in list(self._held.items()):
            async with self._flush_lock:
                if self._held.get(user_id, ...) is not row:
                    continue  # finished meanwhile (nothing to write) or replaced (next round)
                try:
                    await self._store(user_id, row)
                except DatabaseBusy:
                    return False
                except Exception:  # e.g. the user was deleted meanwhile: do not retry forever
                    log.exception("held form of user %s could not be written; dropped", user_id)
                if self._held.get(user_id, ...) is row:  # not replaced while we wrote it
                    del self._held[user_id]
        return True

    async def close(self) -> None:
        """At shutdown: a last attempt, then say plainly what could not be written."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        if self._held and not await self.flush_once():
            log.error("database still busy at shutdown: %d open forms were not written",
                      len(self._held))

    async def finish(self, draft: Draft, record_id: int | None, now: datetime,
                     batch: Batch | None = None, record: Ref | int | None = None) -> Played:
        """Close a saved form, remembering its token -> what it saved (a second press of
        保存 can then say so). With `batch` (the save's own writes, `record` the Ref of the
        record it inserts) in the same transaction, in one round trip: a crash can no longer
        leave a saved record with its form still open. Nothing is written if it fails."""
        batch = batch if batch is not None else Batch()
        batch.execute(DELETE, (draft.user_id,))
        batch.execute(
            "INSERT INTO finished_forms(token, user_id, form, record_id, finished_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(token) DO UPDATE SET "
            "user_id = excluded.user_id, form = excluded.form, "
            "record_id = excluded.record_id, finished_at = excluded.finished_at",
            (draft.token, draft.user_id, draft.form, record if record is not None
             else record_id, iso(now)))
        # A draft still held in memory (database was busy) must not be written back later,
        # nor one the background write has already taken up land after this delete.
        async with self._flush_lock:
            held = self._held.pop(draft.user_id, ...)
            try:
                return await self.db.write_batch(batch)
            except BaseException:
                if held is not ...:  # not closed: still the open form
                    self._hold(draft.user_id, held)
                raise

    async def prune(self, now: datetime, forget_before: datetime) -> None:
        """Saved forms older than the memory deleted, at most every PRUNE_EVERY (by the
        reminder scan: never a chat step's work)."""
        if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
            return
        await self.db.execute("DELETE FROM finished_forms WHERE finished_at < ?",
                              (iso(forget_before),))
        self._pruned = now

    async def finished(self, user_id: int, token: str, since: datetime) -> Finished | None:
        """The user's form with this token, if it was saved at or after `since`."""
        row = await self.db.fetchone(
            "SELECT form, record_id FROM finished_forms WHERE token = ? AND user_id = ? "
            "AND finished_at >= ?", (token, user_id, iso(since)))
        return None if row is None else Finished(row["form"], row["record_id"])


def draft_of(user_id: int, form: str, token: str, state: str, started_at: str,
             updated_at: str) -> Draft:
    return Draft(user_id, form, token, FormState.from_json(json.loads(state)),
                 from_iso(started_at),
                 from_iso(updated_at))
