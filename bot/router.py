"""How a feature plugs into the core: one `Router` per feature holds its forms, commands,
buttons, free-text intents, record openers, reminders and periodic jobs. The composition
root (bot.features) includes the feature routers in an explicit order, which is also the
order free text is offered to the features' intents."""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.forms.engine import FormSpec
    from bot.services import Ctx, Services
    from bot.storage.conversations import Draft
    from bot.storage.db import Database, Read, Row
    from bot.storage.reminders import Reminder

# The module whose build_router() lists the features. Named, not imported, so the core never
# depends on a feature (the Django ROOT_URLCONF pattern); tests and tools may pass a router.
COMPOSITION_ROOT = "bot.features"

# (assistant, ctx, open draft or None, argument) -> outcome
HandlerFn = Callable[["Assistant", "Ctx", "Draft | None", str], Awaitable[Outcome]]
# (the person as last seen on this chat, the ids a button carries) -> the SELECTs its handler
# will run first: read with the step's own read, in one round trip (issue #12), and served to
# the handler by the store (bot.storage.db.Prefetched). Only a button whose data is ids (12,
# 3:7) declares any; a read declared but not run costs nothing but itself. The person is None
# for a chat not seen since the start: then only reads that need nobody's scope.
ButtonReads = Callable[["Ctx | None", tuple[int, ...]], "Sequence[Read]"]
# (assistant, ctx, text) -> outcome, or None when the text is not this feature's
IntentFn = Callable[["Assistant", "Ctx", str], Awaitable[Outcome | None]]
# (the person as last seen on this chat, the text typed) -> the SELECTs the feature's intent
# will run first for that text (none for text not its own): read with the step's own read,
# as ButtonReads are (issue #12: a typed step whose change depends on what it reads is then
# that read and one write). Only for a person seen since the start.
TextReads = Callable[["Ctx", str], "Sequence[Read]"]
# (assistant, ctx, record id) -> outcome that opens a form about that record
OpenerFn = Callable[["Assistant", "Ctx", int], Awaitable[Outcome]]
# Jobs run on every reminder scan (e.g. the Monday report): (services, push, now) -> sent.
# `push(user_id, reply)` delivers like a reminder; a job keeps itself once-only (job_runs).
# (ctx, text) -> whether typed text inside a form is a new request of this feature's, where a
# pattern alone cannot tell (a log sentence naming an area but no work done).
RequestFn = Callable[["Ctx", str], Awaitable[bool]]
PushFn = Callable[[int, Reply], Awaitable[None]]
PeriodicFn = Callable[["Services", PushFn, datetime], Awaitable[int]]
# (ctx, record id) -> buttons a feature adds under another feature's saved record (e.g. 转为隐患
# under a work log): the card's owner names its card, the adding feature stays unknown to it.
# (ctx, record id, the answers of the form that has just saved it or None, the rows of its
# declared reads or None when just saved) -> buttons
CardButtonsFn = Callable[["Ctx", int, Mapping[str, Any] | None, "list[list[Row]] | None"],
                         Awaitable[list[Button]]]
# (ctx, record id) -> the SELECTs those buttons need, read with the card's own (issue #12)
CardButtonReads = Callable[["Ctx", int], "list[Read]"]
# A photo (its reference and caption) or a location sent with no form open.
LooseMediaFn = Callable[["Ctx", "str | None", "str | None", "tuple[float, float] | None"],
                        Awaitable[Outcome]]
# A file sent in chat: (file name, bytes) -> whether it is this reader's (by its header row),
# and (ctx, file name, bytes) -> what the reader makes of it.
SniffFn = Callable[[str, bytes], Awaitable[bool]]
FileHandlerFn = Callable[["Ctx", str, bytes], Awaitable[Outcome]]


@dataclass(frozen=True)
class FileReader:
    """A feature that reads files sent in chat (an arrears list, a line-loss export)."""

    kinds: tuple[str, ...]  # file name endings it reads, lower case without the dot
    sniff: SniffFn
    handle: FileHandlerFn
    # A locale key: one line saying which file this is, for the answer to a file no reader
    # takes ("营销系统导出的欠费清单（XLSX/CSV）").
    describe: str


def stale_reply(ctx: Ctx) -> Outcome:
    """A button whose data no longer fits what it asks (old, forged or cut short)."""
    return Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))


