"""Send budgets shared by the instances on one PostgreSQL (issues #11, #12): Telegram's limit
is per bot token and WeCom's per member, not per instance. Several instances (their own
connections, their own channels) on one database: together they stay within the budget,
and a reply on one instance does not wait behind another's digest wave."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.outbox import Sender
from bot.channels.wecom.store import Budget, OutItem, Queued, WeComStore
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Reply
from bot.sendbudget import Lane, SendBudget, SharedSendBudget, pushing
from bot.services import Services
from bot.storage.db import Backend
from bot.storage.send_budgets import Block, Rate, SendBudgets, Slot
from tests.conftest import telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.tg_harness import L, body, register
from tests.wecom_harness import wecom_settings

pytestmark = pytest.mark.timeout(60)
ON_PG = pytest.mark.parametrize("db_backend", ["postgresql"])  # several instances: PostgreSQL
RATE = 10  # sends a second for the bot token, all instances together
SENDS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
# Sends are granted at least 1/RATE apart, but timed when the fake receives them: on a busy
# machine the event loop and the loopback connection make one up to a slot late (measured:
# +-20 ms, more for a connection's first request), so the second is measured less one slot.
# Per-instance budgets put three times the rate into it.
JITTER = 1 / RATE


def max_sends_in_window(times: Iterable[float], window: float) -> int:
    """The most sends in any `window` seconds (a sliding window)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def send_times(fake: FakeBotAPI) -> list[float]:
    return [c.at for c in fake.calls if c.method in SENDS and c.ok]


@pytest.fixture
def shared_settings(settings: Settings, fake_api: FakeBotAPI) -> Settings:
    return telegram_settings(settings, fake_api).model_copy(
        update={"telegram_sends_per_second": RATE})


@pytest.fixture
async def instances(shared_settings: Settings,
                    clock: FakeClock) -> AsyncIterator[list[TelegramChannel]]:
    """Three instances sending with one bot token (own pool, own PTB application each); they
    send, and do not poll (the test's channel, if any, does)."""
    opened: list[tuple[Services, TelegramChannel]] = []
    for _ in range(3):
        s = await Services.open(shared_settings, clock)
        ch = TelegramChannel(Assistant(s), shared_settings)
        await ch.app.initialize()
        opened.append((s, ch))
    yield [ch for _, ch in opened]
    for s, ch in opened:
        await ch.app.shutdown()
        await s.close()


async def push_wave(channel: TelegramChannel, chat_ids: Iterable[int], text: str) -> None:
    with pushing():  # as the Dispatcher sends reminders and digests
        await asyncio.gather(*(channel.notifier.push(str(c), Reply(f"{text} {c}"))
                               for c in chat_ids))


@ON_PG
async def test_three_instances_together_never_exceed_the_token_budget(
        instances: list[TelegramChannel], fake_api: FakeBotAPI) -> None:
    budgets = [ch.app.bot.rate_limiter.budget for ch in instances]  # type: ignore[union-attr]
    assert all(isinstance(b, SharedSendBudget) for b in budgets)
    start = time.monotonic()

    await asyncio.gather(*(push_wave(ch, range(100 + 10 * i, 108 + 10 * i), "提醒")
                           for i, ch in enumerate(instances)))

    times = send_times(fake_api)
    assert len(times) == 24  # every push sent, once
    assert max_sends_in_window(times, 1.0 - JITTER) <= RATE
    assert time.monotonic() - start >= (24 - RATE) / RATE  # paced, not all at once


@ON_PG
async def test_a_reply_on_one_instance_does_not_wait_behind_another_instances_wave(
        services: Services, shared_settings: Settings, fake_api: FakeBotAPI,
        instances: list[TelegramChannel]) -> None:
    """张三's /help is handled by the polling instance while two others push a wave of 30
    (three seconds of the shared budget): answered within a second, and all of them
    together within the budget."""
    polling = TelegramChannel(Assistant(services), shared_settings)
    await polling.start()
    try:
        zhang = await register(fake_api, services, 42, "张三")
        before = len(send_times(fake_api))
        wave = asyncio.gather(push_wave(instances[0], range(200, 215), "今日待办"),
                              push_wave(instances[1], range(215, 230), "今日待办"))
        await asyncio.sleep(0.5)  # the wave holds the budget

        asked = time.monotonic()
        answer = await zhang.say("/help")
        waited = time.monotonic() - asked

        assert L("help.body") in body(answer[0])
        assert waited < 1.0, f"the reply waited {waited:.2f} s"
        assert not wave.done()  # it did run alongside
        await wave
        times = send_times(fake_api)[before:]
        assert len(times) == 30 + len(answer)
        assert max_sends_in_window(times, 1.0 - JITTER) <= RATE
    finally:
        await polling.stop()


