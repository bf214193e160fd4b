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

户名 is optional-with-default: the engine has no hook to fill a later field from an earlier
answer, so a skipped 户名 falls back to the register's name at save time (the 户号 line of the
summary says so); a 户号 outside the register then needs a name, asked for at save.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot import validators
from bot.conversations.engine import FormSpec, Saved, SaveFn
from bot.conversations.fields import Field, Invalid, Kind
from bot.conversations.matching import Choice
from bot.conversations.worklog import FUTURE_TOLERANCE, parse_text
from bot.deadlines import Deadline, Rule, RuleSet, due_after
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.models import Role, User
from bot.records.common import (
    calendar,
    leads,
    now_value,
    remaining,
    ruleset,
    show_time,
    time_value,
    value_time,
    when,
)
from bot.registry import REGISTRY, ReminderKind, TodoItem
from bot.services import Ctx, Services
from bot.storage.conversations import Draft
from bot.storage.db import Row, Tx, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import format_time, parse_time
from bot.workcal import WorkCalendar

if TYPE_CHECKING:
    from bot.assistant import Assistant

SUBJECT = "arrears"
MEDICAL = "medical"  # the register's category key for 医疗设备/生命支持用电
UNPAID = ("collecting", "notice_served", "cut_off")
_INTENT = re.compile(r"^(登记欠费|欠费登记|新增欠费|录入欠费|新欠费)\s*(.*)$")
# Used when a rule set leaves the follow-up interval null: the brief's default.
DEFAULT_FOLLOWUP = Rule(amount=3, unit="calendar_days")
FOLLOWUP_AT = time(9, 0)  # day-based follow-ups land in the morning, not at registration time
RESTORE_SOON = timedelta(hours=2)
LAW_DAYS = 30  # 电力供应与使用条例 art. 39: cut-off only when more than 30 days overdue
MAX_CENTS = 100_000_000 * 100  # 1 亿元: anything larger is a typo
_CN_DIGITS = re.compile(r"[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]")
_AMOUNT = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


# --- money ----------------------------------------------------------------------------
def parse_amount_text(text: str) -> int:
    """'500', '500.5', '￥500', '500元', '1,200.50', '1.2万' -> integer cents; raises Invalid."""
    s = normalize_input(text).replace(" ", "").replace("，", ",").replace("．", ".")
    s = re.sub(r"^(人民币|RMB|rmb|CNY|cny|￥|¥|\$)", "", s)
    s = re.sub(r"(块钱|元整|圆整|元|圆|块)$", "", s)
    if s.startswith(("-", "－", "负", "−")):
        raise Invalid("arrears.amount.negative", text=text)
    scale = 1
    if s.endswith("万") and not _CN_DIGITS.search(s[:-1]):
        s, scale = s[:-1], 10_000
    if _CN_DIGITS.search(s):
        raise Invalid("arrears.amount.words", text=text)
    m = _AMOUNT.fullmatch(s)
    if m is None:
        raise Invalid("arrears.amount.invalid", text=text)
    whole, frac = m.group(1).replace(",", ""), m.group(2) or ""
    # Exact arithmetic in integers: 1.2万 -> 1200000 cents, never a float.
    digits = int(whole + frac) * scale * 100
    cents, rest = divmod(digits, 10 ** len(frac))
    if rest:
        raise Invalid("arrears.amount.decimals", text=text)
    if cents == 0:
        raise Invalid("arrears.amount.zero", text=text)
    if cents > MAX_CENTS:
        raise Invalid("arrears.amount.too_big", text=text)
    return cents


def money(cents: int) -> str:
    return f"￥{cents // 100:,}.{cents % 100:02d}"


async def parse_amount(text: str, ctx: Ctx) -> int:
    return parse_amount_text(text)


async def show_amount(value: int, ctx: Ctx) -> str:
    return money(int(value))


# --- the registration form ------------------------------------------------------------
async def parse_account(text: str, ctx: Ctx) -> str:
    s = ctx.services.settings
    value = validators.account_no(text, s.account_no_min_digits, s.account_no_max_digits)
    if value is None:
        raise Invalid("customer.account.invalid", text=text, min=s.account_no_min_digits,
                      max=s.account_no_max_digits)
    return value


async def show_account(value: str, ctx: Ctx) -> str:
    """The 户号 with what the register says: the summary shows where a skipped 户名 comes from."""
    customer = await ctx.services.customers.by_account(ctx.user.team_id, value)
    if customer is None:
        return ctx.t("arrears.account_unregistered", account=value)
    return ctx.t("arrears.account_registered", account=value, name=customer.name)


async def parse_name(text: str, ctx: Ctx) -> str:
    return (await parse_text(text, ctx)).strip()


async def parse_since(text: str, ctx: Ctx) -> dict[str, Any]:
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


async def parse_moment(text: str, ctx: Ctx) -> dict[str, Any]:
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


async def show_prepaid(value: str, ctx: Ctx) -> str:
    return ctx.t("arrears.yes" if value == "yes" else "arrears.no")


def since_date(value: dict[str, Any], ctx: Ctx) -> str:
    return value_time(value).astimezone(ctx.tz).date().isoformat()


async def deciders(services: Services, team_id: int) -> list[User]:
    """Who decides on a medical household: the team's leads, else its admins."""
    found = await leads(services, team_id)
    if found:
        return found
    return [u for u in await services.people.users()
            if u.team_id == team_id and u.role is Role.ADMIN]


