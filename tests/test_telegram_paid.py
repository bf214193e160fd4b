"""Paid replies on Telegram (TAIQU_TELEGRAM_PAID_REPLIES, issue #12): the real channel (PTB
Application) on the fake Bot API, which refuses free sends beyond the token's flood limit and
counts those marked allow_paid_broadcast apart (0.1 Star each). A reply that would wait in
the free budget goes paid instead; pushes never pay; the day's cap (in the store, shared by
the instances) bounds what is spent; an empty Stars balance sends free again and stops paying
for a while."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import pytest
from telegram.error import BadRequest

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_paid import cannot_pay
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Reply
from bot.sendbudget import pushing
from bot.services import Services
from bot.storage.send_budgets import SendBudgets
from tests.conftest import SHANGHAI, telegram_settings
from tests.fakebotapi import DEFAULT_TOKEN, Call, FakeBotAPI

pytestmark = pytest.mark.timeout(90)
RATE = 2  # the token's free sends a second, in the bot and in the fake
AFTER = 0.3  # TAIQU_TELEGRAM_PAID_AFTER_SECONDS
PEOPLE = range(501, 509)  # eight people write at once: four seconds of the free budget
BUDGET = f"telegram-paid:{DEFAULT_TOKEN.split(':', 1)[0]}"


def paid_settings(settings: Settings, fake: FakeBotAPI, **extra: object) -> Settings:
    return telegram_settings(settings, fake).model_copy(update={
        "telegram_sends_per_second": RATE, "telegram_paid_replies": True,
        "telegram_paid_after_seconds": AFTER, **extra})


@pytest.fixture
async def limited() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        fake.flood_limit = RATE
        yield fake


async def start(services: Services, settings: Settings) -> TelegramChannel:
    channel = TelegramChannel(Assistant(services), settings)
    await channel.start()
    return channel


async def everyone_writes(fake: FakeBotAPI, chats: Iterable[int]) -> list[float]:
    """Each person sends /help at once; how long each waited for the bot's first answer."""

    async def one(chat_id: int) -> float:
        t0 = time.monotonic()
        fake.user_sends(chat_id, "/help")
        await fake.wait_for(chat_id, count=1, timeout=30)
        return time.monotonic() - t0

    return await asyncio.gather(*(one(c) for c in chats))


def paid_calls(fake: FakeBotAPI, ok: bool | None = None) -> list[Call]:
    return [c for c in fake.calls if c.params.get("allow_paid_broadcast") in (True, "true")
            and (ok is None or c.ok == ok)]


async def paid_today(services: Services) -> int:
    day = services.clock.now().astimezone(services.settings.tz).date().isoformat()  # local
    return await SendBudgets(services.db).paid_on(BUDGET, day)


async def test_off_by_default_nobody_pays(services: Services, settings: Settings,
                                          limited: FakeBotAPI) -> None:
    assert Settings().telegram_paid_replies is False
    channel = await start(services, paid_settings(settings, limited,
                                                  telegram_paid_replies=False))
    try:
        waits = await everyone_writes(limited, PEOPLE)
    finally:
        await channel.stop()
    assert paid_calls(limited) == [] and limited.paid_sends == 0
    assert max(waits) >= (len(PEOPLE) - 2) / RATE  # the last ones waited for the free budget


async def test_a_late_reply_pays_instead_of_waiting(services: Services, settings: Settings,
                                                    limited: FakeBotAPI) -> None:
    channel = await start(services, paid_settings(settings, limited))
    try:
        waits = await everyone_writes(limited, PEOPLE)
    finally:
        await channel.stop()
    assert all(len(limited.sent(c)) == 1 for c in PEOPLE)  # each answered, once
    assert max(waits) < 2.0, waits  # free only, the last would wait (8 - 1) / 2 s
    assert 1 <= limited.paid_sends <= len(PEOPLE) - 1  # the first went free
    assert not limited.flood_refused  # the free ones kept the flood limit
    assert await paid_today(services) == limited.paid_sends  # counted against the day's cap


