"""A channel's send budget with two lanes: replies to what someone just did go first, pushes
(reminders, digests, reports) use what replies leave (issue #12).

The core decides the lane: everything sent while handling an update is a reply; the
Dispatcher marks its pushes (`pushing()`), and a channel's limiter asks `current_lane()`.
A lane is a context variable, so a push made while handling an update (a lead told of
something) is still a push, and the channels need no lane argument.

Why by hand and not aiolimiter (PTB's AIORateLimiter): aiolimiter wakes its waiters in
arrival order, one queue; a reply arriving behind 3,000 digests waited 15 s for them.

Pushes never starve: while both lanes wait, at least every `push_every`-th send is a push
(TAIQU_PUSH_MIN_SHARE), so a stream of replies above the whole budget still lets the
digest through at that share."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from enum import IntEnum

from bot.storage.db import Backend
from bot.storage.send_budgets import Block, Rate, SendBudgets

log = logging.getLogger(__name__)
# After the store failed a budget call, the local fallback serves this long before the store
# is asked again: a store that is down is not asked once per send.
STORE_RETRY_SECONDS = 5.0
# A shared budget's replies book this much of the budget's time at once (a block), spent
# here without asking the store again. Why a tenth of a second: it is what another
# instance's reply may wait behind this instance's block, and what an unused block holds
# idle, both below what a person notices; at Telegram's 28/s it is 3 sends, so under load
# two of three sends book nothing (a chat step's round trips stay the step's own 2).
BLOCK_SECONDS = 0.1


def block_size(rate: float) -> int:
    """Slots in one block at `rate` sends a second: BLOCK_SECONDS of them, at least 1."""
    return max(1, round(rate * BLOCK_SECONDS))


class Lane(IntEnum):
    REPLY = 0  # an answer to an update the person is looking at their phone for
    PUSH = 1  # reminders, digests, reports, messages to other people


_lane: ContextVar[Lane] = ContextVar("send_lane", default=Lane.REPLY)


def current_lane() -> Lane:
    return _lane.get()


@contextlib.contextmanager
def pushing() -> Iterator[None]:
    """Sends made inside are pushes (the core's Dispatcher wraps every push in this)."""
    token = _lane.set(Lane.PUSH)
    try:
        yield
    finally:
        _lane.reset(token)


Sleep = Callable[[float], Awaitable[object]]


class SendBudget:
    """A token bucket (`rate` sends a second, bursts of `burst`) with two waiting lanes.

    `clock` and `sleep` are injectable (tests move a fake clock instead of waiting)."""

    lanes_differ = False  # may a push be refused while a reply is granted (SharedSendBudget)

    def __init__(self, rate: float, *, burst: int = 1, push_min_share: float = 0.1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("a send budget needs a positive rate")
        self.rate = rate
        self.burst = max(1, burst)
        # While replies are waiting, every push_every-th send goes to a waiting push.
        self.push_every = max(1, round(1 / push_min_share)) if push_min_share > 0 else 0
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self._waiting: dict[Lane, deque[asyncio.Future[float]]] = {
            Lane.REPLY: deque(), Lane.PUSH: deque()}
        self._since_push = 0  # sends granted to replies since the last push
        self._pump: asyncio.Task[None] | None = None
        self._asking = 0  # senders asking the budget outside the queue (the one fast path)
        self.granted: dict[Lane, int] = {Lane.REPLY: 0, Lane.PUSH: 0}

    # ------------------------------------------------------------------ public
    async def acquire(self, lane: Lane | None = None) -> None:
        """Wait for the right to send one message in `lane` (default: the current lane)."""
        lane = current_lane() if lane is None else lane
        if self._nobody_ahead(lane) and not self._asking:
            self._asking += 1  # a shared budget's answer takes a round trip: one at a time
            try:
                delay = await self._try(lane)
            finally:
                self._asking -= 1
            if delay is not None:
                self._count(lane)
                await self._hold(delay)
                return
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[lane].append(fut)
        self._ensure_pump()
        try:
            delay = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted just as it was cancelled
                self._give_back()
            raise
        await self._hold(delay)

    def pause(self, seconds: float) -> None:
        """The platform said "too many" (Telegram 429 retry_after): nobody sends until then."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = min(self._tokens, 0.0)

    def waiting(self, lane: Lane) -> int:
        return sum(1 for f in self._waiting[lane] if not f.done())

    def reply_wait(self) -> float:
        """About how long a reply asking now would wait, in seconds (nothing is taken): a
        429's pause, then the replies queued ahead of it at the pace replies get while
        pushes wait too (TAIQU_PUSH_MIN_SHARE goes to pushes). Telegram's paid replies ask."""
        self._refill()
        paused = max(0.0, self._paused_until - self._clock())
        ahead = self.waiting(Lane.REPLY) + 1 - self._tokens
        if ahead <= 0:
            return paused
        pace = self.rate
        if self.push_every > 1 and self.waiting(Lane.PUSH):
            pace *= 1 - 1 / self.push_every
        return paused + ahead / pace

    # ---------------------------------------------------------------- inside
    def _nobody_ahead(self, lane: Lane) -> bool:
        """A reply waits only behind replies; a push behind everyone."""
        if self.waiting(Lane.REPLY):
            return False
        return lane is Lane.REPLY or not self.waiting(Lane.PUSH)

    def _refill(self) -> None:
        now = self._clock()
        start = max(self._stamp, self._paused_until)
        if now > start:
            self._tokens = min(self.burst, self._tokens + (now - start) * self.rate)
        self._stamp = max(now, self._stamp)

    def _take(self) -> bool:
        self._refill()
        if self._clock() < self._paused_until or self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def _try(self, lane: Lane) -> float | None:
        """Take one send for `lane`: the seconds until it may go (0: now), or None: not yet
        (`_retry_in` says when to ask again). Here: the in-process bucket, both lanes alike."""
        return 0.0 if self._take() else None

    def _retry_in(self) -> float:
        return self._until_next()

    def _give_back(self) -> None:
        self._tokens = min(self.burst, self._tokens + 1)

    async def _hold(self, delay: float) -> None:
        if delay > 0:
            await self._sleep(delay)

    def _count(self, lane: Lane) -> None:
        self.granted[lane] += 1
        self._since_push = 0 if lane is Lane.PUSH else self._since_push + 1

    def _next_lane(self) -> Lane | None:
        replies, pushes = self.waiting(Lane.REPLY), self.waiting(Lane.PUSH)
        if pushes and (not replies or (self.push_every
                                       and self._since_push >= self.push_every - 1)):
            return Lane.PUSH
        return Lane.REPLY if replies else None

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        """Hand out sends as the budget refills, the next lane's oldest waiter first."""
        while (lane := self._next_lane()) is not None:
            delay = await self._try(lane)
            if (delay is None and self.lanes_differ and lane is Lane.PUSH
                    and self.waiting(Lane.REPLY)):
                lane = Lane.REPLY  # a push refused: the replies behind it need not wait
                delay = await self._try(lane)
            if delay is None:
                await self._sleep(self._retry_in())
                continue
            queue = self._waiting[lane]
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if not queue:  # the last one was cancelled while the budget was asked
                self._give_back()
                continue
            queue.popleft().set_result(delay)
            self._count(lane)
            await asyncio.sleep(0)  # let the granted sender start before the next grant

    def _until_next(self) -> float:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        return max((1 - self._tokens) / self.rate, 1e-3)


class SharedSendBudget(SendBudget):
    """The same two lanes, but the budget is a row in the shared store (PostgreSQL): every
    instance sending with one bot token (or one WeCom app) takes its sends from the same
    row (bot.storage.send_budgets). Replies are given a slot at once, perhaps a moment
    ahead; pushes only take a slot that is free now, so a reply on one instance never waits
    behind another instance's digest wave (issue #11).

    A reply that finds no slot of this instance's own books a block of consecutive slots
    (at most `block`, BLOCK_SECONDS of the budget; sized by how much of the last one replies
    took) in one statement; the next sends here, replies first, then pushes, spend the rest
    without a round trip (issue #12: in steady state a chat step's sends add none). A slot
    whose time passed unused is not spent late (that could put two sends closer than the
    rate allows): it lapses, and so does the block on a 429 here or when the store fails.
    Within its block an instance spaces its sends exactly as the row would, and blocks never
    overlap, so all instances together keep the rate. Only replies book blocks: a push
    still takes one slot free now, never time ahead. A 429 on another instance stops this
    one at its next booking, so after what is left of its block (BLOCK_SECONDS at most).

    If the store does not answer within `store_wait`, this instance falls back to the
    in-process bucket at rate / `instances` (whole sends) for STORE_RETRY_SECONDS, then asks
    the store again. Why that rate: when the store is unreachable it is so for every
    instance at once, and each then counts alone; at 1/instances of the budget they cannot
    together exceed it. Erring low costs little (a chat step needs the store, so few
    replies are made meanwhile), erring high costs Telegram 429s or WeCom 45009s, which
    stop every send."""

    lanes_differ = True

    def __init__(self, budgets: SendBudgets, name: str, rate: float, *, burst: int = 1,
                 push_min_share: float = 0.1, instances: int = 1, store_wait: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep) -> None:
        instances = max(1, instances)
        share = rate / instances
        # Whole sends a second: a bucket at r evenly spaced puts ceil(r) into some second,
        # at a whole r no more than r, so the instances' seconds add up to at most `rate`.
        super().__init__(math.floor(share) if share >= 1 else share,
                         burst=max(1, burst // instances),
                         push_min_share=push_min_share, clock=clock, sleep=sleep)
        self.name = name
        self.instances = instances
        self.shared = Rate(1 / rate, max(1, burst))
        self.block = block_size(rate)  # the largest block
        self._own = Block(0.0, 0.0)  # the block booked last (epoch seconds)
        self._own_next = 0.0  # its next slot, as the row's `tat` would be
        self._own_size = 0  # its slots
        self._own_replies = 0  # of them taken by replies
        self._booking = asyncio.Lock()  # one statement at a time for this budget
        self._budgets = budgets
        self._wall = wall  # epoch seconds: every instance reads the same time (NTP)
        self._store_wait = store_wait
        self._store_down_until = 0.0
        self._retry_at = 0.0
        self._tickets = itertools.count()
        self._me = uuid.uuid4().hex[:12]
        self._pauses: set[asyncio.Task[None]] = set()
        self.fallbacks = 0  # times the store failed and the local bucket took over
        self.bookings = 0  # statements sent to the store for this budget (blocks, pushes)

    def pause(self, seconds: float) -> None:
        """Every instance stops: the pause goes into the row (and holds here at once)."""
        super().pause(seconds)
        self._lapse()
        task = asyncio.get_running_loop().create_task(
            self._share_pause(self._wall() + seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def _share_pause(self, until: float) -> None:
        try:
            async with asyncio.timeout(self._store_wait):
                await self._budgets.pause(self.name, until)
        except Exception as exc:  # the local pause holds regardless
            log.warning("send budget %s: pause not shared (%s)", self.name, type(exc).__name__)

    def reply_wait(self) -> float:
        """As SendBudget's, from what this instance knows of the row without asking it: the
        next slot of its own block, else the row's next free slot as last seen (its block's
        end, or when a refused push was told to ask again); then the replies queued here."""
        if self._local():
            return super().reply_wait()
        now = self._wall()
        at = max(self._own_next, now)
        if at + self.shared.interval > self._own.end + 1e-6:  # the block is spent
            at = max(self._own.end, self._retry_at, now)
        return at - now + self.waiting(Lane.REPLY) * self.shared.interval

    def _local(self) -> bool:
        """Paused here, or the store failed a moment ago: the in-process bucket decides."""
        now = self._clock()
        return now < self._paused_until or now < self._store_down_until

    def _lapse(self) -> None:
        """This instance's unspent slots are given up (a pause, a failing store)."""
        self._own = Block(0.0, 0.0)

    def _next_size(self) -> int:
        """The next block: one more than the last if replies took all of it (up to
        `block`), else as many as they took. Replies coming one at a time thus book one
        slot each, as before blocks, and a push never gets a slot booked for a reply unless
        replies are many; replies back to back book whole blocks."""
        if self._own_replies >= self._own_size:
            return min(self.block, self._own_size + 1) if self._own_size else self.block
        return max(1, self._own_replies)

    def _from_own(self, now: float, lane: Lane) -> float | None:
        """The next slot of this instance's block at `now` (when it may go), or None: none
        left. The row's own rule (GCRA) inside the block: the next slot is due at the
        previous one plus an interval, or now if that passed; it must end within the block."""
        start = max(self._own_next, now)
        # 1 µs: sums of intervals at epoch seconds (a double's step there is ~0.2 µs)
        if start + self.shared.interval > self._own.end + 1e-6:
            return None
        self._own_next = start + self.shared.interval
        self._own_replies += lane is Lane.REPLY
        return max(now, start - self.shared.tolerance)

    async def _try(self, lane: Lane) -> float | None:
        if self._local():
            return await super()._try(lane)
        at = self._from_own(self._wall(), lane)
        if at is None:
            async with self._booking:  # a send that waited for another's booking spends it
                if self._local():
                    return await super()._try(lane)
                now = self._wall()
                at = self._from_own(now, lane)
                if at is None:
                    try:
                        async with asyncio.timeout(self._store_wait):
                            at = await self._book(lane, now)
                    except Exception as exc:  # unreachable, timed out: count alone a while
                        log.warning("send budget %s: the store failed (%s); sending at 1/%d "
                                    "of the rate for %.0f s", self.name, type(exc).__name__,
                                    self.instances, STORE_RETRY_SECONDS)
                        self.fallbacks += 1
                        self._lapse()
                        self._store_down_until = self._clock() + STORE_RETRY_SECONDS
                        return await super()._try(lane)
                if at is None:
                    return None
        return max(0.0, at - self._wall())

    async def _book(self, lane: Lane, now: float) -> float | None:
        """One statement: a reply's block (its first slot's time), or a push's one slot
        free now (None: refused, `_retry_at` says when to ask again)."""
        self.bookings += 1
        ticket = f"{self._me}:{next(self._tickets)}"
        if lane is Lane.REPLY:
            size = self._next_size()
            block = await self._budgets.book(self.name, self.shared, now, size, ticket=ticket)
            self._own, self._own_next, self._own_size, self._own_replies = (
                block, block.start, size, 0)
            return self._from_own(now, lane)
        slot = await self._budgets.take(self.name, self.shared, now, push=True,
                                        push_every=self.push_every, ticket=ticket)
        if not slot.granted:
            self._retry_at = slot.at
            return None
        return slot.at

    def _retry_in(self) -> float:
        if self._local():
            return super()._retry_in()
        return max(self._retry_at - self._wall(), 1e-3)

    def _give_back(self) -> None:
        """A shared slot cannot be handed back (it may be another instance's next)."""


def send_budget(db: Backend, name: str, rate: float, *, burst: int = 1,
                push_min_share: float = 0.1, instances: int = 1) -> SendBudget:
    """The budget for `name` on this store: in process on SQLite (one instance; no database
    round trip per send), shared through the store on PostgreSQL."""
    if db.dialect == "sqlite":
        return SendBudget(rate, burst=burst, push_min_share=push_min_share)
    return SharedSendBudget(SendBudgets(db), name, rate, burst=burst,
                            push_min_share=push_min_share, instances=instances,
                            store_wait=db.quick_wait)