async def save_arrears(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Saved:
    services = ctx.services
    account = values["account_no"]
    customer = await services.customers.by_account(ctx.user.team_id, account)
    name = values.get("customer_name") or (customer.name if customer else None)
    if not name:
        raise Invalid("arrears.name_needed", account=account)
    medical = bool(customer and MEDICAL in customer.categories)
    prepaid = values["prepaid"] == "yes"
    rules = ruleset(services)
    cal = await calendar(services)
    ask = await deciders(services, ctx.user.team_id) if medical and prepaid else []
    others = await services.db.fetchall(
        "SELECT id FROM arrears WHERE team_id = ? AND account_no = ? AND status IN "
        "('collecting', 'notice_served', 'cut_off') AND form_token IS NOT ?",
        (ctx.user.team_id, account, token))
    async with services.db.tx() as tx:
        existing = await tx.fetchone("SELECT id FROM arrears WHERE form_token = ?", (token,))
        if existing:  # the same confirm processed twice (crash before the draft was closed)
            aid = int(existing["id"])
        else:
            aid = int(await tx.execute(
                "INSERT INTO arrears(team_id, user_id, account_no, customer_id, customer_name, "
                "amount_cents, since, prepaid, in_register, medical, ruleset, form_token, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.user.team_id, ctx.user.id, account, customer.id if customer else None,
                 name, int(values["amount"]), since_date(values["since"], ctx), int(prepaid),
                 int(customer is not None), int(medical), rules.name, token,
                 iso(ctx.now))) or 0)
            await plan_followup(tx, rules, cal, aid, ctx.user.team_id, ctx.user.id, ctx.now,
                                ctx.now)
            # A prepaid meter may be cut by the system at any time: ask the lead at once.
            for lead in ask:
                await plan_decision(tx, aid, ctx.user.team_id, lead.id, ctx.now)
    row = await _row(services, aid)
    assert row is not None
    lines = [ctx.t("arrears.saved", id=aid, name=name, account=account,
                   amount=money(int(values["amount"])),
                   since=when(ctx, values["since"]["at"], has_time=False),
                   days=_days_owed(ctx, row))]
    nxt = next_followup(rules, cal, row, ctx.now)
    lines.append(ctx.t("arrears.followup_line", every=_followup_rule(rules).label(ctx.locale),
                       when=when(ctx, nxt)))
    if prepaid:
        lines.append(ctx.t("arrears.prepaid_note"))
    elif rules.arrears.notice_before_cutoff is not None:
        lines.append(ctx.t("arrears.next_notice",
                           period=rules.arrears.notice_before_cutoff.label(ctx.locale)))
    if medical:
        lines.append(ctx.t("arrears.medical_note"))
        if ask:
            lines.append(ctx.t("arrears.decision_asked", leads="、".join(u.name for u in ask)))
    if customer is None:
        lines.append(ctx.t("arrears.not_in_register", account=account))
    if others:
        lines.append(ctx.t("arrears.other_open", ids="、".join(f"#{r['id']}" for r in others)))
    return Saved("\n".join(lines), card_buttons(ctx, aid), record_id=aid)


ARREARS = REGISTRY.form(FormSpec(
    name="arrears",
    title="form.arrears.title",
    fields=(
        Field("account_no", "field.account_no", "form.arrears.account_no", Kind.TEXT,
              parse=parse_account, show=show_account),
        Field("customer_name", "field.customer_name", "form.arrears.customer_name", Kind.TEXT,
              required=False, parse=parse_name),
        Field("amount", "field.arrears_amount", "form.arrears.amount", Kind.TEXT,
              parse=parse_amount, show=show_amount, hint="form.arrears.amount.hint"),
        Field("since", "field.arrears_since", "form.arrears.since", Kind.TIME,
              parse=parse_since, show=show_time, hint="form.arrears.since.hint"),
        Field("prepaid", "field.arrears_prepaid", "form.arrears.prepaid", Kind.CHOICE,
              choices=prepaid_choices, show=show_prepaid),
    ),
    save=save_arrears,
    quick={},
))


def _amountish(tok: str) -> bool:
    """A token meant as money: a plain number ('88.8' is money here, not a date), ￥/元, or
    Chinese numerals (then refused with a reason)."""
    return bool(re.search(r"[￥¥元块]", tok) or re.fullmatch(r"[-－]?[\d,，]+(\.\d*)?万?", tok)
                or re.fullmatch(_CN_DIGITS.pattern + "+", tok))


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
                values[field] = await parse_account(tok, ctx)
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
    if names:
        values["customer_name"] = " ".join(names)
    elif values.get("account_no"):
        customer = await ctx.services.customers.by_account(ctx.user.team_id,
                                                           values["account_no"])
        if customer is not None:
            values["customer_name"] = customer.name
    return values, notices


# --- storage --------------------------------------------------------------------------
_SELECT = ("SELECT a.*, u.name AS owner, d.name AS decider FROM arrears a "
           "JOIN users u ON u.id = a.user_id LEFT JOIN users d ON d.id = a.lead_decided_by ")


async def _row(services: Services, aid: int) -> Row | None:
    return await services.db.fetchone(_SELECT + "WHERE a.id = ?", (aid,))


