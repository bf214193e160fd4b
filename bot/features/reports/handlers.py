"""/report, /export and the Monday push.

Who sees what: a lead (or admin) gets the whole team, or one named person of it; a manager
gets their own figures only. The scope is always built from the asking user's own team, so
no text can reach another team."""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from bot.events import Attachment, Button, Outcome, Reply
from bot.features.reports import figures
from bot.features.reports.figures import Figures, PaperLogs, Scope, load_paper
from bot.features.reports.ranges import Period, RangeError, parse_range, weekly_report_due
from bot.features.reports.targets import targets_part
from bot.features.reports.text import SUMMARY_CHARS, render
from bot.i18n import t
from bot.models import Role, User
from bot.notify import Dispatcher, OutcomeUnknown, Unreachable
from bot.reminders import (
    ReminderService,
    claim_job,
    in_quiet,
    job_failed,
    jobs_done,
    repeat_marked,
)
from bot.router import PushFn, ReportScope, ReportSection, Router, app_router
from bot.services import Ctx, Services
from bot.storage import job_runs
from bot.storage.conversations import Draft
from bot.storage.db import Read, Row, from_iso
from bot.textutil import normalize_input, safe_filename

if TYPE_CHECKING:
    from bot.assistant import Assistant

log = logging.getLogger(__name__)
JOB = "weekly_report"
MAX_PAPER_ENTRIES = 3000  # a bigger printable file is the CLI's job
router = Router("reports")
FILES_ACTION = "rptf"  # the button under a manager's Monday report that sends its XLSX
_REPORT_WORDS = re.compile(
    r"^(?:(?:工作汇总|工作周报|周报|汇总|报表)\s*|report(?:\s+|$))(.*)$", re.I)
# The period before the word, as people say it: 本周报表, 上个月的汇总, this week's report.
_PERIOD_FIRST = re.compile(
    r"^(.+?)\s*(?:的\s*)?(?:工作汇总|工作周报|周报|汇总|报表)$"
    r"|^(.+?)(?:'s|’s)?\s+(?:report|summary)$", re.I)
_EXPORT_WORDS = re.compile(r"^导出\s*(工作)?日志\s*(.*)$")
_LOG_KINDS = ("日志", "工作日志", "logs", "log")


@dataclass(frozen=True)
class Request:
    scope: Scope
    period: Period


def members_read(team_id: int) -> Read:
    """The team's active members, to find a name in a text (in id order: of two with one
    name, the first, as figures' ReportScope.named finds them in SQL)."""
    return ("SELECT id, name FROM users WHERE team_id = ? AND active = 1 ORDER BY id",
            (team_id,))


def decide(services: Services, user: User, rest: str, alone: Period | None,
           local_now: datetime, members: list[Row]) -> Request | str:
    """The scope and period the normalized text `rest` asks for, or the answer explaining
    why not (a locale string already filled in), given the range it is alone (or None) and
    the team's active members (members_read; none needed for a range alone)."""
    locale = user.locale or services.settings.locale
    named: tuple[int, str] | None = None
    if alone is None:  # a name, perhaps: the longest member's name in the text
        for m in sorted(members, key=lambda r: -len(r["name"])):
            if m["name"] and m["name"] in rest:
                named = (m["id"], m["name"])
                rest = rest.replace(m["name"], " ", 1).strip()
                break
    try:
        period = alone or parse_range(rest, local_now)
    except RangeError as exc:
        if named is None and _looks_like_name(rest):
            close = difflib.get_close_matches(rest, [m["name"] for m in members], n=3,
                                              cutoff=0.5)
            names = t(locale, "report.list_sep").join(close)
            hint = t(locale, "report.did_you_mean", names=names) if close else ""
            return t(locale, "report.unknown_name", name=rest, hint=hint)
        return t(locale, exc.key, **exc.args_) + "\n" + t(locale, "report.usage")
    if not user.sees_whole_team:
        if named is not None and named[0] != user.id:
            return t(locale, "report.only_own")
        return Request(Scope(user.team_id, user.team_name, user.id, user.name), period)
    if named is not None:
        return Request(Scope(user.team_id, user.team_name, named[0], named[1]), period)
    return Request(Scope(user.team_id, user.team_name), period)


