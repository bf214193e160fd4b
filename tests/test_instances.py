"""Several instances on one store (issue #11): reminders claimed with a lease (an instance that
dies mid-send leaves them to another, at most the one in flight sent twice), rows another
instance is claiming skipped, not waited for (PostgreSQL's SKIP LOCKED), one instance at a
time running the scan with takeover when it dies, and /healthz for the load balancer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import asyncpg
import pytest

from bot import cli, serve
from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Reply
from bot.lease import DatabaseLease
from bot.models import Role
from bot.notify import Dispatcher, OutcomeUnknown
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.serve import Runner
from bot.services import Services
from bot.storage.leases import SCAN, InstanceLease
from bot.storage.reminders import Reminders
from tests.conftest import Chat, FakeNotifier, at, make_user, telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.test_reminders import register_complaint

pytestmark = pytest.mark.both_backends
MANAGERS = ("张三", "李四", "赵五")


@dataclass
class DyingNotifier(FakeNotifier):
    """Delivers `lives` pushes, then hangs in the next one: the process dies there."""

    lives: int = 1
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    async def push(self, external_id: str, reply: Reply) -> None:
        if self.lives == 0:
            self.hanging.set()
            await asyncio.Event().wait()  # never answered: the instance is killed meanwhile
        self.lives -= 1
        await super().push(external_id, reply)


@pytest.fixture
async def other(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    """A second instance on the same store (its own connections, the same clock)."""
    s = await Services.open(settings, clock)
    yield s
    await s.close()


@pytest.fixture
async def three_complaints(services: Services, assistant: Assistant, clock: FakeClock) -> None:
    """Each manager's complaint: its half-way reminder is due at 15:01."""
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    for name in MANAGERS:
        await make_user(services, name)
        await register_complaint(Chat(assistant, "test", name))
    at(clock, 2026, 11, 27, 15, 1)


async def test_an_instance_dying_mid_send_leaves_its_reminders_to_another(
        services: Services, other: Services, clock: FakeClock, three_complaints: None) -> None:
    dying = DyingNotifier(lives=1)
    first = ReminderService(services, Dispatcher(services, [dying]), concurrency=1)
    scan = asyncio.create_task(first.scan_once())
    await asyncio.wait_for(dying.hanging.wait(), 10)
    scan.cancel()  # kill -9: one sent, one in flight, one claimed and not yet sent
    with pytest.raises(asyncio.CancelledError):
        await scan
    [(done, _)] = dying.sent
    alive = FakeNotifier()
    second = ReminderService(other, Dispatcher(other, [alive]))
    await second.scan_once()
    assert alive.sent == []  # the claims still last: the first instance may yet send them
    clock.advance(seconds=other.settings.reminder_claim_seconds + 1)
    await second.scan_once()
    await second.scan_once()
    got = {who: alive.texts(who) for who in MANAGERS if who != done}
    assert all(len(texts) == 1 for texts in got.values()), got  # each sent once by the second
    assert alive.texts(done) == []  # never twice what was sent and recorded
    repeats = [who for who, texts in got.items() if texts[0].startswith("🔁 补发")]
    assert len(repeats) == 1  # the one in flight: may have arrived, so it says so


@dataclass
class SlowThenHanging(FakeNotifier):
    """The first push takes almost a claim's length (a fan-out paced by the send budget);
    the instance then hangs in the next one, which it claimed only then."""

    clock: FakeClock | None = None
    seconds: float = 0.0
    in_flight: str = ""
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    async def push(self, external_id: str, reply: Reply) -> None:
        assert self.clock is not None
        if self.sent:
            self.in_flight = external_id
            self.hanging.set()
            await asyncio.Event().wait()
        self.clock.advance(seconds=self.seconds)
        await super().push(external_id, reply)


async def test_a_reminder_claimed_late_in_a_long_fan_out_is_its_senders_for_a_whole_claim(
        services: Services, other: Services, clock: FakeClock, three_complaints: None) -> None:
    seconds = services.settings.reminder_claim_seconds
    slow = SlowThenHanging(clock=clock, seconds=seconds - 1)
    first = ReminderService(services, Dispatcher(services, [slow]), concurrency=1)
    scan = asyncio.create_task(first.scan_once())
    await asyncio.wait_for(slow.hanging.wait(), 10)
    clock.advance(seconds=2)  # the scan began a claim's length ago; the push in flight did not
    alive = FakeNotifier()
    await ReminderService(other, Dispatcher(other, [alive])).scan_once()
    scan.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scan
    assert slow.in_flight and slow.in_flight not in {who for who, _ in alive.sent}


