"""隐患/缺陷: a hazard found in a 台区, followed to closure. `登记隐患 3号台区 2号杆拉线松动`
(or /hazard, or 转为隐患 under a saved work log that names a problem) opens the form with what
the sentence or the log said. Severity (data/hazards.json) sets the deadline; reminders come
before it, and when it passes the team's leads are told. Status 待处理 → 处理中 → 已消除
(result, photos after), or 转报: handed to the lead with a reason (the lead is told at once)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import i18n, visibility
from bot.deadlines import Rule, due_after, is_overdue
from bot.events import Button, Outcome, Reply
from bot.features.worklog.form import (
    area_choices,
    parse_text,
    show_area,
    show_location,
    show_photos,
    take_area_into,
)
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.records import runtime as rt
from bot.records.common import remaining, ruleset, step_calendar, when
from bot.router import (
    ReportPart,
    ReportScope,
    ReportSection,
    Router,
    TodoItem,
    TodoRead,
    one_id,
)
from bot.services import Ctx
from bot.storage.batch import Batch, Unchanged
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import LEADS_OF_TEAM, Reminder, Reminders
from bot.timeparse import format_time

if TYPE_CHECKING:
    from bot.assistant import Assistant

router = Router("hazards")
SUBJECT = "hazard"
DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "hazards.json"
# Only a message that *starts* with these opens a hazard: `巡视 3号台区 发现隐患…` stays a log.
_INTENT = re.compile(r"^(登记隐患|登记缺陷|发现隐患|发现缺陷|隐患登记|缺陷登记|新隐患)\s*(.*)$")
OPEN_STATES = ("open", "working")  # the owner's; `handed` waits for the lead
HANDED = "handed"
CLEARED = "cleared"
REPORT_LIST_LIMIT = 10  # open hazards named in the report message (all are in the sheet)


# --- the data: severities and place words ------------------------------------------------
@dataclass(frozen=True)
class Severity:
    key: str
    words: tuple[str, ...]
    deadline: Rule
    remind_before: Rule
    urgent: bool  # reminders go through quiet hours


@cache
def _data() -> dict[str, Any]:
    with DATA_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def severities() -> tuple[Severity, ...]:
    """Most severe first (the data's order)."""
    return tuple(Severity(s["key"], tuple(s["words"]), Rule.model_validate(s["deadline"]),
                          Rule.model_validate(s["remind_before"]), bool(s["urgent"]))
                 for s in _data()["severities"])


def severity(key: str) -> Severity:
    return next((s for s in severities() if s.key == key), severities()[-1])


def rank(key: str) -> int:
    return next((i for i, s in enumerate(severities()) if s.key == key), len(severities()))


@cache
def _place_pattern() -> re.Pattern[str]:
    words = "|".join(re.escape(w) for w in sorted(_data()["place_words"], key=len, reverse=True))
    return re.compile(rf"(?:[0-9A-Za-z#\-]+|[一二三四五六七八九十百零]+)\s*号\s*(?:{words})")


def take_place(text: str) -> tuple[str | None, str]:
    """'2号杆拉线松动' -> ('2号杆', ' 拉线松动')."""
    m = _place_pattern().search(text)
    if m is None:
        return None, text
    return m.group(0).replace(" ", ""), text[:m.start()] + " " + text[m.end():]


def take_severity(text: str) -> tuple[str | None, str]:
    for s in severities():
        for word in s.words:
            if word in text:
                return s.key, text.replace(word, " ", 1)
    return None, text


# --- the record -------------------------------------------------------------------------
@dataclass(frozen=True)
class Hazard:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str
    area_id: int
    area_name: str
    what: str
    place: str | None
    severity: str
    latitude: float | None
    longitude: float | None
    photos_before: str
    worklog_id: int | None
    found_at: datetime
    due_at: datetime
    started_at: datetime | None
    cleared_at: datetime | None
    result: str | None
    photos_after: str
    handed_at: datetime | None
    handed_reason: str | None

    @property
    def before(self) -> list[str]:
        return list(json.loads(self.photos_before or "[]"))

    @property
    def after(self) -> list[str]:
        return list(json.loads(self.photos_after or "[]"))

    @property
    def closed(self) -> bool:
        return self.status == CLEARED


STORE = rt.Store(Hazard, "hazards", "SELECT h.*, u.name AS owner, a.name AS area_name "
                 "FROM hazards h JOIN users u ON u.id = h.user_id "
                 "JOIN areas a ON a.id = h.area_id", "h")


# --- the registration form ------------------------------------------------------------
async def severity_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(s.key, ctx.t(f"hazard.severity.{s.key}")) for s in severities()]