def _range_alone(text: str, local_now: datetime) -> Period | None:
    """The period a text names when it is a range and nothing else (empty: last week), so
    names no one: the members need not be read (issue #12). Range texts are range words,
    digits and 年月日: only a member named like one (本周, 九月) would now be missed."""
    try:
        return parse_range(text, local_now)
    except RangeError:
        return None


def _names_a_range(text: str, local_now: datetime) -> bool:
    """A range, or what is meant as one (a month that has not come yet gets its answer):
    not a sentence that ends in 报表 (提醒我周五交报表 is a reminder)."""
    try:
        parse_range(text, local_now)
    except RangeError as exc:
        return exc.key != "report.range.unknown"
    return True


# A range is at most so many characters (2026-11-01 至 2026-11-30): guess tries no longer.
_LONGEST_RANGE = 40


def guess(rest: str, local_now: datetime) -> tuple[str, Period]:
    """The name and period a text that is no range alone most likely says, before the team's
    members are read: the text with the longest range at its end or start taken out
    (张三 本周, 本周张三), else the whole text and last week. So /report 张三 reads the members
    and the person's figures (by name, in SQL) in one round trip; `decide` checks the guess
    against the members read, and a wrong one (a name like 王五月) costs a trip more."""
    n = len(rest)
    for size in range(min(n - 1, _LONGEST_RANGE), 0, -1):
        for name in (rest[:n - size].strip(), rest[size:].strip()):  # range last, first
            if not name:
                continue
            try:
                return name, parse_range(rest.replace(name, " ", 1).strip(), local_now)
            except RangeError:
                continue
    return rest, parse_range("", local_now)


def _looks_like_name(text: str) -> bool:
    """A misspelt name rather than a misspelt range: a few letters, no digits or date words."""
    return bool(re.fullmatch(r"[\u4e00-\u9fff·]{2,5}|[A-Za-z][A-Za-z .'-]{1,30}", text)) and \
        not re.search(r"[年月周日号天]|星期|礼拜|week|month|year|today", text, re.I)


def file_stem(kind: str, fig_scope: Scope, period: Period, locale: str) -> str:
    who = fig_scope.user_name or fig_scope.team_name
    name = t(locale, f"report.file.{kind}", who=who, first=period.first.isoformat(),
             last=period.last.isoformat())
    return safe_filename(name, fallback=kind)


async def report_reply(services: Services, scope: Scope, period: Period, now: datetime,
                       locale: str, *, files: bool = True, intro: str | None = None,
                       files_on_tap: bool = False, fetched: Fetched | None = None) -> Reply:
    """The report as one reply: the message, then the XLSX and (for a team) the chart.
    `files_on_tap`: the message only, with a button that sends the XLSX (the Monday push to
    managers: one send each instead of two keeps 33,000 of them within 30 minutes).
    `fetched`: the rows, read already (`fetch`, with the same scope and files)."""
    files = files and not files_on_tap
    fig = await gather(services, scope, period, now, locale, detail=files, fetched=fetched)
    if period.kind == "month":  # the month's figures against the team's targets
        fig.parts.append(targets_part(scope.team_name, fig.parts, locale))
    limit = SUMMARY_CHARS - (len(intro) + 1 if intro else 0)
    with_files = files and _worth_files(fig)
    on_tap = files_on_tap and _worth_files(fig)
    text = render(fig, locale, files=with_files, files_on_tap=on_tap, limit=limit)
    reply = Reply(f"{intro}\n{text}" if intro else text)
    if on_tap:
        reply.buttons.append([Button(t(locale, "btn.report_files"), router.callback(
            FILES_ACTION, f"{period.first.isoformat()}_{period.last.isoformat()}"))])
    if with_files:
        # openpyxl and matplotlib are CPU work: off the event loop, other users keep going.
        from bot.features.reports import xlsx  # openpyxl on first use, not at start-up

        data = await asyncio.to_thread(xlsx.build, fig, locale)
        stem = file_stem("report", scope, period, locale)
        reply.attachments.append(Attachment(f"{stem}.xlsx", data))
        if scope.team_wide:
            from bot.features.reports import chart

            png = await asyncio.to_thread(chart.render, fig, locale)
            reply.attachments.append(Attachment(f"{stem}.png", png, "photo"))
    return reply