@ON_PG
async def test_the_store_unreachable_each_instance_sends_its_share_alone(
        instances: list[TelegramChannel], fake_api: FakeBotAPI) -> None:
    """The database goes away: sends go on, each instance at RATE / TAIQU_INSTANCES (3), so
    the three together still keep the budget."""
    budgets: list[SharedSendBudget] = [
        ch.app.bot.rate_limiter.budget for ch in instances]  # type: ignore[union-attr,misc]
    for b in budgets:
        await b._budgets.db.close()  # unreachable from here on

    await asyncio.gather(*(push_wave(ch, range(300 + 10 * i, 306 + 10 * i), "提醒")
                           for i, ch in enumerate(instances)))

    assert all(b.fallbacks >= 1 for b in budgets)
    times = send_times(fake_api)
    assert len(times) == 18
    assert max_sends_in_window(times, 1.0 - JITTER) <= RATE


# --- WeCom: the member's budget -------------------------------------------------------------
class OwnRows(WeComStore):
    """An instance's outbox that sends only the messages it queued itself (which instance
    sends which message is the outbox claim's business; here: the member's budget)."""

    mine: set[int]

    async def head(self, external_id: str, at: float) -> Queued | None:
        rows = await self.db.fetchall(
            "SELECT id FROM wecom_outbox WHERE external_id = ? AND state = 'queued' "
            "ORDER BY id", (external_id,))
        for row in rows:
            if row[0] in self.mine:
                self.mine.discard(row[0])
                return Queued(row[0], external_id, OutItem("text", {"content": f"提醒 {row[0]}"}),
                              "queued", 0.0, 0, Lane.PUSH)
        return None


@ON_PG
async def test_two_instances_never_exceed_a_wecom_members_minute(
        services: Services, settings: Settings, clock: FakeClock) -> None:
    """Two instances push 20 reminders each to one member at once: WeCom takes 30 a minute
    and silently drops the rest, so together they send 30 and hold 10 for the next minute."""
    other = await Services.open(settings, clock)
    async with FakeWeCom() as fake:
        senders: list[Sender] = []
        try:
            for s in (services, other):
                store = OwnRows(s.db, Budget(per_minute=30, per_hour=1000, reply_reserve=0))
                store.mine = set(await store.handled(
                    None, "zhangsan", [OutItem("text", {"content": "提醒"})] * 20,
                    clock.now(), Lane.PUSH))
                senders.append(Sender(WeComClient.from_settings(wecom_settings(fake)), store,
                                      s.clock))

            await asyncio.gather(*(sender.drain("zhangsan") for sender in senders))

            assert fake.dropped == []
            assert len(fake.sent("zhangsan")) == 30
            assert sum(sender.stats.held for sender in senders) == 2  # one each, for later
        finally:
            for sender in senders:
                await sender.client.aclose()
            await other.close()


# --- the budget row itself -------------------------------------------------------------------
@ON_PG
async def test_a_push_takes_only_a_free_slot_a_reply_books_the_next(database: Backend) -> None:
    budgets, rate, now = SendBudgets(database), Rate(1 / RATE), 1000.0

    async def take(push: bool, ticket: str) -> Slot:
        return await budgets.take("telegram:1", rate, now, push=push, push_every=10,
                                  ticket=ticket)

    assert await take(True, "a") == Slot(True, now)  # idle: the push goes now
    assert await take(True, "b") == Slot(False, pytest.approx(now + 0.1))  # ask again then
    assert await take(False, "c") == Slot(True, pytest.approx(now + 0.1))  # booked: next slot
    assert await take(True, "d") == Slot(False, pytest.approx(now + 0.2))  # after the reply


@ON_PG
async def test_replies_filling_the_budget_leave_pushes_their_share(database: Backend) -> None:
    """TAIQU_PUSH_MIN_SHARE 0.1 across instances: while replies book every slot, every
    tenth goes to a waiting push."""
    budgets, rate, now = SendBudgets(database), Rate(1 / RATE), 1000.0
    slots: list[tuple[float, str]] = []
    for i in range(30):
        for lane in ("reply", "push"):
            got = await budgets.take("telegram:1", rate, now, push=lane == "push",
                                     push_every=10, ticket=f"{lane}{i}")
            if got.granted:
                slots.append((got.at, lane))

    lanes = [lane for _, lane in sorted(slots)]
    assert lanes.count("push") == 3 and lanes[9] == lanes[19] == lanes[29] == "push"
    times = sorted(at for at, _ in slots)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_on_sqlite_the_budget_stays_in_process(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI) -> None:
    """One instance on SQLite: no database round trip per send (issue #12 counts them)."""
    budget = channel.app.bot.rate_limiter.budget  # type: ignore[union-attr]
    assert type(budget) is SendBudget
    await push_wave(channel, range(400, 403), "提醒")
    assert len(send_times(fake_api)) == 3
    row = await services.db.fetchone("SELECT count(*) FROM send_budgets")
    assert row is not None and row[0] == 0