async def show_severity(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"hazard.severity.{value}")


def deadline_rungs(sev: Severity, due: datetime) -> list[rt.Rung]:
    return [rt.Rung("soon", due - sev.remind_before.delta, urgent=sev.urgent),
            rt.Rung("due", due, urgent=sev.urgent, skip_if_past=False),
            rt.Rung("escalate", due, to_leads=True, urgent=sev.urgent, skip_if_past=False)]


async def write_hazard(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """The hazard and its deadline ladder as writes, saved with the form's close in one
    round trip; the card's buttons are chosen from the record as written."""
    services = ctx.services
    area = next((a for a in await ctx.areas() if str(a.id) == values.get("area")), None)
    if area is None:
        raise Invalid("form.worklog.area_gone")
    sev = severity(values["severity"])
    rules = ruleset(services)
    due = due_after(ctx.now, sev.deadline, await step_calendar(ctx), rules.working_hours).due
    loc = values.get("location") or [None, None]
    batch = Batch()
    columns = {
        "team_id": ctx.user.team_id, "user_id": ctx.user.id, "area_id": area.id,
        "what": values["what"], "place": values.get("place") or None,
        "severity": sev.key, "latitude": loc[0], "longitude": loc[1],
        "photos_before": json.dumps(list(values.get("photos") or [])),
        "worklog_id": meta.get("worklog_id"), "found_at": iso(ctx.now),
        "due_at": iso(due), "created_at": iso(ctx.now)}
    ref = STORE.insert_into(batch, token, columns)
    rt.plan_ladder_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id, "deadline",
                        deadline_rungs(sev, due), ctx.now)
    has_lead = batch.read(rt.HAS_OTHER_LEAD, (ctx.user.team_id, ctx.user.id))

    async def saved(rid: int | None) -> Saved:
        assert rid is not None
        text = "\n".join([
            ctx.t("hazard.saved", id=rid, area=area.name,
                  severity=ctx.t(f"hazard.severity.{sev.key}")),
            ctx.t("hazard.clear_by", when=when(ctx, due), rule=sev.deadline.label(ctx.locale),
                  left=remaining(ctx, due))])
        rec = STORE.as_saved(rid, columns, status="open", owner=ctx.user.name,
                             area_name=area.name, photos_after="[]")
        actions = await HAZARDS.allowed(ctx, rec, {
            HAND_ACTION: lead_refusal(ctx, bool(has_lead.value))})
        return Saved(text, [[HAZARDS.open_button(ctx, rid), *actions]], record_id=rid)

    return Writing(batch, ref, saved)


HAZARD = router.form(FormSpec(
    name="hazard",
    title="form.hazard.title",
    fields=(
        Field("area", "field.area", "form.hazard.area", Kind.CHOICE, choices=area_choices,
              show=show_area, fill_sole=True),
        Field("what", "field.hazard_what", "form.hazard.what", Kind.TEXT, parse=parse_text),
        Field("place", "field.hazard_place", "form.hazard.place", Kind.TEXT, required=False,
              parse=parse_text),
        Field("severity", "field.hazard_severity", "form.hazard.severity", Kind.CHOICE,
              choices=severity_choices, show=show_severity),
        Field("photos", "field.hazard_photos_before", "form.hazard.photos", Kind.PHOTOS,
              required=False, show=show_photos),
        Field("location", "field.location", "form.hazard.location", Kind.LOCATION,
              required=False, show=show_location),
    ),
    save=None,
    write=write_hazard,
    quick={},
))