@dataclass
class Fetched:
    """A report's one round trip: the figures (made from their rows as they came), each
    declared section's rows (by id), and the rows of the reads asked `also` (the team's
    members for /report 张三)."""

    own: figures.Making
    sections: dict[int, list[list[Row]]]
    also: list[list[Row]]


def report_scope(scope: Scope, period: Period, now: datetime, locale: str) -> ReportScope:
    return ReportScope(scope.team_id, scope.user_id, period.start, period.end, now, locale,
                       scope.user_name if scope.by_name else None)


async def fetch(services: Services, scope: Scope, period: Period, now: datetime,
                locale: str, *, detail: bool = False, also: Sequence[Read] = ()) -> Fetched:
    """The figures' reads, the declared sections' (ReportSection) and `also` in ONE round
    trip (issue #12)."""
    rs = report_scope(scope, period, now, locale)
    declared = [s for s in app_router().report_sections if isinstance(s, ReportSection)]
    making = figures.Making(scope, period, now, detail=detail)
    more, _, *got = await services.db.fetch_groups(
        [also, making.reads, *(s.reads(rs) for s in declared)], [None, making.into])
    return Fetched(making, {id(s): rows for s, rows in zip(declared, got, strict=True)}, more)


async def gather(services: Services, scope: Scope, period: Period, now: datetime,
                 locale: str, *, detail: bool = False, fetched: Fetched | None = None
                 ) -> Figures:
    """The figures with every feature's own section (router.report_section) in the
    composition root's order: a new record type joins the report without a change here.
    Their rows come in one round trip (`fetch`, or `fetched` if read already, for the same
    person, period and detail), the XLSX's entries with them; a section that reads its own
    is awaited after."""
    got = fetched or await fetch(services, scope, period, now, locale, detail=detail)
    rs = report_scope(scope, period, now, locale)
    fig = got.own.made()
    rows, got.sections = got.sections, {}  # let them go as they are used
    del got, fetched
    fig.parts = [s.part(rs, rows.pop(id(s))) if isinstance(s, ReportSection)
                 else await s(services.db, rs) for s in app_router().report_sections]
    return fig


def _worth_files(fig: Figures) -> bool:
    return (fig.total.has_records or bool(fig.overdue) or bool(fig.total.special_to_tell)
            or any(p.rows for p in fig.parts))


async def report(ctx: Ctx, arg: str) -> Outcome:
    """/report [name] [range]. A text that may name someone: the team's members are read
    with the guessed person's figures (`guess`), in one round trip (issue #12)."""
    async def figures_and(scope: Scope, period: Period,
                          members: Read) -> tuple[Fetched, list[Row]]:
        got = await fetch(ctx.services, scope, period, ctx.now, ctx.locale, detail=True,
                          also=[members])
        return got, got.also[0]

    req, fetched = await requested(ctx, normalize_input(arg), figures_and)
    if isinstance(req, str):
        return Outcome().add(req)
    reply = await report_reply(ctx.services, req.scope, req.period, ctx.now, ctx.locale,
                               fetched=fetched)
    return Outcome(replies=[reply])


_Got = TypeVar("_Got")


async def requested(ctx: Ctx, rest: str, read: Callable[[Scope, Period, Read], Awaitable[
        tuple[_Got, list[Row]]]]) -> tuple[Request | str, _Got | None]:
    """What the normalized text `rest` asks for (`decide`), and what `read(scope, period,
    members)` got for it. A text that is no range alone may name someone: `read` is run on
    the guess (`guess`; the person by name for a lead, else the asker) with the team's
    members in its one round trip; None when nothing was read for the answer (a range alone,
    or not the guess: the caller reads for whom and when it says)."""
    user, local_now = ctx.user, ctx.local_now
    alone = _range_alone(rest, local_now)
    if alone is not None:
        return decide(ctx.services, user, rest, alone, local_now, []), None
    name, period = guess(rest, local_now)
    guessed = Scope(user.team_id, user.team_name, user.id, user.name) \
        if not user.sees_whole_team else \
        Scope(user.team_id, user.team_name, user_name=name, by_name=True)
    got, members = await read(guessed, period, members_read(user.team_id))
    req = decide(ctx.services, user, rest, None, local_now, members)
    as_guessed = not isinstance(req, str) and \
        (req.period, req.scope.user_name) == (period, guessed.user_name)
    return req, got if as_guessed else None


