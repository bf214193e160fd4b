"""欠费 (arrears): register a household's arrears, then 催费中 -> 停电通知书已送达 -> 已停电 ->
已缴费 -> 已复电, with follow-up reminders while unpaid, "cut-off now possible" at the end of
the notice period and an urgent restore deadline after payment.

Two exceptions the rules impose:
* A household the special-customer register lists as medical (制氧机, life support) is never
  offered for cut-off: the team's lead decides (同意停电 / 不停电) and only after 'approved'
  can the manager record 已停电.
* Prepaid (远程费控) customers are cut and restored by the metering system under their
  agreement: the 7-day notice does not apply, so neither notice nor cut-off is offered or
  reminded; follow-ups still run until paid.

户名 is optional-with-default: the 户号 field declares that a 户号 on file fills it from the
register (`fills`), so it is not asked; a 户号 outside the register then needs a name, asked
for at save if it was skipped.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot import arrears_io, validators
from bot.deadlines import Deadline, Rule, RuleSet, due_after
from bot.events import Button, Outcome, Reply
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, SaveFn, WriteFn, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind, ParseFn
from bot.forms.kinds import (
    CN_DIGITS,
    FUTURE_TOLERANCE,
    parse_account_no,
    parse_amount_text,
    parse_text,
)
from bot.forms.kinds import money_text as money
from bot.forms.matching import Choice
from bot.i18n import t
from bot.models import User
from bot.records import runtime as rt
from bot.records.common import (
    MEDICAL,
    calendar,
    fill_from_register,
    remaining,
    ruleset,
    show_account,
    show_time,
    step_calendar,
    time_value,
    value_time,
    when,
)
from bot.router import (
    ReportPart,
    ReportScope,
    ReportSection,
    Router,
    TodoItem,
    TodoRead,
    any_one_id,
)
from bot.rules import sensitive_categories
from bot.services import Ctx, Services
from bot.statuses import arrears_status
from bot.storage.batch import Batch
from bot.storage.db import Read, Row, Tx, iso
from bot.storage.reminders import PlannedRung, Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import format_time, parse_time
from bot.workcal import WorkCalendar

if TYPE_CHECKING:
    from bot.assistant import Assistant

router = Router("arrears")
SUBJECT = arrears_io.SUBJECT
UNPAID = arrears_io.UNPAID
_INTENT = re.compile(r"^(登记欠费|欠费登记|新增欠费|录入欠费|新欠费)\s*(.*)$")
# Used when a rule set leaves the follow-up interval null: the brief's default.
DEFAULT_FOLLOWUP = Rule(amount=3, unit="calendar_days")
FOLLOWUP_AT = time(9, 0)  # day-based follow-ups land in the morning, not at registration time
LAW_DAYS = 30  # 电力供应与使用条例 art. 39: cut-off only when more than 30 days overdue


# --- the registration form ------------------------------------------------------------
async def parse_name(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return (await parse_text(text, ctx)).strip()


async def parse_since(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """欠费起始日期: a day, not in the future; a time of day, if given, is dropped."""
    p = parse_time(text, ctx.local_now, prefer="past")
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    if p.value.date() > ctx.local_now.date():
        raise Invalid("arrears.since.future",
                      when=format_time(p.value, ctx.locale, has_time=False),
                      today=format_time(ctx.local_now, ctx.locale, has_time=False))
    day = p.value.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"at": iso(day), "has_time": False}


async def parse_moment(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """When something was done: a time of day is required (deadlines are counted from it,
    and a bare date would quietly move a cut-off or restore deadline by hours)."""
    p = parse_time(text, ctx.local_now, prefer="past")
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    if not p.has_time:
        raise Invalid("arrears.time.need_clock", text=text)
    if p.value > ctx.local_now + FUTURE_TOLERANCE:
        raise Invalid("arrears.time.future", when=format_time(p, ctx.locale),
                      now=format_time(ctx.local_now, ctx.locale))
    return time_value(p)


async def prepaid_choices(ctx: Ctx) -> list[Choice]:
    return [Choice("yes", ctx.t("arrears.yes")), Choice("no", ctx.t("arrears.no"))]


async def show_prepaid(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t("arrears.yes" if value == "yes" else "arrears.no")


def since_date(value: dict[str, Any], ctx: Ctx) -> str:
    return value_time(value).astimezone(ctx.tz).date().isoformat()


# Who decides on a medical household as SQL over users u, one parameter (the team): the
# team's leads, else its admins. Read (deciders) or found by a write that asks them.
DECIDERS = ("u.team_id = ? AND u.active = 1 AND (u.role = 'lead' OR (u.role = 'admin' AND "
            "NOT EXISTS (SELECT 1 FROM users l WHERE l.team_id = u.team_id AND "
            "l.role = 'lead' AND l.active = 1)))")
# Whether the register lists a 户号 as medical (team, 户号, the category): for a write that
# decides by it as it finds the register, with no read before it (issue #12).
MEDICAL_IN_REGISTER = (
    "EXISTS (SELECT 1 FROM customers c JOIN customer_categories cc ON cc.customer_id = c.id "
    "WHERE c.team_id = ? AND c.account_no = ? AND cc.category = ?)")


async def deciders(services: Services, team_id: int) -> list[User]:
    """Who decides on a medical household: the team's leads, else its admins."""
    return await services.people.matching(DECIDERS, (team_id,))


def medical_sql(team_id: int, account: str, saved: bool = False) -> tuple[str, tuple[Any, ...]]:
    """is_medical as SQL: medical as saved (`saved`), or as the register says now."""
    return ("1 = 1", ()) if saved else (MEDICAL_IN_REGISTER, (team_id, account, MEDICAL))


def deciders_read(team_id: int) -> tuple[str, tuple[Any, ...]]:
    """The deciders' names, as deciders() orders them: read with a batch that asks them."""
    return f"SELECT u.name FROM users u WHERE {DECIDERS} ORDER BY u.id", (team_id,)


def decision_rungs(ctx: Ctx, ask: bool) -> list[PlannedRung]:
    """The deciders asked (as plan_decision keys it), if `ask` and the plan's condition
    (medical_sql) finds the household medical."""
    return [PlannedRung("decision", ctx.now, False, True, only_if=True)] if ask else []