async def get(ctx: Ctx, aid: int) -> Row | None:
    """The arrears if the user may see it: their own, or the team's for a lead or admin."""
    row = await _row(ctx.services, aid)
    if row is None or row["team_id"] != ctx.user.team_id:
        return None
    if not ctx.user.sees_whole_team and row["user_id"] != ctx.user.id:
        return None
    return row


async def is_medical(services: Services, row: Row) -> bool:
    """Medical as saved, or since added to the register: the safer of the two wins."""
    if row["medical"]:
        return True
    customer = await services.customers.by_account(row["team_id"], row["account_no"])
    if customer is None or MEDICAL not in customer.categories:
        return False
    await services.db.execute("UPDATE arrears SET medical = 1 WHERE id = ?", (row["id"],))
    return True


def _days_owed(ctx: Ctx, row: Row) -> int:
    return max(0, (ctx.local_now.date() - date.fromisoformat(row["since"])).days)


def _since_text(ctx: Ctx, row: Row) -> str:
    day = datetime.combine(date.fromisoformat(row["since"]), time(), tzinfo=ctx.tz)
    return format_time(day, ctx.locale, has_time=False)


def _title(ctx: Ctx, row: Row) -> str:
    return ctx.t("arrears.title", id=row["id"], name=row["customer_name"])


# --- deadlines and planning -----------------------------------------------------------
def _followup_rule(rules: RuleSet) -> Rule:
    return rules.arrears.followup_every or DEFAULT_FOLLOWUP


def next_followup(rules: RuleSet, cal: WorkCalendar, row: Row | dict[str, Any],
                  after: datetime) -> datetime:
    """The first follow-up after `after` on the record's own cadence (every N from its
    registration), day-based ones at 09:00 local, so a missed one does not shift the rest."""
    rule = _followup_rule(rules)
    hours = rules.working_hours
    anchor = from_iso(row["created_at"]).astimezone(hours.zone)
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
    at = next_followup(rules, cal, {"created_at": iso(created)}, now)
    await Reminders.plan(tx, team_id=team_id, user_id=user_id, subject=SUBJECT, subject_id=aid,
                         kind="followup", due_at=at, now=now,
                         key=f"{SUBJECT}:{aid}:followup:{user_id}:{at.date().isoformat()}")


async def plan_decision(tx: Tx, aid: int, team_id: int, lead_id: int, now: datetime,
                        again: bool = False) -> None:
    """Ask one lead (non-urgent: a decision, not an emergency). `again`: the manager's
    re-ask, at most once a day per lead."""
    key = f"{SUBJECT}:{aid}:decision:{lead_id}" + (f":{now.date().isoformat()}" if again else "")
    await Reminders.plan(tx, team_id=team_id, user_id=lead_id, subject=SUBJECT, subject_id=aid,
                         kind="decision", due_at=now, now=now, key=key)


def earliest_cutoff(rules: RuleSet, cal: WorkCalendar, served: datetime) -> Deadline | None:
    """Delivery + the notice period. The rule is stored as 'N before the cut-off'; counting
    it forward from the delivery gives the same instant."""
    rule = rules.arrears.notice_before_cutoff
    if rule is None:
        return None
    forward = rule.model_copy(update={"direction": "after"})
    return due_after(served, forward, cal, rules.working_hours)


async def _changed(tx: Tx) -> bool:
    row = await tx.fetchone("SELECT changes()")
    return bool(row and row[0])


# --- action forms ---------------------------------------------------------------------
async def _action_row(ctx: Ctx, meta: dict[str, Any]) -> Row:
    row = await get(ctx, int(meta["arrears_id"]))
    if row is None:
        raise Invalid("arrears.not_found")
    return row


