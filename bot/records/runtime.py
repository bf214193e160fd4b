"""One runtime for records with a status and deadlines (complaints, arrears, outages, repairs).

A record type declares its store (SQL returning a typed record), its card, its status
transitions (from which states, the small form each asks, the button that offers it) and its
deadline ladders (soon / due / escalate, urgent or not). The runtime derives the rest: the
visibility check, the idempotent insert, status-guarded updates with reminder cancellation,
the card and opener buttons with the stale-button toast, the reminder wording and to-do items.
Real domain rules (medical households, prepaid meters, the 30-day law, outage checklists)
stay explicit code in the record's own module."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from bot.deadlines import (
    ESCALATE,
    OVERDUE,
    Deadline,
    Rule,
    RuleSet,
    due_after,
    halfway,
    is_overdue,
    next_working_start,
    working_hours_before,
)
from bot.events import Button, Outcome, Reply
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, SaveFn, WriteFn
from bot.forms.fields import Field, Invalid, ParseFn
from bot.forms.kinds import parse_past_time
from bot.records.common import (
    calendar,
    now_value,
    remaining,
    ruleset,
    show_time,
    step_calendar,
    when,
)
from bot.router import (
    ReminderKind,
    Router,
    TodoFn,
    TodoItem,
    TodoRead,
    any_one_id,
    by_id,
    feature_callback,
    one_id,
)
from bot.router import stale_reply as stale  # the one stale-button answer (features: rt.stale)
from bot.services import Ctx, Services
from bot.storage.batch import Batch, Ref
from bot.storage.batch import Read as BatchRead
from bot.storage.conversations import Draft
from bot.storage.db import Database, Read, Row, Tx, from_iso, iso
from bot.storage.reminders import LEADS_OF_TEAM, PlannedRung, Reminder, Reminders
from bot.textutil import after_keyword, normalize_input
from bot.visibility import Subject, may_see, scope
from bot.workcal import WorkCalendar

if TYPE_CHECKING:
    from bot.assistant import Assistant


class Record(Protocol):
    id: int
    team_id: int
    user_id: int
    owner: str  # the owner's name (reminders to the leads name them)
    status: str


R = TypeVar("R", bound=Record)


def from_row(cls: type[R], row: Row) -> R:
    """A typed record from a row: the dataclass's fields by name; `datetime` fields parsed
    (annotations are strings here, hence the name test)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = row[f.name]
        if value is not None and "datetime" in str(f.type):
            value = from_iso(value)
        elif isinstance(value, int) and str(f.type).startswith("float"):
            value = float(value)  # a whole number read back from JSON (Backend.fetch_many)
        values[f.name] = value
    return cls(**values)