async def export(ctx: Ctx, arg: str) -> Outcome:
    """/export 日志 [name] [range]. A text that may name someone: the team's members are read
    with the guessed person's entries, in one round trip, as /report's (issue #12)."""
    kind, _, rest = normalize_input(arg).partition(" ")
    if kind.lower() not in _LOG_KINDS:
        return Outcome().add(ctx.t("report.export.usage"))
    db = ctx.services.db

    async def entries_and(scope: Scope, period: Period,
                          members: Read) -> tuple[PaperLogs, list[Row]]:
        # At most MAX_PAPER_ENTRIES read: more is answered with the count alone.
        got = await load_paper(db, scope, period, limit=MAX_PAPER_ENTRIES, also=[members])
        return got, got.also[0]

    req, got = await requested(ctx, rest, entries_and)  # `rest` normalized above
    if isinstance(req, str):
        return Outcome().add(req + "\n" + ctx.t("report.export.usage"))
    if got is None:
        got = await load_paper(db, req.scope, req.period, limit=MAX_PAPER_ENTRIES)
    n = got.count
    label = f"{req.period.first.isoformat()} — {req.period.last.isoformat()}"
    if n == 0:
        return Outcome().add(ctx.t("report.export.none", period=label))
    if n > MAX_PAPER_ENTRIES:
        return Outcome().add(ctx.t("report.export.too_many", n=n, max=MAX_PAPER_ENTRIES))
    from bot.features.reports import paper  # openpyxl on first use, not at start-up

    data = await asyncio.to_thread(paper.build, got.logs, req.scope.team_name, req.period,
                                   ctx.locale, req.scope.user_name, got.categories)
    who = req.scope.user_name or req.scope.team_name
    reply = Reply(ctx.t("report.export.done", period=label, n=n, who=who))
    stem = file_stem("paper", req.scope, req.period, ctx.locale)
    reply.attachments.append(Attachment(f"{stem}.xlsx", data))
    return Outcome(replies=[reply])


@router.command("report")
async def report_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await report(ctx, arg))


@router.command("export")
async def export_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await export(ctx, arg))


@router.intent
async def report_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    s = normalize_input(text)
    m = _REPORT_WORDS.match(s)
    if m:
        return await report(ctx, m.group(1))
    m = _PERIOD_FIRST.match(s)
    if m and _names_a_range(period := m.group(1) or m.group(2), ctx.local_now):
        return await report(ctx, period)
    m = _EXPORT_WORDS.match(s)
    if m:
        return await export(ctx, "日志 " + m.group(2))
    return None


# --- the Monday push ------------------------------------------------------------------
async def _weekly_reply(services: Services, user: User, period: Period, now: datetime,
                        team_replies: dict[tuple[int, str], Reply]) -> Reply:
    """A lead's team report (made once per team and language in a scan) or a manager's own."""
    locale = user.locale or services.settings.locale
    intro = t(locale, "report.push_intro")
    if user.role is not Role.LEAD:
        return await report_reply(
            services, Scope(user.team_id, user.team_name, user.id, user.name), period, now,
            locale, intro=intro, files_on_tap=True)
    k = (user.team_id, locale)
    if k not in team_replies:
        team_replies[k] = await report_reply(
            services, Scope(user.team_id, user.team_name), period, now, locale, intro=intro)
    return team_replies[k]