async def save_notice(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Saved:
    services = ctx.services
    row = await _action_row(ctx, meta)
    if row["status"] != "collecting" or row["prepaid"]:
        raise Invalid("arrears.changed")
    at = value_time(values["served_at"])
    if at.astimezone(ctx.tz).date().isoformat() < row["since"]:
        raise Invalid("arrears.before_since")
    rules = ruleset(services)
    cal = await calendar(services)
    earliest = earliest_cutoff(rules, cal, at)
    cutoff_at = earliest.due if earliest else at
    medical = await is_medical(services, row)
    ask = (await deciders(services, row["team_id"])
           if medical and row["lead_decision"] is None else [])
    aid = int(row["id"])
    async with services.db.tx() as tx:
        await tx.execute(
            "UPDATE arrears SET status = 'notice_served', notice_served_at = ?, "
            "cutoff_earliest = ?, updated_at = ? WHERE id = ? AND status = 'collecting'",
            (iso(at), iso(cutoff_at), iso(ctx.now), aid))
        if not await _changed(tx):
            raise Invalid("arrears.changed")
        if not medical or row["lead_decision"] == "approved":
            await Reminders.plan(tx, team_id=row["team_id"], user_id=row["user_id"],
                                 subject=SUBJECT, subject_id=aid, kind="cutoff",
                                 due_at=max(cutoff_at, ctx.now), now=ctx.now)
        for lead in ask:
            await plan_decision(tx, aid, row["team_id"], lead.id, ctx.now)
    lines = [ctx.t("arrears.notice_saved", id=aid, when=when(ctx, at))]
    if earliest:
        lines.append(ctx.t("arrears.cutoff_from", when=when(ctx, earliest.due),
                           period=earliest.rule.label(ctx.locale)))
    if medical:
        lines.append(ctx.t("arrears.medical_note"))
        if ask:
            lines.append(ctx.t("arrears.decision_asked", leads="、".join(u.name for u in ask)))
        elif row["lead_decision"] is None:
            lines.append(ctx.t("arrears.no_lead"))
    lines += _law_lines(ctx, rules, row["since"], cutoff_at)
    if earliest and earliest.provisional:
        lines.append(ctx.t("deadline.provisional"))
    return Saved("\n".join(lines), card_buttons(ctx, aid), record_id=aid)


async def cutoff_refusal(ctx: Ctx, row: Row) -> str | None:
    """Why 已停电 may not be recorded now, or None when it may."""
    if row["prepaid"]:
        return ctx.t("arrears.cutoff_prepaid")
    if row["status"] != "notice_served":
        return ctx.t("arrears.cutoff_needs_notice") if row["status"] == "collecting" else (
            ctx.t("arrears.changed"))
    if await is_medical(ctx.services, row):
        if row["lead_decision"] == "refused":
            return ctx.t("arrears.cutoff_refused_by_lead", lead=row["decider"] or "")
        if row["lead_decision"] != "approved":
            return ctx.t("arrears.cutoff_needs_lead")
    earliest = from_iso(row["cutoff_earliest"])
    if earliest > ctx.now:
        return ctx.t("arrears.cutoff_too_early", when=when(ctx, earliest),
                     left=remaining(ctx, earliest))
    return None


async def save_cutoff(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Saved:
    row = await _action_row(ctx, meta)
    refusal = await cutoff_refusal(ctx, row)
    if refusal is not None:
        raise Invalid("arrears.refused", reason=refusal)
    at = value_time(values["cut_off_at"])
    if at < from_iso(row["cutoff_earliest"]):
        raise Invalid("arrears.cutoff_before_earliest",
                      when=when(ctx, row["cutoff_earliest"]))
    aid = int(row["id"])
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE arrears SET status = 'cut_off', cut_off_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'notice_served'", (iso(at), iso(ctx.now), aid))
        if not await _changed(tx):
            raise Invalid("arrears.changed")
        await Reminders.cancel(tx, SUBJECT, aid, "cutoff")
        await Reminders.cancel(tx, SUBJECT, aid, "decision")
    rule = ruleset(ctx.services).arrears.restore_after_payment
    text = ctx.t("arrears.cutoff_saved", id=aid, when=when(ctx, at))
    if rule is not None:
        text += "\n" + ctx.t("arrears.restore_rule", period=rule.label(ctx.locale))
    return Saved(text, card_buttons(ctx, aid), record_id=aid)


async def save_paid(ctx: Ctx, values: dict[str, Any], token: str,
                    meta: dict[str, Any]) -> Saved:
    services = ctx.services
    row = await _action_row(ctx, meta)
    if row["status"] not in UNPAID:
        raise Invalid("arrears.changed")
    at = value_time(values["paid_at"])
    if at.astimezone(ctx.tz).date().isoformat() < row["since"]:
        raise Invalid("arrears.before_since")
    rules = ruleset(services)
    cal = await calendar(services)
    rule = rules.arrears.restore_after_payment
    was_cut = row["status"] == "cut_off"
    restore: Deadline | None = None
    if was_cut and rule is not None:
        restore = due_after(at, rule, cal, rules.working_hours)
    team_leads = [u.id for u in await leads(services, row["team_id"]) if u.id != row["user_id"]]
    aid = int(row["id"])
    async with services.db.tx() as tx:
        await tx.execute(
            "UPDATE arrears SET status = 'paid', paid_at = ?, restore_due = ?, updated_at = ? "
            "WHERE id = ? AND status = ?",
            (iso(at), iso(restore.due) if restore else None, iso(ctx.now), aid, row["status"]))
        if not await _changed(tx):
            raise Invalid("arrears.changed")
        await Reminders.cancel(tx, SUBJECT, aid)  # follow-ups, cut-off, decision: all moot
        if restore is not None:
            await plan_restore(tx, row, restore.due, ctx.now, team_leads)
    lines = [ctx.t("arrears.paid_saved", id=aid, when=when(ctx, at),
                   amount=money(row["amount_cents"]))]
    if restore is not None:
        lines.append(ctx.t("arrears.restore_by", when=when(ctx, restore.due),
                           period=restore.rule.label(ctx.locale),
                           left=remaining(ctx, restore.due)))
    elif was_cut:
        lines.append(ctx.t("arrears.restore_asap"))
    elif row["prepaid"]:
        lines.append(ctx.t("arrears.paid_prepaid_closed"))
    else:
        lines.append(ctx.t("arrears.paid_closed"))
    return Saved("\n".join(lines), card_buttons(ctx, aid), record_id=aid)


async def plan_restore(tx: Tx, row: Row, due: datetime, now: datetime,
                       lead_ids: list[int]) -> None:
    """Urgent (quiet hours do not hold them): 2 h before, at due; leads told at due."""
    common: dict[str, Any] = {"team_id": row["team_id"], "subject": SUBJECT,
                              "subject_id": row["id"],
                              "now": now, "urgent": True}
    if due - RESTORE_SOON > now:
        await Reminders.plan(tx, user_id=row["user_id"], kind="restore.soon",
                             due_at=due - RESTORE_SOON, **common)
    await Reminders.plan(tx, user_id=row["user_id"], kind="restore.due", due_at=max(due, now),
                         **common)
    for lead_id in lead_ids:
        await Reminders.plan(tx, user_id=lead_id, kind="restore.escalate",
                             due_at=max(due, now), **common)


async def save_restored(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Saved:
    row = await _action_row(ctx, meta)
    if row["status"] != "paid" or row["restore_due"] is None:
        raise Invalid("arrears.changed")
    at = value_time(values["restored_at"])
    if at < from_iso(row["paid_at"]):
        raise Invalid("arrears.before_paid", when=when(ctx, row["paid_at"]))
    aid = int(row["id"])
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE arrears SET status = 'restored', restored_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'paid'", (iso(at), iso(ctx.now), aid))
        if not await _changed(tx):
            raise Invalid("arrears.changed")
        await Reminders.cancel(tx, SUBJECT, aid)
    on_time = at <= from_iso(row["restore_due"])
    return Saved(ctx.t("arrears.restored_saved", id=aid, when=when(ctx, at)) + " "
                 + ctx.t("deadline.on_time" if on_time else "deadline.late"),
                 card_buttons(ctx, aid), record_id=aid)


def _moment_form(name: str, field: str, label: str, save: SaveFn) -> FormSpec:
    return REGISTRY.form(FormSpec(
        name=name, title=f"form.{name}.title",
        fields=(Field(field, label, f"form.{name}.at", Kind.TIME, parse=parse_moment,
                      show=show_time, hint="form.worklog.time.hint", quick=("now",)),),
        save=save, quick={"now": now_value}))


NOTICE = _moment_form("arrears_notice", "served_at", "field.arrears_notice_at", save_notice)
CUTOFF = _moment_form("arrears_cutoff", "cut_off_at", "field.arrears_cut_off_at", save_cutoff)
PAID = _moment_form("arrears_paid", "paid_at", "field.arrears_paid_at", save_paid)
RESTORED = _moment_form("arrears_restored", "restored_at", "field.arrears_restored_at",
                        save_restored)


# --- card -----------------------------------------------------------------------------
def card_buttons(ctx: Ctx, aid: int) -> list[list[Button]]:
    return [[Button(ctx.t("btn.open_item"), callback(GLOBAL_TOKEN, "arr", aid))]]


def _status_key(row: Row) -> str:
    if row["status"] == "paid" and row["restore_due"] is None:
        return "arrears.status.paid_closed"
    return f"arrears.status.{row['status']}"


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


async def card(ctx: Ctx, aid: int, heading: str | None = None) -> Outcome:
    row = await get(ctx, aid)
    if row is None:
        return Outcome().add(ctx.t("arrears.not_found"))
    services = ctx.services
    rules = ruleset(services)
    medical = await is_medical(services, row)
    sep = "：" if ctx.locale == "zh_CN" else ": "
    status = row["status"]
    lines = [heading] if heading else []
    lines += [_title(ctx, row), ctx.t(_status_key(row))]
    lines.append(ctx.t("field.account_no") + sep + (
        ctx.t("arrears.account_in_register", account=row["account_no"]) if row["in_register"]
        else ctx.t("arrears.account_unregistered", account=row["account_no"])))
    lines.append(ctx.t("field.owner") + sep + row["owner"])
    lines.append(ctx.t("field.arrears_amount") + sep + money(row["amount_cents"]))
    lines.append(ctx.t("field.arrears_since") + sep + _since_text(ctx, row)
                 + " · " + ctx.t("arrears.days_owed", days=_days_owed(ctx, row)))
    lines.append(ctx.t("field.arrears_prepaid") + sep
                 + ctx.t("arrears.yes" if row["prepaid"] else "arrears.no"))
    if row["prepaid"]:
        lines.append(ctx.t("arrears.prepaid_note"))
    if medical:
        lines.append(ctx.t("arrears.medical_note"))
        decision = row["lead_decision"]
        lines.append(ctx.t("field.arrears_decision") + sep + (
            ctx.t(f"arrears.decision.{decision}", lead=row["decider"] or "") if decision
            else ctx.t("arrears.decision.pending")))
    if row["notice_served_at"]:
        lines.append(ctx.t("field.arrears_notice_at") + sep + when(ctx, row["notice_served_at"]))
    if status == "notice_served":
        line = ctx.t("field.arrears_cutoff_earliest") + sep + when(ctx, row["cutoff_earliest"])
        if from_iso(row["cutoff_earliest"]) > ctx.now:
            line += " · " + remaining(ctx, row["cutoff_earliest"])
        lines.append(line)
        lines += _law_lines(ctx, rules, row["since"], from_iso(row["cutoff_earliest"]))
    if row["cut_off_at"]:
        lines.append(ctx.t("field.arrears_cut_off_at") + sep + when(ctx, row["cut_off_at"]))
    if row["paid_at"]:
        lines.append(ctx.t("field.arrears_paid_at") + sep + when(ctx, row["paid_at"]))
    if row["restore_due"]:
        done = row["restored_at"]
        lines.append(ctx.t("field.arrears_restore_due") + sep + when(ctx, row["restore_due"])
                     + " · " + (ctx.t("arrears.done_at", when=when(ctx, done)) if done
                                else remaining(ctx, row["restore_due"])))
    if status in UNPAID:
        cal = await calendar(services)
        lines.append(ctx.t("field.arrears_next_followup") + sep
                     + when(ctx, next_followup(rules, cal, row, ctx.now)))
    return Outcome().add("\n".join(lines), await _card_actions(ctx, row, medical))


async def _card_actions(ctx: Ctx, row: Row, medical: bool) -> list[list[Button]]:
    aid = row["id"]
    status = row["status"]
    first: list[Button] = []
    if status == "collecting" and not row["prepaid"]:
        first.append(Button(ctx.t("btn.arrears_notice"), callback(GLOBAL_TOKEN, "arrn", aid)))
    if status == "notice_served":
        if medical and row["lead_decision"] is None:
            if not ctx.user.sees_whole_team:
                # Never a cut-off button for a medical household: the lead is asked instead.
                first.append(Button(ctx.t("btn.arrears_ask_lead"),
                                    callback(GLOBAL_TOKEN, "arrq", aid)))
        elif await cutoff_refusal(ctx, row) is None:
            first.append(Button(ctx.t("btn.arrears_cutoff"), callback(GLOBAL_TOKEN, "arrc", aid)))
    if status in UNPAID:
        first.append(Button(ctx.t("btn.arrears_paid"), callback(GLOBAL_TOKEN, "arrp", aid)))
    if status == "paid" and row["restore_due"]:
        first.append(Button(ctx.t("btn.arrears_restored"), callback(GLOBAL_TOKEN, "arrs", aid)))
    rows = [first] if first else []
    if (medical and row["lead_decision"] is None and ctx.user.sees_whole_team
            and status in ("collecting", "notice_served")):
        rows.append(decision_buttons(ctx, aid))
    return rows


def decision_buttons(ctx: Ctx, aid: int) -> list[Button]:
    return [Button(ctx.t("btn.arrears_approve"), callback(GLOBAL_TOKEN, "arry", aid)),
            Button(ctx.t("btn.arrears_refuse"), callback(GLOBAL_TOKEN, "arrx", aid))]


# --- reminders ------------------------------------------------------------------------
def _next_step(ctx: Ctx, row: Row, medical: bool) -> str:
    status = row["status"]
    if row["prepaid"]:
        return ctx.t("arrears.step.prepaid")
    if status == "collecting":
        return ctx.t("arrears.step.notice")
    if status == "cut_off":
        return ctx.t("arrears.step.cut_off")
    if medical and row["lead_decision"] is None:
        return ctx.t("arrears.step.await_lead")
    if medical and row["lead_decision"] == "refused":
        return ctx.t("arrears.step.lead_refused")
    return ctx.t("arrears.step.cutoff_from", when=when(ctx, row["cutoff_earliest"]))


async def render(ctx: Ctx, r: Reminder) -> Reply | None:
    row = await _row(ctx.services, r.subject_id)
    if row is None:
        return None
    status = row["status"]
    aid = row["id"]
    open_btn = Button(ctx.t("btn.open_item"), callback(GLOBAL_TOKEN, "arr", aid))
    paid_btn = Button(ctx.t("btn.arrears_paid"), callback(GLOBAL_TOKEN, "arrp", aid))
    title = _title(ctx, row)
    if r.kind.startswith("restore."):
        if status != "paid" or row["restore_due"] is None:
            return None  # restored (or reopened): nothing to remind
        due = row["restore_due"]
        what = ctx.t("arrears.step.restore")
        if r.kind == "restore.escalate":
            text = ctx.t("reminder.escalate", owner=row["owner"], item=title, what=what,
                         due=when(ctx, due), late=remaining(ctx, due))
        elif r.kind == "restore.due":
            text = ctx.t("reminder.overdue", item=title, what=what, due=when(ctx, due),
                         late=remaining(ctx, due))
        else:
            text = ctx.t("reminder.soon", item=title, what=what, due=when(ctx, due),
                         left=remaining(ctx, due))
        return Reply(text, [[open_btn, Button(ctx.t("btn.arrears_restored"),
                                              callback(GLOBAL_TOKEN, "arrs", aid))]])
    if status not in UNPAID:
        return None  # paid or restored: follow-ups, cut-off and decisions are moot
    medical = await is_medical(ctx.services, row)
    if r.kind == "followup":
        text = ctx.t("arrears.reminder.followup", item=title, account=row["account_no"],
                     amount=money(row["amount_cents"]), days=_days_owed(ctx, row),
                     step=_next_step(ctx, row, medical))
        first = [open_btn, paid_btn]
        if status == "collecting" and not row["prepaid"]:
            first.append(Button(ctx.t("btn.arrears_notice"),
                                callback(GLOBAL_TOKEN, "arrn", aid)))
        return Reply(text, [first])
    if r.kind == "cutoff":
        if await cutoff_refusal(ctx, row) is not None:
            return None  # prepaid, medical without approval, or already cut: stay silent
        text = ctx.t("arrears.reminder.cutoff", item=title, when=when(ctx, row["cutoff_earliest"]))
        return Reply(text, [[open_btn, Button(ctx.t("btn.arrears_cutoff"),
                                              callback(GLOBAL_TOKEN, "arrc", aid)), paid_btn]])
    if r.kind == "decision":
        if row["lead_decision"] is not None or not medical:
            return None
        text = ctx.t("arrears.reminder.decision", owner=row["owner"], item=title,
                     account=row["account_no"], amount=money(row["amount_cents"]),
                     days=_days_owed(ctx, row))
        if row["notice_served_at"]:
            text += "\n" + ctx.t("arrears.reminder.decision_notice",
                                 served=when(ctx, row["notice_served_at"]),
                                 earliest=when(ctx, row["cutoff_earliest"]))
        if row["prepaid"]:
            text += "\n" + ctx.t("arrears.reminder.decision_prepaid")
        return Reply(text, [decision_buttons(ctx, aid), [open_btn]])
    if r.kind == "decided":
        decision = row["lead_decision"]
        if decision is None:
            return None
        text = ctx.t("arrears.reminder.decided", item=title,
                     decision=ctx.t(f"arrears.decision.{decision}", lead=row["decider"] or ""))
        return Reply(text, [[open_btn]])
    return None


async def after_sent(services: Services, r: Reminder, now: datetime) -> None:
    """Follow-ups repeat while unpaid: plan the next on the record's cadence."""
    if r.kind != "followup":
        return
    row = await _row(services, r.subject_id)
    if row is None or row["status"] not in UNPAID:
        return
    rules = ruleset(services)
    cal = await calendar(services)
    async with services.db.tx() as tx:
        await plan_followup(tx, rules, cal, r.subject_id, r.team_id, r.user_id,
                            from_iso(row["created_at"]), now)


async def _heal_followups(services: Services, rows: list[Row], now: datetime) -> None:
    """A follow-up folded into the morning digest (quiet hours, or a scan late after a
    restart) is never 'sent', so after_sent does not chain the next one: plan it here, for
    every unpaid record without a future follow-up (the dedupe key makes this idempotent)."""
    unpaid = [r for r in rows if r["status"] in UNPAID]
    if not unpaid:
        return
    marks = ",".join("?" for _ in unpaid)
    covered = {int(r[0]) for r in await services.db.fetchall(
        f"SELECT subject_id FROM reminders WHERE subject = ? AND kind = 'followup' "
        f"AND state IN ('pending', 'sending') AND due_at > ? AND subject_id IN ({marks})",
        (SUBJECT, iso(now), *[r["id"] for r in unpaid]))}
    missing = [r for r in unpaid if r["id"] not in covered]
    if not missing:
        return
    rules = ruleset(services)
    cal = await calendar(services)
    async with services.db.tx() as tx:
        for r in missing:
            await plan_followup(tx, rules, cal, r["id"], r["team_id"], r["user_id"],
                                from_iso(r["created_at"]), now)


async def todo(ctx: Ctx) -> list[TodoItem]:
    scope = "a.team_id = ?" if ctx.user.sees_whole_team else "a.user_id = ?"
    rows = await ctx.services.db.fetchall(
        _SELECT + f"WHERE {scope} AND (a.status IN ('collecting', 'notice_served', 'cut_off') "
        "OR (a.status = 'paid' AND a.restore_due IS NOT NULL))",
        (ctx.user.team_id if ctx.user.sees_whole_team else ctx.user.id,))
    await _heal_followups(ctx.services, rows, ctx.now)
    rules = ruleset(ctx.services)
    cal = await calendar(ctx.services)
    items = []
    for row in rows:
        medical = bool(row["medical"])
        urgent = False
        overdue = False
        if row["status"] == "paid":
            due = from_iso(row["restore_due"])
            text = ctx.t("arrears.todo.restore", item=_title(ctx, row), due=when(ctx, due),
                         left=remaining(ctx, due))
            urgent, overdue = True, due <= ctx.now
        elif row["status"] == "notice_served" and not (
                medical and row["lead_decision"] == "refused"):
            due = from_iso(row["cutoff_earliest"])
            key = ("arrears.todo.decision" if medical and row["lead_decision"] is None
                   else "arrears.todo.cutoff")
            text = ctx.t(key, item=_title(ctx, row), due=when(ctx, due))
        else:
            due = next_followup(rules, cal, row, ctx.now)
            text = ctx.t("arrears.todo.followup", item=_title(ctx, row), due=when(ctx, due),
                         step=_next_step(ctx, row, medical))
        items.append(TodoItem(
            due=due.astimezone(ctx.tz), text=text,
            button=Button(ctx.t("arrears.todo.button", id=row["id"],
                                name=row["customer_name"]),
                          callback(GLOBAL_TOKEN, "arr", row["id"])),
            overdue=overdue, urgent=urgent))
    return items


async def describe(ctx: Ctx, r: Reminder) -> str:
    row = await _row(ctx.services, r.subject_id)
    return _title(ctx, row) if row else ctx.t("arrears.not_found")


REGISTRY.reminder_kind(SUBJECT, ReminderKind(render=render, after_sent=after_sent, todo=todo,
                                             describe=describe))


# --- wiring ---------------------------------------------------------------------------
async def start_form(app: Assistant, ctx: Ctx, draft: Draft | None, rest: str) -> Outcome:
    if draft is not None or not rest.strip():
        return await app.open_form(ctx, draft, ARREARS.name)
    values, notices = await prefill(ctx, rest)
    return await app.engine.start(ctx, ARREARS.name, values, notices)


@REGISTRY.command("arrears")
async def arrears_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await start_form(app, ctx, draft, arg)


@REGISTRY.intent
async def arrears_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    return await start_form(app, ctx, None, m.group(2))


@REGISTRY.button("arr")
async def open_card(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await card(ctx, int(arg)) if arg.isdigit() else Outcome(toast=ctx.t("button.stale"))


async def _open_action(app: Assistant, ctx: Ctx, aid: int, form: FormSpec, heading_key: str,
                       allowed: tuple[str, ...]) -> Outcome:
    row = await get(ctx, aid)
    if row is None:
        return Outcome().add(ctx.t("arrears.not_found"))
    if row["status"] not in allowed:
        return await card(ctx, aid)
    return await app.engine.start(ctx, form.name, meta={"arrears_id": aid},
                                  heading=ctx.t(heading_key, item=_title(ctx, row)))


@REGISTRY.opener("arn")
async def open_notice(app: Assistant, ctx: Ctx, aid: int) -> Outcome:
    row = await get(ctx, aid)
    if row is not None and row["prepaid"]:
        return await card(ctx, aid, ctx.t("arrears.notice_prepaid"))
    return await _open_action(app, ctx, aid, NOTICE, "arrears.notice_heading", ("collecting",))


@REGISTRY.opener("arc")
async def open_cutoff(app: Assistant, ctx: Ctx, aid: int) -> Outcome:
    row = await get(ctx, aid)
    if row is None:
        return Outcome().add(ctx.t("arrears.not_found"))
    refusal = await cutoff_refusal(ctx, row)
    if refusal is not None:  # also a forged or stale button: say why, with the earliest time
        return await card(ctx, aid, "⛔ " + refusal)
    return await _open_action(app, ctx, aid, CUTOFF, "arrears.cutoff_heading",
                              ("notice_served",))


@REGISTRY.opener("arp")
async def open_paid(app: Assistant, ctx: Ctx, aid: int) -> Outcome:
    return await _open_action(app, ctx, aid, PAID, "arrears.paid_heading", UNPAID)


@REGISTRY.opener("ars")
async def open_restored(app: Assistant, ctx: Ctx, aid: int) -> Outcome:
    row = await get(ctx, aid)
    if row is not None and row["restore_due"] is None:
        return await card(ctx, aid)
    return await _open_action(app, ctx, aid, RESTORED, "arrears.restored_heading", ("paid",))


REGISTRY.opener_button("arrn", "arn")
REGISTRY.opener_button("arrc", "arc")
REGISTRY.opener_button("arrp", "arp")
REGISTRY.opener_button("arrs", "ars")


@REGISTRY.button("arrq")
async def ask_lead(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """The manager's 需班长决定: (re-)ask the leads, at most once a day each."""
    row = await get(ctx, int(arg)) if arg.isdigit() else None
    if row is None:
        return Outcome().add(ctx.t("arrears.not_found"))
    if (row["lead_decision"] is not None or row["status"] not in ("collecting", "notice_served")
            or not await is_medical(ctx.services, row)):
        return await card(ctx, row["id"])
    ask = await deciders(ctx.services, row["team_id"])
    if not ask:
        return Outcome().add(ctx.t("arrears.no_lead"))
    async with ctx.services.db.tx() as tx:
        for lead in ask:
            await plan_decision(tx, row["id"], row["team_id"], lead.id, ctx.now, again=True)
    return Outcome(toast=ctx.t("arrears.asked_toast")).add(
        ctx.t("arrears.decision_asked", leads="、".join(u.name for u in ask)),
        card_buttons(ctx, row["id"]))


async def decide(ctx: Ctx, arg: str, decision: str) -> Outcome:
    row = await get(ctx, int(arg)) if arg.isdigit() else None
    if row is None:  # another team's (or colleague's) record does not exist for this user
        return Outcome().add(ctx.t("arrears.not_found"))
    if not ctx.user.sees_whole_team:
        return Outcome(toast=ctx.t("arrears.decision.not_lead_toast")).add(
            ctx.t("arrears.decision.not_lead"), card_buttons(ctx, row["id"]))
    aid = int(row["id"])
    if row["lead_decision"] is not None:
        return await card(ctx, aid, ctx.t("arrears.decision.already", decision=ctx.t(
            f"arrears.decision.{row['lead_decision']}", lead=row["decider"] or "")))
    if row["status"] not in ("collecting", "notice_served"):
        return await card(ctx, aid, ctx.t("arrears.decision.moot"))
    if not await is_medical(ctx.services, row):
        return await card(ctx, aid, ctx.t("arrears.decision.not_needed"))
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE arrears SET lead_decision = ?, lead_decided_by = ?, updated_at = ? "
            "WHERE id = ? AND lead_decision IS NULL", (decision, ctx.user.id, iso(ctx.now), aid))
        # Two leads pressing at once: the first decision stands, the second changes nothing.
        if await _changed(tx):
            await Reminders.cancel(tx, SUBJECT, aid, "decision")
            if row["user_id"] != ctx.user.id:
                await Reminders.plan(tx, team_id=row["team_id"], user_id=row["user_id"],
                                     subject=SUBJECT, subject_id=aid, kind="decided",
                                     due_at=ctx.now, now=ctx.now)
            if (decision == "approved" and row["status"] == "notice_served"
                    and not row["prepaid"]):
                await Reminders.plan(tx, team_id=row["team_id"], user_id=row["user_id"],
                                     subject=SUBJECT, subject_id=aid, kind="cutoff",
                                     due_at=max(from_iso(row["cutoff_earliest"]), ctx.now),
                                     now=ctx.now)
    out = await card(ctx, aid, ctx.t(f"arrears.decision.saved_{decision}"))
    out.toast = ctx.t("form.saved_toast")
    return out


@REGISTRY.button("arry")
async def approve_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await decide(ctx, arg, "approved")


@REGISTRY.button("arrx")
async def refuse_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await decide(ctx, arg, "refused")
