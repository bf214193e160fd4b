"""电能表校验 and 抄表异常 (issue #14 §3; 十项承诺 commitment 7): a customer asks for their meter
to be checked, or says a reading is wrong; the manager registers it and must give the result
within the rule set's working days (calibration 5; reading anomaly 7 in the 2011 set, 5 in the
newer one). Reminders half-way, before and at the deadline, daily while overdue, escalated to
the team's leads; /todo, the digest and the weekly report carry them."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.deadlines import Rule
from bot.events import Button, Outcome
from bot.features.customers.form import parse_account_no
from bot.features.worklog.form import parse_text, parse_when
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.i18n import t
from bot.records import runtime as rt
from bot.records.common import (
    fill_from_register,
    now_value,
    remaining,
    ruleset,
    show_account,
    value_time,
    when,
)
from bot.router import ReportPart, ReportScope, ReportSection, Router, TodoItem, TodoRead
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminders
from bot.textutil import normalize_input

router = Router("meters")
SUBJECT = "meter"
KINDS = ("calibration", "reading")
# The lead word says which request it is: 校验 asks for a test, 抄表/电量/读数 disputes a reading.
_INTENT = re.compile(r"^(电能表校验|电表校验|表计校验|申请校验|校验电表|抄表异常|电量异常|"
                     r"读数异常|示数异常)\s*(.*)$")
_ACCOUNT = re.compile(r"(?<!\d)\d{6,32}(?!\d)")


@dataclass(frozen=True)
class MeterRequest:
    id: int
    team_id: int
    user_id: int
    owner: str
    kind: str
    status: str
    account_no: str
    customer_name: str | None
    accepted_at: datetime
    content: str
    due_at: datetime
    provisional: int
    answered_at: datetime | None
    result: str | None


# A 户号's entry in the team's register (parameters: team, 户号).
_ON_FILE = "FROM customers WHERE team_id = ? AND account_no = ?"
STORE = rt.Store(MeterRequest, "meter_requests", "SELECT m.*, u.name AS owner "
                 "FROM meter_requests m JOIN users u ON u.id = m.user_id", "m")


def rule_for(ctx: Ctx, kind: str) -> Rule:
    meter = ruleset(ctx.services).meter
    rule = meter.calibration_result if kind == "calibration" else meter.reading_anomaly_reply
    if rule is None:  # both shipped sets have both; a hand-edited one must say so
        raise Invalid("meter.no_rule", ruleset=ruleset(ctx.services).name)
    return rule


# --- the registration form ------------------------------------------------------------
async def write_request(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """The request and its answer ladder as writes, saved with the form's close in one
    round trip. The register's entry for the 户号 (registered since it was answered, or
    gone) is read by the write itself: the record's link and 户名, and the reply's note."""
    planning = await rt.Planning.for_writes(ctx)
    rules = planning.rules
    kind = values["kind"]
    rule = rule_for(ctx, kind)
    accepted = value_time(values["accepted_at"]).astimezone(ctx.tz)
    deadline = planning.due(accepted, rule)
    account = (ctx.user.team_id, values["account_no"])
    batch = Batch()
    ref = STORE.insert_into(batch, token, {
        "team_id": ctx.user.team_id, "user_id": ctx.user.id, "kind": kind,
        "account_no": values["account_no"],
        "accepted_at": iso(accepted), "content": values["content"], "ruleset": rules.name,
        "due_at": iso(deadline.due), "provisional": int(deadline.provisional),
        "created_at": iso(ctx.now)}, computed={
        "customer_id": (f"SELECT id {_ON_FILE}", account),
        "customer_name": (f"SELECT coalesce(?, (SELECT name {_ON_FILE}))",
                          (values.get("customer_name") or None, *account))})
    # The customers table is not written here: on PostgreSQL too it reads as the insert did.
    on_file = batch.read(f"SELECT count(*) {_ON_FILE}", account)
    rt.plan_ladders_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id,
                         [planning.ladder("answer", accepted, deadline.due)], ctx.now)

    async def saved(rid: int | None) -> Saved:
        assert rid is not None
        lines = [ctx.t("meter.saved", id=rid, kind=ctx.t(f"meter.kind.{kind}"),
                       account=values["account_no"]),
                 ctx.t("meter.answer_by", when=when(ctx, deadline.due),
                       rule=rule.label(ctx.locale), left=remaining(ctx, deadline.due))]
        if deadline.provisional:
            lines.append(ctx.t("deadline.provisional"))
        if not on_file.value:
            lines.append(ctx.t("meter.not_in_register", account=values["account_no"]))
        # The answer is one tap away from the confirmation, as on the card.
        return Saved("\n".join(lines), [[METERS.open_button(ctx, rid), answer_button(ctx, rid)]],
                     record_id=rid)

    return Writing(batch, ref, saved)


METER = router.form(FormSpec(
    name="meter",
    title="form.meter.title",
    fields=(
        kinds.named("kind", "field.meter_kind", "form.meter.kind", KINDS, "meter.kind.{}"),
        Field("account_no", "field.account_no", "form.meter.account_no", Kind.TEXT,
              parse=parse_account_no, show=show_account, fills=fill_from_register),
        Field("customer_name", "field.customer_name", "form.meter.customer_name", Kind.TEXT,
              required=False, parse=parse_text),
        rt.time_field("accepted_at", "field.accepted_at", "form.meter.accepted_at",
                      hint="form.worklog.time.hint"),
        Field("content", "field.meter_content", "form.meter.content", Kind.TEXT,
              parse=parse_text),
    ),
    save=None,
    write=write_request,
    quick={"now": now_value},
))


async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'抄表异常 3100012345 本月电量比上月多一倍' -> the kind (from the lead word), the 户号
    and what the customer says."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    m = _ACCOUNT.search(rest)
    if m is not None:
        try:
            values["account_no"] = await parse_account_no(m.group(0), ctx)
            rest = rest.replace(m.group(0), " ", 1)
        except Invalid as exc:
            notices["account_no"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
    content = " ".join(rest.split())
    if content:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["content"] = await parse_text(content, ctx)
    return values, notices


@router.intent
async def meter_intent(app: Any, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    values, notices = await prefill(ctx, m.group(2))
    values["kind"] = "calibration" if "校验" in m.group(1) else "reading"
    return await app.engine.start(ctx, METER.name, values, notices)


router.request_patterns.append(_INTENT)


# --- the answer -----------------------------------------------------------------------
async def write_answer(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """The answer closes the request once (else nothing is written and the user told) with
    the form's close in one round trip, from the request as kept with the form."""
    rec = await METERS.kept(ctx, meta)
    at = value_time(values["answered_at"])
    if at < rec.accepted_at:
        raise Invalid("meter.before_accepted", accepted=when(ctx, rec.accepted_at))
    batch = Batch()
    STORE.update_into(batch, rec.id, {
        "answered_at": iso(at), "result": values["result"], "status": "answered",
        "updated_at": iso(ctx.now)}, "status = 'open'", needed=True)
    Reminders.cancel_into(batch, SUBJECT, rec.id)

    async def saved(_: int | None) -> Saved:
        return METERS.saved(ctx, rec.id, ctx.t("meter.answered", id=rec.id) + " "
                            + rt.on_time(ctx, at, rec.due_at))

    return Writing(batch, rec.id, saved, Invalid("meter.changed"))


