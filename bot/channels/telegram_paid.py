"""Paid replies on Telegram (TAIQU_TELEGRAM_PAID_REPLIES, off by default; issue #12).

A bot token's free sends are about 30 a second; above that, Telegram (Bot API 7.11) sends a
message marked `allow_paid_broadcast` at up to 1000 a second for 0.1 Telegram Stars taken
from the bot's balance. When an operator opts in, a reply that would wait in the free budget
longer than TAIQU_TELEGRAM_PAID_AFTER_SECONDS goes paid instead; pushes (reminders, digests,
reports) never pay. What may be spent is bounded twice: the paid pace (a send budget of its
own, shared by the instances on PostgreSQL like the free one) and TAIQU_TELEGRAM_PAID_PER_DAY
(counted in the store, all instances together). A paid send Telegram refuses for want of
Stars is sent free instead, and nothing is paid for TAIQU_TELEGRAM_PAID_PAUSE_MINUTES."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from telegram.error import TelegramError

from bot.sendbudget import Lane, SendBudget, current_lane
from bot.storage.send_budgets import SendBudgets

log = logging.getLogger(__name__)

PARAM = "allow_paid_broadcast"
# The methods that take the parameter and that the bot uses (edits do not take it).
PAID_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
# How Telegram words "the balance cannot pay" is not documented for the Bot API (MTProto
# says BALANCE_TOO_LOW); any refusal that speaks of Stars, a balance or paying counts. Whole
# words: "can't find end of the entity starting at ..." is not about Stars.
_CANNOT_PAY = re.compile(r"\bstars?\b|balance|\bpaid\b|\bpayment", re.IGNORECASE)


def cannot_pay(exc: TelegramError) -> bool:
    """Telegram refused a paid send because the bot's balance cannot pay for it."""
    return bool(_CANNOT_PAY.search(str(exc)))


class PaidReplies:
    """Which reply goes paid, and the two caps on what it costs. `today` is the local date
    (the cap's day); `clock` times the pause after a refusal (injectable in tests)."""

    def __init__(self, budget: SendBudget, counter: SendBudgets, name: str, *, after: float,
                 per_day: int, pause: float, today: Callable[[], str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget  # the paid pace (Telegram's 1000 a second)
        self._counter = counter
        self._name = name
        self._after = after
        self._per_day = per_day
        self._pause = pause
        self._today = today
        self._clock = clock
        self._off_until = 0.0
        self._capped_on = ""  # the day the cap was reached (logged once a day)
        self.sent = 0  # paid sends this instance made (Telegram accepted)

    def wanted(self, free: SendBudget, endpoint: str) -> bool:
        """A reply that would wait in the free budget longer than the threshold."""
        return (endpoint in PAID_METHODS and current_lane() is Lane.REPLY
                and self._clock() >= self._off_until and free.reply_wait() > self._after
                and self._capped_on != self._today())

    async def take(self) -> bool:
        """Count one paid send against the day's cap (one statement), then wait for the paid
        pace. False: the cap is reached (the send goes free)."""
        day = self._today()
        if not await self._counter.count_paid(self._name, day, self._per_day):
            if self._capped_on != day:
                log.warning("paid Telegram replies: today's cap of %d (%.0f Stars) reached; "
                            "replies wait for the free budget until tomorrow",
                            self._per_day, self._per_day / 10)
            self._capped_on = day
            return False
        await self.budget.acquire(Lane.REPLY)
        return True

    def refused(self, exc: TelegramError) -> bool:
        """A paid send refused: True if for want of Stars (then nothing is paid for the
        pause; logged once for it), False if for another reason."""
        if not cannot_pay(exc):
            return False
        if self._clock() >= self._off_until:
            log.warning("paid Telegram replies refused (%s): the bot's Stars balance? Replies "
                        "wait for the free budget for %.0f min", exc, self._pause / 60)
        self._off_until = self._clock() + self._pause
        return True