# --- transitions ----------------------------------------------------------------------
async def start_work(ctx: Ctx, rec: Hazard) -> Outcome:
    """处理中: one tap; the deadline and its reminders stay (a hazard the lead hands back
    gets its owner's reminders again: handing it up had stopped them). One write; the card
    after it is the hazard as read and changed, not read back."""
    batch = Batch()
    started = STORE.update_into(batch, rec.id, {
        "status": "working", "started_at": iso(ctx.now), "updated_at": iso(ctx.now)},
        "status IN ('open', 'handed')", needed=True)
    if rec.status == HANDED:
        Reminders.cancel_into(batch, SUBJECT, rec.id, "handed.", if_new=started)
        rt.plan_ladders_into(batch, SUBJECT, rec.id, rec.team_id, rec.user_id, [
            ("deadline", deadline_rungs(severity(rec.severity), rec.due_at))], ctx.now,
            round_=iso(ctx.now), if_new=started)
    shown = HAZARDS.card_reads_into(batch, ctx, rec.id)  # whether a lead can take it up
    try:
        await ctx.services.db.write_batch(batch)
    except Unchanged:  # a stale card: show it as it is now
        return await HAZARDS.card(ctx, rec.id)
    after = rt.from_row(Hazard, {**rt.kept_row(rec), "status": "working",  # type: ignore[arg-type]
                                 "started_at": iso(ctx.now)})
    return await HAZARDS.card_of(ctx, after, ctx.t("hazard.started", id=rec.id), shown)


