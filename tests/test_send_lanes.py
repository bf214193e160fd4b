"""Replies go ahead of pushes in each channel's send budget (issue #12): a manager answering
a form while the morning digest goes out is answered at once, and every push still arrives,
once. The real Telegram channel on the fake Bot API, the real WeCom channel on fake WeCom."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.events import Reply
from bot.models import Role
from bot.notify import Dispatcher
from bot.services import Services
from tests.conftest import make_user
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.tg_harness import L, body, register
from tests.wecom_harness import WcUser, shown, start_wecom, tick

pytestmark = pytest.mark.timeout(60)
WAVE = 90  # three seconds of Telegram's budget


async def test_telegram_reply_does_not_wait_behind_the_digest_wave(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    lead = await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    before = len(lead.sent)
    dispatcher = Dispatcher.for_channels(services, [channel])
    wave = [asyncio.create_task(dispatcher.push(lead.user_id(services) if False else 0, Reply("")))
            for _ in range(0)]
    lead_id = (await services.people.by_identity("telegram", "7")).id  # type: ignore[union-attr]
    wave = [asyncio.create_task(dispatcher.push(lead_id, Reply(f"今日待办 {i}")))
            for i in range(WAVE)]
    await asyncio.sleep(0.05)  # the wave is queued in the budget

    answer = await zhang.say("/help")
    pushed_first = len(lead.sent) - before

    assert L("help.body") in body(answer[0])
    assert pushed_first < WAVE // 2, f"the reply waited behind {pushed_first} pushes"
    await asyncio.gather(*wave)
    got = sorted(body(m) for m in lead.sent[before:])
    assert got == sorted(f"今日待办 {i}" for i in range(WAVE))  # none lost, none doubled


@pytest.fixture
async def fake_wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f
        assert f.dropped == [], f"WeCom dropped over-budget messages: {f.dropped}"


async def test_wecom_pushes_leave_room_for_replies_in_the_member_budget(
        services: Services, fake_wecom: FakeWeCom, clock: FakeClock) -> None:
    channel = await start_wecom(services, fake_wecom)
    try:
        user = await make_user(services, "张三", channel="wecom", external_id="zhangsan")
        zhang = WcUser(fake_wecom, channel, "zhangsan")
        dispatcher = Dispatcher.for_channels(services, [channel])
        for i in range(35):  # more reminders than WeCom takes for one member in a minute
            await dispatcher.push(user.id, Reply(f"提醒 {i}"))
        await channel.idle()
        pushed = len(zhang.sent)

        answer = await zhang.say("/help")  # answered now, not a minute later

        assert answer and L("help.body") in shown(answer[0])
        assert pushed < 30  # the pushes left part of the minute to replies
        tick(clock, fake_wecom, channel, 62)
        await channel.idle()
        reminders = [m.text for m in zhang.sent if m.text.startswith("提醒")]
        assert sorted(reminders) == sorted(f"提醒 {i}" for i in range(35))
    finally:
        await channel.stop()
