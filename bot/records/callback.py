"""回访: the call-back to the customer after a complaint is answered or a repair restored.

Shared by both record types (each stores callback_due / callback_at / callback_result /
callback_note): the due time from the rule data, the reminder ladder (due to the manager,
escalated to the leads), the small result form (满意 / 基本满意 / 不满意 + an optional note),
the leads told at once of 不满意, and the report figures per manager and per 台区."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from bot.deadlines import due_after
from bot.events import Reply
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.i18n import t
from bot.records import runtime as rt
from bot.records.common import remaining, ruleset, step_calendar, when
from bot.router import ReportPart, ReportScope, ReportSection, TodoItem
from bot.services import Ctx
from bot.storage.batch import Batch, Ref
from bot.storage.db import Read, Row, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input

STEP = "callback"
RESULTS = ("satisfied", "basic", "unsatisfied")
UNSATISFIED = "unsatisfied"
LEAD_ALERT = "cbunsat.lead"  # its own step: the ladder's "done" must not drop it
_ORDER_IN_TEXT = re.compile(r"(?:95598)?工单号?\s*[:：]?\s*([0-9]+)")


class WithCallback(rt.Record, Protocol):
    callback_due: datetime | None
    callback_at: datetime | None
    callback_result: str | None
    callback_note: str | None


# --- 95598 order numbers ----------------------------------------------------------------
async def parse_order_no(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    """A 95598 工单号: exactly the rule data's number of digits."""
    value = normalize_input(text).replace(" ", "")
    digits = ruleset(ctx.services).order_no.digits
    if not re.fullmatch(rf"[0-9]{{{digits}}}", value):
        raise Invalid("complaint.order_no.invalid", text=text, digits=digits)
    return value


async def take_order_no(ctx: Ctx, text: str) -> tuple[str | None, str | None, str]:
    """(工单号, notice if malformed, the sentence without it) from `… 工单号 2026… …`."""
    m = _ORDER_IN_TEXT.search(text)
    if m is None:
        return None, None, text
    rest = (text[:m.start()] + " " + text[m.end():]).strip()
    try:
        return await parse_order_no(m.group(1), ctx), None, rest
    except Invalid as exc:
        return None, "⚠️ " + ctx.t(exc.key, **exc.kwargs), rest


# --- planning ---------------------------------------------------------------------------
async def due_after_close(ctx: Ctx, closed_at: datetime) -> datetime:
    """When the call-back is due: the working-day calendar as of the step's read."""
    rules = ruleset(ctx.services)
    return due_after(closed_at, rules.callback.after_close, await step_calendar(ctx),
                     rules.working_hours).due


def plan_into(batch: Batch, subject: str, rec: rt.Record, due: datetime, acting: int,
              now: datetime, if_new: Ref) -> None:
    """The call-back's reminders, once the record closed (`if_new`): the manager at due,
    the leads (but the one acting) told when it is missed."""
    rt.plan_ladders_into(batch, subject, rec.id, rec.team_id, rec.user_id, [(STEP, [
        rt.Rung("due", due, skip_if_past=False),
        rt.Rung("escalate", due, to_leads=True, skip_if_past=False)])], now,
        leads_but=(acting, rec.user_id), if_new=if_new)


def planned_line(ctx: Ctx, due: datetime) -> str:
    return ctx.t("callback.planned", when=when(ctx, due),
                 rule=ruleset(ctx.services).callback.after_close.label(ctx.locale))


def ladder(action: str) -> rt.Ladder:
    return rt.Ladder(STEP, "callback.step", lambda r: r.callback_due,
                     lambda r: r.callback_at is not None, (action,))


def pending(ctx: Ctx, rec: WithCallback) -> bool:
    return rec.callback_due is not None and rec.callback_at is None


def transition(action: str, form: FormSpec, opener: str) -> rt.Transition:
    return rt.Transition(action, "btn.callback", pending, form, opener, "callback.heading")


# --- the result form --------------------------------------------------------------------
async def result_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(r, ctx.t(f"callback.result.{r}")) for r in RESULTS]


async def show_result(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"callback.result.{value}")