async def write_cleared(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """Cleared once (else nothing is written and the user told), its reminders stopped,
    with the form's close in one round trip, from the hazard as kept with the form."""
    rec = await HAZARDS.kept(ctx, meta)
    batch = Batch()
    STORE.update_into(batch, rec.id, {
        "status": CLEARED, "cleared_at": iso(ctx.now), "result": values["result"],
        "photos_after": json.dumps(list(values.get("photos") or [])),
        "updated_at": iso(ctx.now)}, "status != 'cleared'", needed=True)
    Reminders.cancel_into(batch, SUBJECT, rec.id)
    text = ctx.t("hazard.cleared", id=rec.id, when=when(ctx, ctx.now)) + " " + \
        rt.on_time(ctx, ctx.now, rec.due_at)

    async def saved(_: int | None) -> Saved:
        return HAZARDS.saved(ctx, rec.id, text)

    return Writing(batch, rec.id, saved, Invalid("hazard.already_cleared", id=rec.id))


async def write_handed(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """转报班长 with the form's close in one round trip, from the hazard as kept with the form
    (still open, else nothing is written and the user told). The leads it goes to are the
    write's to find: none, and it is refused (nothing written); read with it, for the reply
    that names them."""
    rec = await HAZARDS.kept(ctx, meta)
    leads = (f"SELECT u.id, u.name FROM users u WHERE {LEADS_OF_TEAM} AND u.id <> ? "
             "ORDER BY u.id", (rec.team_id, ctx.user.id))
    batch = Batch()
    # No lead to hand it to is said first, as the card says it (no_lead_to_hand_to).
    handed = STORE.update_into(batch, rec.id, {
        "status": HANDED, "handed_at": iso(ctx.now), "handed_reason": values["reason"],
        "updated_at": iso(ctx.now)}, f"status IN ('open', 'working') AND EXISTS ({leads[0]})",
        leads[1], declined="hazard.no_lead",
        declined_when=(f"SELECT NOT EXISTS ({leads[0]})", leads[1]))
    # The lead holds it now: the owner's ladder stops, the lead hears at once.
    Reminders.cancel_into(batch, SUBJECT, rec.id, "deadline.")
    rt.plan_ladders_into(batch, SUBJECT, rec.id, rec.team_id, rec.user_id, [("handed", [
        rt.Rung("notice", ctx.now, to_leads=True, urgent=severity(rec.severity).urgent,
                skip_if_past=False)])], ctx.now, round_=iso(ctx.now),
        leads_but=(ctx.user.id,), if_new=handed)
    told = batch.read_rows(*leads)  # users: not written by the batch

    async def saved(_: int | None) -> Saved:
        names = "、".join(r["name"] for r in told.value or [])
        return HAZARDS.saved(ctx, rec.id, ctx.t("hazard.handed", id=rec.id, leads=names))

    return Writing(batch, rec.id, saved, Invalid("hazard.not_open", id=rec.id))


async def no_lead_to_hand_to(ctx: Ctx, rec: Hazard, *,
                             read: Sequence[list[Row]] | None = None) -> str | None:
    """转报 needs a lead in the team other than the one acting (as the card's reads, `read`,
    say: read with the record)."""
    if read is not None:
        return lead_refusal(ctx, has_lead(read))
    return lead_refusal(ctx, bool(await rt.other_leads(ctx.services, rec.team_id,
                                                       ctx.user.id)))


def has_lead(read: Sequence[list[Row]]) -> bool:
    """Whether there is a lead to hand it to, from the card's reads (card_reads)."""
    return bool(read[0][0][0])


def lead_refusal(ctx: Ctx, has_lead: bool) -> str | None:
    return None if has_lead else ctx.t("hazard.no_lead")


HAND_ACTION = "hzh"  # its refusal is known from the save's batch on the card of a new hazard


CLEAR = router.form(FormSpec(
    name="hazard_clear", title="form.hazard_clear.title", fields=(
        Field("result", "field.hazard_result", "form.hazard_clear.result", Kind.TEXT,
              parse=parse_text),
        Field("photos", "field.hazard_photos_after", "form.hazard_clear.photos", Kind.PHOTOS,
              required=False, show=show_photos)),
    save=None, write=write_cleared, quick={}))
HAND = router.form(FormSpec(
    name="hazard_hand", title="form.hazard_hand.title", fields=(
        Field("reason", "field.hazard_reason", "form.hazard_hand.reason", Kind.TEXT,
              parse=parse_text),),
    save=None, write=write_handed, quick={}))


# --- the card -------------------------------------------------------------------------
def title(ctx: Ctx, rec: Hazard) -> str:
    where = f" {rec.place}" if rec.place else ""
    return ctx.t("hazard.title", id=rec.id, area=rec.area_name, place=where)


def status_line(ctx: Ctx, rec: Hazard) -> str:
    return ctx.t(f"hazard.status.{rec.status}")


def card_reads(ctx: Ctx, rid: int) -> list[Read]:
    """Read with the record: whether the team has a lead to hand it to (转报)."""
    return [(rt.HAS_OTHER_LEAD, (ctx.user.team_id, ctx.user.id))]


async def render_card(ctx: Ctx, rec: Hazard, heading: str | None = None, *,
                      read: Sequence[list[Row]]) -> Outcome:
    lines = [heading] if heading else []
    lines += [title(ctx, rec) + " · " + ctx.t(f"hazard.severity.{rec.severity}"),
              status_line(ctx, rec),
              rt.field_line(ctx, "field.hazard_what", rec.what),
              rt.field_line(ctx, "field.owner", rec.owner),
              rt.field_line(ctx, "field.hazard_found_at", when(ctx, rec.found_at)),
              rt.deadline_line(ctx, "field.hazard_due", rec.due_at, rec.cleared_at,
                               "hazard.done_at", judge=True)]
    if rec.latitude is not None and rec.longitude is not None:
        lines.append(rt.field_line(ctx, "field.location",
                                   await show_location([rec.latitude, rec.longitude], ctx)))
    if rec.before:
        lines.append(rt.field_line(ctx, "field.hazard_photos_before",
                                   ctx.t("form.photos_count", count=len(rec.before))))
    if rec.worklog_id:
        lines.append(ctx.t("hazard.from_log", id=rec.worklog_id))
    if rec.handed_reason:
        lines.append(rt.field_line(ctx, "field.hazard_reason", rec.handed_reason))
    if rec.result:
        lines.append(rt.field_line(ctx, "field.hazard_result", rec.result))
        if rec.after:
            lines.append(rt.field_line(ctx, "field.hazard_photos_after",
                                       ctx.t("form.photos_count", count=len(rec.after))))
    buttons = await HAZARDS.allowed(ctx, rec, {
        HAND_ACTION: lead_refusal(ctx, has_lead(read))})
    out = Outcome().add("\n".join(lines), [buttons] if buttons else [])
    out.replies[0].photos = rec.before + rec.after
    return out


# --- reminders and to-do ------------------------------------------------------------
async def handed_notice(ctx: Ctx, r: Reminder, rec: Hazard) -> Reply | None:
    """The lead's message when a manager hands a hazard up; None once it is settled."""
    if r.kind != "handed.notice" or rec.status != HANDED:
        return None
    text = ctx.t("hazard.handed_notice", owner=rec.owner, item=title(ctx, rec),
                 severity=ctx.t(f"hazard.severity.{rec.severity}"), what=rec.what,
                 reason=rec.handed_reason or "", due=when(ctx, rec.due_at),
                 left=remaining(ctx, rec.due_at))
    return Reply(text, [[HAZARDS.open_button(ctx, rec.id), *await HAZARDS.allowed(ctx, rec)]])


def todo_reads(ctx: Ctx) -> list[Read]:
    states = (*OPEN_STATES, HANDED) if ctx.user.sees_whole_team else OPEN_STATES
    marks = ", ".join("?" for _ in states)
    return [STORE.open_read(ctx, f"h.status IN ({marks})", tuple(states))]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    recs = STORE.records(rows[0])
    items = []
    for rec in sorted(recs, key=lambda h: (rank(h.severity), h.due_at)):
        handed = rec.status == HANDED
        key = "todo.hazard_handed" if handed else "todo.hazard"
        text = ctx.t(key, item=title(ctx, rec), severity=ctx.t(f"hazard.severity.{rec.severity}"),
                     what=rec.what, due=when(ctx, rec.due_at), left=remaining(ctx, rec.due_at))
        items.append(HAZARDS.todo_item(
            ctx, rec, rec.due_at, text, ctx.t("hazard.todo_button", id=rec.id,
                                              area=rec.area_name),
            urgent=severity(rec.severity).urgent, decision=handed))
    return items


# --- from a saved work log ------------------------------------------------------------
def from_log_read(ctx: Ctx, worklog_id: int) -> Read:
    """from_log declared."""
    return ("SELECT id FROM hazards WHERE worklog_id = ? AND team_id = ? ORDER BY id LIMIT 1",
            (worklog_id, ctx.user.team_id))


async def from_log(ctx: Ctx, worklog_id: int) -> int | None:
    """The hazard already made from this log, if any."""
    row = await ctx.services.db.fetchone(*from_log_read(ctx, worklog_id))
    return int(row["id"]) if row else None


def log_card_reads(ctx: Ctx, worklog_id: int) -> list[Read]:
    """The log's problems if the user may see it, and the hazard made from it (from_log)."""
    mine, params = visibility.scope(ctx.user, visibility.Subject.LOG, "w")
    return [("SELECT w.problems, (SELECT id FROM hazards WHERE worklog_id = w.id AND team_id = ? "
             f"ORDER BY id LIMIT 1) AS hazard FROM worklogs w WHERE w.id = ? AND {mine}",
             (ctx.user.team_id, worklog_id, *params))]


@router.adds_to_card("worklog", log_card_reads)
async def log_card_buttons(ctx: Ctx, worklog_id: int, just_saved: Mapping[str, Any] | None,
                           read: list[list[Row]] | None) -> list[Button]:
    """转为隐患 under a saved log that names a problem (查看隐患 once it was turned); a log
    just saved is known from its answers (no hazard made from a new one yet; an edited one's
    hazard read with the edit's write)."""
    found = read[0][0] if read and read[0] else None
    existing = found[1] if found is not None else None
    if just_saved is not None:
        problems = just_saved.get("problems")
    else:
        problems = found[0] if found is not None else None
    if not (problems or "").strip():
        return []
    if existing is not None:
        return [HAZARDS.open_button(ctx, existing, ctx.t("btn.hazard_view", id=existing))]
    return [Button(ctx.t("btn.hazard_from_log"), router.callback("fromlog", worklog_id))]


@router.opener("hzl")
async def open_from_log(app: Assistant, ctx: Ctx, worklog_id: int) -> Outcome:
    w = await ctx.services.worklogs.get_for(ctx.user, worklog_id)
    if w is None:
        return Outcome().add(ctx.t("logs.not_found"))
    existing = await from_log(ctx, worklog_id)
    if existing is not None:  # a second tap: one log, one hazard
        return await HAZARDS.card(ctx, existing, ctx.t("hazard.already_from_log",
                                                       log=worklog_id, id=existing))
    values: dict[str, Any] = {"photos": list(w.photos)} if w.photos else {}
    if any(str(a.id) == str(w.area_id) for a in await ctx.areas()):
        values["area"] = str(w.area_id)
    problems = (w.problems or "").strip()
    place, rest = take_place(problems)
    sev, _ = take_severity(rest)
    values["what"] = problems
    if place:
        values["place"] = place
    if sev:
        values["severity"] = sev
    if w.latitude is not None and w.longitude is not None:
        values["location"] = [w.latitude, w.longitude]
    return await app.engine.start(ctx, HAZARD.name, values, meta={"worklog_id": w.id})


# 转为隐患 reads the log and whether a hazard was made from it with the step's read.
router.opener_button("fromlog", "hzl", reads=one_id(lambda ctx, worklog_id: [
    ctx.services.worklogs.get_read(worklog_id), from_log_read(ctx, worklog_id)]))


# --- the sentence -----------------------------------------------------------------------
async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'3号台区 2号杆拉线松动 严重' -> area, place, severity and what."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    place, s = take_place(rest)  # first: '2号杆' must not read as a bare area number
    if place:
        values["place"] = place
    s = await take_area_into(ctx, s, values, notices)
    sev, s = take_severity(s)
    if sev:
        values["severity"] = sev
    what = " ".join(s.split())
    if what:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["what"] = await parse_text(what, ctx)
    return values, notices


# --- the report -----------------------------------------------------------------------
@dataclass
class Tally:
    found: int = 0
    closed: int = 0
    overdue: int = 0


def _in(moment: datetime | None, scope: ReportScope) -> bool:
    return moment is not None and scope.start <= moment < scope.end


def _overdue_open(rec: Hazard, scope: ReportScope) -> bool:
    return not rec.closed and is_overdue(rec.due_at, scope.now)


def report_reads(scope: ReportScope) -> list[Read]:
    where, params = scope.records_of("h")
    return [(f"{STORE.select} WHERE {where} AND h.found_at < ? AND "
             "(h.found_at >= ? OR h.status != 'cleared' OR h.cleared_at >= ?) ORDER BY h.id",
             (*params, iso(scope.end), iso(scope.start), iso(scope.start)))]


def report(scope: ReportScope, rows: list[list[Row]]) -> ReportPart:
    """Found / cleared / overdue per manager and per 台区; open hazards, the most severe first."""
    recs = [rt.from_row(Hazard, r) for r in rows[0]]
    if not recs:
        return ReportPart()
    loc = scope.locale
    tz = scope.start.tzinfo

    def tr(key: str, **kw: Any) -> str:
        return i18n.t(loc, key, **kw)

    by_person: dict[str, Tally] = {}
    by_area: dict[str, Tally] = {}
    for rec in recs:
        for key, table in ((rec.owner, by_person), (rec.area_name, by_area)):
            tally = table.setdefault(key, Tally())
            tally.found += _in(rec.found_at, scope)
            tally.closed += _in(rec.cleared_at, scope)
            tally.overdue += _overdue_open(rec, scope)
    total = Tally(sum(t.found for t in by_person.values()),
                  sum(t.closed for t in by_person.values()),
                  sum(t.overdue for t in by_person.values()))
    lines = [tr("hazard.report.total", found=total.found, closed=total.closed,
                overdue=total.overdue)]
    for label_key, table in (("hazard.report.by_person", by_person),
                             ("hazard.report.by_area", by_area)):
        if scope.team_wide or label_key.endswith("area"):
            lines.append(tr(label_key) + tr("hazard.report.sep").join(
                tr("hazard.report.tally", name=name, found=t.found, closed=t.closed,
                   overdue=t.overdue) for name, t in sorted(table.items())))
    still_open = sorted((r for r in recs if not r.closed),
                        key=lambda h: (rank(h.severity), h.due_at))
    if still_open:
        lines.append(tr("hazard.report.open", n=len(still_open)))
        for rec in still_open[:REPORT_LIST_LIMIT]:
            late = tr("hazard.report.late") if _overdue_open(rec, scope) else ""
            lines.append(tr("hazard.report.item", id=rec.id, area=rec.area_name,
                            place=f" {rec.place}" if rec.place else "", what=rec.what,
                            severity=tr(f"hazard.severity.{rec.severity}"),
                            status=tr(f"hazard.status.{rec.status}"), owner=rec.owner,
                            due=format_time(rec.due_at.astimezone(tz), loc), late=late))
    header = [tr(k) for k in ("hazard.col.id", "field.area", "field.hazard_place",
                              "field.hazard_what", "field.hazard_severity", "hazard.col.status",
                              "field.owner", "field.hazard_found_at", "field.hazard_due",
                              "hazard.col.cleared_at", "field.hazard_result",
                              "hazard.col.overdue")]
    sheet = [[rec.id, rec.area_name, rec.place or "", rec.what,
              tr(f"hazard.severity.{rec.severity}"), tr(f"hazard.status.{rec.status}"),
              rec.owner, format_time(rec.found_at.astimezone(tz), loc),
              format_time(rec.due_at.astimezone(tz), loc),
              format_time(rec.cleared_at.astimezone(tz), loc) if rec.cleared_at else "",
              rec.result or "", tr("hazard.col.yes") if _late(rec, scope) else ""]
             for rec in sorted(recs, key=lambda h: (h.closed, rank(h.severity), h.due_at))]
    chart = [(tr("hazard.chart.found"), total.found), (tr("hazard.chart.closed"), total.closed),
             (tr("hazard.chart.overdue"), total.overdue)]
    return ReportPart(lines, tr("hazard.sheet"), header, sheet, chart)


def _late(rec: Hazard, scope: ReportScope) -> bool:
    """Past its deadline: still open now, or cleared after it."""
    if rec.cleared_at is not None:
        return rec.cleared_at > rec.due_at
    return is_overdue(rec.due_at, scope.now)


# --- wiring ---------------------------------------------------------------------------
REPORT = router.report_section(ReportSection(report_reads, report))
HAZARDS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="hz", not_found="hazard.not_found",
    meta_key="hazard_id", title=title, render_card=render_card, card_reads=card_reads,
    transitions=(
        rt.Transition("hzs", "btn.hazard_start", ("open", HANDED), run=start_work),
        rt.Transition("hzc", "btn.hazard_clear", ("open", "working", HANDED), CLEAR, "hzc",
                      "hazard.clear_heading"),
        rt.Transition(HAND_ACTION, "btn.hazard_hand", OPEN_STATES, HAND, "hzh",
                      "hazard.hand_heading", refuse=no_lead_to_hand_to, refuse_reads=True),
    ),
    form=HAZARD, command="hazard", intent=_INTENT, prefill=prefill,
    ladders=(rt.Ladder("deadline", "hazard.step.clear", lambda h: h.due_at,
                       lambda h: h.status in (CLEARED, HANDED), ("hzc",)),),
    other_reminders=handed_notice,
    todo_items=TodoRead(todo_reads, todo)).register(router)
router.help_lines.append("hazard.help")

