"""业扩报装 (issue #14 §3; 十项承诺 commitments 5 and 6): a customer applies for supply; the
manager registers the application with the customer's class and is held to the rule set's
working days. The 2011 set counts the supply-plan reply from the application (居民 3, 低压
7, 高压单电源 15, 双电源 30) and the connection from the acceptance of the customer's works
(居民 3, 非居民 5); the newer set gives one limit from application to connection (5, 6, 22,
32). Reminders half-way, before and at each deadline, daily while overdue, escalated to the
leads; /todo, the digest and the weekly report carry them."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.deadlines import Rule, RuleSet
from bot.events import Outcome
from bot.features.worklog.form import area_choices, parse_text, show_area, take_area_into
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.i18n import t
from bot.records import runtime as rt
from bot.records.common import now_value, remaining, ruleset, value_time, when
from bot.router import ReportPart, ReportScope, ReportSection, Router, TodoItem, TodoRead
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminders
from bot.textutil import normalize_input

router = Router("connections")
SUBJECT = "connection"
CLASSES = ("residential", "lv", "hv_single", "hv_dual")
_INTENT = re.compile(r"^(业扩报装|业扩|报装申请|报装|用电报装)\s*(.*)$")
# Words that say the class; longest first so that 高压双电源 is not read as 高压 + 电源.
_CLASS_WORDS = (("高压双电源", "hv_dual"), ("双电源", "hv_dual"), ("高压单电源", "hv_single"),
                ("单电源", "hv_single"), ("低压非居民", "lv"), ("非居民", "lv"),
                ("低压电力", "lv"), ("低压", "lv"), ("居民", "residential"))


@dataclass(frozen=True)
class Application:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str
    customer_class: str
    applicant: str
    area_name: str | None
    content: str
    accepted_at: datetime
    plan_due: datetime | None
    end_due: datetime | None
    connect_due: datetime | None
    provisional: int
    plan_replied_at: datetime | None
    plan_note: str | None
    inspected_at: datetime | None
    connected_at: datetime | None

    @property
    def connection_due(self) -> datetime | None:
        """The connection's deadline: after the works' acceptance (2011) or end to end."""
        return self.connect_due or self.end_due


STORE = rt.Store(Application, "connection_applications",
                 "SELECT c.*, u.name AS owner, a.name AS area_name "
                 "FROM connection_applications c JOIN users u ON u.id = c.user_id "
                 "LEFT JOIN areas a ON a.id = c.area_id", "c")


def rules_of(ctx: Ctx) -> RuleSet:
    rules = ruleset(ctx.services)
    if rules.connection is None:  # a hand-edited set written before 业扩: say so plainly
        raise Invalid("connection.no_rule", ruleset=rules.name)
    return rules


def plan_rule(rules: RuleSet, kind: str) -> Rule | None:
    group = rules.connection.plan_reply if rules.connection else None
    return group.get(kind) if group else None


def connect_rule(rules: RuleSet, kind: str) -> Rule | None:
    group = rules.connection.connect_after_inspection if rules.connection else None
    return group.get(kind) if group else None


def end_rule(rules: RuleSet, kind: str) -> Rule | None:
    group = rules.connection.end_to_end if rules.connection else None
    return group.get(kind) if group else None


# --- the application form -------------------------------------------------------------
async def write_application(ctx: Ctx, values: dict[str, Any], token: str,
                            meta: dict[str, Any]) -> Writing:
    """The application and its ladders as writes, saved with the form's close in one round
    trip; the reply worded from the answers."""
    rules = rules_of(ctx)
    planning = await rt.Planning.for_writes(ctx)
    kind = values["customer_class"]
    accepted = value_time(values["accepted_at"]).astimezone(ctx.tz)
    plan, end = plan_rule(rules, kind), end_rule(rules, kind)
    plan_dl = planning.due(accepted, plan) if plan else None
    end_dl = planning.due(accepted, end) if end else None
    area_id = int(values["area"]) if values.get("area") else None
    batch = Batch()
    columns = {
        "team_id": ctx.user.team_id, "user_id": ctx.user.id, "customer_class": kind,
        "applicant": values["applicant"], "area_id": area_id, "content": values["content"],
        "accepted_at": iso(accepted), "ruleset": rules.name,
        "plan_due": iso(plan_dl.due) if plan_dl else None,
        "end_due": iso(end_dl.due) if end_dl else None,
        "provisional": int(any(d and d.provisional for d in (plan_dl, end_dl))),
        "created_at": iso(ctx.now)}
    ref = STORE.insert_into(batch, token, columns)
    rt.plan_ladders_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id, [
        planning.ladder(step, accepted, dl.due)
        for step, dl in (("plan", plan_dl), ("connect", end_dl)) if dl is not None], ctx.now)

    async def saved(rid: int | None) -> Saved:
        assert rid is not None
        lines = [ctx.t("connection.saved", id=rid, kind=ctx.t(f"connection.class.{kind}"),
                       who=values["applicant"])]
        if plan_dl is not None and plan is not None:
            lines.append(ctx.t("connection.plan_by", when=when(ctx, plan_dl.due),
                               rule=plan.label(ctx.locale), left=remaining(ctx, plan_dl.due)))
        if end_dl is not None and end is not None:
            lines.append(ctx.t("connection.end_by", when=when(ctx, end_dl.due),
                               rule=end.label(ctx.locale), left=remaining(ctx, end_dl.due)))
        after = connect_rule(rules, kind)
        if after is not None:
            lines.append(ctx.t("connection.connect_after", rule=after.label(ctx.locale)))
        if any(d and d.provisional for d in (plan_dl, end_dl)):
            lines.append(ctx.t("deadline.provisional"))
        rec = STORE.as_saved(rid, columns, status="open", owner=ctx.user.name)
        return await _saved(ctx, rec, "\n".join(lines))

    return Writing(batch, ref, saved)


APPLICATION = router.form(FormSpec(
    name="connection",
    title="form.connection.title",
    fields=(
        kinds.named("customer_class", "field.connection_class", "form.connection.class",
                    CLASSES, "connection.class.{}"),
        Field("applicant", "field.connection_applicant", "form.connection.applicant",
              Kind.TEXT, parse=parse_text),
        Field("content", "field.connection_content", "form.connection.content", Kind.TEXT,
              parse=parse_text, hint="form.connection.content.hint"),
        Field("area", "field.area", "form.connection.area", Kind.CHOICE, required=False,
              choices=area_choices, show=show_area),
        rt.time_field("accepted_at", "field.accepted_at", "form.connection.accepted_at",
                      hint="form.worklog.time.hint"),
    ),
    save=None,
    write=write_application,
    quick={"now": now_value},
))


def take_class(text: str) -> tuple[str | None, str]:
    for word, kind in _CLASS_WORDS:
        if word in text:
            return kind, text.replace(word, " ", 1)
    return None, text


async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'业扩 居民 李四 新装 8kW 3号台区' -> the class, the 台区 and, in order, the applicant
    (the first word) and what is applied for (the rest)."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    kind, rest = take_class(rest)
    if kind:
        values["customer_class"] = kind
    rest = await take_area_into(ctx, rest, values, notices)
    words = rest.split()
    if words:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["applicant"] = await parse_text(words[0], ctx)
    if len(words) > 1:
        with contextlib.suppress(Invalid):
            values["content"] = await parse_text(" ".join(words[1:]), ctx)
    return values, notices


@router.intent
async def connection_intent(app: Any, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    values, notices = await prefill(ctx, m.group(2))
    return await app.engine.start(ctx, APPLICATION.name, values, notices)


router.request_patterns.append(_INTENT)


# --- the steps: plan replied, works accepted, connected -------------------------------
def _not_before(ctx: Ctx, at: datetime, earlier: datetime | None) -> None:
    if earlier is not None and at < earlier:
        raise Invalid("connection.too_early", earlier=when(ctx, earlier))


async def _step_time(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """A step's time: in the past, and not before the step before it (said at this step)."""
    from bot.features.worklog.form import parse_when
    value: dict[str, Any] = await parse_when(text, ctx, form)
    rec = await CONNECTIONS.seen(ctx, form.meta)
    if rec is not None:
        _not_before(ctx, value_time(value), rec.inspected_at or rec.plan_replied_at
                    or rec.accepted_at)
    return value