async def test_pushes_never_pay(services: Services, settings: Settings,
                                limited: FakeBotAPI) -> None:
    channel = await start(services, paid_settings(settings, limited))
    try:
        t0 = time.monotonic()
        with pushing():  # as the Dispatcher sends reminders, digests, reports
            await asyncio.gather(*(channel.notifier.push(str(c), Reply(f"提醒 {c}"))
                                   for c in PEOPLE))
        took = time.monotonic() - t0
    finally:
        await channel.stop()
    assert paid_calls(limited) == []
    assert all(len(limited.sent(c)) == 1 for c in PEOPLE)
    assert took >= (len(PEOPLE) - 2) / RATE  # paced by the free budget


async def test_the_days_cap_bounds_what_is_paid(services: Services, settings: Settings,
                                                limited: FakeBotAPI, clock: FakeClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    clock.set(datetime(2026, 11, 27, 1, 0, tzinfo=SHANGHAI))  # the 26th in UTC: a local day
    channel = await start(services, paid_settings(settings, limited, telegram_paid_per_day=2))
    try:
        with caplog.at_level(logging.WARNING, "bot.channels.telegram_paid"):
            await everyone_writes(limited, PEOPLE)
    finally:
        await channel.stop()
    assert limited.paid_sends == 2  # the rest waited for the free budget
    assert all(len(limited.sent(c)) == 1 for c in PEOPLE)
    assert await paid_today(services) == 2
    assert sum("cap of 2" in r.getMessage() for r in caplog.records) == 1  # logged once


async def test_no_stars_sends_free_and_stops_paying(services: Services, settings: Settings,
                                                    limited: FakeBotAPI,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    limited.no_stars()
    channel = await start(services, paid_settings(settings, limited))
    try:
        with caplog.at_level(logging.WARNING, "bot.channels.telegram_paid"):
            await everyone_writes(limited, PEOPLE)
            refused = len(paid_calls(limited, ok=False))
            await everyone_writes(limited, range(601, 609))  # later: no paid try at all
    finally:
        await channel.stop()
    assert refused >= 1 and len(paid_calls(limited)) == refused  # none after the refusal
    assert limited.paid_sends == 0
    assert all(len(limited.sent(c)) == 1 for c in [*PEOPLE, *range(601, 609)])  # once each
    assert sum("refused" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("db_backend", ["postgresql"])
async def test_instances_share_the_days_cap(settings: Settings, clock: FakeClock,
                                            limited: FakeBotAPI) -> None:
    """Two instances on one PostgreSQL each answer eight people at once: together they pay
    for no more than the day's cap (3), counted in the store."""
    shared = paid_settings(settings, limited, telegram_paid_per_day=3)
    opened: list[tuple[Services, TelegramChannel]] = []
    for _ in range(2):
        s = await Services.open(shared, clock)
        ch = TelegramChannel(Assistant(s), shared)
        await ch.app.initialize()  # sends only: the replies are made here directly
        opened.append((s, ch))
    try:
        await asyncio.gather(*(ch.app.bot.send_text(700 + 10 * i + n, "好的")  # type: ignore[attr-defined]
                               for i, (_, ch) in enumerate(opened) for n in range(8)))
        assert limited.paid_sends == 3
        assert sum(len(limited.sent(700 + 10 * i + n)) for i in range(2) for n in range(8)) == 16
        assert await paid_today(opened[0][0]) == 3
    finally:
        for s, ch in opened:
            await ch.app.shutdown()
            await s.close()


@pytest.mark.parametrize(("answer", "about_stars"), [
    ("Bad Request: BALANCE_TOO_LOW", True),  # MTProto's word; the fake's
    ("Bad Request: not enough Stars to pay for the broadcast", True),
    ("Bad Request: PAYMENT_REQUIRED", True),
    ("Bad Request: can't parse entities: can't find end of the entity starting at byte "
     "offset 5", False),  # a refusal of the text: sending it free fails alike
    ("Bad Request: chat not found", False),
])
def test_what_counts_as_no_stars(answer: str, about_stars: bool) -> None:
    assert cannot_pay(BadRequest(answer)) is about_stars
