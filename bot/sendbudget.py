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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from enum import IntEnum


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
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {
            Lane.REPLY: deque(), Lane.PUSH: deque()}
        self._since_push = 0  # sends granted to replies since the last push
        self._pump: asyncio.Task[None] | None = None
        self.granted: dict[Lane, int] = {Lane.REPLY: 0, Lane.PUSH: 0}

    # ------------------------------------------------------------------ public
    async def acquire(self, lane: Lane | None = None) -> None:
        """Wait for the right to send one message in `lane` (default: the current lane)."""
        lane = current_lane() if lane is None else lane
        if self._nobody_ahead(lane) and self._take():
            self._count(lane)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[lane].append(fut)
        self._ensure_pump()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted just as it was cancelled
                self._tokens = min(self.burst, self._tokens + 1)  # give the send back
            raise

    def pause(self, seconds: float) -> None:
        """The platform said "too many" (Telegram 429 retry_after): nobody sends until then."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = min(self._tokens, 0.0)

    def waiting(self, lane: Lane) -> int:
        return sum(1 for f in self._waiting[lane] if not f.done())

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
            if not self._take():
                await self._sleep(self._until_next())
                continue
            queue = self._waiting[lane]
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            queue.popleft().set_result(None)
            self._count(lane)
            await asyncio.sleep(0)  # let the granted sender start before the next grant

    def _until_next(self) -> float:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        return max((1 - self._tokens) / self.rate, 1e-3)