async def write_arrears(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """The arrears record, its follow-up and the leads' decision requests as writes, saved
    with the form's close in one round trip. What the register says of the 户号 (its entry,
    a medical household, whose deciders a prepaid one asks at once) the write finds, and
    the reply is worded from it, read with the write. Read first only without a name: a
    户号 the register did not have when it was answered may have it now."""
    services = ctx.services
    team, account = ctx.user.team_id, values["account_no"]
    name = values.get("customer_name")
    if not name:
        customer = await services.customers.by_account(team, account)
        if customer is None:
            raise Invalid("arrears.name_needed", account=account)
        name = customer.name
    prepaid = values["prepaid"] == "yes"
    rules = ruleset(services)
    cal = await step_calendar(ctx)
    since = since_date(values["since"], ctx)
    medical_if = medical_sql(team, account)
    entry = "FROM customers c WHERE c.team_id = ? AND c.account_no = ?"
    batch = Batch()
    # The account's other open records, named in the reply: read with the writes (this one
    # is never among them, by its form token).
    others = batch.read(
        f"SELECT {services.db.json_rows.format('id')} FROM (SELECT id FROM arrears "
        "WHERE team_id = ? AND account_no = ? AND status IN "
        "('collecting', 'notice_served', 'cut_off') AND form_token IS DISTINCT FROM ? "
        "ORDER BY id) o", (team, account, token))
    ref = batch.insert(
        "INSERT INTO arrears(team_id, user_id, account_no, customer_id, customer_name, "
        "amount_cents, since, prepaid, in_register, medical, ruleset, created_at, form_token) "
        f"VALUES (?, ?, ?, (SELECT c.id {entry}), ?, ?, ?, ?, "
        f"CASE WHEN EXISTS (SELECT 1 {entry}) THEN 1 ELSE 0 END, "
        f"CASE WHEN {medical_if[0]} THEN 1 ELSE 0 END, ?, ?, ?) "
        "ON CONFLICT (form_token) DO NOTHING",
        (team, ctx.user.id, account, team, account, name, int(values["amount"]), since,
         int(prepaid), team, account, *medical_if[1], rules.name, iso(ctx.now), token),
        existing=("SELECT id FROM arrears WHERE form_token = ?", (token,)))
    nxt = next_followup(rules, cal, ctx.now, ctx.now)
    # as plan_followup and plan_decision key them; a prepaid meter may be cut by the system
    # at any time: the deciders are asked at once
    Reminders.plan_into(batch, [
        PlannedRung("followup", nxt, False, False, key_end=f":{nxt.date().isoformat()}"),
        *decision_rungs(ctx, prepaid)], team_id=team, owner_id=ctx.user.id, subject=SUBJECT,
        subject_id=ref, now=ctx.now, leads_but=(), leads=(DECIDERS, (team,)),
        condition=medical_if)
    # the register and the users as the write found them (not written by the batch)
    in_register = batch.read(f"SELECT count(*) {entry}", (team, account))
    is_med = batch.read(f"SELECT CASE WHEN {medical_if[0]} THEN 1 ELSE 0 END", medical_if[1])
    asked = batch.read_rows(*deciders_read(team)) if prepaid else None

    async def saved(aid: int | None) -> Saved:
        assert aid is not None
        lines = [ctx.t("arrears.saved", id=aid, name=name, account=account,
                       amount=money(int(values["amount"])),
                       since=when(ctx, values["since"]["at"], has_time=False),
                       days=days_owed(ctx, since))]
        lines.append(ctx.t("arrears.followup_line",
                           every=_followup_rule(rules).label(ctx.locale), when=when(ctx, nxt)))
        if prepaid:
            lines.append(ctx.t("arrears.prepaid_note"))
        elif rules.arrears.notice_before_cutoff is not None:
            lines.append(ctx.t("arrears.next_notice",
                               period=rules.arrears.notice_before_cutoff.label(ctx.locale)))
        if is_med.value:
            lines.append(ctx.t("arrears.medical_note"))
            if asked is not None and asked.value:
                lines.append(ctx.t("arrears.decision_asked",
                                   leads="、".join(r["name"] for r in asked.value)))
        if not in_register.value:
            lines.append(ctx.t("arrears.not_in_register", account=account))
        other_ids = [int(r[0]) for r in json.loads(others.value or "[]")]
        if other_ids:
            lines.append(ctx.t("arrears.other_open", ids="、".join(f"#{i}" for i in other_ids)))
        return ARREARS_RECORDS.saved(ctx, aid, "\n".join(lines))

    return Writing(batch, ref, saved)


ARREARS = router.form(FormSpec(
    name="arrears",
    title="form.arrears.title",
    fields=(
        kinds.account_no("account_no", "field.account_no", "form.arrears.account_no",
                         show=show_account, fills=fill_from_register),
        kinds.text("customer_name", "field.customer_name", "form.arrears.customer_name",
                   required=False, parse=parse_name),
        kinds.money("amount", "field.arrears_amount", "form.arrears.amount",
                    hint="form.arrears.amount.hint"),
        Field("since", "field.arrears_since", "form.arrears.since", Kind.TIME,
              parse=parse_since, show=show_time, hint="form.arrears.since.hint"),
        Field("prepaid", "field.arrears_prepaid", "form.arrears.prepaid", Kind.CHOICE,
              choices=prepaid_choices, show=show_prepaid),
    ),
    save=None,
    write=write_arrears,
    quick={},
))


def _amountish(tok: str) -> bool:
    """A token meant as money: a plain number ('88.8' is money here, not a date), ￥/元, or
    Chinese numerals (then refused with a reason)."""
    return bool(re.search(r"[￥¥元块]", tok) or re.fullmatch(r"[-－]?[\d,，]+(\.\d*)?万?", tok)
                or re.fullmatch(CN_DIGITS.pattern + "+", tok))


async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'5500012345 李四 500元 10月1日' -> form values, and notices for what was refused."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    names: list[str] = []
    for tok in normalize_input(rest).split():
        digits = validators.digits_only(tok)
        field = "account_no"
        try:
            if "account_no" not in values and digits.isdigit() and len(digits) >= 6:
                field = "account_no"
                values[field] = await parse_account_no(tok, ctx)
            elif "amount" not in values and _amountish(tok):
                field = "amount"
                values[field] = parse_amount_text(tok)
            elif "since" not in values and parse_time(tok, ctx.local_now) is not None:
                field = "since"
                values[field] = await parse_since(tok, ctx)
            elif not re.search(r"\d", tok):
                names.append(tok)
        except Invalid as exc:  # refused here: asked again at its own step, with the reason
            notices.setdefault(field, "⚠️ " + ctx.t(exc.key, **exc.kwargs))
    if names:  # a 户号 on file without a name: the form fills it (fill_from_register)
        values["customer_name"] = " ".join(names)
    return values, notices


# --- storage --------------------------------------------------------------------------
@dataclass(frozen=True)
class Arrears:
    id: int
    team_id: int
    user_id: int
    owner: str
    decider: str | None
    status: str  # collecting, notice_served, cut_off, paid, restored
    account_no: str
    customer_name: str
    amount_cents: int
    since: str  # the local day the arrears began, YYYY-MM-DD
    prepaid: int
    in_register: int
    medical: int
    lead_decision: str | None
    lead_decision_reason: str | None  # why the lead approved the cut-off
    notice_served_at: datetime | None
    cutoff_earliest: datetime | None
    cut_off_at: datetime | None
    paid_at: datetime | None
    restore_due: datetime | None
    restored_at: datetime | None
    created_at: datetime
    area_id: int | None  # the 台区 a list gave it (hand-entered: none)
    area_name: str | None
    imported: int  # added by a list import: followed up in the digest's grouped lines

    def medical_undecided(self) -> bool:
        return bool(self.medical) and self.lead_decision is None


def _lead_asked(rec: Arrears) -> bool:
    """The leads have been asked to decide and have not yet (asked at the notice, or at
    once for a prepaid meter)."""
    return (rec.medical_undecided() and rec.status in ("collecting", "notice_served")
            and (rec.status == "notice_served" or bool(rec.prepaid)))


STORE = rt.Store(Arrears, "arrears", "SELECT a.*, u.name AS owner, d.name AS decider "
                 "FROM arrears a JOIN users u ON u.id = a.user_id "
                 "LEFT JOIN users d ON d.id = a.lead_decided_by", "a")


# The register's categories of a record's 户号 (Customers.by_account's), read with the card.
REGISTER_CATEGORIES = (
    "SELECT cc.category FROM arrears a JOIN customers c ON c.team_id = a.team_id "
    "AND c.account_no = a.account_no JOIN customer_categories cc ON cc.customer_id = c.id "
    "WHERE a.id = ?")


async def is_medical(services: Services, rec: Arrears,
                     register: Sequence[str] | None = None) -> bool:
    """Medical as saved, or since added to the register: the safer of the two wins.
    `register`: the 户号's categories in the register, when already read."""
    if rec.medical:
        return True
    if register is None:
        customer = await services.customers.by_account(rec.team_id, rec.account_no)
        register = customer.categories if customer is not None else ()
    if MEDICAL not in register:
        return False
    await services.db.execute("UPDATE arrears SET medical = 1 WHERE id = ?", (rec.id,))
    return True


async def refreshed_medical(services: Services, rec: Arrears,
                            register: Sequence[str] | None = None) -> Arrears:
    """The record with `medical` as the register says now (see is_medical)."""
    medical = await is_medical(services, rec, register)
    return rec if rec.medical or not medical else dataclasses.replace(rec, medical=1)


def _days_owed(ctx: Ctx, rec: Arrears) -> int:
    return days_owed(ctx, rec.since)


def days_owed(ctx: Ctx, since: str) -> int:
    return max(0, (ctx.local_now.date() - date.fromisoformat(since)).days)


def _since_text(ctx: Ctx, rec: Arrears) -> str:
    day = datetime.combine(date.fromisoformat(rec.since), time(), tzinfo=ctx.tz)
    return format_time(day, ctx.locale, has_time=False)


def title(ctx: Ctx, rec: Arrears) -> str:
    return ctx.t("arrears.title", id=rec.id, name=rec.customer_name)


# --- deadlines and planning -----------------------------------------------------------
def _followup_rule(rules: RuleSet) -> Rule:
    return rules.arrears.followup_every or DEFAULT_FOLLOWUP


def next_followup(rules: RuleSet, cal: WorkCalendar, created: datetime,
                  after: datetime) -> datetime:
    """The first follow-up after `after` on the record's own cadence (every N from its
    registration), day-based ones at 09:00 local, so a missed one does not shift the rest."""
    rule = _followup_rule(rules)
    hours = rules.working_hours
    anchor = created.astimezone(hours.zone)
    for _ in range(10_000):
        anchor = due_after(anchor, rule, cal, hours).due.astimezone(hours.zone)
        if rule.unit in ("calendar_days", "working_days"):
            anchor = anchor.replace(hour=FOLLOWUP_AT.hour, minute=FOLLOWUP_AT.minute,
                                    second=0, microsecond=0)
        if anchor > after:
            return anchor
    return after + timedelta(days=3)  # unreachable with a positive rule; never loop forever


async def plan_followup(tx: Tx, rules: RuleSet, cal: WorkCalendar, aid: int, team_id: int,
                        user_id: int, created: datetime, now: datetime) -> None:
    at = next_followup(rules, cal, created, now)
    await Reminders.plan(tx, team_id=team_id, user_id=user_id, subject=SUBJECT, subject_id=aid,
                         kind="followup", due_at=at, now=now,
                         key=f"{SUBJECT}:{aid}:followup:{user_id}:{at.date().isoformat()}")


plan_decision = arrears_io.plan_decision


async def plan_cutoff(tx: Tx, rec: Arrears, at: datetime, now: datetime) -> None:
    await Reminders.plan(tx, team_id=rec.team_id, user_id=rec.user_id, subject=SUBJECT,
                         subject_id=rec.id, kind="cutoff", due_at=max(at, now), now=now)


def earliest_cutoff(rules: RuleSet, cal: WorkCalendar, served: datetime) -> Deadline | None:
    """Delivery + the notice period. The rule is stored as 'N before the cut-off'; counting
    it forward from the delivery gives the same instant."""
    rule = rules.arrears.notice_before_cutoff
    if rule is None:
        return None
    forward = rule.model_copy(update={"direction": "after"})
    return due_after(served, forward, cal, rules.working_hours)


# --- action forms ---------------------------------------------------------------------
def _before_since(ctx: Ctx, at: datetime, rec: Arrears) -> bool:
    return at.astimezone(ctx.tz).date().isoformat() < rec.since


async def write_notice(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """通知书已送达 with the form's close in one round trip, from the record as kept with the
    form (still collecting, else nothing is written and the user told). Whether it is a
    medical household (the register may say so since) the write finds, and plans by it:
    the cut-off reminder, or the lead's decision (and who decides); the reply is worded
    from what it read with the write."""
    rec = await ARREARS_RECORDS.kept(ctx, meta)
    if rec.status != "collecting" or rec.prepaid:
        raise Invalid("arrears.changed")
    at = value_time(values["served_at"])
    if _before_since(ctx, at, rec):
        raise Invalid("arrears.before_since")
    rules = ruleset(ctx.services)
    earliest = earliest_cutoff(rules, await step_calendar(ctx), at)
    cutoff_at = earliest.due if earliest else at
    medical_if = medical_sql(rec.team_id, rec.account_no, bool(rec.medical))
    undecided = rec.lead_decision is None
    batch = Batch()
    # medical as the register says now, kept (is_medical's refresh)
    noticed = batch.update(
        "UPDATE arrears SET status = 'notice_served', notice_served_at = ?, "
        "cutoff_earliest = ?, updated_at = ?, "
        f"medical = CASE WHEN medical = 1 OR {medical_if[0]} THEN 1 ELSE 0 END "
        "WHERE id = ? AND status = 'collecting'",
        (iso(at), iso(cutoff_at), iso(ctx.now), *medical_if[1], rec.id), rec.id, needed=True)
    # as plan_cutoff and plan_decision key them: no cut-off for a medical household
    # without the lead's yes
    Reminders.plan_into(batch, [
        PlannedRung("cutoff", max(cutoff_at, ctx.now), False, False,
                    only_if=None if rec.lead_decision == "approved" else False),
        *decision_rungs(ctx, undecided)], team_id=rec.team_id, owner_id=rec.user_id,
        subject=SUBJECT, subject_id=rec.id, now=ctx.now, leads_but=(),
        leads=(DECIDERS, (rec.team_id,)), condition=medical_if, if_new=noticed)
    # the register and the users as the write found them (not written by the batch)
    is_med = batch.read(f"SELECT CASE WHEN {medical_if[0]} THEN 1 ELSE 0 END", medical_if[1])
    asked = batch.read_rows(*deciders_read(rec.team_id)) if undecided else None

    async def saved(_: int | None) -> Saved:
        lines = [ctx.t("arrears.notice_saved", id=rec.id, when=when(ctx, at))]
        if earliest:
            # Served long enough ago: 现在即可, not a past time and a promise to remind.
            key = "arrears.cutoff_from" if earliest.due > ctx.now else "arrears.cutoff_from_now"
            lines.append(ctx.t(key, when=when(ctx, earliest.due),
                               period=earliest.rule.label(ctx.locale)))
        if is_med.value:
            lines.append(ctx.t("arrears.medical_note"))
            if asked is not None and asked.value:
                lines.append(ctx.t("arrears.decision_asked",
                                   leads="、".join(r["name"] for r in asked.value)))
            elif undecided:
                lines.append(ctx.t("arrears.no_lead"))
        lines += _law_lines(ctx, rules, rec.since, cutoff_at)
        if earliest and earliest.provisional:
            lines.append(ctx.t("deadline.provisional"))
        return ARREARS_RECORDS.saved(ctx, rec.id, "\n".join(lines))

    return Writing(batch, rec.id, saved, Invalid("arrears.changed"))


def earliest_text(ctx: Ctx, at: datetime | None) -> str:
    """The earliest cut-off as the manager needs it: a time still ahead, else 现在即可
    (a past time reads as if the chance had been missed)."""
    if at is not None and at <= ctx.now:
        return ctx.t("arrears.cutoff_now_ok")
    return when(ctx, at)


def cutoff_intro(ctx: Ctx, rec: Arrears) -> str:
    return ctx.t("arrears.cutoff_earliest_line", when=earliest_text(ctx, rec.cutoff_earliest))


async def parse_cutoff_moment(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """The cut-off time, refused at this step (not only at 保存) when it is before the
    earliest allowed one: delivery + the notice period."""
    value = await parse_moment(text, ctx, form)
    rec = await ARREARS_RECORDS.seen(ctx, form.meta)
    if rec is not None:
        _check_not_before_earliest(ctx, rec, value_time(value))
    return value


def _check_not_before_earliest(ctx: Ctx, rec: Arrears, at: datetime) -> None:
    if rec.cutoff_earliest is not None and at < rec.cutoff_earliest:
        raise Invalid("arrears.cutoff_before_earliest", when=when(ctx, rec.cutoff_earliest))


async def cutoff_refusal(ctx: Ctx, rec: Arrears,
                         register: Sequence[str] | None = None) -> str | None:
    """Why 已停电 may not be recorded now, or None when it may."""
    if rec.prepaid:
        return ctx.t("arrears.cutoff_prepaid")
    if rec.status != "notice_served":
        return ctx.t("arrears.cutoff_needs_notice") if rec.status == "collecting" else (
            ctx.t("arrears.changed"))
    if await is_medical(ctx.services, rec, register):
        refused = lead_refusal(ctx, rec)
        if refused is not None:
            return refused
    earliest = rec.cutoff_earliest
    if earliest is not None and earliest > ctx.now:
        return ctx.t("arrears.cutoff_too_early", when=when(ctx, earliest),
                     left=remaining(ctx, earliest))
    return None


def lead_refusal(ctx: Ctx, rec: Arrears) -> str | None:
    """Why a medical household may not be cut off: the lead said no, or has not said yes."""
    if rec.lead_decision == "refused":
        return ctx.t("arrears.cutoff_refused_by_lead", lead=rec.decider or "")
    if rec.lead_decision != "approved":
        return ctx.t("arrears.cutoff_needs_lead")
    return None


async def _refuse_cutoff(ctx: Ctx, rec: Arrears, register: Sequence[str] | None = None, *,
                         read: Sequence[list[Row]] | None = None) -> str | None:
    """`register`: the 户号's categories, or the card's reads (`read`) that hold them."""
    if read is not None:
        register = register_of(read)
    reason = await cutoff_refusal(ctx, rec, register)
    return None if reason is None else "⛔ " + reason


async def write_cutoff(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """已停电 with the form's close in one round trip, from the record as kept with the form
    (still served, else nothing is written and the user told). A household the register
    lists as medical since may not be cut off without the lead's yes: the write finds it
    and then writes nothing (the refusal says so, as before)."""
    rec = await ARREARS_RECORDS.kept(ctx, meta)
    # What only the register could change: the lead's say, if it is medical now.
    lead_says = None if rec.medical else lead_refusal(ctx, rec)
    refusal = await cutoff_refusal(ctx, rec, ())  # as kept
    if refusal is not None and lead_says is not None:
        refusal = await cutoff_refusal(ctx, rec)  # refused anyway: the register says which
    if refusal is not None:
        raise Invalid("arrears.refused", reason=refusal)
    at = value_time(values["cut_off_at"])
    _check_not_before_earliest(ctx, rec, at)
    guard, params = "status = 'notice_served'", ()
    declined: dict[str, Any] = {}
    if lead_says is not None:
        medical_if = medical_sql(rec.team_id, rec.account_no)
        guard, params = f"{guard} AND NOT {medical_if[0]}", medical_if[1]
        declined = {"declined": "arrears.refused", "reason": lead_says, "declined_when": (
            f"SELECT CASE WHEN {medical_if[0]} THEN 1 ELSE 0 END", medical_if[1])}
    batch = Batch()
    STORE.update_into(batch, rec.id, {"status": "cut_off", "cut_off_at": iso(at),
                                      "updated_at": iso(ctx.now)}, guard, params,
                      needed=True, **declined)
    Reminders.cancel_into(batch, SUBJECT, rec.id, "cutoff", "decision")
    rule = ruleset(ctx.services).arrears.restore_after_payment
    text = ctx.t("arrears.cutoff_saved", id=rec.id, when=when(ctx, at))
    if rule is not None:
        text += "\n" + ctx.t("arrears.restore_rule", period=rule.label(ctx.locale))

    async def saved(_: int | None) -> Saved:
        return ARREARS_RECORDS.saved(ctx, rec.id, text)

    return Writing(batch, rec.id, saved, Invalid("arrears.changed"))


async def write_paid(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Writing:
    """已缴费 with the form's close in one round trip, from the record as kept with the form:
    paid once (its status still the one seen, else nothing is written and the user told)."""
    rec = await ARREARS_RECORDS.kept(ctx, meta)
    if rec.status not in UNPAID:
        raise Invalid("arrears.changed")
    at = value_time(values["paid_at"])
    if _before_since(ctx, at, rec):
        raise Invalid("arrears.before_since")
    was_cut = rec.status == "cut_off"
    restore = arrears_io.restore_deadline(ruleset(ctx.services), await step_calendar(ctx), at,
                                          was_cut)
    batch = Batch()
    arrears_io.record_paid_into(batch, rec.id, rec.team_id, rec.user_id, rec.status, at,
                                restore, ctx.now, needed=True)
    lines = [ctx.t("arrears.paid_saved", id=rec.id, when=when(ctx, at),
                   amount=money(rec.amount_cents))]
    if restore is not None:
        lines.append(ctx.t("arrears.restore_by", when=when(ctx, restore.due),
                           period=restore.rule.label(ctx.locale),
                           left=remaining(ctx, restore.due)))
    elif was_cut:
        lines.append(ctx.t("arrears.restore_asap"))
    elif rec.prepaid:
        lines.append(ctx.t("arrears.paid_prepaid_closed"))
    else:
        lines.append(ctx.t("arrears.paid_closed"))

    async def saved(_: int | None) -> Saved:
        return ARREARS_RECORDS.saved(ctx, rec.id, "\n".join(lines))

    return Writing(batch, rec.id, saved, Invalid("arrears.changed"))


async def write_restored(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Writing:
    """已复电 with the form's close in one round trip, from the record as kept with the form
    (still paid, else nothing is written and the user told)."""
    rec = await ARREARS_RECORDS.kept(ctx, meta)
    if rec.status != "paid" or rec.restore_due is None or rec.paid_at is None:
        raise Invalid("arrears.changed")
    at = value_time(values["restored_at"])
    if at < rec.paid_at:
        raise Invalid("arrears.before_paid", when=when(ctx, rec.paid_at))
    batch = Batch()
    STORE.update_into(batch, rec.id, {"status": "restored", "restored_at": iso(at),
                                      "updated_at": iso(ctx.now)}, "status = 'paid'",
                      needed=True)
    Reminders.cancel_into(batch, SUBJECT, rec.id)
    text = (ctx.t("arrears.restored_saved", id=rec.id, when=when(ctx, at)) + " "
            + rt.on_time(ctx, at, rec.restore_due))

    async def saved(_: int | None) -> Saved:
        return ARREARS_RECORDS.saved(ctx, rec.id, text)

    return Writing(batch, rec.id, saved, Invalid("arrears.changed"))


def _moment_form(name: str, field: str, label: str, save: SaveFn | None,
                 parse: ParseFn = parse_moment, write: WriteFn | None = None) -> FormSpec:
    return rt.action_form(name, save, rt.time_field(field, label, f"form.{name}.at", parse,
                                                    "form.worklog.time.hint"), write=write)


NOTICE = _moment_form("arrears_notice", "served_at", "field.arrears_notice_at", None,
                      write=write_notice)
CUTOFF = _moment_form("arrears_cutoff", "cut_off_at", "field.arrears_cut_off_at", None,
                      parse_cutoff_moment, write=write_cutoff)
PAID = _moment_form("arrears_paid", "paid_at", "field.arrears_paid_at", None,
                    write=write_paid)
RESTORED = _moment_form("arrears_restored", "restored_at", "field.arrears_restored_at", None,
                        write=write_restored)


# --- card -----------------------------------------------------------------------------
def _status_key(rec: Arrears) -> str:
    return arrears_status(rec.status, rec.restore_due)


def _law_lines(ctx: Ctx, rules: RuleSet, since: str, cutoff: datetime) -> list[str]:
    """What the law adds to the notice period: more than 30 days overdue (warned, since the
    bill's due date is not recorded), and the newer rule set's re-notice before cutting."""
    lines = []
    days = (cutoff.astimezone(ctx.tz).date() - date.fromisoformat(since)).days
    if days <= LAW_DAYS:
        lines.append(ctx.t("arrears.law_30_days", days=days, when=when(ctx, cutoff)))
    if rules.arrears.renotify_before_cutoff is not None:
        lines.append(ctx.t("arrears.renotify",
                           period=rules.arrears.renotify_before_cutoff.label(ctx.locale)))
    return lines


def card_reads(ctx: Ctx, rid: int) -> list[Read]:
    """Read with the record: the working-day calendar (the next follow-up) and what the
    register says of its 户号 now (a household made medical since)."""
    return [(WorkCalendar.SQL, ()), (REGISTER_CATEGORIES, (rid,))]


def register_of(read: Sequence[list[Row]]) -> list[str]:
    """The register's categories of the record's 户号, from its card_reads' rows."""
    return [r[0] for r in read[1]]


async def render_card(ctx: Ctx, rec: Arrears, heading: str | None = None, *,
                      read: Sequence[list[Row]]) -> Outcome:
    services = ctx.services
    rules = ruleset(services)
    register = register_of(read)
    rec = await refreshed_medical(services, rec, register)
    lines = [heading] if heading else []
    lines += [title(ctx, rec), ctx.t(_status_key(rec)),
              rt.field_line(ctx, "field.account_no", ctx.t(
                  "arrears.account_in_register" if rec.in_register
                  else "arrears.account_unregistered", account=rec.account_no)),
              rt.field_line(ctx, "field.owner", rec.owner),
              rt.field_line(ctx, "field.arrears_amount", money(rec.amount_cents)),
              rt.field_line(ctx, "field.arrears_since", _since_text(ctx, rec))
              + " · " + ctx.t("arrears.days_owed", days=_days_owed(ctx, rec)),
              rt.field_line(ctx, "field.arrears_prepaid",
                         ctx.t("arrears.yes" if rec.prepaid else "arrears.no"))]
    if rec.prepaid:
        lines.append(ctx.t("arrears.prepaid_note"))
    if rec.medical:
        lines.append(ctx.t("arrears.medical_note"))
        decision = rec.lead_decision
        lines.append(rt.field_line(ctx, "field.arrears_decision", ctx.t(
            f"arrears.decision.{decision}", lead=rec.decider or "") if decision
            else ctx.t("arrears.decision.pending")))
        if rec.lead_decision_reason:
            lines.append(rt.field_line(ctx, "field.arrears_decision_reason",
                                       rec.lead_decision_reason))
    if rec.notice_served_at:
        lines.append(rt.field_line(ctx, "field.arrears_notice_at", when(ctx, rec.notice_served_at)))
    if rec.status == "notice_served" and rec.cutoff_earliest is not None:
        line = rt.field_line(ctx, "field.arrears_cutoff_earliest", when(ctx, rec.cutoff_earliest))
        if rec.cutoff_earliest > ctx.now:
            line += " · " + remaining(ctx, rec.cutoff_earliest)
        lines.append(line)
        lines += _law_lines(ctx, rules, rec.since, rec.cutoff_earliest)
    if rec.cut_off_at:
        lines.append(rt.field_line(ctx, "field.arrears_cut_off_at", when(ctx, rec.cut_off_at)))
    if rec.paid_at:
        lines.append(rt.field_line(ctx, "field.arrears_paid_at", when(ctx, rec.paid_at)))
    if rec.restore_due:
        lines.append(rt.deadline_line(ctx, "field.arrears_restore_due", rec.restore_due,
                                      rec.restored_at, "arrears.done_at"))
    if rec.status in UNPAID:
        cal = WorkCalendar.from_rows(read[0])
        lines.append(rt.field_line(ctx, "field.arrears_next_followup",
                                when(ctx, next_followup(rules, cal, rec.created_at, ctx.now))))
    first = await ARREARS_RECORDS.allowed(ctx, rec, {  # with the register as read above
        "arrc": await _refuse_cutoff(ctx, rec, register)})
    rows = [first] if first else []
    if _lead_decides(ctx, rec):
        rows.append(decision_buttons(ctx, rec.id))
    return Outcome().add("\n".join(lines), rows)


def _lead_decides(ctx: Ctx, rec: Arrears) -> bool:
    return (rec.medical_undecided() and ctx.user.sees_whole_team
            and rec.status in ("collecting", "notice_served"))


def decision_buttons(ctx: Ctx, aid: int) -> list[Button]:
    return [Button(ctx.t("btn.arrears_approve"), router.callback("arry", aid)),
            Button(ctx.t("btn.arrears_refuse"), router.callback("arrx", aid))]


async def _refuse_notice(ctx: Ctx, rec: Arrears) -> str | None:
    """Prepaid meters are cut and restored by the metering system: no notice is served."""
    return ctx.t("arrears.notice_prepaid") if rec.prepaid else None


async def ask_lead(ctx: Ctx, rec: Arrears) -> Outcome:
    """The manager's 需班长决定: (re-)ask the leads, at most once a day each."""
    if (rec.lead_decision is not None or rec.status not in ("collecting", "notice_served")
            or not await is_medical(ctx.services, rec)):
        return await ARREARS_RECORDS.card(ctx, rec.id)
    ask = await deciders(ctx.services, rec.team_id)
    if not ask:
        return Outcome().add(ctx.t("arrears.no_lead"))
    async with ctx.services.db.tx() as tx:
        for lead in ask:
            await plan_decision(tx, rec.id, rec.team_id, lead.id, ctx.now, again=True)
    return Outcome(toast=ctx.t("arrears.asked_toast")).add(
        ctx.t("arrears.decision_asked", leads="、".join(u.name for u in ask)),
        ARREARS_RECORDS.saved_buttons(ctx, rec.id))


# --- reminders ------------------------------------------------------------------------
def _next_step(ctx: Ctx, rec: Arrears, medical: bool) -> str:
    if rec.prepaid:
        return ctx.t("arrears.step.prepaid")
    if rec.status == "collecting":
        return ctx.t("arrears.step.notice")
    if rec.status == "cut_off":
        return ctx.t("arrears.step.cut_off")
    if medical and rec.lead_decision is None:
        return ctx.t("arrears.step.await_lead")
    if medical and rec.lead_decision == "refused":
        return ctx.t("arrears.step.lead_refused")
    if rec.cutoff_earliest is not None and rec.cutoff_earliest <= ctx.now:
        return ctx.t("arrears.step.cutoff_now")
    return ctx.t("arrears.step.cutoff_from", when=when(ctx, rec.cutoff_earliest))


async def other_reminders(ctx: Ctx, r: Reminder, rec: Arrears) -> Reply | None:
    """Follow-ups, cut-off now possible, the lead's decision asked and told."""
    open_btn = ARREARS_RECORDS.open_button(ctx, rec.id)
    paid_btn = ACTION["arrp"].button(ctx, rec.id)
    item = title(ctx, rec)
    if rec.status not in UNPAID:
        return None  # paid or restored: follow-ups, cut-off and decisions are moot
    medical = await is_medical(ctx.services, rec)
    if r.kind == "followup":
        text = ctx.t("arrears.reminder.followup", item=item, account=rec.account_no,
                     amount=money(rec.amount_cents), days=_days_owed(ctx, rec),
                     step=_next_step(ctx, rec, medical))
        first = [open_btn, paid_btn]
        if rec.status == "collecting" and not rec.prepaid:
            first.append(ACTION["arrn"].button(ctx, rec.id))
        return Reply(text, [first])
    if r.kind == "cutoff":
        if await cutoff_refusal(ctx, rec) is not None:
            return None  # prepaid, medical without approval, or already cut: stay silent
        text = ctx.t("arrears.reminder.cutoff", item=item, when=when(ctx, rec.cutoff_earliest))
        return Reply(text, [[open_btn, ACTION["arrc"].button(ctx, rec.id), paid_btn]])
    if r.kind == "decision":
        if rec.lead_decision is not None or not medical:
            return None
        text = ctx.t("arrears.reminder.decision", owner=rec.owner, item=item,
                     account=rec.account_no, amount=money(rec.amount_cents),
                     days=_days_owed(ctx, rec))
        if rec.notice_served_at:
            text += "\n" + ctx.t("arrears.reminder.decision_notice",
                                 served=when(ctx, rec.notice_served_at),
                                 earliest=when(ctx, rec.cutoff_earliest))
        if rec.prepaid:
            text += "\n" + ctx.t("arrears.reminder.decision_prepaid")
        return Reply(text, [decision_buttons(ctx, rec.id), [open_btn]])
    if r.kind == "decided":
        decision = rec.lead_decision
        if decision is None:
            return None
        text = ctx.t("arrears.reminder.decided", item=item,
                     decision=ctx.t(f"arrears.decision.{decision}", lead=rec.decider or ""))
        if rec.lead_decision_reason:
            text += "\n" + rt.field_line(ctx, "field.arrears_decision_reason",
                                         rec.lead_decision_reason)
        return Reply(text, [[open_btn]])
    return None


async def after_sent(services: Services, r: Reminder, now: datetime) -> None:
    """Follow-ups repeat while unpaid: plan the next on the record's cadence."""
    if r.kind != "followup":
        return
    rec = await STORE.load(services.db, r.subject_id)
    if rec is None or rec.status not in UNPAID:
        return
    rules = ruleset(services)
    cal = await calendar(services)
    async with services.db.tx() as tx:
        await plan_followup(tx, rules, cal, r.subject_id, r.team_id, r.user_id, rec.created_at,
                            now)


async def _heal_followups(services: Services, recs: list[Arrears], covered: set[int],
                          cal: WorkCalendar, now: datetime) -> None:
    """A follow-up folded into the morning digest (quiet hours, or a scan late after a
    restart) is never 'sent', so after_sent does not chain the next one: plan it here, for
    every unpaid record without a future follow-up (`covered`: those with one; the dedupe
    key makes this idempotent)."""
    missing = [r for r in recs if r.status in UNPAID and r.id not in covered]
    if not missing:
        return
    rules = ruleset(services)
    async with services.db.tx() as tx:
        for r in missing:
            await plan_followup(tx, rules, cal, r.id, r.team_id, r.user_id, r.created_at, now)


OPEN_WHERE = ("a.status IN ('collecting', 'notice_served', 'cut_off') "
              "OR (a.status = 'paid' AND a.restore_due IS NOT NULL)")


def todo_reads(ctx: Ctx) -> list[Read]:
    """The open records, the working-day calendar, and which records have a follow-up
    still to come (for _heal_followups)."""
    open_sql, params = STORE.open_read(ctx, OPEN_WHERE)
    return [(open_sql, params), (WorkCalendar.SQL, ()), (
        "SELECT subject_id FROM reminders WHERE subject = ? AND kind = 'followup' "
        "AND state IN ('pending', 'sending') AND due_at > ? "
        f"AND subject_id IN (SELECT q.id FROM ({open_sql}) q)",
        (SUBJECT, iso(ctx.now), *params))]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    recs = STORE.records(rows[0])
    rules = ruleset(ctx.services)
    cal = WorkCalendar.from_rows(rows[1])
    covered = {int(r[0]) for r in rows[2]}
    # Households from a list are many: grouped (today's to chase, to cut off, to restore),
    # one line each in /todo and the morning digest instead of one per household.
    listed = {rec.id: g for rec in recs if (g := _group_of(ctx, rec, rules, cal))}
    items = _group_items(ctx, [r for r in recs if r.id in listed], listed)
    recs = [r for r in recs if r.id not in listed and not (r.imported and _quiet_today(r))]
    await _heal_followups(ctx.services, [r for r in recs if not r.imported], covered, cal,
                          ctx.now)
    for rec in recs:
        item = title(ctx, rec)
        label = ctx.t("arrears.todo.button", id=rec.id, name=rec.customer_name)
        if rec.status == "paid" and rec.restore_due is not None:
            due = rec.restore_due
            items.append(ARREARS_RECORDS.todo_item(
                ctx, rec, due, ctx.t("arrears.todo.restore", item=item, due=when(ctx, due),
                                     left=remaining(ctx, due)), label, urgent=True))
            continue
        if (rec.status == "notice_served" and rec.cutoff_earliest is not None
                and not (rec.medical and rec.lead_decision == "refused")):
            due = rec.cutoff_earliest
            key = "arrears.todo.decision" if rec.medical_undecided() else "arrears.todo.cutoff"
            text = ctx.t(key, item=item, due=when(ctx, due))
        else:
            due = next_followup(rules, cal, rec.created_at, ctx.now)
            text = ctx.t("arrears.todo.followup", item=item, due=when(ctx, due),
                         step=_next_step(ctx, rec, bool(rec.medical)))
        # A cut-off that may be done, or a follow-up, is an opportunity, never overdue.
        items.append(ARREARS_RECORDS.todo_item(
            ctx, rec, due, text, label, overdue=False,
            decision=_lead_asked(rec)))
    return items


# --- households from a list, grouped -----------------------------------------------------
GROUPS = ("restore", "cutoff", "chase")  # most urgent first
NAMES_SHOWN = 3  # households named in a group's line (the biggest amounts)
LIST_PAGE = 8  # households (with a button each) on one page of a group's list


def _start_of_today(ctx: Ctx) -> datetime:
    return ctx.local_now.replace(hour=0, minute=0, second=0, microsecond=0)


def _cut_off_possible(ctx: Ctx, rec: Arrears) -> bool:
    """Notice served and its period over, not prepaid, not medical (or the lead approved)."""
    return (rec.status == "notice_served" and not rec.prepaid
            and rec.cutoff_earliest is not None and rec.cutoff_earliest <= ctx.now
            and (not rec.medical or rec.lead_decision == "approved"))


def _quiet_today(rec: Arrears) -> bool:
    """An imported household with nothing to do today (not a lead's decision): no line."""
    return not _lead_asked(rec)


def _group_of(ctx: Ctx, rec: Arrears, rules: RuleSet,
              cal: WorkCalendar) -> tuple[str, datetime] | None:
    """(group, due) of an imported household with something to do today, else None."""
    if not rec.imported:
        return None
    if rec.status == "paid" and rec.restore_due is not None:
        return "restore", rec.restore_due
    if _cut_off_possible(ctx, rec):
        assert rec.cutoff_earliest is not None
        return "cutoff", rec.cutoff_earliest
    if _lead_asked(rec) or rec.status not in UNPAID:
        return None  # a lead's decision keeps its own line
    today = _start_of_today(ctx)
    if rec.created_at.astimezone(ctx.tz).date() == today.date() - timedelta(days=1):
        # The morning after the list came: every new household, then on the cadence.
        return "chase", today.replace(hour=FOLLOWUP_AT.hour, minute=FOLLOWUP_AT.minute)
    due = next_followup(rules, cal, rec.created_at, today)
    return ("chase", due) if due < today + timedelta(days=1) else None


def _names(ctx: Ctx, recs: list[Arrears]) -> str:
    biggest = sorted(recs, key=lambda r: -r.amount_cents)[:NAMES_SHOWN]
    text = "、".join(f"{r.customer_name} {money(r.amount_cents)}" for r in biggest)
    return text + (ctx.t("arrimp.todo.more") if len(recs) > NAMES_SHOWN else "")


def _group_items(ctx: Ctx, recs: list[Arrears],
                 groups: dict[int, tuple[str, datetime]]) -> list[TodoItem]:
    by: dict[tuple[int, str], list[Arrears]] = {}
    for rec in recs:
        by.setdefault((rec.user_id, groups[rec.id][0]), []).append(rec)
    items = []
    for (owner_id, group), members in sorted(by.items(), key=lambda kv: (
            kv[0][0], GROUPS.index(kv[0][1]))):
        due = min(groups[r.id][1] for r in members)
        text = ctx.t(f"arrimp.todo.{group}", count=len(members),
                     amount=money(sum(r.amount_cents for r in members)),
                     due=when(ctx, due), names=_names(ctx, members))
        button = Button(ctx.t(f"btn.arrimp_list_{group}", count=len(members)),
                        router.callback("arrl", f"{group}.{owner_id}.0"))
        late = group == "restore" and due <= ctx.now
        items.append(TodoItem(due=due.astimezone(ctx.tz), text=text, button=button,
                              overdue=late, urgent=group == "restore", owner=members[0].owner,
                              owner_id=owner_id, for_lead=late))
    return items


@router.button("arrl")
async def group_list(app: Assistant, ctx: Ctx, draft: Any, arg: str) -> Outcome:
    """The households of one grouped line (a manager's own; a lead's team), biggest first,
    a page at a time with a button to each."""
    parts = arg.split(".")
    if len(parts) != 3 or parts[0] not in GROUPS or not (parts[1] + parts[2]).isdigit():
        return rt.stale(ctx)
    group, owner_id, offset = parts[0], int(parts[1]), int(parts[2])
    rules = ruleset(ctx.services)
    rows, days = await ctx.services.db.fetch_many([  # one round trip (issue #12)
        STORE.open_read(ctx, f"({OPEN_WHERE}) AND a.user_id = ?", (owner_id,)),
        (WorkCalendar.SQL, ())])
    cal = WorkCalendar.from_rows(days)
    recs = [r for r in STORE.records(rows)
            if (g := _group_of(ctx, r, rules, cal)) and g[0] == group]
    if not recs:
        return Outcome().add(ctx.t("arrimp.list.empty"))
    recs.sort(key=lambda r: (-r.amount_cents, r.id))
    page = recs[offset:offset + LIST_PAGE]
    lines = [ctx.t(f"arrimp.list.{group}", owner=recs[0].owner, count=len(recs),
                   amount=money(sum(r.amount_cents for r in recs)))]
    lines += [ctx.t("arrimp.list.line", name=r.customer_name, account=r.account_no,
                    amount=money(r.amount_cents), days=_days_owed(ctx, r),
                    area=r.area_name or "—") for r in page]
    rows = [[ARREARS_RECORDS.open_button(ctx, r.id, ctx.t(
        "arrears.todo.button", id=r.id, name=r.customer_name))] for r in page]
    nav = [Button(ctx.t(key), router.callback("arrl", f"{group}.{owner_id}.{at}"))
           for key, at, show in (("btn.prev_page", max(0, offset - LIST_PAGE), offset > 0),
                                 ("btn.next_page", offset + LIST_PAGE,
                                  offset + LIST_PAGE < len(recs))) if show]
    return Outcome().add("\n".join(lines), [*rows, nav] if nav else rows)


async def describe(ctx: Ctx, r: Reminder) -> str:
    rec = await STORE.load(ctx.services.db, r.subject_id)
    return title(ctx, rec) if rec else ctx.t("arrears.not_found")


# --- the lead's decision ---------------------------------------------------------------
def _not_lead(ctx: Ctx, rec: Arrears) -> Outcome:
    return Outcome(toast=ctx.t("arrears.decision.not_lead_toast")).add(
        ctx.t("arrears.decision.not_lead"), ARREARS_RECORDS.saved_buttons(ctx, rec.id))


async def decision_refusal(ctx: Ctx, rec: Arrears,
                           register: Sequence[str] | None = None) -> str | None:
    """Why no decision can be taken on this record now (the user is a lead), or None.
    `register`: the 户号's categories, when read already (register_of)."""
    if rec.lead_decision is not None:
        return ctx.t("arrears.decision.already", decision=ctx.t(
            f"arrears.decision.{rec.lead_decision}", lead=rec.decider or ""))
    if rec.status not in ("collecting", "notice_served"):
        return ctx.t("arrears.decision.moot")
    if not await is_medical(ctx.services, rec, register):
        return ctx.t("arrears.decision.not_needed")
    return None


async def record_decision(ctx: Ctx, rec: Arrears, decision: str,
                          reason: str | None = None) -> bool:
    """Store the lead's decision; False if another lead decided first (theirs stands)."""
    async with ctx.services.db.tx() as tx:
        if not await STORE.update(tx, rec.id, {"lead_decision": decision,
                                               "lead_decision_reason": reason,
                                               "lead_decided_by": ctx.user.id,
                                               "updated_at": iso(ctx.now)},
                                  "lead_decision IS NULL"):
            return False
        await Reminders.cancel(tx, SUBJECT, rec.id, "decision")
        if rec.user_id != ctx.user.id:
            await Reminders.plan(tx, team_id=rec.team_id, user_id=rec.user_id,
                                 subject=SUBJECT, subject_id=rec.id, kind="decided",
                                 due_at=ctx.now, now=ctx.now)
        if (decision == "approved" and rec.status == "notice_served" and not rec.prepaid
                and rec.cutoff_earliest is not None):
            await plan_cutoff(tx, rec, rec.cutoff_earliest, ctx.now)
    return True


async def refuse_cutoff(ctx: Ctx, rec: Arrears) -> Outcome:
    """不停电: one tap (the safe choice needs no second thought)."""
    if not ctx.user.sees_whole_team:
        return _not_lead(ctx, rec)
    card = ARREARS_RECORDS.card
    refusal = await decision_refusal(ctx, rec)
    if refusal is not None:
        return await card(ctx, rec.id, refusal)
    await record_decision(ctx, rec, "refused")
    out = await card(ctx, rec.id, ctx.t("arrears.decision.saved_refused"))
    out.toast = ctx.t("form.saved_toast")
    return out


def _sensitive_labels(ctx: Ctx, register: Sequence[str]) -> str:
    """The register's sensitive categories of the household (医疗设备/生命支持用电 ...),
    from its categories (register_of)."""
    keys = [k for k in sorted(register) if k in sensitive_categories()]
    return "、".join(ctx.t(f"category.{k}") for k in keys or [MEDICAL])


async def open_approval(app: Assistant, ctx: Ctx, rid: int) -> Outcome:
    """同意停电 for a medical (sensitive) household: not one tap but a small form, the
    reason asked and the summary's 保存 the confirmation. The record and its card's reads
    (the register's categories) come with the step's read (the button declares them)."""
    rec, read = await ARREARS_RECORDS.visible_with(ctx, rid)
    if rec is None:
        return Outcome().add(ctx.t("arrears.not_found"))
    if not ctx.user.sees_whole_team:
        return _not_lead(ctx, rec)
    register = register_of(read)
    refusal = await decision_refusal(ctx, rec, register)
    if refusal is not None:
        return await render_card(ctx, rec, refusal, read=read)
    heading = ctx.t("arrears.approve_heading", item=title(ctx, rec), owner=rec.owner,
                    categories=_sensitive_labels(ctx, register))
    return await app.engine.start(ctx, APPROVE.name, meta={"arrears_id": rid}, heading=heading)


async def save_approval(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Saved:
    rec = await ARREARS_RECORDS.record(ctx, meta)
    if not ctx.user.sees_whole_team:
        raise Invalid("arrears.decision.not_lead")
    refusal = await decision_refusal(ctx, rec)
    if refusal is not None:
        raise Invalid("arrears.refused", reason=refusal)
    if not await record_decision(ctx, rec, "approved", values["reason"]):
        raise Invalid("arrears.changed")
    return ARREARS_RECORDS.saved(ctx, rec.id, "\n".join([
        ctx.t("arrears.decision.saved_approved"),
        rt.field_line(ctx, "field.arrears_decision_reason", values["reason"])]))


APPROVE = rt.action_form("arrears_approve", save_approval, Field(
    "reason", "field.arrears_decision_reason", "form.arrears_approve.reason", Kind.TEXT,
    parse=parse_text, hint="form.arrears_approve.hint"))


# --- wiring ---------------------------------------------------------------------------


ARREARS_RECORDS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="arr", not_found="arrears.not_found",
    meta_key="arrears_id", title=title, render_card=render_card, card_reads=card_reads,
    transitions=(
        rt.Transition("arrn", "btn.arrears_notice", ("collecting",), NOTICE, "arn",
                   "arrears.notice_heading", refuse=_refuse_notice),
        # Never a cut-off button for a medical household: the manager asks the lead instead.
        rt.Transition("arrq", "btn.arrears_ask_lead", run=ask_lead, allowed=lambda ctx, a: (
            a.status == "notice_served" and a.medical_undecided()
            and not ctx.user.sees_whole_team)),
        rt.Transition("arrc", "btn.arrears_cutoff", ("notice_served",), CUTOFF, "arc",
                   "arrears.cutoff_heading", refuse=_refuse_cutoff, refuse_reads=True,
                   intro=cutoff_intro),
        rt.Transition("arrp", "btn.arrears_paid", UNPAID, PAID, "arp", "arrears.paid_heading"),
        rt.Transition("arrs", "btn.arrears_restored", lambda ctx, a: (
            a.status == "paid" and a.restore_due is not None), RESTORED, "ars",
            "arrears.restored_heading"),
    ),
    form=ARREARS, command="arrears", intent=_INTENT, prefill=prefill,
    ladders=(rt.Ladder("restore", "arrears.step.restore", lambda a: a.restore_due,
                       lambda a: a.status != "paid", ("arrs",), drop_late_soon=False),),
    other_reminders=other_reminders, todo_items=TodoRead(todo_reads, todo), after_sent=after_sent,
    describe=describe).register(router)
ACTION = {t.action: t for t in ARREARS_RECORDS.transitions}
router.form(APPROVE)
router.openers["ary"] = open_approval
router.opener_button("arry", "ary", reads=any_one_id(ARREARS_RECORDS.card_read))
ARREARS_RECORDS.on_tap("arrx", refuse_cutoff)


# --- the arrears list sent in chat (issue #14 §1) ----------------------------------------
def _import_lines(ctx: Ctx, s: arrears_io.ImportSummary, *, done: bool) -> list[str]:
    """What an import changes (would change, before 确认导入): counts, then who gets the
    households no manager has, then the first row errors."""
    key = "arrimp.applied" if done else "arrimp.staged"
    lines = [ctx.t(key, file=s.filename, team=s.team, valid=s.valid_rows, errors=s.error_rows),
             ctx.t("arrimp.changes", added=s.added, updated=s.updated, paid=s.paid,
                   unchanged=s.unchanged)]
    if s.to_lead:
        lines.append(ctx.t("arrimp.to_lead", count=s.to_lead, lead=s.lead))
    if s.unknown_areas:
        lines.append(ctx.t("arrimp.unknown_areas", areas="、".join(s.unknown_areas)))
    if s.hand_kept:
        lines.append(ctx.t("arrimp.hand_kept", count=s.hand_kept))
    shown = s.errors[:ERRORS_SHOWN]
    if shown:
        lines.append(ctx.t("arrimp.errors_head"))
        lines += [str(e) for e in shown]
        if s.error_rows > len(shown):
            lines.append(ctx.t("arrimp.errors_more", count=s.error_rows - len(shown)))
    return lines


ERRORS_SHOWN = 10  # row errors listed in chat; the CLI lists them all


async def _not_a_lead(ctx: Ctx) -> Outcome:
    leads = await deciders(ctx.services, ctx.user.team_id)
    return Outcome().add(ctx.t("arrimp.lead_only", leads="、".join(u.name for u in leads)
                               or ctx.t("arrimp.your_lead")))


@router.file_reader(kinds=("xlsx", "xlsm", "csv", "txt"), sniff=arrears_io.is_arrears_list,
                    describe="arrimp.file_kind")
async def arrears_list_sent(ctx: Ctx, filename: str, data: bytes) -> Outcome:
    """A lead's arrears list: staged and shown as a dry run with 确认导入 / 取消."""
    if not ctx.user.sees_whole_team:
        return await _not_a_lead(ctx)
    try:
        summary = await arrears_io.stage_list(ctx.services, data, ctx.user.team_id,
                                              filename=filename, user_id=ctx.user.id,
                                              actor=f"user:{ctx.user.id}")
    except arrears_io.TableError as exc:
        return Outcome().add(ctx.t("arrimp.file_error", file=filename, reason=str(exc)))
    lines = _import_lines(ctx, summary, done=False)
    if not summary.valid_rows:
        await arrears_io.discard(ctx.services.db, summary.import_id)
        return Outcome().add("\n".join([*lines, ctx.t("arrimp.nothing_valid")]))
    lines.append(ctx.t("arrimp.confirm_hint"))
    return Outcome().add("\n".join(lines), [[
        Button(ctx.t("btn.arrimp_apply"), router.callback("impy", summary.import_id)),
        Button(ctx.t("btn.arrimp_cancel"), router.callback("impn", summary.import_id))]])


async def _own_import(ctx: Ctx, arg: str) -> Any:
    """The import a button names, if it is this lead's team's (else None: stale)."""
    if not arg.isdigit() or not ctx.user.sees_whole_team:
        return None
    row = await arrears_io.load_import(ctx.services.db, int(arg))
    return row if row is not None and row["team_id"] == ctx.user.team_id else None


async def _import_closed(ctx: Ctx, import_id: int, state: str) -> Outcome:
    if state == "applied":
        summary = await arrears_io.summary_of(ctx.services, import_id)
        return Outcome(toast=ctx.t("arrimp.already_toast")).add("\n".join(
            [ctx.t("arrimp.already"), *_import_lines(ctx, summary, done=True)[1:2]]))
    key = {"cancelled": "arrimp.was_cancelled", "overtaken": "arrimp.overtaken",
           "applying": "arrimp.busy"}.get(state, "arrimp.was_cancelled")
    return Outcome(toast=ctx.t(key)).add(ctx.t(key))


@router.button("impy")
async def apply_import(app: Assistant, ctx: Ctx, draft: Any, arg: str) -> Outcome:
    row = await _own_import(ctx, arg)
    if row is None:
        return rt.stale(ctx) if ctx.user.sees_whole_team else await _not_a_lead(ctx)
    try:
        summary = await arrears_io.apply_list(ctx.services, int(row["id"]))
    except arrears_io.ImportNotOpen as exc:
        return await _import_closed(ctx, int(row["id"]), exc.state)
    out = Outcome(toast=ctx.t("arrimp.applied_toast"))
    return out.add("\n".join(_import_lines(ctx, summary, done=True)))


@router.button("impn")
async def cancel_import(app: Assistant, ctx: Ctx, draft: Any, arg: str) -> Outcome:
    row = await _own_import(ctx, arg)
    if row is None:
        return rt.stale(ctx) if ctx.user.sees_whole_team else await _not_a_lead(ctx)
    if row["state"] != "staged":
        return await _import_closed(ctx, int(row["id"]), str(row["state"]))
    await arrears_io.discard(ctx.services.db, int(row["id"]))
    return Outcome(toast=ctx.t("arrimp.cancelled")).add(ctx.t("arrimp.cancelled"))


router.help_lines.append("arrimp.help")


# --- the weekly report: 电费回收率 -------------------------------------------------------
@dataclass
class _Recovery:
    due_n: int = 0
    due_cents: int = 0
    got_n: int = 0
    got_cents: int = 0

    def add(self, cents: int, recovered: bool) -> None:
        self.due_n += 1
        self.due_cents += cents
        if recovered:
            self.got_n += 1
            self.got_cents += cents

    @property
    def rate(self) -> float:
        """Recovered amount over the amount due, as 0-100."""
        return 100.0 * self.got_cents / self.due_cents if self.due_cents else 0.0


def _recovery_line(locale: str, key: str, name: str, r: _Recovery) -> str:
    return t(locale, key, name=name, rate=f"{r.rate:.1f}", got=money(r.got_cents),
             due=money(r.due_cents), got_n=r.got_n, due_n=r.due_n)


def recovery_reads(scope: ReportScope) -> list[Read]:
    who, params = scope.records_of("a")
    return [("SELECT a.amount_cents, a.paid_at, u.name AS owner, "
             "COALESCE(ar.name, a.area_name, cr.name) AS area FROM arrears a "
             "JOIN users u ON u.id = a.user_id LEFT JOIN areas ar ON ar.id = a.area_id "
             "LEFT JOIN customers c ON c.id = a.customer_id "
             "LEFT JOIN areas cr ON cr.id = c.area_id "
             f"WHERE {who} AND a.created_at < ? AND (a.paid_at IS NULL OR a.paid_at >= ?) "
             "ORDER BY u.name, a.id", (*params, iso(scope.end), iso(scope.start)))]


def recovery_report(scope: ReportScope, read: list[list[Row]]) -> ReportPart:
    """电费回收率 in the period: of the arrears owed at some time in it (begun before its end,
    not paid before its start), the share paid within it, by amount and by households; per
    manager and per 台区 (the list's, else the register's)."""
    rows = read[0]
    if not rows:
        return ReportPart()
    loc, start, end = scope.locale, iso(scope.start), iso(scope.end)
    total = _Recovery()
    owners: dict[str, _Recovery] = {}
    areas: dict[str, _Recovery] = {}
    unknown = t(loc, "arrimp.report.no_area")
    for r in rows:
        got = r["paid_at"] is not None and start <= r["paid_at"] < end
        for tally in (total, owners.setdefault(r["owner"], _Recovery()),
                      areas.setdefault(r["area"] or unknown, _Recovery())):
            tally.add(r["amount_cents"], got)
    lines = [_recovery_line(loc, "arrimp.report.total", "", total),
             t(loc, "arrimp.report.by_owner")]
    lines += [_recovery_line(loc, "arrimp.report.line", n, o) for n, o in owners.items()]
    lines.append(t(loc, "arrimp.report.by_area"))
    lines += [_recovery_line(loc, "arrimp.report.line", n, a) for n, a in sorted(areas.items())]
    header = [t(loc, f"arrimp.report.col.{k}") for k in (
        "by", "name", "due_n", "got_n", "due", "got", "rate")]
    sheet = [[t(loc, f"arrimp.report.by.{by}"), name, x.due_n, x.got_n, x.due_cents / 100,
              x.got_cents / 100, round(x.rate, 2)]
             for by, group in (("team", {"": total}), ("owner", owners), ("area", areas))
             for name, x in sorted(group.items())]
    return ReportPart(lines, t(loc, "arrimp.report.sheet"), header, sheet,
                      measures={"arrears.recovery_rate": round(total.rate, 2)})


RECOVERY = router.report_section(ReportSection(recovery_reads, recovery_report))
