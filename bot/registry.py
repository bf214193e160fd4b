"""Where record modules (complaints, arrears, outages, repairs ...) plug into the core:
their forms, commands, buttons, free-text intents, record openers, reminders and to-do items.
Each module registers itself at import; bot.records imports them all."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.events import Button, Outcome, Reply

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.conversations.engine import FormSpec
    from bot.services import Ctx, Services
    from bot.storage.conversations import Draft
    from bot.storage.reminders import Reminder

# (assistant, ctx, open draft or None, argument) -> outcome
HandlerFn = Callable[["Assistant", "Ctx", "Draft | None", str], Awaitable[Outcome]]
# (assistant, ctx, text) -> outcome, or None when the text is not this module's
IntentFn = Callable[["Assistant", "Ctx", str], Awaitable[Outcome | None]]
# (assistant, ctx, record id) -> outcome that opens a form about that record
OpenerFn = Callable[["Assistant", "Ctx", int], Awaitable[Outcome]]
# Jobs run on every reminder scan (e.g. the Monday report): (services, push, now) -> sent.
# `push(user_id, reply)` delivers like a reminder; a job keeps itself once-only (job_runs).
PushFn = Callable[[int, Reply], Awaitable[None]]
PeriodicFn = Callable[["Services", PushFn, datetime], Awaitable[int]]


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


@dataclass(frozen=True)
class ReminderKind:
    """How reminders about one kind of record are worded and what follows them."""

    # The message for a due reminder, from the record as it is now; None = settled, drop it.
    render: Callable[[Ctx, Reminder], Awaitable[Reply | None]]
    # Plan the next occurrence of a repeating reminder (overdue daily, follow-ups).
    after_sent: Callable[[Services, Reminder, datetime], Awaitable[None]] | None = None
    # Open items of this kind for /todo and the morning digest.
    todo: Callable[[Ctx], Awaitable[list[TodoItem]]] | None = None
    # One line naming the record (for escalations and the digest).
    describe: Callable[[Ctx, Reminder], Awaitable[str]] | None = None
    # Offer the snooze buttons under it (not under a one-off notice that needs no action).
    snoozable: bool = True


@dataclass
class Registry:
    forms: dict[str, FormSpec] = field(default_factory=dict)
    commands: dict[str, HandlerFn] = field(default_factory=dict)
    buttons: dict[str, HandlerFn] = field(default_factory=dict)
    intents: list[IntentFn] = field(default_factory=list)
    # The sentence readers behind `intents` (group 1 the lead, group 2 the rest): inside a form
    # they tell a new request from an answer without running it.
    request_patterns: list[re.Pattern[str]] = field(default_factory=list)
    openers: dict[str, OpenerFn] = field(default_factory=dict)
    reminders: dict[str, ReminderKind] = field(default_factory=dict)
    periodic: list[PeriodicFn] = field(default_factory=list)

    def form(self, spec: FormSpec) -> FormSpec:
        self.forms[spec.name] = spec
        return spec

    def command(self, name: str) -> Callable[[HandlerFn], HandlerFn]:
        def deco(fn: HandlerFn) -> HandlerFn:
            self.commands[name] = fn
            return fn
        return deco

    def button(self, action: str) -> Callable[[HandlerFn], HandlerFn]:
        def deco(fn: HandlerFn) -> HandlerFn:
            self.buttons[action] = fn
            return fn
        return deco

    def intent(self, fn: IntentFn) -> IntentFn:
        self.intents.append(fn)
        return fn

    def opener_button(self, action: str, prefix: str) -> None:
        """A global button `-|action|ID` that opens opener `prefix` for record ID (asking
        first if another form is open)."""
        async def handler(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
            if not arg.isdigit():
                return Outcome(toast=ctx.t("button.stale"))
            return await app.open_form(ctx, draft, f"{prefix}{int(arg)}")

        self.buttons[action] = handler

    def opener(self, prefix: str) -> Callable[[OpenerFn], OpenerFn]:
        def deco(fn: OpenerFn) -> OpenerFn:
            self.openers[prefix] = fn
            return fn
        return deco

    def reminder_kind(self, subject: str, kind: ReminderKind) -> None:
        self.reminders[subject] = kind

    def every_scan(self, fn: PeriodicFn) -> PeriodicFn:
        self.periodic.append(fn)
        return fn


REGISTRY = Registry()