# --- blocks of the shared budget (issue #12) --------------------------------------------------
class VirtualTime:
    """Epoch seconds that move only as the test moves them: the budgets' clock, wall and
    sleep, so the store's real latency cannot blur when each send was let go."""

    def __init__(self) -> None:
        self.t = time.time() + 3600  # past anything booked in real time

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        until = self.t + seconds
        while self.t < until:
            await asyncio.sleep(0.001)


def on_virtual_time(budget: SharedSendBudget, vt: VirtualTime) -> list[float]:
    """Every slot `budget` grants, as the epoch second it lets the send go."""
    budget._wall = budget._clock = vt.now
    budget._sleep = vt.sleep
    granted: list[float] = []
    ask = budget._try

    async def recorded(lane: Lane) -> float | None:
        delay = await ask(lane)
        if delay is not None:
            granted.append(vt.now() + delay)
        return delay

    budget._try = recorded  # type: ignore[method-assign]
    return granted


Arrival = tuple[float, int, Lane]  # when, which budget, which lane


async def drive(vt: VirtualTime, budgets: list[SharedSendBudget], arrivals: list[Arrival],
                sent: Callable[[Arrival], None] = lambda _: None) -> int:
    """Each arrival's send asks its budget at its time; virtual time moves 5 ms a step, and
    stands while a budget waits for the store: a grant goes when it was decided, no later.
    The sends made."""
    arrivals, tasks = sorted(arrivals), []

    async def send(arrival: Arrival) -> None:
        await budgets[arrival[1]].acquire(arrival[2])
        sent(arrival)

    while arrivals or not all(t.done() for t in tasks):
        while arrivals and arrivals[0][0] <= vt.t + 1e-9:
            tasks.append(asyncio.create_task(send(arrivals.pop(0))))
        await asyncio.sleep(0.002)
        if not any(b._booking.locked() for b in budgets):
            vt.t += 0.005
    await asyncio.gather(*tasks)
    return len(tasks)


class CountedBlocks(SendBudgets):
    """The store's budgets, counting the blocks booked for replies."""

    blocks = 0

    async def book(self, *args: Any, **kwargs: Any) -> Block:
        self.blocks += 1
        return await super().book(*args, **kwargs)


@ON_PG
async def test_two_budgets_spending_blocks_never_exceed_the_rate(database: Backend) -> None:
    """Two instances' budgets on one row at 30/s (blocks of up to 3), each with a digest
    wave of 30; replies arrive on both alone and in threes, then 30 at once on one. Every
    send is let go once, no two closer than 1/30 s (the row's own spacing: never more than
    30 in a second); a reply waits for the next slot or two, not behind the waves; replies
    back to back book a block per 3."""
    rate, vt = 30.0, VirtualTime()
    stores = [CountedBlocks(database) for _ in range(2)]
    budgets = [SharedSendBudget(store, "telegram:9", rate, instances=2, store_wait=10.0)
               for store in stores]
    granted = [on_virtual_time(b, vt) for b in budgets]
    assert {b.block for b in budgets} == {3}
    start, burst = vt.t, vt.t + 3.5
    arrivals = ([(start, i % 2, Lane.PUSH) for i in range(60)]
                + [(start + 0.08 * i, i % 2, Lane.REPLY)
                   for i in range(40) for _ in range(3 if i % 5 == 0 else 1)]
                + [(burst, 0, Lane.REPLY)] * 30)
    waits: list[float] = []  # the replies' before the burst
    blocks_before_burst = 0

    def sent(arrival: Arrival) -> None:
        nonlocal blocks_before_burst
        if arrival[2] is Lane.REPLY and arrival[0] < burst:
            waits.append(vt.t - arrival[0])
            blocks_before_burst = stores[0].blocks

    sends = await drive(vt, budgets, arrivals, sent)

    times = sorted(granted[0] + granted[1])
    assert len(times) == sends == 60 + 56 + 30
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / rate - 1e-6
    assert all(b.granted[Lane.PUSH] == 30 for b in budgets)
    assert len(waits) == 56 and max(waits) < 0.2, f"a reply waited {max(waits):.2f} s"
    assert stores[0].blocks - blocks_before_burst <= 30 // 3 + 2


@ON_PG
async def test_a_slot_of_a_block_that_passed_unused_is_not_spent_late(
        database: Backend) -> None:
    """Three replies at once take a block of 3; later one reply books the next block and
    two more come when its second slot has passed: the first takes the third slot, at once;
    the second books again rather than go in the same instant (which would put two sends
    closer than the rate allows)."""
    rate, vt = 30.0, VirtualTime()
    budget = SharedSendBudget(SendBudgets(database), "telegram:8", rate, store_wait=10.0)
    granted = on_virtual_time(budget, vt)
    later = vt.t + 1.0
    await drive(vt, [budget], [(vt.t, 0, Lane.REPLY)] * 3 + [(later, 0, Lane.REPLY)]
                + [(later + 1.5 / rate, 0, Lane.REPLY)] * 2)

    assert min(b - a for a, b in itertools.pairwise(sorted(granted))) >= 1 / rate - 1e-6
    assert budget.bookings == 3 and len(granted) == 6