@dataclass
class StopAfterOne(FakeNotifier):
    """A graceful stop (SIGTERM) arrives while the first push is being made."""

    service: ReminderService | None = None

    async def push(self, external_id: str, reply: Reply) -> None:
        assert self.service is not None
        self.service.closing = True
        await super().push(external_id, reply)


async def test_a_stopping_instance_leaves_what_it_did_not_send_to_another_at_once(
        services: Services, other: Services, three_complaints: None) -> None:
    stopping = StopAfterOne()
    first = ReminderService(services, Dispatcher(services, [stopping]), concurrency=1)
    stopping.service = first
    await first.scan_once()
    [(done, _)] = stopping.sent
    alive = FakeNotifier()
    await ReminderService(other, Dispatcher(other, [alive])).scan_once()  # no wait for claims
    assert sorted(who for who, _ in alive.sent) == sorted(set(MANAGERS) - {done})


async def test_one_scan_takes_over_rows_at_the_end_of_anothers_claim(
        services: Services, clock: FakeClock, three_complaints: None) -> None:
    rows = Reminders(services.db)
    now = clock.now()
    claimed = await rows.due(now, claim_until=now + timedelta(minutes=5))
    assert len(claimed) == 3
    assert await rows.due(now, claim_until=now + timedelta(minutes=5)) == []
    later = now + timedelta(minutes=5)
    assert len(await rows.due(later, claim_until=later + timedelta(minutes=5))) == 3


@pytest.mark.parametrize("db_backend", ["postgresql"])
async def test_rows_another_instance_is_claiming_are_skipped_not_waited_for(
        services: Services, settings: Settings, clock: FakeClock,
        three_complaints: None) -> None:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():  # another instance in the middle of its claim
            locked = await conn.fetchval(
                "SELECT id FROM reminders WHERE state = 'pending' AND due_at <= $1 "
                "ORDER BY id LIMIT 1 FOR UPDATE", clock.now().isoformat())
            now = clock.now()
            async with asyncio.timeout(5):
                claimed = await Reminders(services.db).due(
                    now, claim_until=now + timedelta(minutes=5))
    finally:
        await conn.close()
    assert locked not in {r.id for r in claimed} and len(claimed) == 2


async def test_the_scan_lease_goes_to_one_instance_and_over_when_it_dies(
        services: Services, other: Services, clock: FakeClock) -> None:
    seconds = services.settings.instance_lease_seconds
    a = InstanceLease(services.db, SCAN, "a", seconds)
    b = InstanceLease(other.db, SCAN, "b", seconds)
    assert await a.take(clock.now()) and not await b.take(clock.now())
    clock.advance(seconds=seconds * 2 / 3)
    assert await a.take(clock.now()) and not await b.take(clock.now())  # renewed in time
    clock.advance(seconds=seconds - 1)
    assert not await b.take(clock.now())
    clock.advance(seconds=2)  # a stopped renewing: it died
    assert await b.take(clock.now()) and not await a.take(clock.now())
    await b.give_up()  # a graceful stop: taken at once
    assert await a.take(clock.now())