# --- the store ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Store(Generic[R]):
    """The SQL of one record type. `select` ends where a WHERE clause may follow; its table
    alias is `alias` (columns team_id, user_id, status, form_token)."""

    cls: type[R]
    table: str
    select: str
    alias: str

    def by_id(self, rid: int) -> Read:
        return f"{self.select} WHERE {self.alias}.id = ?", (rid,)

    async def load(self, db: Database, rid: int) -> R | None:
        row = await db.fetchone_point(*self.by_id(rid))  # by key: on SQLite no hop
        return from_row(self.cls, row) if row else None

    async def visible(self, ctx: Ctx, rid: int) -> R | None:
        """The record if the user may see it: their own, or the team's for a lead or admin."""
        return self.seen_by(ctx, await self.load(ctx.services.db, rid))

    def seen_by(self, ctx: Ctx, rec: R | None) -> R | None:
        if rec is None or not may_see(ctx.user, Subject.RECORD, rec.team_id, rec.user_id):
            return None
        return rec

    async def open_for(self, ctx: Ctx, where: str, params: tuple[Any, ...] = (),
                       order: str = "") -> list[R]:
        """The records in the user's scope (the team for a lead) matching `where`."""
        return self.records(await ctx.services.db.fetchall(
            *self.open_read(ctx, where, params, order)))

    def open_read(self, ctx: Ctx, where: str, params: tuple[Any, ...] = (),
                  order: str = "") -> Read:
        """open_for declared, for a read run with others (a TodoRead's)."""
        mine, mine_params = scope(ctx.user, Subject.RECORD, self.alias)
        return f"{self.select} WHERE {mine} AND ({where}) {order}", (*mine_params, *params)

    def records(self, rows: list[Row]) -> list[R]:
        return [from_row(self.cls, r) for r in rows]

    async def insert_once(self, tx: Tx, token: str, columns: dict[str, Any]) -> tuple[int, bool]:
        """Insert unless this form token was saved already (a confirm processed twice after a
        crash before the draft closed): (id, inserted)."""
        existing = await tx.fetchone(f"SELECT id FROM {self.table} WHERE form_token = ?",
                                     (token,))
        if existing:
            return int(existing["id"]), False
        columns = {**columns, "form_token": token}
        marks = ", ".join("?" for _ in columns)
        rid = await tx.execute(f"INSERT INTO {self.table}({', '.join(columns)}) VALUES ({marks})",
                               tuple(columns.values()))
        return int(rid or 0), True

    def as_saved(self, rid: int, columns: dict[str, Any], **more: Any) -> R:
        """The record a batch just inserted, from the columns it wrote and `more` (its joined
        names, the columns left to the table's defaults that matter): the saved card's
        buttons need no read back. Fields in neither are None."""
        row = {**columns, **more, "id": rid}
        return from_row(self.cls, {f.name: row.get(f.name)  # type: ignore[arg-type]
                                   for f in dataclasses.fields(self.cls)})  # type: ignore[arg-type]

    def insert_into(self, batch: Batch, token: str, columns: dict[str, Any],
                    computed: Mapping[str, Read] | None = None) -> Ref:
        """insert_once as a batch's write (the 保存 step's, with the form's close): the id of
        the record this form token saved, inserted now or before. `computed`: columns whose
        value an SQL expression gives at the write (what the register says of a 户号 then),
        where a read before it would be one more round trip."""
        if not computed:
            return self.insert_rows_into(batch, [(token, columns)])[0]
        row = {**columns, "form_token": token}
        names = [*row, *computed]
        sql = (f"INSERT INTO {self.table}({', '.join(names)}) VALUES "
               f"({', '.join(['?'] * len(row) + [f'({e})' for e, _ in computed.values()])}) "
               "ON CONFLICT(form_token) DO NOTHING")
        return batch.insert(sql, (*row.values(), *(p for _, ps in computed.values() for p in ps)),
                            existing=(f"SELECT id FROM {self.table} WHERE form_token = ?",
                                      (token,)))

    def insert_rows_into(self, batch: Batch, rows: list[tuple[str, dict[str, Any]]]) -> list[Ref]:
        """insert_into for several records at once (form token, columns): one statement on
        PostgreSQL whatever their number, their ids in this order (Batch.insert_rows)."""
        return batch.insert_rows(self.table, "form_token",
                                 [{**columns, "form_token": token} for token, columns in rows])

    async def update(self, tx: Tx, rid: int, sets: dict[str, Any], guard: str = "",
                     params: tuple[Any, ...] = ()) -> bool:
        """UPDATE ... WHERE id = ? AND guard; True when a row changed (the guard held, e.g.
        the status was still the one the user saw: two taps, or two people, change it once)."""
        await tx.execute(*self._update(rid, sets, guard, params))
        return await changed(tx)

    def update_into(self, batch: Batch, rid: int, sets: dict[str, Any], guard: str = "",
                    params: tuple[Any, ...] = (), *, needed: bool = False,
                    declined: str | None = None,
                    declined_when: tuple[str, Sequence[Any]] | None = None, **why: Any) -> Ref:
        """`update` as a batch's write: its Ref changed only if the guard held (`needed`:
        else nothing of the batch is written, bot.storage.batch.Unchanged; `declined`,
        `declined_when` and `why` as Batch.update's)."""
        return batch.update(*self._update(rid, sets, guard, params), rid, needed=needed,
                            declined=declined, declined_when=declined_when, **why)

    def _update(self, rid: int, sets: dict[str, Any], guard: str,
                params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        assignments = ", ".join(f"{k} = ?" for k in sets)
        return (f"UPDATE {self.table} SET {assignments} WHERE id = ?"
                + (f" AND {guard}" if guard else ""), (*sets.values(), rid, *params))


async def changed(tx: Tx) -> bool:
    return tx.rowcount > 0


# --- deadline ladders ---------------------------------------------------------------------
@dataclass(frozen=True)
class Rung:
    """One reminder of a ladder: `label` (soon, due, half, escalate ...) at `at`, to the
    owner or to the team's leads, urgent (through quiet hours) or not."""

    label: str
    at: datetime
    to_leads: bool = False
    urgent: bool = False
    skip_if_past: bool = True  # a "soon" already past at planning is dropped; "due" is kept
    only_if: bool | None = None  # planned only if / unless the plan's `condition` (in SQL)


async def plan_ladder(tx: Tx, subject: str, rid: int, team_id: int, owner_id: int, step: str,
                      rungs: list[Rung], lead_ids: list[int], now: datetime,
                      round_: str = "") -> None:
    """Plan `step.label` reminders; a rung already due is planned for now. Planning twice
    plans once; `round_` names a new round of the same step (a record whose state went back,
    whose first round was cancelled) so that it is planned again."""
    for rung in rungs:
        if rung.skip_if_past and rung.at <= now:
            continue
        for user_id in (lead_ids if rung.to_leads else [owner_id]):
            kind = f"{step}.{rung.label}"
            await Reminders.plan(tx, team_id=team_id, user_id=user_id, subject=subject,
                                 subject_id=rid, kind=kind, due_at=max(rung.at, now), now=now,
                                 urgent=rung.urgent,
                                 key=f"{subject}:{rid}:{kind}:{user_id}:{round_}"
                                 if round_ else None)


def plan_ladder_into(batch: Batch, subject: str, rid: Ref, team_id: int, owner_id: int,
                     step: str, rungs: list[Rung], now: datetime) -> None:
    """plan_ladder for a record the batch inserts; the leads are the team's but the owner."""
    plan_ladders_into(batch, subject, rid, team_id, owner_id, [(step, rungs)], now)


def plan_ladders_into(batch: Batch, subject: str, rid: Ref | int, team_id: int, owner_id: int,
                      ladders: Sequence[tuple[str, list[Rung]]], now: datetime, *,
                      round_: str = "", leads_but: Sequence[int] | None = None,
                      if_new: Ref | None = None,
                      condition: tuple[str, tuple[Any, ...]] | None = None) -> None:
    """Several steps' ladders (a complaint's contact and reply) as ONE statement, in the
    order plan_ladder would write them: on PostgreSQL a batch writing a table twice runs
    statement by statement, a round trip each (bot.storage.batch). For a record the batch
    inserts (`rid` a Ref) or one it changes (`if_new`: the Ref of its guarded update); the
    leads are the team's but `leads_but` (the owner by default). `condition`: SQL deciding
    the rungs marked `only_if` as the write finds it (Reminders.plan_into)."""
    Reminders.plan_into(batch, [PlannedRung(f"{step}.{r.label}", max(r.at, now), r.urgent,
                                            r.to_leads, r.only_if)
                                for step, rungs in ladders for r in rungs
                                if not (r.skip_if_past and r.at <= now)],
                        team_id=team_id, owner_id=owner_id, subject=subject, subject_id=rid,
                        now=now, round_=round_, leads_but=leads_but, if_new=if_new,
                        condition=condition)


def working_day_rungs(start: datetime, due: datetime, rules: RuleSet,
                      cal: WorkCalendar) -> list[Rung]:
    """The ladder of a working-day commitment (an answer, a reply, a connection): half-way,
    the rule set's working hours before and at `due` to the owner; at `due` to the leads."""
    hours = rules.working_hours
    return [Rung("half", halfway(start, due, cal, hours)),
            Rung("soon", working_hours_before(
                due, rules.reminders.complaint_before_due_working_hours, cal, hours)),
            Rung("due", due, skip_if_past=False),
            Rung("escalate", due, to_leads=True, skip_if_past=False)]


@dataclass(frozen=True)
class Planning:
    """What deadlines in working days and their ladders need (the rule set, the calendar);
    the leads to escalate to are read by the batch that plans them."""

    rules: RuleSet
    cal: WorkCalendar

    @classmethod
    async def for_writes(cls, ctx: Ctx) -> Planning:
        """For a save declared as writes (`plan_ladders_into`): the calendar as of the
        step's read."""
        return cls(ruleset(ctx.services), await step_calendar(ctx))

    def due(self, start: datetime, rule: Rule) -> Deadline:
        return due_after(start, rule, self.cal, self.rules.working_hours)

    def ladder(self, step: str, start: datetime, due: datetime) -> tuple[str, list[Rung]]:
        """`step`'s working-day ladder, for plan_ladders_into (a save declared as writes)."""
        return step, working_day_rungs(start, due, self.rules, self.cal)


HALFWAY = "half"


def ladder_text(ctx: Ctx, label: str, item: str, what: str, due: datetime, owner: str,
                drop_late_soon: bool = True) -> str | None:
    """The wording of a ladder reminder; None for a 'soon' that arrives after its deadline
    (the bot was down) when `drop_late_soon`: the 'due' one says it all."""
    if label in ESCALATE:
        return ctx.t("reminder.escalate", owner=owner, item=item, what=what,
                     due=when(ctx, due), late=remaining(ctx, due))
    if label in OVERDUE:
        return ctx.t("reminder.overdue", item=item, what=what, due=when(ctx, due),
                     late=remaining(ctx, due))
    if drop_late_soon and is_overdue(due, ctx.now):
        return None
    if label == HALFWAY and not is_overdue(due, ctx.now):
        # Worded apart from "soon": the two follow each other and must not read the same.
        return ctx.t("reminder.half", item=item, what=what, due=when(ctx, due),
                     left=remaining(ctx, due))
    return ctx.t("reminder.soon", item=item, what=what, due=when(ctx, due),
                 left=remaining(ctx, due))


@dataclass(frozen=True)
class Ladder:
    """A deadline step of a record type: reminders `step.label` (planned with plan_ladder)
    are worded from the record as it is now and dropped once `done`; the reminder offers
    the open button and the transitions `actions`."""

    step: str
    what: str  # locale key naming the step ("首次联系客户")
    due: Callable[[Any], datetime | None]
    done: Callable[[Any], bool]
    actions: tuple[str, ...]
    drop_late_soon: bool = True


# Whether the team (first parameter) has a lead other than the person (second), as
# other_leads asks it: a one-value read for a save's batch (bot.storage.batch.Batch.read).
HAS_OTHER_LEAD = f"SELECT EXISTS (SELECT 1 FROM users u WHERE {LEADS_OF_TEAM} AND u.id <> ?)"
# The same but for two people (the one acting and the record's owner): team, id, id.
HAS_THIRD_LEAD = (f"SELECT EXISTS (SELECT 1 FROM users u WHERE {LEADS_OF_TEAM} "
                  "AND u.id NOT IN (?, ?))")


async def other_leads(services: Services, team_id: int, *exclude: int) -> list[int]:
    """The team's leads to escalate to, never the person who is acting or owns the record."""
    return [u.id for u in await services.people.leads_of(team_id, *exclude)]


# --- transitions and the card -------------------------------------------------------------
Allowed = Callable[[Ctx, Any], bool]
Act = Callable[[Ctx, Any], Awaitable[Outcome]]
ActOnId = Callable[[Ctx, int], Awaitable[Outcome]]


@dataclass(frozen=True)
class Transition:
    """A status change offered as a button (-|action|ID): either a small form (`form`,
    opened under the opener prefix `opener` with the heading `heading`) or a one-tap `run`.
    `allowed`: the states it leaves, or a predicate on the record now; `refuse`: a domain
    rule that may refuse with a reason shown on the card."""

    action: str
    label: str
    allowed: tuple[str, ...] | Allowed
    form: FormSpec | None = None
    opener: str = ""
    heading: str = ""
    refuse: Callable[..., Awaitable[str | None]] | None = None
    # `refuse` needs the card's reads (RecordType.card_reads): its opener reads them with the
    # record and hands them to it as `read=` (a medical household, a lead to hand it to).
    refuse_reads: bool = False
    run: Act | None = None
    # A one-tap change given the record's id, not the record: it reads nothing first, its
    # write guarded in SQL and what the reply shows read with it (the step's read and one).
    run_on_id: ActOnId | None = None
    intro: Callable[[Ctx, Any], str] | None = None  # a line under the heading (the limits)
    # What `refuse` or `run` reads besides the record, by its id: read with the step's read
    # (Router.button(reads=...)), so that opening the form is the step's read and its write.
    reads: Callable[[Ctx, int], list[Read]] | None = None
    feature: str = ""  # the owning feature's router name, set when the record type registers

    def allows(self, ctx: Ctx, rec: Record) -> bool:
        if isinstance(self.allowed, tuple):
            return rec.status in self.allowed
        return self.allowed(ctx, rec)

    def button(self, ctx: Ctx, rid: int) -> Button:
        return Button(ctx.t(self.label), feature_callback(self.feature, self.action, rid))


# (ctx, record, heading); a record type with `card_reads` is also given their rows, as
# `read=` (a list per read, in order).
CardFn = Callable[..., Awaitable[Outcome]]
CardReads = Callable[[Ctx, int], list[Read]]
PrefillFn = Callable[[Ctx, str], Awaitable[tuple[dict[str, Any], dict[str, str]]]]
OtherFn = Callable[[Ctx, Reminder, Any], Awaitable[Reply | None]]


@dataclass
class RecordType(Generic[R]):
    """One declared record type; `register(router)` wires its buttons and openers."""

    subject: str
    store: Store[R]
    open_action: str  # the global button that shows the card
    not_found: str
    meta_key: str  # the action forms' meta carries the record id under this name
    title: Callable[[Ctx, R], str]  # "投诉工单 #3（张先生）": headings, reminders
    render_card: CardFn
    transitions: tuple[Transition, ...] = ()
    # What the card shows besides the record (a checklist, whether a lead can take it up):
    # SELECTs by the record's id, read with the record in one round trip (Backend.fetch_many,
    # as /todo's TodoRead), so that a card is the step's read and one more (issue #12).
    card_reads: CardReads | None = None
    open_label: str = "btn.open_item"
    # Registering: /command and a sentence (group 2 = the rest) open `form`, prefilled.
    form: FormSpec | None = None
    command: str = ""
    intent: re.Pattern[str] | None = None
    prefill: PrefillFn | None = None
    # Reminders: the deadline ladders, other kinds, and what /todo and the digest list.
    ladders: tuple[Ladder, ...] = ()
    other_reminders: OtherFn | None = None
    todo_items: TodoFn | TodoRead | None = None
    after_sent: Callable[[Services, Reminder, datetime], Awaitable[None]] | None = None
    describe: Callable[[Ctx, Reminder], Awaitable[str]] | None = None
    router: Router = dataclasses.field(default_factory=Router, repr=False)  # set by register

    def register(self, router: Router) -> RecordType[R]:
        """Declare this record type's forms, buttons, openers and reminders on `router`."""
        self.router = router
        self.transitions = tuple(dataclasses.replace(t, feature=router.name)
                                 for t in self.transitions)
        # Each button below reads its record first: read with the step's read (issue #12),
        # and the card's with it where the button shows the card.
        router.button(self.open_action, reads=any_one_id(self.card_read))(self._open_card)
        if self.form is not None:
            router.form(self.form)
        if self.command:
            router.commands[self.command] = self._command
        if self.intent is not None:
            router.intents.append(self._intent)
            router.request_patterns.append(self.intent)
        router.reminder_kind(self.subject, ReminderKind(
            render=self.render, after_sent=self.after_sent, todo=self.todo_items,
            describe=self.describe or self._describe))
        for t in self.transitions:
            if t.form is not None:
                router.form(t.form)
                router.openers[t.opener] = self._opener(t)
                router.opener_button(t.action, t.opener,
                                     reads=self._reads_of(t.reads, card=t.refuse_reads))
            elif t.run is not None:
                self.on_tap(t.action, t.run, t.reads)
            elif t.run_on_id is not None:
                router.buttons[router.action(t.action)] = by_id(t.run_on_id)
        return self

    def on_tap(self, action: str, run: Act,
               reads: Callable[[Ctx, int], list[Read]] | None = None) -> None:
        """A one-tap button -|<feature>.action|ID acting on a record the user may see (the
        action re-checks the state: a stale card may offer what is no longer allowed);
        `reads`: what `run` reads besides the record (Transition.reads)."""
        async def handler(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
            if not arg.isdigit():
                return stale(ctx)
            rec = await self.store.visible(ctx, int(arg))
            return await run(ctx, rec) if rec else Outcome().add(ctx.t(self.not_found))
        self.router.button(action, reads=self._reads_of(reads))(handler)

    def _reads_of(self, more: Callable[[Ctx, int], list[Read]] | None = None, card: bool = False,
                  ) -> Callable[[Ctx | None, tuple[int, ...]], list[Read]]:
        """What a button about one record reads first (ButtonReads): the record (`card`: with
        its card's reads, as an opener with `refuse_reads` reads them), and `more` (what a
        transition's refusal or run reads besides, for a person seen before)."""
        record = any_one_id(self.card_read if card else
                            lambda ctx, rid: [self.store.by_id(rid)])
        besides = one_id(more) if more is not None else None
        return lambda ctx, ids: [*record(ctx, ids), *(besides(ctx, ids) if besides else ())]

    def card_read(self, ctx: Ctx | None, rid: int) -> list[Read]:
        """What the card of record `rid` reads: the record and its `card_reads` (those of
        the person, when known)."""
        return [self.store.by_id(rid), *(self.card_reads(ctx, rid)
                                         if self.card_reads and ctx is not None else ())]

    def action(self, action: str) -> Transition:
        return next(t for t in self.transitions if t.action == action)

    async def _command(self, app: Assistant, ctx: Ctx, draft: Draft | None,
                       arg: str) -> Outcome:
        assert self.form is not None
        arg = after_keyword(arg)
        if draft is None and self.prefill is not None and arg:
            values, notices = await self.prefill(ctx, arg)
            return await app.engine.start(ctx, self.form.name, values or None, notices)
        return await app.open_form(ctx, draft, self.form.name)

    async def _intent(self, app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
        m = self.intent.match(normalize_input(text)) if self.intent else None
        return None if m is None else await self._command(app, ctx, None, m.group(2))

    async def render(self, ctx: Ctx, r: Reminder) -> Reply | None:
        """A due reminder worded from the record as it is now; None once settled."""
        rec = await self.store.load(ctx.services.db, r.subject_id)
        if rec is None:
            return None
        step, _, label = r.kind.partition(".")
        ladder = next((lad for lad in self.ladders if lad.step == step), None)
        if ladder is None:
            return await self.other_reminders(ctx, r, rec) if self.other_reminders else None
        due = ladder.due(rec)
        if due is None or ladder.done(rec):
            return None
        text = ladder_text(ctx, label, self.title(ctx, rec), ctx.t(ladder.what), due, rec.owner,
                           ladder.drop_late_soon)
        return Reply(text, [[self.open_button(ctx, rec.id),
                             *(self.action(a).button(ctx, rec.id) for a in ladder.actions)]]) \
            if text else None

    async def _describe(self, ctx: Ctx, r: Reminder) -> str:
        """The record a reminder is about, by its title (when the type names none itself)."""
        rec = await self.store.load(ctx.services.db, r.subject_id)
        return self.title(ctx, rec) if rec else ctx.t(self.not_found)

    def open_button(self, ctx: Ctx, rid: int, label: str | None = None) -> Button:
        return Button(label or ctx.t(self.open_label), self.router.callback(self.open_action,
                                                                            rid))

    def saved_buttons(self, ctx: Ctx, rid: int) -> list[list[Button]]:
        return [[self.open_button(ctx, rid)]]

    def saved(self, ctx: Ctx, rid: int, text: str) -> Saved:
        """What a saved form answers: the text, and the button that opens the record."""
        return Saved(text, self.saved_buttons(ctx, rid), record_id=rid)

    async def allowed(self, ctx: Ctx, rec: R,
                      refusals: Mapping[str, str | None] | None = None) -> list[Button]:
        """The transitions the card offers: only those allowed in the current state and not
        refused by a domain rule. `refusals`: a transition's refusal (by action) known
        already, e.g. read with the batch that saved the record."""
        known = refusals or {}
        out = []
        for t in self.transitions:
            if not t.allows(ctx, rec):
                continue
            refused = (known[t.action] if t.action in known
                       else await t.refuse(ctx, rec) if t.refuse is not None else None)
            if refused is None:
                out.append(t.button(ctx, rec.id))
        return out

    async def card(self, ctx: Ctx, rid: int, heading: str | None = None) -> Outcome:
        if self.card_reads is None:
            rec = await self.store.visible(ctx, rid)
            return (Outcome().add(ctx.t(self.not_found)) if rec is None
                    else await self.render_card(ctx, rec, heading))
        rec, read = await self.visible_with(ctx, rid)
        if rec is None:
            return Outcome().add(ctx.t(self.not_found))
        return await self.render_card(ctx, rec, heading, read=read)

    async def card_of(self, ctx: Ctx, rec: R, heading: str | None = None,
                      shown: Sequence[BatchRead] | None = None) -> Outcome:
        """The card of a record in hand (as read and just changed, not read back): only its
        `card_reads` are read, in one round trip (none without); `shown`: they were read
        with the change's write (`card_reads_into`)."""
        if self.card_reads is None:
            return await self.render_card(ctx, rec, heading)
        read = ([r.value for r in shown] if shown is not None else
                await ctx.services.db.fetch_many_point(self.card_reads(ctx, rec.id)))
        return await self.render_card(ctx, rec, heading, read=read)

    def card_reads_into(self, batch: Batch, ctx: Ctx, rid: int) -> list[BatchRead] | None:
        """The `card_reads` as reads of a one-tap change's batch, for `card_of(shown=...)`:
        its card in the same round trip as its write. On PostgreSQL they may see the
        database as before the batch: for card reads of what the batch does not write."""
        if self.card_reads is None:
            return None
        return [batch.read_rows(sql, params) for sql, params in self.card_reads(ctx, rid)]

    async def visible_with(self, ctx: Ctx, rid: int,
                           *more: Read) -> tuple[R | None, list[list[Row]]]:
        """The record if the user may see it, and the rows of its `card_reads` (then of
        `more`), in one round trip."""
        found, *read = await ctx.services.db.fetch_many_point([*self.card_read(ctx, rid), *more])
        return self.store.seen_by(ctx, self.store.records(found)[0] if found else None), read

    async def record(self, ctx: Ctx, meta: dict[str, Any]) -> R:
        """The record an action form is about, re-read at save time."""
        rec = await self.store.visible(ctx, int(meta[self.meta_key]))
        if rec is None:
            raise Invalid(self.not_found)
        return rec

    async def kept(self, ctx: Ctx, meta: dict[str, Any]) -> R:
        """The record an action form is about as it was when the form opened (kept with the
        form): a save declared as writes reads nothing (issue #12), its writes guarded in SQL
        on what may have changed since (the status, a time not yet set). A form opened before
        the record was kept with it reads it."""
        rec = await self.seen(ctx, meta)
        if rec is None:
            raise Invalid(self.not_found)
        return rec

    async def seen(self, ctx: Ctx, meta: Mapping[str, Any]) -> R | None:
        """`kept`, or None where the user may not see it (a form step's check)."""
        row = meta.get(KEPT)
        if not isinstance(row, dict):
            rid = meta.get(self.meta_key)
            return None if rid is None else await self.store.visible(ctx, int(rid))
        rec = from_row(self.store.cls, row)  # type: ignore[arg-type]
        return rec if may_see(ctx.user, Subject.RECORD, rec.team_id, rec.user_id) else None

    async def _open_card(self, app: Assistant, ctx: Ctx, draft: Draft | None,
                         arg: str) -> Outcome:
        return await self.card(ctx, int(arg)) if arg.isdigit() else stale(ctx)

    def _opener(self, t: Transition) -> Callable[[Assistant, Ctx, int], Awaitable[Outcome]]:
        async def open_(app: Assistant, ctx: Ctx, rid: int) -> Outcome:
            # A refusal that needs the card's reads has them read with the record (one
            # round trip), and the card it refuses on is shown from them.
            rec, read = (await self.visible_with(ctx, rid) if t.refuse_reads
                         else (await self.store.visible(ctx, rid), None))
            if rec is None:
                return Outcome().add(ctx.t(self.not_found))
            reason = None if t.refuse is None else await (
                t.refuse(ctx, rec) if read is None else t.refuse(ctx, rec, read=read))
            if reason is not None or not t.allows(ctx, rec) or t.form is None:
                # also a forged or stale button: say why on the card
                return await (self.card(ctx, rid, reason) if read is None
                              else self.render_card(ctx, rec, reason, read=read))
            heading = ctx.t(t.heading, item=self.title(ctx, rec))
            if t.intro is not None:
                heading += "\n" + t.intro(ctx, rec)
            return await app.engine.start(ctx, t.form.name, meta={
                self.meta_key: rid, KEPT: kept_row(rec)}, heading=heading)
        return open_

    def todo_item(self, ctx: Ctx, rec: R, due: datetime, text: str, label: str, *,
                  overdue: bool | None = None, urgent: bool = False, escalates: bool = True,
                  decision: bool = False) -> TodoItem:
        """A to-do line; overdue by the one definition unless the type says otherwise.
        `escalates`: this step's ladder tells the leads at due (most do); `decision`: only a
        lead can settle it. Either puts it among the decisions waiting for the lead."""
        late = is_overdue(due, ctx.now) if overdue is None else overdue
        return TodoItem(due=due.astimezone(ctx.tz), text=text, urgent=urgent,
                        button=self.open_button(ctx, rec.id, label), overdue=late,
                        owner=rec.owner, owner_id=rec.user_id,
                        for_lead=decision or (escalates and late))


KEPT = "record"  # an action form's meta: the record as the opener read it (RecordType.kept)


def kept_row(rec: Record) -> dict[str, Any]:
    """A record as JSON for a form's meta (times as stored), read back with from_row."""
    return {k: iso(v) if isinstance(v, datetime) else v
            for k, v in dataclasses.asdict(rec).items()}  # type: ignore[call-overload]


def on_time(ctx: Ctx, done: datetime, due: datetime | None) -> str:
    return ctx.t("deadline.on_time" if due is None or done <= due else "deadline.late")


def sep(ctx: Ctx) -> str:
    return "：" if ctx.locale == "zh_CN" else ": "


def field_line(ctx: Ctx, key: str, value: str) -> str:
    return ctx.t(key) + sep(ctx) + value


def deadline_line(ctx: Ctx, key: str, due: datetime, done: datetime | None,
                  done_key: str, judge: bool = False) -> str:
    """'答复期限：… · 已于 … 完成' (judged on time or late if `judge`), or the time left."""
    if done is None:
        state = remaining(ctx, due)
    else:
        state = ctx.t(done_key, when=when(ctx, done)) + (on_time(ctx, done, due) if judge else "")
    return field_line(ctx, key, when(ctx, due)) + " · " + state


def time_field(name: str, label: str, prompt: str, parse: ParseFn = parse_past_time,
               hint: str | None = None) -> Field:
    """A moment asked in a form, with the 现在 quick answer (the time kind's)."""
    return kinds.time(name, label, prompt, parse=parse, show=show_time, hint=hint)


def action_form(name: str, save: SaveFn | None, *fields: Field,
                write: WriteFn | None = None) -> FormSpec:
    """The small form a transition asks (title `form.<name>.title`), 现在 as a quick answer;
    declared on the router with the transition that asks it. `write`: its save declared as
    writes (from the record as kept with the form, RecordType.kept)."""
    return FormSpec(name=name, title=f"form.{name}.title", fields=fields, save=save,
                    quick={"now": now_value}, write=write)


def daily_while_overdue(subject: str) -> Callable[[Services, Reminder, datetime],
                                                  Awaitable[None]]:
    """A record type's `after_sent`: while a working-day deadline is overdue, remind the
    owner (and the leads, after an escalation) again once a working day at 09:00 or the
    start of work, until the ladder's step is done (its reminders are then cancelled)."""
    async def after_sent(services: Services, r: Reminder, now: datetime) -> None:
        step, label = r.kind.split(".", 1)
        if label not in (*OVERDUE, *ESCALATE):
            return
        rules = ruleset(services)
        tz = rules.working_hours.zone
        nxt = next_working_start(now.astimezone(tz) + timedelta(hours=12),
                                 await calendar(services), rules.working_hours)
        nxt = nxt.replace(hour=max(nxt.hour, 9), minute=0) if nxt.time() < time(9) else nxt
        repeat = "overdue" if label in OVERDUE else "overdue_lead"
        async with services.db.tx() as tx:
            await Reminders.plan(tx, team_id=r.team_id, user_id=r.user_id, subject=subject,
                                 subject_id=r.subject_id, kind=f"{step}.{repeat}", due_at=nxt,
                                 now=now, key=f"{subject}:{r.subject_id}:{step}.{repeat}:"
                                 f"{r.user_id}:{nxt.date().isoformat()}")
    return after_sent
