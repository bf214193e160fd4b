"""Round trips to the database per update through a webhook inbox (issue #12): what the
platform sent is recorded before its 200, claimed, handled by its chat step (at most 2, see
tests/test_round_trips.py), marked done with the person's next claimed in the same statement.
Before, the inbox alone cost 11 (three transactions and a statement: record, claim, done, and
a last look for the next). Counted by the store itself (Backend.trips), over the whole update:
the webhook's request, the drain and the step; sweeps are stopped so that none falls inside."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import TelegramChannel
from bot.channels.wecom.channel import WeComChannel
from bot.config import Settings
from bot.services import Services
from tests.conftest import make_user
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.test_round_trips import MOST
from tests.test_telegram_webhook import SECRET, free_port, start, webhook_settings
from tests.tg_harness import L, register
from tests.wecom_harness import WcUser, shown, start_wecom

pytestmark = [pytest.mark.both_backends, pytest.mark.timeout(60)]

# A form's steps as typed, and what each answer asks.
STEPS = (("记录巡视 3号台区", "form.worklog.time"), ("现在", "form.worklog.content"),
         ("2号杆拉线松动，已紧固", "form.worklog.problems"))
# The inbox's own round trips on top of the step's: on PostgreSQL recording (one INSERT),
# claiming (one UPDATE) and done-with-the-next-claimed (one statement); SQLite has no
# data-modifying WITH, so done and the next claim are a statement each.
TELEGRAM_INBOX = {"sqlite": 4, "postgresql": 3}
# WeCom records in its endpoint process (one INSERT, on its own connection, not counted
# here); the main process claims (one) and queues the answer with done-and-next (one on
# PostgreSQL; a transaction of three statements on SQLite), and reads the person's locale
# for the card's title (one).
WECOM_INBOX = {"sqlite": 7, "postgresql": 3}


async def test_a_telegram_webhook_update_costs_its_step_and_three_round_trips(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    s = webhook_settings(settings, fake_api, free_port())
    channel: TelegramChannel = await start(services, s)
    bot = fake_api.bot()
    bot.webhook_url, bot.webhook_secret = s.telegram_webhook_url or "", SECRET
    try:
        assert channel.webhook is not None
        lanes = channel.webhook.drain.lanes
        await channel.webhook.drain.stop_sweeping()  # a sweep in the count would be counted
        zhang = await register(fake_api, services, 42, "张三")
        await zhang.say("你好")  # the first message of a process reads what it keeps
        for text, want in STEPS:
            await lanes.idle()
            await services.db.settle()
            services.db.trips.reset()
            msgs = await zhang.say(text)
            await lanes.idle()  # the update is marked done after its answer went
            await services.db.settle()
            trips = services.db.trips.trips + services.db.trips.inline
            assert L(want) in "\n".join(m.get("text", "") for m in msgs), text
            # On PostgreSQL each message sent books its place in the shared send budget.
            step = MOST + (len(msgs) if services.db.dialect != "sqlite" else 0)
            assert trips <= step + TELEGRAM_INBOX[services.db.dialect], (text, trips)
        rows = await services.db.fetchall("SELECT state, claimed_by FROM telegram_inbox")
        assert {(r[0], r[1]) for r in rows} == {("done", None)}  # nothing left held
    finally:
        await channel.stop()


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f


async def test_a_wecom_callback_costs_its_step_and_three_round_trips(
        services: Services, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to the answer queued in the outbox; sending it is the outbox's (the sender is held
    while counting, then let go and the answer checked)."""
    channel: WeComChannel = await start_wecom(services, fake)
    try:
        await make_user(services, "张三", channel="wecom", external_id="zhangsan")
        zhang = WcUser(fake, channel, "zhangsan")
        await zhang.say("你好")
        await channel.inbox.drain.stop_sweeping()
        await channel.sender.stop()  # its sweeps and sends are not the inbox's
        held: list[str] = []
        monkeypatch.setattr(channel.sender.lanes, "poke", held.append)
        for text, _ in STEPS:
            handled = channel.inbox.handled
            await services.db.settle()
            services.db.trips.reset()
            status, body = await fake.post_callback(channel.url,
                                                    fake.text_xml("zhangsan", text))
            assert (status, body) == (200, "")
            for _ in range(500):
                if channel.inbox.handled > handled:
                    break
                await asyncio.sleep(0.01)
            await channel.inbox.lanes.idle()
            await services.db.settle()
            trips = services.db.trips.trips + services.db.trips.inline
            assert channel.inbox.handled == handled + 1, text
            assert trips <= MOST + WECOM_INBOX[services.db.dialect], (text, trips)
        assert held == ["zhangsan"] * len(STEPS)
        monkeypatch.undo()
        channel.sender.start()
        await channel.idle()
        said = "\n".join(shown(m) for m in zhang.sent)
        assert all(L(want) in said for _, want in STEPS), said
        rows = await services.db.fetchall("SELECT state, claimed_by FROM wecom_inbox")
        assert {(r[0], r[1]) for r in rows} == {("done", None)}
    finally:
        await channel.stop()
