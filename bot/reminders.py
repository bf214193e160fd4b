"""The reminder service: find due rows, word them from the record as it is now, deliver each
once, hold non-urgent ones in quiet hours for the morning digest, retry faults, escalate.

Delivery guarantee: at least once. A row is marked 'sending' before the push and 'sent' after
it; nothing is ever lost. A message can arrive twice in two cases only, and the repeat then
says it may be one: (1) the platform accepted it but its answer was lost (timeout, reset):
the row is retried after TAIQU_UNKNOWN_OUTCOME_RETRY_SECONDS, not at once; (2) the process
died between the push and recording it: the row stays 'sending' until the next start-up of
the lease holder (bot/lease.py) re-sends it. A graceful stop (SIGTERM) finishes the pushes in
flight first, so it repeats nothing.

The morning digest and the Monday report go once per person and period: each person's send
is claimed in job_runs before it is made (bot/storage/job_runs.py), so an instance that takes
the scan over from one that stalled or died sends only what the other had not, and repeats at
most the send it was making, marked 补发."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.config import Settings
from bot.deadlines import ESCALATE, OVERDUE
from bot.events import GLOBAL_TOKEN, Button, Reply, callback
from bot.i18n import t
from bot.models import User
from bot.notify import Dispatcher, NotOpenedYet, OutcomeUnknown, RetryLater, Unreachable
from bot.router import ReminderKind, Router, TodoItem, TodoRead, app_router, feature_callback
from bot.rules import bulk_avoid_minutes
from bot.services import Ctx, Services
from bot.storage import audit, job_runs
from bot.storage.db import iso
from bot.storage.job_runs import JobClaim
from bot.storage.people import UserPrefs
from bot.storage.reminders import MAYBE_SENT, WAITING, Reminder, Reminders

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 3600.0
BATCH = 1000  # due rows read (and held in memory) at a time
MAX_SCAN = timedelta(minutes=10)  # no further batch once a scan has run this long
JOB_ENTITY = "job"  # audit_log entity of a periodic job's failures
DIGEST_JOB = "digest"
DIGEST_LINES = 15  # items a digest lists one by one; the rest it counts


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def in_quiet(local: datetime, start: time, end: time) -> bool:
    t = local.time()
    if start <= end:
        return start <= t < end
    return t >= start or t < end  # overnight, e.g. 21:00-07:30


def in_quiet_sql(settings: Settings, person: str, local: datetime,
                 params: tuple[Any, ...] = ()) -> tuple[str, tuple[Any, ...]]:
    """in_quiet(local, *quiet_window(person)) as a SQL value (1 or 0) and its parameters, for
    a read or a write of the same round trip as the rest of a step (issue #12): `person` the
    SQL of the user's id, with `params`. Times compare as text: stored and set as 'HH:MM'."""
    sql = ("(SELECT CASE WHEN q.off <> 0 THEN 0 WHEN q.qs <= q.qe THEN "
           "CASE WHEN q.qs <= q.t AND q.t < q.qe THEN 1 ELSE 0 END "
           "WHEN q.t >= q.qs OR q.t < q.qe THEN 1 ELSE 0 END FROM (SELECT "
           "coalesce(s.quiet_off, 0) AS off, CASE WHEN s.quiet_start <> '' AND "
           "s.quiet_end <> '' THEN s.quiet_start ELSE CAST(? AS TEXT) END AS qs, "
           "CASE WHEN s.quiet_start <> '' AND s.quiet_end <> '' THEN s.quiet_end "
           "ELSE CAST(? AS TEXT) END AS qe, CAST(? AS TEXT) AS t FROM (SELECT 1 AS one) o "
           f"LEFT JOIN user_settings s ON s.user_id = {person}) q)")
    start, end = settings.quiet_hours.split("-")
    return sql, (start, end, local.time().isoformat(), *params)


def next_at(local: datetime, at: time) -> datetime:
    """The next local moment at clock time `at` (today if still ahead, else tomorrow)."""
    candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


def _stable_share(key: str) -> float:
    """A fraction in [0, 1) fixed by `key`: a hash, not random, so every scan and every
    restart puts the same person at the same moment."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def digest_slot(settings: Settings, user: User, day: date) -> datetime:
    """When the person's morning digest is due on `day` (local): TAIQU_DIGEST_TIME plus their
    team's (or their own) fixed share of TAIQU_DIGEST_WINDOW_MINUTES."""
    start = datetime.combine(day, _hhmm(settings.digest_time), tzinfo=settings.tz)
    key = user.team_id if settings.digest_spread == "team" else user.id
    share = _stable_share(f"{settings.digest_spread}:{key}")
    return start + timedelta(seconds=int(share * settings.digest_window_minutes * 60))


async def quiet_window(services: Services, user_id: int) -> tuple[time, time] | None:
    """The user's quiet hours (their own, else the default), or None when turned off."""
    prefs = await UserPrefs(services.db).get(user_id)
    if prefs.quiet_off:
        return None
    if prefs.quiet_start and prefs.quiet_end:
        return _hhmm(prefs.quiet_start), _hhmm(prefs.quiet_end)
    start, end = services.settings.quiet_hours.split("-")
    return _hhmm(start), _hhmm(end)


def overdue_urgent(r: Reminder) -> bool:
    """An urgent item already past its deadline (an emergency repair, a restore deadline):
    it may only be put off briefly (TAIQU_URGENT_SNOOZE_MINUTES), never to tomorrow."""
    return r.urgent and r.kind.rpartition(".")[2] in (*OVERDUE, *ESCALATE)


def snooze_buttons(ctx: Ctx, r: Reminder) -> list[Button]:
    """The snoozes a reminder offers: 1 hour / tomorrow 8:00, or the short ones only."""
    # Ids alone (id:0 an hour, id:1 the morning, id:2:minutes), so the button declares its
    # reads (bot.features.todo); the letters sent before (12h, 12m, 12s30) still work.
    if overdue_urgent(r):
        return [Button(ctx.t("btn.snooze_minutes", minutes=m),
                       feature_callback("todo", "snz", f"{r.id}:2:{m}"))
                for m in ctx.services.settings.urgent_snooze_minutes]
    return [Button(ctx.t("btn.snooze_hour"), feature_callback("todo", "snz", f"{r.id}:0")),
            Button(ctx.t("btn.snooze_morning"), feature_callback("todo", "snz", f"{r.id}:1"))]


async def jobs_done(services: Services, job: str, period: str) -> set[int]:
    """Who (user or team id) a once-per-period job already served in `period`, or is serving
    now (another instance's live claim)."""
    return await job_runs.served(services.db, job, period, services.clock.now())


async def claim_job(services: Services, job: str, period: str, who: int) -> JobClaim | None:
    """Claim one person's send of a once-only job before making it (None: sent already, or
    another instance is sending it). Held TAIQU_REMINDER_CLAIM_SECONDS from now, as a
    reminder in flight: a fan-out paced by the send budget claims each one as it goes."""
    now = services.clock.now()
    until = now + timedelta(seconds=services.settings.reminder_claim_seconds)
    return await job_runs.claim(services.db, job, period, who, now, until)


def repeat_marked(reply: Reply, locale: str, claim: JobClaim) -> Reply:
    """A send taken over from an instance that died while making it may have arrived: say so."""
    if not claim.repeat:
        return reply
    return replace(reply, text=t(locale, "job.maybe_repeat") + "\n" + reply.text)


async def job_failed(services: Services, job: str, period: str, user: User, now: datetime,
                     exc: BaseException) -> None:
    """One person's share of a periodic job failed: log it, record it in the audit log (for
    the admin: which job, whom, why) and, after TAIQU_JOB_ATTEMPTS failures in a period,
    mark it done, so a failure that repeats (bad data) is not retried every scan."""
    log.error("%s for user %s (%s) failed", job, user.id, period, exc_info=exc)
    detail = {"job": job, "period": period, "error": f"{type(exc).__name__}: {exc}"[:300]}
    async with services.db.tx() as tx:
        await audit.record(tx, team_id=user.team_id, user_id=user.id, actor="system",
                           entity=JOB_ENTITY, entity_id=user.id, action="failed", at=now,
                           detail=detail)
        row = await tx.fetchone(
            "SELECT count(*) FROM audit_log WHERE entity = ? AND entity_id = ? "
            "AND action = 'failed' AND json_extract(detail, '$.job') = ? "
            "AND json_extract(detail, '$.period') = ?", (JOB_ENTITY, user.id, job, period))
        if row is not None and row[0] >= services.settings.job_attempts:
            log.error("%s for user %s (%s): giving up after %s attempts", job, user.id, period,
                      row[0])
            await tx.execute("INSERT INTO job_runs(job, period, user_id, done_at) "
                             "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (job, period, user.id, iso(now)))


def fold_stages(rows: list[Reminder]) -> list[tuple[Reminder, list[Reminder]]]:
    """One user's due rows, those of one record's step (complaint #3 contact: half, soon,
    due ...) grouped: (the latest stage, the earlier ones). A ladder plans its rungs in stage
    order and follow-ups after them, so the highest id is the latest stage (a snoozed row
    keeps its id). Different steps stay apart: they ask for different things."""
    groups: dict[tuple[str, int, str], list[Reminder]] = defaultdict(list)
    for r in rows:
        groups[(r.subject, r.subject_id, r.kind.partition(".")[0])].append(r)
    order = {r.id: i for i, r in enumerate(rows)}  # the latest stages in the scan's order
    out = []
    for group in groups.values():
        group.sort(key=lambda r: r.id)
        out.append((group[-1], group[:-1]))
    return sorted(out, key=lambda pair: order[pair[0].id])


@dataclass
class ScanResult:
    sent: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    digests: int = 0
    jobs: int = 0
    unknown: int = 0  # pushes whose answer was lost: retried later, marked as possible repeats
    waiting: int = 0  # for people who have not opened the bot yet: sent on their first visit


async def open_items(ctx: Ctx, kinds: Iterable[ReminderKind]) -> list[TodoItem]:
    """Every kind's open items (for /todo and the digest), in the kinds' order: the declared
    ones' reads all in one round trip (Backend.fetch_many), then worded by each kind."""
    todos = [k.todo for k in kinds if k.todo is not None]
    declared = [td for td in todos if isinstance(td, TodoRead)]
    fetched = await ctx.services.db.fetch_groups([td.reads(ctx) for td in declared])
    rows = {id(td): got for td, got in zip(declared, fetched, strict=True)}
    items: list[TodoItem] = []
    for td in todos:
        items += await (td.word(ctx, rows[id(td)]) if isinstance(td, TodoRead) else td(ctx))
    return items


class ReminderService:
    def __init__(self, services: Services, dispatcher: Dispatcher,
                 router: Router | None = None, concurrency: int = 32) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self.router = router or app_router()
        self.rows = Reminders(services.db)
        self.prefs = UserPrefs(services.db)
        self._sem = asyncio.Semaphore(concurrency)
        self._scan_lock = asyncio.Lock()
        # The button data of what each person's digest of this scan listed: a reminder about
        # one of those is covered by the digest; any other still goes out on its own.
        self._digest_listed: dict[int, set[str]] = {}
        self.closing = False  # shutting down: claim no more rows, finish the ones in flight

    async def recover(self) -> int:
        """Start-up of the lease holder: re-queue rows a stopped process left 'sending'."""
        count = await self.rows.recover()
        if count:
            log.warning("%d reminder(s) were interrupted while sending; sending them again, "
                        "marked as possible repeats", count)
        # Likewise digests and Monday reports it was sending: taken over now, not at expiry.
        await job_runs.expire_all(self.services.db, self.services.clock.now())
        return count

    def _claim_until(self, now: datetime) -> datetime:
        """Rows this scan takes are its own until then (another instance's after)."""
        return now + timedelta(seconds=self.services.settings.reminder_claim_seconds)

    async def _claim(self, r: Reminder) -> bool:
        """Mark one row in flight, for a whole claim from now: in a long fan-out paced by the
        send budget, a claim counted from the scan's start could have run out already, and
        another instance would send the row again while this one is still sending it."""
        if self.closing:
            return False
        return await self.rows.claim(r.id, self._claim_until(self.services.clock.now()))

    # --- quiet hours ---------------------------------------------------------------------
    async def quiet_window(self, user: User) -> tuple[time, time] | None:
        return await quiet_window(self.services, user.id)

    # --- the scan ------------------------------------------------------------------------
    async def scan_once(self) -> ScanResult:
        async with self._scan_lock:  # one scan at a time, however the scheduler fires
            result = ScanResult()
            now = self.services.clock.now()
            await self.rows.recover_expired(now)
            digested = await self.run_digests(now)
            await self.rows.release_held_of_deactivated()
            await self.release_after_quiet(now)
            # The memory of saved forms (a second 保存 says what it saved) past its hours.
            await self.services.conversations.prune(now, now - timedelta(
                hours=self.services.settings.saved_form_memory_hours))
            result.digests = len(digested)
            for job in self.router.periodic:
                try:
                    result.jobs += await job(self.services, self._job_push, now)
                except Exception:  # a failing job must not stop the reminders
                    log.exception("periodic job %s failed", getattr(job, "__name__", job))
            # At most BATCH rows in memory at a time, but a backlog larger than one batch is
            # worked off in this scan at the flood limit, not one batch per scan interval
            # (1,000 a minute, ~17/s). `now` is re-read per batch so that rows falling due
            # meanwhile (urgent first) and quiet hours are judged at send time; `seen` ends
            # the scan if only rows already handled here are still due (e.g. a 0 s retry),
            # MAX_SCAN if sending is slow (an outage), so the next digests are not held up.
            started = now
            seen: set[int] = set()
            while True:
                due = await self.rows.due(now, BATCH, claim_until=self._claim_until(now))
                fresh = [r for r in due if r.id not in seen]
                seen.update(r.id for r in fresh)
                by_user: dict[int, list[Reminder]] = defaultdict(list)
                for r in fresh:
                    if (r.user_id in digested and not r.urgent and r.state == "pending"
                            and await self._in_digest(r, now)):
                        # The digest this user just got listed it: no burst after.
                        await self.rows.settle(r.id, "digested", now)
                        continue
                    by_user[r.user_id].append(r)
                # One user's reminders in order; different users concurrently (bounded).
                await asyncio.gather(*(self._deliver_all(rs, now, result)
                                       for rs in by_user.values()))
                if self.closing and fresh:  # stopping: what it did not send is not kept
                    await self.rows.unclaim([r.id for r in fresh])
                now = self.services.clock.now()
                if (len(due) < BATCH or not fresh or now - started >= MAX_SCAN
                        or self.closing):
                    return result

    async def release_after_quiet(self, now: datetime) -> int:
        """Catch-up after quiet hours that end after the digest went out (a midday rest):
        what was held goes out now, folded per record, not in tomorrow's digest."""
        held = await self.rows.held_users()
        if not held:
            return 0
        local = now.astimezone(self.services.settings.tz)
        done = await jobs_done(self.services, DIGEST_JOB, local.date().isoformat())
        released = 0
        for user_id in held & done:  # no digest yet today: it will carry them
            user = await self.services.people.user(user_id)
            window = await self.quiet_window(user) if user else None
            if user is not None and not (window and in_quiet(local, *window)):
                released += await self.rows.release_held(user_id)
        return released

    async def _job_push(self, user_id: int, reply: Reply) -> None:
        """A periodic job's push (the Monday report): none starts once a stop has begun, so
        the drain only waits for those in flight; the job leaves the rest for the next start."""
        if self.closing:
            raise RetryLater(0, "stopping: sent by the next start")
        await self.dispatcher.push(user_id, reply)

    async def _deliver_all(self, rows: list[Reminder], now: datetime,
                           result: ScanResult) -> None:
        async with self._sem:
            for latest, earlier in fold_stages(rows):
                try:
                    await self.deliver(latest, now, result)
                except Exception:  # one bad row must not stop the others
                    log.exception("reminder %s failed", latest.id)
                    await self.rows.retry_at(latest.id, now + timedelta(minutes=5),
                                             "internal error")
                    result.retried += 1
                await self._fold(latest, earlier, now)

    async def _fold(self, latest: Reminder, earlier: list[Reminder], now: datetime) -> None:
        """Earlier stages due together with `latest` (a catch-up after quiet hours or a
        restart) share its fate instead of arriving as a burst of near-identical messages:
        sent with it, held or retried with it, cancelled with it."""
        if not earlier:
            return
        state = await self.rows.follow([r.id for r in earlier], latest.id)
        if state != "sent":
            return
        kind = self.router.reminders.get(latest.subject)
        if kind is not None and kind.after_sent is not None:
            for r in earlier:  # each still plans its own follow-up, as when sent alone
                await kind.after_sent(self.services, r, now)

    async def deliver(self, r: Reminder, now: datetime, result: ScanResult) -> None:
        user = await self.services.people.user(r.user_id)
        kind = self.router.reminders.get(r.subject)
        if user is None and kind is not None:
            former = await self.services.people.deactivated_user(r.user_id)
            if former is not None:
                await self._forward_deactivated(former, r, kind, now, result)
                return
        if user is None or kind is None:
            await self.rows.settle(r.id, "cancelled", now, "no recipient or kind")
            result.dropped += 1
            return
        ctx = Ctx(self.services, user, now)
        if not r.urgent:
            window = await self.quiet_window(user)
            if window and in_quiet(ctx.local_now, *window):
                # Held: the morning digest gathers it with the day's other items.
                await self.rows.hold(r.id)
                result.held += 1
                return
        reply = await kind.render(ctx, r)
        if reply is None:  # settled meanwhile (closed, paid, arrived ...)
            await self.rows.settle(r.id, "cancelled", now, "settled")
            result.dropped += 1
            return
        if kind.snoozable:
            reply.buttons.append(snooze_buttons(ctx, r))
        if r.maybe_sent:
            reply.text = ctx.t("reminder.maybe_repeat") + "\n" + reply.text
        if not await self._claim(r):
            return
        try:
            await self.dispatcher.push(user.id, reply)
        except RetryLater as exc:
            await self.rows.retry_at(r.id, now + timedelta(seconds=exc.seconds), str(exc))
            result.retried += 1
            return
        except OutcomeUnknown as exc:
            delay = self.services.settings.unknown_outcome_retry_seconds
            await self.rows.retry_at(r.id, now + timedelta(seconds=delay),
                                     f"{MAYBE_SENT}: {exc}"[:200])
            result.unknown += 1
            return
        except NotOpenedYet:  # released by their first visit; the recheck is a safety net
            hours = self.services.settings.not_opened_recheck_hours
            await self.rows.retry_at(r.id, now + timedelta(hours=hours), WAITING)
            result.waiting += 1
            return
        except Unreachable as exc:
            await self.rows.settle(r.id, "failed", now, str(exc))
            await self._unreachable(ctx, r, reply, now)
            result.failed += 1
            return
        except Exception as exc:  # network and server faults: back off and try again
            delay = min(MAX_BACKOFF_S, 30.0 * (2 ** max(0, r.attempts)))
            await self.rows.retry_at(r.id, now + timedelta(seconds=delay), repr(exc)[:200])
            result.retried += 1
            return
        await self.rows.settle(r.id, "sent", now)
        result.sent += 1
        if kind.after_sent is not None:
            await kind.after_sent(self.services, r, now)

    async def _forward_deactivated(self, former: User, r: Reminder, kind: ReminderKind,
                                   now: datetime, result: ScanResult) -> None:
        """A deactivated user's reminder goes to the team's leads (their work is not
        dropped), worded for the former owner. In the default quiet hours a non-urgent one
        waits for their end: a deactivated user gets no morning digest that would carry it."""
        ctx = Ctx(self.services, former, now)
        leads = [u for u in await self.leads_of(former.team_id) if u.id != former.id]
        if not leads:
            log.warning("reminder %s: user %s is deactivated and team %s has no lead", r.id,
                        former.id, former.team_id)
            await self.rows.settle(r.id, "cancelled", now, "deactivated, no lead")
            result.dropped += 1
            return
        if not r.urgent:
            start, end = self.services.settings.quiet_hours.split("-")
            if in_quiet(ctx.local_now, _hhmm(start), _hhmm(end)):
                await self.rows.retry_at(r.id, next_at(ctx.local_now, _hhmm(end)),
                                         "deactivated: after quiet hours")
                result.held += 1
                return
        reply = await kind.render(ctx, r)
        if reply is None:
            await self.rows.settle(r.id, "cancelled", now, "settled")
            result.dropped += 1
            return
        if not await self._claim(r):
            return
        delivered, unknown, retry = 0, False, None  # retry: seconds, for a fault to retry
        for lead in leads:
            lctx = Ctx(self.services, lead, now)
            text = lctx.t("reminder.deactivated", name=former.name) + "\n\n" + reply.text
            if r.maybe_sent:
                text = lctx.t("reminder.maybe_repeat") + "\n" + text
            try:
                await self.dispatcher.push(lead.id, Reply(text, reply.buttons))
                delivered += 1
            except Exception as exc:
                log.warning("could not forward reminder %s of deactivated user %s to lead %s",
                            r.id, former.id, lead.id, exc_info=True)
                if isinstance(exc, OutcomeUnknown):
                    unknown = True
                elif isinstance(exc, RetryLater):
                    retry = max(retry or 0.0, exc.seconds)
                elif not isinstance(exc, Unreachable):
                    retry = max(retry or 0.0, min(MAX_BACKOFF_S, 30.0 * (2 ** max(0, r.attempts))))
        # No lead has it for sure: try again as for any reminder (it must not be lost).
        if not delivered and unknown:
            delay = self.services.settings.unknown_outcome_retry_seconds
            await self.rows.retry_at(r.id, now + timedelta(seconds=delay),
                                     f"{MAYBE_SENT}: forwarding to the lead"[:200])
            result.unknown += 1
            return
        if not delivered and retry is not None:
            await self.rows.retry_at(r.id, now + timedelta(seconds=retry),
                                     "forwarding to the lead failed")
            result.retried += 1
            return
        if not delivered:  # every lead blocked the bot: nobody left to tell
            await self.rows.settle(r.id, "failed", now, "deactivated, leads unreachable")
            result.failed += 1
            return
        await self.rows.settle(r.id, "sent", now, "forwarded: user deactivated")
        result.sent += 1
        if kind.after_sent is not None:  # the next occurrence is planned, and forwarded too
            await kind.after_sent(self.services, r, now)

    async def _unreachable(self, ctx: Ctx, r: Reminder, reply: Reply, now: datetime) -> None:
        """The user blocked the bot: remember it and give the message to the team's leads."""
        await self.prefs.set_unreachable(ctx.user.id, now)
        for lead in await self.leads_of(ctx.user.team_id):
            if lead.id == ctx.user.id:
                continue
            lctx = Ctx(self.services, lead, now)
            text = lctx.t("reminder.unreachable", name=ctx.user.name) + "\n\n" + reply.text
            try:
                await self.dispatcher.push(lead.id, Reply(text, reply.buttons[:-1]))
            except Exception:
                log.warning("could not tell lead %s that %s is unreachable", lead.id,
                            ctx.user.id, exc_info=True)

    async def leads_of(self, team_id: int) -> list[User]:
        return await self.services.people.leads_of(team_id)

    # --- the morning digest --------------------------------------------------------------
    async def run_digests(self, now: datetime) -> set[int]:
        """Each user once a day at the digest time: today's due and overdue items in one
        message, instead of a burst of single reminders. Returns who got one."""
        sent: set[int] = set()
        tz = self.services.settings.tz
        local = now.astimezone(tz)
        period = local.date().isoformat()
        done = await jobs_done(self.services, DIGEST_JOB, period)
        users = [u for u in await self.services.people.users() if u.id not in done]
        digest_at = _hhmm(self.services.settings.digest_time)
        if local.time() < digest_at:
            return sent
        avoiding = await self._avoiding_this_minute(local)
        pending = [u for u in users
                   if u.id not in avoiding
                   and local >= digest_slot(self.services.settings, u, local.date())
                   and await self._digest_due(u, local)]

        async def one(user: User) -> None:
            async with self._sem:
                if self.closing:  # shutting down: the next start sends the rest
                    return
                claim = await claim_job(self.services, DIGEST_JOB, period, user.id)
                if claim is None:  # sent meanwhile, or another instance is sending it
                    return
                try:
                    if await self.send_digest(user, now, claim):
                        sent.add(user.id)
                except Exception as exc:  # one person's bad record must not stop the rest
                    await job_runs.give_back(self.services.db, claim)
                    await job_failed(self.services, DIGEST_JOB, period, user, now, exc)

        await asyncio.gather(*(one(u) for u in pending))
        return sent

    async def _avoiding_this_minute(self, local: datetime) -> set[int]:
        """People on a channel that asks bulk sends to keep out of this minute (WeCom: :00,
        :30; data/send_pacing.json): their digest waits for the next scan."""
        channels = [c for c, minutes in bulk_avoid_minutes().items() if local.minute in minutes]
        if not channels:
            return set()
        rows = await self.services.db.fetchall(
            "SELECT DISTINCT user_id FROM identities "
            f"WHERE channel IN ({','.join('?' * len(channels))})", channels)
        return {r[0] for r in rows}

    async def _digest_due(self, user: User, local: datetime) -> bool:
        if await self.services.people.first_visit(user.id) is None:
            return False  # not opened the bot yet: the scan after their first visit sends it
        window = await self.quiet_window(user)
        return not (window and in_quiet(local, *window))

    async def todo_items(self, ctx: Ctx) -> list[TodoItem]:
        return sorted(await open_items(ctx, self.router.reminders.values()), key=lambda i: i.due)

    async def send_digest(self, user: User, now: datetime, claim: JobClaim) -> bool:
        """Word and push the person's digest under `claim`; True when one went out."""
        ctx = Ctx(self.services, user, now)
        end_of_day = ctx.local_now.replace(hour=23, minute=59, second=59)
        items = [i for i in await self.todo_items(ctx) if i.due <= end_of_day]
        items = await self._not_mentioned_yet(user.id, items)
        held = await self.rows.held_for(user.id)
        # Held reminders about items not listed above (due later, e.g. snoozed into the night)
        # are shown with their own words, so nothing held is dropped unseen.
        listed = {i.button.data for i in items}
        extra: list[Reply] = []
        for r in held:
            kind = self.router.reminders.get(r.subject)
            reply = await kind.render(ctx, r) if kind else None
            if reply is None:
                continue
            datas = {b.data for row in reply.buttons for b in row}
            if not datas & listed:  # its record is not among the listed items yet
                listed |= datas or {f"held:{r.id}"}
                extra.append(reply)
        ok = True
        self._digest_listed[user.id] = listed
        if items or extra:
            lines = [ctx.t("digest.title", name=user.name, count=len(items) + len(extra))]
            for i in items[:DIGEST_LINES]:
                mark = "⚠️ " if i.overdue else "• "
                lines.append(mark + i.text)
            if len(items) > DIGEST_LINES:
                lines.append(ctx.t("digest.more", count=len(items) - DIGEST_LINES))
            lines += ["• " + e.text.splitlines()[0] for e in extra]
            rows = [[i.button] for i in items[:6]] + [e.buttons[0][:1] for e in extra[:4]
                                                      if e.buttons and e.buttons[0]]
            rows.append([Button(ctx.t("btn.todo"), callback(GLOBAL_TOKEN, "cmd", "todo"))])
            digest = repeat_marked(Reply("\n".join(lines), rows), ctx.locale, claim)
            try:
                await self.dispatcher.push(user.id, digest)
            except Unreachable:
                # Blocked: the digest goes to the leads instead (and still stands in for the
                # morning's single reminders, which would only be forwarded one by one).
                await self._unreachable(ctx, Reminder(0, user.team_id, user.id, "digest", 0,
                                                      "digest", now, False, "failed", 0, {}),
                                        Reply(digest.text, [*digest.buttons, []]), now)
            except OutcomeUnknown:  # it may have arrived: resent, marked, once the claim ends
                log.warning("digest for user %s: answer lost", user.id, exc_info=True)
                return False
            except Exception:  # flood limit or network: the next scan tries again
                log.warning("digest for user %s not delivered yet", user.id, exc_info=True)
                await job_runs.give_back(self.services.db, claim)
                ok = False
        if ok:
            await self._mentioned(user.id, items[:DIGEST_LINES], now)
            for r in held:
                await self.rows.settle(r.id, "digested", now)
                await self._after(r, now)
            await job_runs.finish(self.services.db, claim, now)
        return ok and bool(items or extra)

    async def _in_digest(self, r: Reminder, now: datetime) -> bool:
        """Whether the digest just sent to r's person listed r's record (its open button is
        among the digest's items); a notice the digest does not list (a new task, a lead's
        alert) is not dropped as covered. A row whose record is settled is moot anyway."""
        kind = self.router.reminders.get(r.subject)
        user = await self.services.people.user(r.user_id)
        if kind is None or user is None:
            return True  # as before: nothing could render it
        reply = await kind.render(Ctx(self.services, user, now), r)
        if reply is None:
            return True
        datas = {b.data for row in reply.buttons for b in row}
        return bool(datas & self._digest_listed.get(r.user_id, set()))

    async def _not_mentioned_yet(self, user_id: int, items: list[TodoItem]) -> list[TodoItem]:
        """The items to list: without those named once already (TodoItem.digest_key)."""
        keys = [i.digest_key for i in items if i.digest_key]
        if not keys:
            return items
        marks = ", ".join("?" for _ in keys)
        rows = await self.services.db.fetchall(
            f"SELECT item_key FROM digest_mentions WHERE user_id = ? AND item_key IN ({marks})",
            (user_id, *keys))
        mentioned = {r[0] for r in rows}
        return [i for i in items if not i.digest_key or i.digest_key not in mentioned]

    async def _mentioned(self, user_id: int, items: list[TodoItem], now: datetime) -> None:
        """Remember the once-only items this digest named (only once it went out)."""
        keys = [i.digest_key for i in items if i.digest_key]
        if not keys:
            return
        async with self.services.db.tx() as tx:
            for key in keys:
                await tx.execute(
                    "INSERT INTO digest_mentions(user_id, item_key, mentioned_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (user_id, item_key) DO NOTHING",
                    (user_id, key, iso(now)))

    async def _after(self, r: Reminder, now: datetime) -> None:
        """A reminder folded into a digest still plans its next occurrence (follow-ups)."""
        kind = self.router.reminders.get(r.subject)
        if kind is not None and kind.after_sent is not None:
            await kind.after_sent(self.services, r, now)