async def parse_answered(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """The answer's time: not in the future, and not before the request was accepted (said
    at this step, not at 保存)."""
    value: dict[str, Any] = await parse_when(text, ctx, form)
    rec = await METERS.seen(ctx, form.meta)
    if rec is not None and value_time(value) < rec.accepted_at:
        raise Invalid("meter.before_accepted", accepted=when(ctx, rec.accepted_at))
    return value


ANSWER = rt.action_form(
    "meter_answer", None,
    rt.time_field("answered_at", "field.meter_answered_at", "form.meter_answer.at",
                  parse=parse_answered),
    Field("result", "field.meter_result", "form.meter_answer.result", Kind.TEXT,
          parse=parse_text, hint="form.meter_answer.hint"), write=write_answer)


# --- card and to-do -------------------------------------------------------------------
def title(ctx: Ctx, rec: MeterRequest) -> str:
    who = rec.customer_name or rec.account_no
    return ctx.t("meter.title", id=rec.id, kind=ctx.t(f"meter.kind.{rec.kind}"), who=who)


async def render_card(ctx: Ctx, rec: MeterRequest, heading: str | None = None) -> Outcome:
    lines = [title(ctx, rec), ctx.t(f"meter.status.{rec.status}"),
             rt.field_line(ctx, "field.account_no", rec.account_no),
             rt.field_line(ctx, "field.owner", rec.owner),
             rt.field_line(ctx, "field.accepted_at", when(ctx, rec.accepted_at)),
             rt.field_line(ctx, "field.meter_content", rec.content),
             rt.deadline_line(ctx, "field.meter_due", rec.due_at, rec.answered_at,
                              "meter.done_at", judge=True)]
    if rec.result:
        lines.append(rt.field_line(ctx, "field.meter_result", rec.result))
    if rec.provisional:
        lines.append(ctx.t("deadline.provisional"))
    buttons = await METERS.allowed(ctx, rec)
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    return [METERS.todo_item(
        ctx, rec, rec.due_at, ctx.t("todo.meter", item=title(ctx, rec), due=when(ctx, rec.due_at),
                                    left=remaining(ctx, rec.due_at)),
        f"#{rec.id} " + ctx.t(f"meter.kind.{rec.kind}"))
        for rec in STORE.records(rows[0])]


def answer_button(ctx: Ctx, rid: int) -> Button:
    return METERS.action("mtra").button(ctx, rid)


METERS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="mtr", not_found="meter.not_found",
    meta_key="meter_id", title=title, render_card=render_card,
    transitions=(rt.Transition("mtra", "btn.meter_answered", ("open",), ANSWER, "ma",
                               "meter.answer_heading"),),
    form=METER, command="meter",
    ladders=(rt.Ladder("answer", "meter.step.answer", lambda m: m.due_at,
                       lambda m: m.status == "answered", ("mtra",), drop_late_soon=False),),
    todo_items=TodoRead(lambda ctx: [STORE.open_read(ctx, "m.status = 'open'")], todo),
    after_sent=rt.daily_while_overdue(SUBJECT)).register(router)