def _move(ctx: Ctx, rec: Application, sets: dict[str, Any], from_: tuple[str, ...],
          cancel: str, saved: Callable[[Application], Awaitable[Saved]],
          ladders: list[tuple[str, list[rt.Rung]]] | None = None) -> Writing:
    """One step, once (the status still one the user saw: else nothing is written and the
    user told), the done step's reminders cancelled and the next step's `ladders` planned,
    with the form's close in one round trip. `saved` words the reply from the record as
    changed (its next step's button: nothing read back)."""
    batch = Batch()
    moved = STORE.update_into(batch, rec.id, {**sets, "updated_at": iso(ctx.now)},
                              f"status IN ({', '.join('?' for _ in from_)})", from_,
                              needed=True)
    Reminders.cancel_into(batch, SUBJECT, rec.id, cancel)
    rt.plan_ladders_into(batch, SUBJECT, rec.id, rec.team_id, rec.user_id, ladders or [],
                         ctx.now, if_new=moved)
    after = rt.from_row(Application, {**rt.kept_row(rec), **sets})  # type: ignore[arg-type]
    return Writing(batch, rec.id, lambda _: saved(after), Invalid("connection.changed"))


async def write_plan(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Writing:
    rec = await CONNECTIONS.kept(ctx, meta)
    at = value_time(values["at"])
    _not_before(ctx, at, rec.accepted_at)
    text = ctx.t("connection.plan_done", id=rec.id) + " " + rt.on_time(ctx, at, rec.plan_due)
    return _move(ctx, rec, {"status": "plan_replied", "plan_replied_at": iso(at),
                            "plan_note": values.get("note") or None}, ("open",), "plan.",
                 lambda after: _saved(ctx, after, text))


async def write_inspected(ctx: Ctx, values: dict[str, Any], token: str,
                          meta: dict[str, Any]) -> Writing:
    """The customer's works passed acceptance: in the 2011 set the connection clock starts."""
    rec = await CONNECTIONS.kept(ctx, meta)
    at = value_time(values["at"]).astimezone(ctx.tz)
    _not_before(ctx, at, rec.plan_replied_at or rec.accepted_at)
    planning = await rt.Planning.for_writes(ctx)
    rule = connect_rule(planning.rules, rec.customer_class)
    dl = planning.due(at, rule) if rule else None
    sets: dict[str, Any] = {"status": "inspected", "inspected_at": iso(at)}
    if dl is not None:
        sets["connect_due"] = iso(dl.due)
    text = ctx.t("connection.inspected", id=rec.id)
    if dl is not None and rule is not None:
        text += "\n" + ctx.t("connection.connect_by", when=when(ctx, dl.due),
                             rule=rule.label(ctx.locale), left=remaining(ctx, dl.due))
    return _move(ctx, rec, sets, ("plan_replied",), "plan.",
                 lambda after: _saved(ctx, after, text),
                 [planning.ladder("connect", at, dl.due)] if dl else None)


async def write_connected(ctx: Ctx, values: dict[str, Any], token: str,
                          meta: dict[str, Any]) -> Writing:
    rec = await CONNECTIONS.kept(ctx, meta)
    at = value_time(values["at"])
    _not_before(ctx, at, rec.inspected_at or rec.plan_replied_at or rec.accepted_at)
    text = (ctx.t("connection.connected", id=rec.id) + " "
            + rt.on_time(ctx, at, rec.connection_due))

    async def saved(_: Application) -> Saved:
        return CONNECTIONS.saved(ctx, rec.id, text)

    return _move(ctx, rec, {"status": "connected", "connected_at": iso(at)},
                 ("open", "plan_replied", "inspected"), "", saved)


async def _saved(ctx: Ctx, rec: Application, text: str) -> Saved:
    """A step saved: the card's button and the next step's, one tap away (from the record
    as just written)."""
    actions = await CONNECTIONS.allowed(ctx, rec)
    return Saved(text, [[CONNECTIONS.open_button(ctx, rec.id), *actions]], record_id=rec.id)


def _at(prompt: str) -> Field:
    return rt.time_field("at", "field.connection_step_at", prompt, parse=_step_time)


PLAN = rt.action_form("connection_plan", None, _at("form.connection_plan.at"),
                      Field("note", "field.connection_plan_note", "form.connection_plan.note",
                            Kind.TEXT, required=False, parse=parse_text), write=write_plan)
INSPECTED = rt.action_form("connection_inspected", None, _at("form.connection_inspected.at"),
                           write=write_inspected)
CONNECTED = rt.action_form("connection_connected", None, _at("form.connection_connected.at"),
                           write=write_connected)


def _may_connect(ctx: Ctx, rec: Application) -> bool:
    """Where the set counts the connection after the works' acceptance, that comes first;
    end to end (newer set) the manager may connect from any open state."""
    if rec.status == "inspected":
        return True
    return rec.status in ("open", "plan_replied") and rec.connect_due is None and (
        connect_rule(ruleset(ctx.services), rec.customer_class) is None)


# --- card and to-do -------------------------------------------------------------------
def title(ctx: Ctx, rec: Application) -> str:
    return ctx.t("connection.title", id=rec.id, who=rec.applicant,
                 kind=ctx.t(f"connection.class.{rec.customer_class}"))


def _step_line(ctx: Ctx, step: str, due: datetime | None, done: datetime | None) -> str:
    """'方案答复期限：… · 已完成于 …' against a deadline; without one, when it was done."""
    if due is not None:
        return rt.deadline_line(ctx, f"field.connection_{step}_due", due, done,
                                "connection.done_at", judge=True)
    return rt.field_line(ctx, f"field.connection_{step}_done",
                         when(ctx, done) if done else ctx.t("connection.not_yet"))


async def render_card(ctx: Ctx, rec: Application, heading: str | None = None) -> Outcome:
    lines = [title(ctx, rec), ctx.t(f"connection.status.{rec.status}"),
             rt.field_line(ctx, "field.owner", rec.owner)]
    if rec.area_name:
        lines.append(rt.field_line(ctx, "field.area", rec.area_name))
    lines += [rt.field_line(ctx, "field.connection_content", rec.content),
              rt.field_line(ctx, "field.accepted_at", when(ctx, rec.accepted_at))]
    lines.append(_step_line(ctx, "plan", rec.plan_due, rec.plan_replied_at))
    if rec.plan_note:
        lines.append(rt.field_line(ctx, "field.connection_plan_note", rec.plan_note))
    if rec.inspected_at is not None:
        lines.append(rt.field_line(ctx, "field.connection_inspected",
                                   when(ctx, rec.inspected_at)))
    lines.append(_step_line(ctx, "connect", rec.connection_due, rec.connected_at))
    if rec.provisional:
        lines.append(ctx.t("deadline.provisional"))
    buttons = await CONNECTIONS.allowed(ctx, rec)
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


def next_due(rec: Application) -> tuple[str, datetime] | None:
    """The step the application waits for and its deadline (None: no deadline now)."""
    if rec.status == "open" and rec.plan_due is not None:
        return "plan", rec.plan_due
    if rec.status != "connected" and rec.connection_due is not None:
        return "connect", rec.connection_due
    return None


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    items = []
    for rec in STORE.records(rows[0]):
        step = next_due(rec)
        if step is None:
            continue
        what, due = step
        items.append(CONNECTIONS.todo_item(
            ctx, rec, due, ctx.t("todo.connection", item=title(ctx, rec),
                                 what=ctx.t(f"connection.step.{what}"), due=when(ctx, due),
                                 left=remaining(ctx, due)),
            f"#{rec.id} " + ctx.t("connection.short")))
    return items


CONNECTIONS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="cn", not_found="connection.not_found",
    meta_key="connection_id", title=title, render_card=render_card,
    transitions=(
        rt.Transition("cnp", "btn.connection_plan", ("open",), PLAN, "cnpf",
                      "connection.plan_heading"),
        rt.Transition("cni", "btn.connection_inspected", ("plan_replied",), INSPECTED, "cnif",
                      "connection.inspected_heading"),
        rt.Transition("cnc", "btn.connection_connected", _may_connect, CONNECTED, "cncf",
                      "connection.connected_heading")),
    form=APPLICATION, command="connection",
    ladders=(rt.Ladder("plan", "connection.step.plan", lambda c: c.plan_due,
                       lambda c: c.status != "open", ("cnp",), drop_late_soon=False),
             rt.Ladder("connect", "connection.step.connect", lambda c: c.connection_due,
                       lambda c: c.status == "connected", ("cnc",), drop_late_soon=False)),
    todo_items=TodoRead(lambda ctx: [STORE.open_read(ctx, "c.status <> 'connected'")], todo),
    after_sent=rt.daily_while_overdue(SUBJECT)).register(router)