async def _until(check: object, seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_only_the_lease_holder_scans_and_another_takes_over(
        services: Services, other: Services, clock: FakeClock, three_complaints: None) -> None:
    seconds = services.settings.instance_lease_seconds
    first_out, second_out = FakeNotifier(), FakeNotifier()
    first = ReminderScheduler(ReminderService(services, Dispatcher(services, [first_out])),
                              3600, InstanceLease(services.db, SCAN, "a", seconds))
    second = ReminderScheduler(ReminderService(other, Dispatcher(other, [second_out])),
                               3600, InstanceLease(other.db, SCAN, "b", seconds))
    first.start()
    await _until(lambda: first.runs == 1)
    assert len(first_out.sent) == 3
    second.start()
    await second.renew()
    await asyncio.sleep(0.2)
    assert second.runs == 0 and not second.holds_lease
    at(clock, 2026, 11, 30, 8, 31)  # Monday: the digest and the due-soon reminders
    await first.renew()
    for task in (first._task, first._keeper):  # kill -9: no drain, the lease not given up
        assert task is not None
        task.cancel()
    await second.renew()
    assert not second.holds_lease  # the dead holder's lease still runs
    clock.advance(seconds=seconds + 1)
    await second.renew()  # within a minute of the death: taken over, and it scans at once
    await _until(lambda: second.runs == 1)
    assert second.holds_lease
    [digest] = second_out.texts("张三")  # the morning digest, sent by the new holder only
    assert digest.startswith("☀️ 早上好，张三！")
    assert len(first_out.sent) == 3
    await second.stop()


@dataclass
class StallingNotifier(FakeNotifier):
    """Delivers `lives` pushes; in the next one its instance stalls (stopped, as by SIGSTOP:
    its lease runs out, nothing is released) until `resume`, then that push arrives and the
    instance carries on where it was."""

    lives: int = 1
    in_flight: str = ""
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    async def push(self, external_id: str, reply: Reply) -> None:
        if self.lives == 0:
            self.lives, self.in_flight = -1, external_id
            self.stalled.set()
            await self.resume.wait()
        elif self.lives > 0:
            self.lives -= 1
        await super().push(external_id, reply)


def _once_each_but_the_one_in_flight(got: list[tuple[str, Reply]], in_flight: str,
                                     everyone: set[str]) -> None:
    texts: dict[str, list[str]] = {}
    for who, reply in got:
        texts.setdefault(who, []).append(reply.text)
    assert set(texts) == everyone
    assert all(len(ts) == 1 for who, ts in texts.items() if who != in_flight), texts
    first, repeat = texts[in_flight]  # it may have arrived: the repeat says so
    assert not first.startswith("🔁") and repeat.startswith("🔁 补发"), repeat


async def test_a_digest_fan_out_taken_over_mid_way_reaches_each_person_once(
        services: Services, other: Services, clock: FakeClock, three_complaints: None) -> None:
    at(clock, 2026, 12, 1, 8, 1)  # Tuesday: the morning digest
    stalling = StallingNotifier(lives=1)
    first = ReminderService(services, Dispatcher(services, [stalling]), concurrency=1)
    fan_out = asyncio.create_task(first.run_digests(clock.now()))
    await asyncio.wait_for(stalling.stalled.wait(), 10)
    # Its lease ran out meanwhile: the next holder completes the fan-out, but leaves the
    # push in flight alone while its claim lasts (the stalled holder may yet make it).
    alive = FakeNotifier()
    second = ReminderService(other, Dispatcher(other, [alive]))
    await second.run_digests(clock.now())
    assert stalling.in_flight not in {who for who, _ in alive.sent}
    clock.advance(seconds=other.settings.reminder_claim_seconds + 1)
    await second.run_digests(clock.now())  # its sender died mid-push: sent again, marked
    await second.run_digests(clock.now())
    stalling.resume.set()  # the stalled holder wakes up and goes on with its list
    await asyncio.wait_for(fan_out, 10)
    everyone = {who for who, _ in stalling.sent + alive.sent}
    assert len(everyone) >= 3
    _once_each_but_the_one_in_flight(stalling.sent + alive.sent, stalling.in_flight, everyone)


async def test_a_monday_report_fan_out_taken_over_mid_way_reaches_each_person_once(
        services: Services, other: Services, clock: FakeClock, three_complaints: None) -> None:
    from bot.features.reports.handlers import weekly_report_job

    at(clock, 2026, 12, 7, 8, 31)  # Monday: the report of the week just ended
    for s in (services, other):  # one push at a time: the fan-out stops at a known person
        s.settings = s.settings.model_copy(update={"job_push_workers": 1})
    stalling = StallingNotifier(lives=1)
    first = ReminderService(services, Dispatcher(services, [stalling]))
    fan_out = asyncio.create_task(weekly_report_job(services, first._job_push, clock.now()))
    await asyncio.wait_for(stalling.stalled.wait(), 10)
    alive = FakeNotifier()
    second = ReminderService(other, Dispatcher(other, [alive]))
    await weekly_report_job(other, second._job_push, clock.now())
    assert stalling.in_flight not in {who for who, _ in alive.sent}
    clock.advance(seconds=other.settings.reminder_claim_seconds + 1)
    await weekly_report_job(other, second._job_push, clock.now())
    await weekly_report_job(other, second._job_push, clock.now())
    stalling.resume.set()
    await asyncio.wait_for(fan_out, 10)
    _once_each_but_the_one_in_flight(stalling.sent + alive.sent, stalling.in_flight,
                                     {"王班长", *MANAGERS})


async def test_a_digest_whose_answer_was_lost_is_resent_marked_once_its_claim_ends(
        services: Services, clock: FakeClock, three_complaints: None) -> None:
    """It may have arrived: not sent again at the next scan, but after the claim, marked."""
    at(clock, 2026, 12, 1, 8, 1)
    notifier = FakeNotifier(fail={"张三": [OutcomeUnknown("answer lost")]})
    service = ReminderService(services, Dispatcher(services, [notifier]))
    await service.run_digests(clock.now())
    assert notifier.texts("张三") == []
    clock.advance(seconds=60)
    await service.run_digests(clock.now())
    assert notifier.texts("张三") == []
    clock.advance(seconds=services.settings.reminder_claim_seconds)
    await service.run_digests(clock.now())
    [again] = notifier.texts("张三")
    assert again.startswith("🔁 补发") and "☀️ 早上好，张三！" in again


async def test_a_restarted_single_instance_resends_the_digest_in_flight_at_once(
        services: Services, clock: FakeClock, three_complaints: None) -> None:
    """SQLite, one process: what it was sending when it died goes out again at the next
    start, marked, without waiting for the claim to run out."""
    at(clock, 2026, 12, 1, 8, 1)
    dying = DyingNotifier(lives=1)
    first = ReminderService(services, Dispatcher(services, [dying]), concurrency=1)
    fan_out = asyncio.create_task(first.run_digests(clock.now()))
    await asyncio.wait_for(dying.hanging.wait(), 10)
    fan_out.cancel()  # kill -9
    with pytest.raises(asyncio.CancelledError):
        await fan_out
    [(done, _)] = dying.sent
    alive = FakeNotifier()
    restarted = ReminderService(services, Dispatcher(services, [alive]))
    await restarted.recover()
    await restarted.run_digests(clock.now())
    got = {who: [r.text for w, r in alive.sent if w == who] for who, _ in alive.sent}
    assert done not in got and all(len(ts) == 1 for ts in got.values())
    assert sum(ts[0].startswith("🔁 补发") for ts in got.values()) == 1


async def test_healthz_says_whether_the_store_and_channels_are_up(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    served = telegram_settings(settings, fake_api).model_copy(
        update={"health_port": 0, "health_host": "127.0.0.1"})
    services.settings = served
    runner = Runner(services, serve.configured(served))
    await runner.start()
    try:
        assert runner.health is not None
        url = f"http://127.0.0.1:{runner.health.port}/healthz"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as answer:
                assert answer.status == 200
                body = await answer.json()
            assert body["database"] == "ok" and body["channels"] == {"telegram": "up"}
            telegram = runner.channels[0]
            await telegram.app.updater.stop()  # type: ignore[attr-defined]
            async with http.get(url) as answer:
                assert answer.status == 503
                assert (await answer.json())["channels"] == {"telegram": "down"}
            await services.db.close()
            async with http.get(url) as answer:
                assert answer.status == 503
                assert (await answer.json())["database"].startswith("unreachable")
    finally:
        await runner.stop()


async def test_no_health_endpoint_unless_a_port_is_set(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    served = telegram_settings(settings, fake_api)
    services.settings = served
    assert Runner(services, serve.configured(served)).health is None


@pytest.mark.parametrize("db_backend", ["postgresql"])
async def test_instances_on_one_machine_share_a_postgresql_store(
        services: Services, settings: Settings, clock: FakeClock) -> None:
    """SQLite's file lease (one `run` per file) is not taken on PostgreSQL: a second instance
    starts, and the scan's lease row says which one scans."""
    with DatabaseLease(settings.db_path):  # the first instance on this machine
        stop = asyncio.Event()
        running = asyncio.create_task(cli.serve(settings, [], stop, clock))

        async def scanning() -> bool:
            row = await services.db.fetchone("SELECT holder FROM instance_leases")
            return row is not None

        async with asyncio.timeout(10):
            while not await scanning() and not running.done():
                await asyncio.sleep(0.05)
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0
    assert await services.db.fetchone("SELECT holder FROM instance_leases") is None  # handed on