def by_id(show: Callable[[Ctx, int], Awaitable[Outcome]]) -> HandlerFn:
    """A button `-|<feature>.<action>|ID` that shows record ID (stale unless ID is a number)."""
    async def handler(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
        return await show(ctx, int(arg)) if arg.isdigit() else stale_reply(ctx)
    return handler


def opens(prefix: str) -> HandlerFn:
    """A button `-|<feature>.<action>|ID` that opens opener `prefix` for record ID, asking
    first if another form is open."""
    async def handler(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
        if not arg.isdigit():
            return stale_reply(ctx)
        return await app.open_form(ctx, draft, f"{prefix}{arg}")
    return handler


@dataclass(frozen=True)
class TodoItem:
    due: datetime
    text: str
    button: Button
    overdue: bool = False
    urgent: bool = False
    owner: str = ""  # whose item it is: a lead's list names them
    owner_id: int | None = None
    # Waiting for a lead: a decision only a lead takes, or an overdue item the ladder has
    # escalated to the leads. A lead's list starts with these (not the lead's own).
    for_lead: bool = False
    # The morning digest names an item with a key once only (e.g. a visit due: once per
    # 走访周期, the key naming the customer and the cycle); "" = every morning it is open.
    digest_key: str = ""


TodoFn = Callable[["Ctx"], Awaitable[list[TodoItem]]]


@dataclass(frozen=True)
class TodoRead:
    """A kind's /todo items declared in two halves, so that the core reads every kind's rows
    in ONE round trip (issue #12: one read per kind was ~20 per /todo): `reads` the SELECTs
    it needs, `word` its items from their rows (one list per read, in the same order)."""

    reads: Callable[[Ctx], Sequence[Read]]
    word: Callable[[Ctx, list[list[Row]]], Awaitable[list[TodoItem]]]


@dataclass(frozen=True)
class ReminderKind:
    """How reminders about one kind of record are worded and what follows them."""

    # The message for a due reminder, from the record as it is now; None = settled, drop it.
    render: Callable[[Ctx, Reminder], Awaitable[Reply | None]]
    # Plan the next occurrence of a repeating reminder (overdue daily, follow-ups).
    after_sent: Callable[[Services, Reminder, datetime], Awaitable[None]] | None = None
    # Open items of this kind for /todo and the morning digest; declared (TodoRead), they
    # are read with the other kinds' in one round trip.
    todo: TodoFn | TodoRead | None = None
    # One line naming the record (for escalations and the digest).
    describe: Callable[[Ctx, Reminder], Awaitable[str]] | None = None
    # Offer the snooze buttons under it (not under a one-off notice that needs no action).
    snoozable: bool = True


# A report's person in SQL: an expression for their id and its parameters (ReportScope.person).
Person = tuple[str, tuple[Any, ...]]
# An active member of the team by name (the lowest id if two share it, as the reports'
# name-finding picks): team id, name.
PERSON_BY_NAME = ("(SELECT id FROM users WHERE team_id = ? AND active = 1 AND name = ? "
                  "ORDER BY id LIMIT 1)")


def person_sql(team_id: int, user_id: int | None, named: str | None) -> Person | None:
    """The person by id, or (named) by name within the team; None: no one (the team)."""
    if named is not None:
        return PERSON_BY_NAME, (team_id, named)
    return None if user_id is None else ("?", (user_id,))


def one_person(column: str, person: Person | None) -> tuple[str, tuple[Any, ...]]:
    """' AND <column> = <the person>' (and its parameters), or '' with no person."""
    return ("", ()) if person is None else (f" AND {column} = {person[0]}", person[1])


@dataclass(frozen=True)
class ReportScope:
    """What a report covers, as a feature's report section sees it: a team or one person of
    it (built by the reports feature from the asker's own team, never from chat text), the
    period [start, end) and the moment the report is made."""

    team_id: int
    user_id: int | None
    start: datetime
    end: datetime
    now: datetime
    locale: str
    # The person named (/report 张三) before their id is known: the reads find them by name
    # among the team's active members, so that the team's members (to word the answer to a
    # name that is no one's) are read in the same round trip (issue #12). user_id is None.
    named: str | None = None

    @property
    def team_wide(self) -> bool:
        return self.user_id is None and self.named is None

    def person(self) -> Person | None:
        """SQL (and its parameters) standing for the person's id, by id or by name; None for
        the team's report."""
        return person_sql(self.team_id, self.user_id, self.named)

    def one(self, column: str) -> tuple[str, tuple[Any, ...]]:
        """' AND <column> = <the person>' for a person's report, '' for the team's."""
        return one_person(column, self.person())

    def records_of(self, alias: str) -> tuple[str, tuple[Any, ...]]:
        """SQL (and its parameters) for the records in scope: the team's, or the person's."""
        who, params = self.one(f"{alias}.user_id")
        return f"{alias}.team_id = ?{who}", (self.team_id, *params)

    def local(self, stored: str | None) -> datetime | None:
        """A stored moment as a sheet shows it: local time, no zone (Excel has none)."""
        if stored is None:
            return None
        return datetime.fromisoformat(stored).astimezone(self.start.tzinfo).replace(tzinfo=None)


@dataclass
class ReportPart:
    """One feature's part of a report: lines for the message (localized; none = nothing to
    say, e.g. no such records in the period), an optional XLSX sheet and chart figures."""

    lines: list[str] = field(default_factory=list)
    sheet_title: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    # A few headline figures for the team chart: (localized label, value), e.g. 隐患 超期 2.
    chart: list[tuple[str, int]] = field(default_factory=list)
    # Named measures a team's targets are compared with (data/targets.json), e.g.
    # {"arrears.recovery_rate": 99.6}: percentages as 0-100, counts as counts.
    measures: dict[str, float] = field(default_factory=dict)


# (database, scope) -> the feature's part of the weekly report and /report.
ReportSectionFn = Callable[["Database", ReportScope], Awaitable[ReportPart]]


@dataclass(frozen=True)
class ReportSection:
    """A feature's part of the report declared in two halves, as TodoRead is, so that the
    reports feature reads every section's rows (and its own figures') in ONE round trip
    (issue #12: a section at a time was 27-30 per /report): `reads` the SELECTs it needs for
    the scope, `part` its ReportPart from their rows (one list per read, in the same order).
    A read that needs another's result is one SELECT (a join or a subquery), not two."""

    reads: Callable[[ReportScope], Sequence[Read]]
    part: Callable[[ReportScope, list[list[Row]]], ReportPart]

    async def read(self, db: Database, scope: ReportScope) -> ReportPart:
        """This section alone (a test, or a caller that wants one part)."""
        return self.part(scope, await db.fetch_many(self.reads(scope)))


RS = TypeVar("RS", bound=ReportSectionFn | ReportSection)

V = TypeVar("V")


def namespaced(feature: str, action: str) -> str:
    return f"{feature}.{action}" if feature else action


def feature_callback(feature: str, action: str, arg: str | int = "") -> str:
    """Data of a global (no form) button that runs `feature`'s `action`."""
    return callback(GLOBAL_TOKEN, namespaced(feature, action), arg)


def one_id(reads: Callable[[Ctx, int], Sequence[Read]]) -> ButtonReads:
    """ButtonReads of a button that carries one record id (any other data: none), which
    need the person (none for a chat not seen since the start)."""
    def declared(ctx: Ctx | None, ids: tuple[int, ...]) -> Sequence[Read]:
        return reads(ctx, ids[0]) if ctx is not None and len(ids) == 1 else ()
    return declared


def any_one_id(reads: Callable[[Ctx | None, int], Sequence[Read]]) -> ButtonReads:
    """one_id of reads that need no person's scope (a record by its id): declared for
    anyone, the first tap after a restart too."""
    def declared(ctx: Ctx | None, ids: tuple[int, ...]) -> Sequence[Read]:
        return reads(ctx, ids[0]) if len(ids) == 1 else ()
    return declared


def _merge(into: dict[str, V], items: dict[str, V], what: str) -> None:
    """Two features claiming one name is a wiring mistake: fail at start, not at a tap."""
    for key, value in items.items():
        if key in into and into[key] is not value:
            raise ValueError(f"{what} {key!r} is declared twice")
        into[key] = value


@dataclass
class Router:
    """One feature's contributions, or (the root) all features' in their priority order.
    A named router's button actions are `<name>.<action>`; the root has no name."""

    name: str = ""
    forms: dict[str, FormSpec] = field(default_factory=dict)
    commands: dict[str, HandlerFn] = field(default_factory=dict)
    buttons: dict[str, HandlerFn] = field(default_factory=dict)
    # What a button's handler reads first, by the action's full name (`button(reads=...)`).
    button_reads: dict[str, ButtonReads] = field(default_factory=dict)
    intents: list[IntentFn] = field(default_factory=list)
    # What an intent reads first for a text (`intent_reads`), every feature's asked in turn.
    text_reads: list[TextReads] = field(default_factory=list)
    # The sentence readers behind `intents` (group 1 the lead, group 2 the rest): inside a form
    # they tell a new request from an answer without running it.
    request_patterns: list[re.Pattern[str]] = field(default_factory=list)
    request_readers: list[RequestFn] = field(default_factory=list)
    openers: dict[str, OpenerFn] = field(default_factory=dict)
    reminders: dict[str, ReminderKind] = field(default_factory=dict)
    periodic: list[PeriodicFn] = field(default_factory=list)
    # Parts of /report and the Monday report, after the built-in figures, in this order.
    report_sections: list[ReportSectionFn | ReportSection] = field(default_factory=list)
    # Lines of /help (locale keys) a feature adds under the commands list.
    help_lines: list[str] = field(default_factory=list)
    # Buttons features add under other features' cards: card name -> functions, in root order.
    card_buttons: dict[str, list[tuple[CardButtonReads, CardButtonsFn]]] = field(
        default_factory=dict)
    # Button data already on phones from before the namespacing: old action -> new action.
    legacy_actions: dict[str, str] = field(default_factory=dict)
    # The form a target that names no form and no record opens (an old 放弃并新建 button).
    default_form: str = ""
    # Who keeps a photo or location sent with no form open (the work log, for its next
    # entry); without one, the user is told it was not kept.
    loose_media: LooseMediaFn | None = None
    # Readers of files sent in chat, in root order: the first whose sniff says yes takes it.
    file_readers: list[FileReader] = field(default_factory=list)

    def action(self, action: str) -> str:
        """This feature's name for one of its button actions."""
        return namespaced(self.name, action)

    def callback(self, action: str, arg: str | int = "") -> str:
        """Data of a global (no form) button that runs this feature's `action`."""
        return feature_callback(self.name, action, arg)

    def include_router(self, other: Router) -> Router:
        _merge(self.forms, other.forms, "form")
        _merge(self.commands, other.commands, "command")
        _merge(self.buttons, other.buttons, "button action")
        _merge(self.button_reads, other.button_reads, "button reads of")
        _merge(self.openers, other.openers, "opener")
        _merge(self.reminders, other.reminders, "reminder subject")
        _merge(self.legacy_actions, other.legacy_actions, "legacy action")
        self.intents += other.intents
        self.text_reads += other.text_reads
        self.request_patterns += other.request_patterns
        self.request_readers += other.request_readers
        self.periodic += other.periodic
        self.report_sections += other.report_sections
        self.help_lines += other.help_lines
        self.file_readers += other.file_readers
        for card, fns in other.card_buttons.items():
            self.card_buttons.setdefault(card, []).extend(fns)
        self.default_form = self.default_form or other.default_form
        self.loose_media = self.loose_media or other.loose_media
        return self

    def button_handler(self, action: str) -> HandlerFn | None:
        return self.buttons.get(self.legacy_actions.get(action, action))

    def reads_of_button(self, action: str) -> ButtonReads | None:
        """What the button `action` (or its name from before the namespacing) reads first."""
        return self.button_reads.get(self.legacy_actions.get(action, action))

    def declare_reads(self, action: str, reads: ButtonReads | None) -> None:
        """`reads`: what this feature's button `action` reads first (ButtonReads)."""
        if reads is not None:
            self.button_reads[self.action(action)] = reads

    def form(self, spec: FormSpec) -> FormSpec:
        self.forms[spec.name] = spec
        return spec

    def command(self, name: str) -> Callable[[HandlerFn], HandlerFn]:
        def deco(fn: HandlerFn) -> HandlerFn:
            self.commands[name] = fn
            return fn
        return deco

    def button(self, action: str, reads: ButtonReads | None = None,
               ) -> Callable[[HandlerFn], HandlerFn]:
        """`reads`: the SELECTs the handler runs first, from the button's ids (ButtonReads),
        read with the step's own read."""
        def deco(fn: HandlerFn) -> HandlerFn:
            self.buttons[self.action(action)] = fn
            self.declare_reads(action, reads)
            return fn
        return deco

    def intent(self, fn: IntentFn) -> IntentFn:
        self.intents.append(fn)
        return fn

    def intent_reads(self, fn: TextReads) -> TextReads:
        """`fn(ctx, text)`: what this feature's intent reads first for `text` (TextReads)."""
        self.text_reads.append(fn)
        return fn

    def reads_of_text(self, ctx: Ctx, text: str) -> list[Read]:
        """What the features' intents read first for `text`, each read once."""
        found = {(sql, tuple(params)): None for reads in self.text_reads
                 for sql, params in reads(ctx, text)}
        return list(found)

    def opener_button(self, action: str, prefix: str, reads: ButtonReads | None = None,
                      ) -> None:
        """A global button `-|<name>.action|ID` that opens opener `prefix` for record ID
        (asking first if another form is open); `reads`: what the opener reads first."""
        async def handler(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
            if not arg.isdigit():
                return stale_reply(ctx)
            return await app.open_form(ctx, draft, f"{prefix}{int(arg)}")

        self.buttons[self.action(action)] = handler
        self.declare_reads(action, reads)

    def request_reader(self, fn: RequestFn) -> RequestFn:
        self.request_readers.append(fn)
        return fn

    def opener(self, prefix: str) -> Callable[[OpenerFn], OpenerFn]:
        def deco(fn: OpenerFn) -> OpenerFn:
            self.openers[prefix] = fn
            return fn
        return deco

    def reminder_kind(self, subject: str, kind: ReminderKind) -> None:
        self.reminders[subject] = kind

    def report_section(self, fn: RS) -> RS:
        """A part of the report: declared (ReportSection), or a function reading its own."""
        self.report_sections.append(fn)
        return fn

    def keeps_loose_media(self, fn: LooseMediaFn) -> LooseMediaFn:
        self.loose_media = fn
        return fn

    def file_reader(self, *, kinds: tuple[str, ...], sniff: SniffFn,
                    describe: str) -> Callable[[FileHandlerFn], FileHandlerFn]:
        """The decorated `handle(ctx, filename, data)` takes the files of `kinds` that
        `sniff(filename, data)` recognises; who may send one is the handler's decision."""
        def deco(fn: FileHandlerFn) -> FileHandlerFn:
            self.file_readers.append(FileReader(tuple(k.lower() for k in kinds), sniff, fn,
                                                describe))
            return fn
        return deco

    def every_scan(self, fn: PeriodicFn) -> PeriodicFn:
        self.periodic.append(fn)
        return fn

    def adds_to_card(self, card: str, reads: CardButtonReads = lambda ctx, rid: [],
                     ) -> Callable[[CardButtonsFn], CardButtonsFn]:
        """Offer buttons under another feature's `card` (it calls `extra_card_buttons`),
        declaring the SELECTs they need (`reads`), as TodoRead does: the card runs them with
        its own read (`card_button_reads`)."""
        def deco(fn: CardButtonsFn) -> CardButtonsFn:
            self.card_buttons.setdefault(card, []).append((reads, fn))
            return fn
        return deco


@cache
def app_router() -> Router:
    """The features as the composition root lists them (built once per process)."""
    root: Router = importlib.import_module(COMPOSITION_ROOT).build_router()
    return root


def card_button_reads(ctx: Ctx, card: str, record_id: int) -> list[Read]:
    """The SELECTs of the buttons added under `card` for one record, for the card to run with
    its own (Backend.fetch_many); their rows go to `extra_card_buttons`."""
    return [r for reads, _ in app_router().card_buttons.get(card, [])
            for r in reads(ctx, record_id)]


async def extra_card_buttons(ctx: Ctx, card: str, record_id: int,
                             just_saved: Mapping[str, Any] | None = None,
                             read: Sequence[list[Row]] | None = None) -> list[Button]:
    """The buttons the features of the composition root add under `card` for one record;
    `just_saved`: the answers of the form that has just saved it (nothing to read back);
    `read`: the rows of `card_button_reads`, read now when neither is given. Both for an edit
    just saved: the rows read with its write (on PostgreSQL as before it: what the edit
    changed is in its answers)."""
    adders = app_router().card_buttons.get(card, [])
    if just_saved is None and read is None:
        read = await ctx.services.db.fetch_many(card_button_reads(ctx, card, record_id))
    rows = iter(read or [])
    out: list[Button] = []
    for reads, fn in adders:
        mine = None if read is None else [next(rows) for _ in reads(ctx, record_id)]
        out += await fn(ctx, record_id, just_saved, mine)
    return out
