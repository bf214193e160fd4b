"""The two-lane send budget (issue #12): replies go ahead of queued pushes, pushes still get
their share. A fake monotonic clock: the budget's sleeps move it, nothing really waits."""

from __future__ import annotations

import asyncio

import pytest

from bot.sendbudget import Lane, SendBudget, current_lane, pushing


class FakeMonotonic:
    """Time stands still until `drive` moves it to the next sleeper's wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        await fut

    async def drive(self, tasks: list[asyncio.Task[None]]) -> None:
        """Run until every task is done, waking sleepers in time order."""
        while not all(t.done() for t in tasks):
            for _ in range(5):  # let everything runnable run at this instant
                await asyncio.sleep(0)
            if self._sleepers:
                self._sleepers.sort(key=lambda s: s[0])
                at, fut = self._sleepers.pop(0)
                self.now = max(self.now, at)
                fut.set_result(None)


def budget(clock: FakeMonotonic, *, rate: float = 1, share: float = 0.1) -> SendBudget:
    return SendBudget(rate, burst=1, push_min_share=share, clock=clock, sleep=clock.sleep)


async def sends(b: SendBudget, order: list[str], *names: str) -> list[asyncio.Task[None]]:
    """Each name waits for the budget in turn (p… in the push lane), then is recorded."""

    async def one(name: str) -> None:
        await b.acquire(Lane.PUSH if name.startswith("p") else Lane.REPLY)
        order.append(name)

    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(one(name)))
        await asyncio.sleep(0)  # queued in this order
    return tasks


async def test_a_reply_goes_ahead_of_queued_pushes() -> None:
    clock = FakeMonotonic()
    b = budget(clock)
    order: list[str] = []
    tasks = await sends(b, order, "p1", "p2", "p3", "p4")
    tasks += await sends(b, order, "r1")  # someone answers a form while the digest waits
    await clock.drive(tasks)
    assert order == ["p1", "r1", "p2", "p3", "p4"]
    assert clock.now == pytest.approx(4.0)  # still one send a second


async def test_pushes_keep_their_share_under_a_flood_of_replies() -> None:
    clock = FakeMonotonic()
    b = budget(clock, share=0.25)  # every 4th send a push while replies wait
    order: list[str] = []
    tasks = await sends(b, order, "r0", "p1", "p2", *(f"r{i}" for i in range(1, 12)))
    await clock.drive(tasks)
    assert order[:9] == ["r0", "r1", "r2", "p1", "r3", "r4", "r5", "p2", "r6"]


async def test_a_flood_answer_pauses_every_send() -> None:
    clock = FakeMonotonic()
    b = budget(clock, rate=10)
    await b.acquire(Lane.REPLY)
    b.pause(5.0)  # Telegram: 429, retry after 5 s
    await clock.drive([asyncio.create_task(b.acquire(Lane.REPLY))])
    assert clock.now >= 5.0


async def test_a_replys_wait_is_told_before_it_asks() -> None:
    """What Telegram's paid replies decide by: nothing taken, the replies ahead counted at
    the pace replies get (a quarter goes to waiting pushes here), a 429's pause added."""
    clock = FakeMonotonic()
    b = budget(clock, share=0.25)
    assert b.reply_wait() == 0.0  # a send is free now
    order: list[str] = []
    tasks = await sends(b, order, "r1", "r2", "r3")  # r1 took it, r2 and r3 queue
    assert b.reply_wait() == pytest.approx(3.0)  # behind two, one a second
    tasks += await sends(b, order, "p1")
    assert b.reply_wait() == pytest.approx(3 / 0.75)  # pushes now take their share
    b.pause(5.0)
    assert b.reply_wait() == pytest.approx(5.0 + 3 / 0.75)
    await clock.drive(tasks)
    assert len(order) == 4


async def test_a_cancelled_waiter_gives_way() -> None:
    clock = FakeMonotonic()
    b = budget(clock)
    order: list[str] = []
    tasks = await sends(b, order, "p1", "p2", "p3")
    tasks[1].cancel()
    await clock.drive(tasks)
    assert order == ["p1", "p3"]


async def test_the_dispatcher_marks_its_sends_as_pushes() -> None:
    assert current_lane() is Lane.REPLY
    with pushing():
        assert current_lane() is Lane.PUSH
    assert current_lane() is Lane.REPLY