@router.every_scan
async def weekly_report_job(services: Services, push: PushFn, now: datetime) -> int:
    """From Monday at TAIQU_WEEKLY_REPORT_TIME: each lead gets the team's report for the week
    just ended, each manager their own. Once per person and week (job_runs), so a second scan
    or a restart sends nothing again; a scan that finds someone in quiet hours, or a
    delivery that hits a flood limit or network fault, leaves them for a later scan. A bot
    that was down on Monday sends the report when it is back, that same week. People who
    joined during the reported week start with the next one.

    Paced by the channels' send budgets, not by a count: TAIQU_JOB_PUSH_WORKERS pushes wait
    in the push lane at once, and a scan works on it at most TAIQU_PERIODIC_JOB_SECONDS, so
    the reminders get their turn; the next scan goes on (issue #12)."""
    period = weekly_report_due(services.settings.weekly_report_time, now, services.settings.tz)
    if period is None:
        return 0
    key = period.first.isoformat()
    done = await jobs_done(services, JOB, key)
    rows = await services.db.fetchall(
        "SELECT id, created_at FROM users WHERE active = 1 AND role IN ('manager', 'lead') "
        "ORDER BY id")
    todo = iter([r["id"] for r in rows
                 if r["id"] not in done and from_iso(r["created_at"]) <= period.start])
    weekly = _WeeklyPush(services, push, period, now)
    until = services.clock.now() + timedelta(seconds=services.settings.periodic_job_seconds)

    async def worker() -> None:
        for user_id in todo:  # one iterator shared by the workers: each person once
            await weekly.one(user_id)
            if services.clock.now() >= until:
                return

    await asyncio.gather(*(worker() for _ in range(services.settings.job_push_workers)))
    return weekly.sent


class _WeeklyPush:
    """One scan's Monday reports: made (a team's once per language) and pushed one person
    at a time."""

    def __init__(self, services: Services, push: PushFn, period: Period,
                 now: datetime) -> None:
        self.services, self.push, self.period, self.now = services, push, period, now
        self.key = period.first.isoformat()
        self.quiet = ReminderService(services, Dispatcher(services, []))
        self.team_replies: dict[tuple[int, str], Reply] = {}
        self.sent = 0

    async def one(self, user_id: int) -> None:
        services, now = self.services, self.now
        user = await services.people.user(user_id)
        if user is None or not await services.people.identities_of(user_id):
            return  # not opened the bot yet: the scan after their first visit sends it
        window = await self.quiet.quiet_window(user)
        if window and in_quiet(now.astimezone(services.settings.tz), *window):
            return  # a later scan, once the quiet hours are over
        claim = await claim_job(services, JOB, self.key, user.id)
        if claim is None:  # sent meanwhile, or another instance is sending it
            return
        try:
            reply = await _weekly_reply(services, user, self.period, now, self.team_replies)
        except Exception as exc:  # one team's or person's failure must not stop the others
            await job_runs.give_back(services.db, claim)
            await job_failed(services, JOB, self.key, user, now, exc)
            return
        try:
            await self.push(user.id, repeat_marked(reply, user.locale or services.settings.locale,
                                                   claim))
        except Unreachable:
            log.warning("weekly report: user %s cannot be reached", user.id)
        except OutcomeUnknown:  # it may have arrived: resent, marked, once the claim ends
            log.warning("weekly report for user %s: answer lost", user.id, exc_info=True)
            return
        except Exception:  # flood limit, network: the next scan tries again
            log.warning("weekly report for user %s not delivered yet", user.id, exc_info=True)
            await job_runs.give_back(services.db, claim)
            return
        else:
            self.sent += 1
        await job_runs.finish(services.db, claim, now)


@router.button(FILES_ACTION)
async def report_files(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """The XLSX of a manager's own Monday report, sent when they tap for it."""
    first, _, last = arg.partition("_")
    try:
        period = Period(date.fromisoformat(first), date.fromisoformat(last), ctx.tz, "week")
    except ValueError:
        return Outcome(toast=ctx.t("button.stale"))
    u = ctx.user
    reply = await report_reply(ctx.services, Scope(u.team_id, u.team_name, u.id, u.name),
                               period, ctx.now, ctx.locale)
    label = f"{period.first.isoformat()} — {period.last.isoformat()}"
    files = Reply(ctx.t("report.files_for", period=label), attachments=reply.attachments)
    return Outcome(replies=[files if reply.attachments else reply])