router.help_lines.append("help.meter")


# --- the weekly report ----------------------------------------------------------------
def report_reads(scope: ReportScope) -> list[Read]:
    who, params = scope.records_of("m")
    return [("SELECT m.*, u.name AS owner FROM meter_requests m JOIN users u ON u.id = m.user_id "
             f"WHERE {who} AND ((m.accepted_at >= ? AND m.accepted_at < ?) "
             "OR (m.status = 'open' AND m.due_at <= ?)) ORDER BY m.accepted_at",
             (*params, iso(scope.start), iso(scope.end), iso(scope.now)))]


def report(scope: ReportScope, read: list[list[Row]]) -> ReportPart:
    """Requests accepted in the period (by the manager who has them): answered on time,
    late, still open; and every request overdue now, whatever the period."""
    rows = read[0]
    if not rows:
        return ReportPart()
    loc = scope.locale
    start, end, now = iso(scope.start), iso(scope.end), iso(scope.now)
    per: dict[str, list[int]] = {}  # owner -> [accepted, on time, late, open, overdue now]
    sheet = []
    for r in rows:
        counts = per.setdefault(r["owner"], [0, 0, 0, 0, 0])
        if start <= r["accepted_at"] < end:
            counts[0] += 1
            if r["answered_at"] is not None:
                counts[1 if r["answered_at"] <= r["due_at"] else 2] += 1
            else:
                counts[3] += 1
        if r["status"] == "open" and r["due_at"] <= now:
            counts[4] += 1
        sheet.append([r["id"], t(loc, f"meter.kind.{r['kind']}"), r["owner"], r["account_no"],
                      r["customer_name"], scope.local(r["accepted_at"]),
                      scope.local(r["due_at"]), scope.local(r["answered_at"]), r["result"]])
    lines = [t(loc, "meter.report.title")]
    lines += [t(loc, "meter.report.line", owner=o, accepted=c[0], on_time=c[1], late=c[2],
                open=c[3], overdue=c[4]) for o, c in per.items()]
    header = [t(loc, k) for k in ("meter.report.col.id", "field.meter_kind", "field.owner",
                                  "field.account_no", "field.customer_name", "field.accepted_at",
                                  "field.meter_due", "field.meter_answered_at",
                                  "field.meter_result")]
    chart = [(t(loc, f"meter.chart.{k}"), sum(c[i] for c in per.values()))
             for i, k in ((0, "accepted"), (2, "late"), (4, "overdue"))]
    return ReportPart(lines, t(loc, "meter.report.sheet"), header, sheet, chart)


REPORT = router.report_section(ReportSection(report_reads, report))