router.help_lines.append("connection.help")


# --- the weekly report ----------------------------------------------------------------
def _judge(done: str | None, due: str | None, now: str) -> int:
    """0 on time, 1 late, 2 open and overdue now, 3 open in time, -1 no deadline."""
    if due is None:
        return -1
    if done is not None:
        return 0 if done <= due else 1
    return 2 if due <= now else 3


def report_reads(scope: ReportScope) -> list[Read]:
    who, params = scope.records_of("c")
    now = iso(scope.now)
    return [("SELECT c.*, u.name AS owner, a.name AS area_name FROM connection_applications c "
             "JOIN users u ON u.id = c.user_id LEFT JOIN areas a ON a.id = c.area_id "
             f"WHERE {who} AND ((c.accepted_at >= ? AND c.accepted_at < ?) OR (c.status <> "
             "'connected' AND ((c.status = 'open' AND c.plan_due <= ?) OR c.connect_due <= ? "
             "OR c.end_due <= ?))) ORDER BY c.accepted_at",
             (*params, iso(scope.start), iso(scope.end), now, now, now))]


def report(scope: ReportScope, read: list[list[Row]]) -> ReportPart:
    """Applications accepted in the period, by the manager who has them: plan replies and
    connections on time / late, still open; and every one overdue now, whatever the period."""
    rows, now = read[0], iso(scope.now)
    if not rows:
        return ReportPart()
    loc = scope.locale
    start, end = iso(scope.start), iso(scope.end)
    # owner -> [accepted, plans on time, plans late, connected on time, late, overdue now]
    per: dict[str, list[int]] = {}
    sheet = []
    for r in rows:
        c = per.setdefault(r["owner"], [0, 0, 0, 0, 0, 0])
        plan = _judge(r["plan_replied_at"], r["plan_due"], now)
        conn = _judge(r["connected_at"], r["connect_due"] or r["end_due"], now)
        if start <= r["accepted_at"] < end:
            c[0] += 1
            for judged, on_time in ((plan, 1), (conn, 3)):
                if judged in (0, 1):
                    c[on_time + judged] += 1
        if (r["status"] == "open" and plan == 2) or (r["status"] != "connected" and conn == 2):
            c[5] += 1
        sheet.append([r["id"], t(loc, f"connection.class.{r['customer_class']}"), r["owner"],
                      r["applicant"], r["area_name"], r["content"],
                      scope.local(r["accepted_at"]), scope.local(r["plan_due"]),
                      scope.local(r["plan_replied_at"]), scope.local(r["inspected_at"]),
                      scope.local(r["connect_due"] or r["end_due"]),
                      scope.local(r["connected_at"]), t(loc, f"connection.status.{r['status']}")])
    lines = [t(loc, "connection.report.title")]
    lines += [t(loc, "connection.report.line", owner=o, accepted=c[0], plan_on_time=c[1],
                plan_late=c[2], on_time=c[3], late=c[4], overdue=c[5]) for o, c in per.items()]
    header = [t(loc, k) for k in (
        "connection.col.id", "field.connection_class", "field.owner",
        "field.connection_applicant", "field.area", "field.connection_content",
        "field.accepted_at", "field.connection_plan_due", "field.connection_plan_done",
        "field.connection_inspected", "field.connection_connect_due",
        "field.connection_connect_done", "connection.col.status")]
    chart = [(t(loc, f"connection.chart.{k}"), sum(c[i] for c in per.values()))
             for i, k in ((0, "accepted"), (4, "late"), (5, "overdue"))]
    return ReportPart(lines, t(loc, "connection.report.sheet"), header, sheet, chart)


REPORT = router.report_section(ReportSection(report_reads, report))