async def parse_note(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return " ".join(normalize_input(text).split())


WriteResult = Callable[[Ctx, dict[str, Any], str, dict[str, Any]], Awaitable[Writing]]


def result_form(name: str, write: WriteResult) -> FormSpec:
    return rt.action_form(
        name, None,
        Field("result", "field.callback_result", "form.callback.result", Kind.CHOICE,
              choices=result_choices, show=show_result),
        Field("note", "field.callback_note", "form.callback.note", Kind.TEXT,
              required=False, parse=parse_note), write=write)


def write_result(ctx: Ctx, kind: rt.RecordType[Any], rec: WithCallback,
                 values: dict[str, Any]) -> Writing:
    """Store the result once (two taps, or two people, record it once: else nothing is
    written and the user told); 不满意 plans an immediate alert to the team's leads,
    delivered like every reminder (never lost). One round trip with the form's close."""
    result = values["result"]
    batch = Batch()
    done = kind.store.update_into(batch, rec.id, {
        "callback_at": iso(ctx.now), "callback_result": result,
        "callback_note": values.get("note") or None}, "callback_at IS NULL", needed=True)
    Reminders.cancel_into(batch, kind.subject, rec.id, f"{STEP}.")
    told = None
    if result == UNSATISFIED:
        step, label = LEAD_ALERT.split(".")
        rt.plan_ladders_into(batch, kind.subject, rec.id, rec.team_id, rec.user_id, [
            (step, [rt.Rung(label, ctx.now, to_leads=True, skip_if_past=False)])], ctx.now,
            leads_but=(ctx.user.id, rec.user_id), if_new=done)
        told = batch.read(rt.HAS_THIRD_LEAD, (rec.team_id, ctx.user.id, rec.user_id))

    async def saved(_: int | None) -> Saved:
        text = ctx.t("callback.recorded", item=kind.title(ctx, rec),
                     result=ctx.t(f"callback.result.{result}"))
        if told is not None and told.value:
            text += "\n" + ctx.t("callback.lead_told")
        return kind.saved(ctx, rec.id, text)

    return Writing(batch, rec.id, saved, Invalid("callback.already"))


async def lead_alert(ctx: Ctx, kind: rt.RecordType[Any], r: Reminder,
                     rec: WithCallback) -> Reply | None:
    """The lead's message about a 不满意 call-back."""
    if r.kind != LEAD_ALERT or rec.callback_result != UNSATISFIED:
        return None
    note = ctx.t("callback.alert_note", note=rec.callback_note) if rec.callback_note else ""
    return Reply(ctx.t("callback.alert", owner=rec.owner, item=kind.title(ctx, rec)) + note,
                 [[kind.open_button(ctx, rec.id)]])


def card_lines(ctx: Ctx, rec: WithCallback) -> list[str]:
    if rec.callback_due is None:
        return []
    line = rt.deadline_line(ctx, "field.callback_due", rec.callback_due, rec.callback_at,
                            "complaint.done_at")
    if rec.callback_result:
        line += " · " + ctx.t(f"callback.result.{rec.callback_result}")
    lines = [line]
    if rec.callback_note:
        lines.append(rt.field_line(ctx, "field.callback_note", rec.callback_note))
    return lines


def todo_read(ctx: Ctx, kind: rt.RecordType[Any], alias: str) -> Read:
    """The manager's own call-backs still to make (the leads hear of missed ones)."""
    return kind.store.open_read(
        ctx, f"{alias}.callback_due IS NOT NULL AND {alias}.callback_at IS NULL "
             f"AND {alias}.user_id = ?", (ctx.user.id,))


def todo_items(ctx: Ctx, kind: rt.RecordType[Any], rows: list[Row]) -> list[TodoItem]:
    """The call-backs todo_read found, as to-do lines."""
    items = []
    for rec in kind.store.records(rows):
        due = rec.callback_due
        items.append(kind.todo_item(
            ctx, rec, due, ctx.t("todo.callback", item=kind.title(ctx, rec), due=when(ctx, due),
                                 left=remaining(ctx, due)),
            ctx.t("btn.callback_of", id=rec.id)))
    return items


# --- the report -------------------------------------------------------------------------
_REPORT_SQL = """
SELECT 'complaint' AS kind, c.id, c.order_no, u.name AS owner, a.name AS area,
       c.callback_due, c.callback_at, c.callback_result, c.callback_note
  FROM complaints c JOIN users u ON u.id = c.user_id LEFT JOIN areas a ON a.id = c.area_id
 WHERE c.team_id = ? AND c.callback_due IS NOT NULL {who_c}
   AND ((c.callback_due >= ? AND c.callback_due < ?) OR (c.callback_at >= ? AND c.callback_at < ?))
UNION ALL
SELECT 'repair' AS kind, r.id, r.order_no, u.name AS owner, a.name AS area,
       r.callback_due, r.callback_at, r.callback_result, r.callback_note
  FROM repairs r JOIN users u ON u.id = r.user_id JOIN areas a ON a.id = r.area_id
 WHERE r.team_id = ? AND r.callback_due IS NOT NULL {who_r}
   AND ((r.callback_due >= ? AND r.callback_due < ?) OR (r.callback_at >= ? AND r.callback_at < ?))
ORDER BY 6, 1, 2
"""


class _Tally:
    def __init__(self) -> None:
        self.due = 0
        self.done = 0
        self.results = dict.fromkeys(RESULTS, 0)

    def add(self, result: str | None, done: bool) -> None:
        self.due += 1
        if done:
            self.done += 1
            if result in self.results:
                self.results[result] += 1

    def line(self, loc: str, key: str, **names: str) -> str:
        pct = f"{round(100 * self.done / self.due)}%" if self.due else "—"
        return t(loc, key, due=self.due, done=self.done, pct=pct,
                 **{r: self.results[r] for r in RESULTS}, **names)


def _local(stored: str, tz: Any) -> str:
    return from_iso(stored).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def report_reads(scope: ReportScope) -> list[Read]:
    who, who_params = scope.one("{a}.user_id")
    span = (iso(scope.start), iso(scope.end)) * 2
    return [(_REPORT_SQL.format(who_c=who.format(a="c"), who_r=who.format(a="r")),
             (scope.team_id, *who_params, *span, scope.team_id, *who_params, *span))]


def report_part(scope: ReportScope, read: list[list[Row]]) -> ReportPart:
    """回访: rate (done / due) and satisfaction, for the team, per manager and per 台区. A
    call-back counts in the period in which it falls due, or in which it was made."""
    rows = read[0]
    if not rows:
        return ReportPart()
    loc, end, tz = scope.locale, scope.end, scope.start.tzinfo
    total, people, areas = _Tally(), {}, {}
    sheet = []
    for r in rows:
        done = r["callback_at"] is not None and r["callback_at"] < iso(end)
        area = r["area"] or t(loc, "callback.no_area")
        for tally in (total, people.setdefault(r["owner"], _Tally()),
                      areas.setdefault(area, _Tally())):
            tally.add(r["callback_result"], done)
        sheet.append([t(loc, f"callback.kind.{r['kind']}"), r["id"], r["order_no"] or "",
                      area, r["owner"], _local(r["callback_due"], tz),
                      _local(r["callback_at"], tz) if done else "",
                      t(loc, f"callback.result.{r['callback_result']}") if done else "",
                      r["callback_note"] or ""])
    lines = [total.line(loc, "callback.report")]
    lines += [tally.line(loc, "callback.report_person", name=name)
              for name, tally in sorted(people.items())]
    lines += [tally.line(loc, "callback.report_area", name=name)
              for name, tally in sorted(areas.items())]
    header = [t(loc, f"callback.sheet.{c}") for c in
              ("kind", "id", "order_no", "area", "owner", "due", "done", "result", "note")]
    chart = [(t(loc, "callback.chart.due"), total.due), (t(loc, "callback.chart.done"), total.done),
             (t(loc, "callback.chart.unsatisfied"), total.results.get("unsatisfied", 0))]
    return ReportPart(lines, t(loc, "callback.sheet"), header, sheet, chart)


# Wired by the complaints feature (one section over complaints and repairs alike).
REPORT = ReportSection(report_reads, report_part)
