"""Reminders through the real Telegram channel against the loopback fake Bot API: buttons
that work, flood limits and bad gateways (nothing lost, nothing duplicated), a blocked user."""

from __future__ import annotations

import re
from collections import Counter

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat, at
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import TgUser, body, labels, register


def service_for(services: Services, channel: TelegramChannel) -> ReminderService:
    return ReminderService(services, Dispatcher(services, [channel.notifier]))


async def quick_complaint(services: Services, chat_id: int, who: str) -> None:
    """Register a complaint through the core as the Telegram user `chat_id` would."""
    chat = Chat(Assistant(services), "telegram", str(chat_id))
    await chat.say("登记投诉")
    await chat.say("跳过")
    await chat.press("投诉")
    for _ in range(3):
        await chat.say("跳过")
    await chat.press("现在")
    await chat.say(f"{who} 反映电压低")
    await chat.press("保存")
    assert "已登记投诉工单" in chat.text, chat.text


async def test_reminder_arrives_with_buttons_that_act(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    await quick_complaint(services, 42, "李先生")
    service = service_for(services, channel)
    at(clock, 2026, 11, 27, 15, 1)  # half-way to the first-contact deadline
    assert (await service.scan_once()).sent == 1
    reminder = zhang.last
    assert body(reminder).startswith("⏳ 投诉工单 #1：首次联系客户的时限已过一半")
    assert labels(reminder) == ["📄 打开", "📞 已联系", "⏰ 1 小时后", "⏰ 明天 8:00"]
    r = await zhang.press("已联系", message=reminder)
    assert "记录首次联系：投诉工单 #1" in "\n".join(body(m) for m in r)
    await zhang.press("现在")
    await zhang.press("电话")
    r = await zhang.press("保存")
    assert any("已记录首次联系" in body(m) for m in r)
    r = await zhang.press("明天 8:00", message=reminder)
    assert any("2026-11-28 周六 08:00 再提醒你" in body(m) for m in r)


async def test_flood_limits_and_bad_gateways_lose_and_duplicate_nothing(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    users: list[TgUser] = []
    for i in range(8):
        users.append(await register(fake_api, services, 100 + i, f"经理{i}"))
        await quick_complaint(services, 100 + i, f"客户{i}")
    service = service_for(services, channel)
    before = {u.chat_id: len(u.sent) for u in users}
    fake_api.fail_ratio("sendMessage", 0.4, kinds=("429", "502"), seed=7, retry_after=1)
    at(clock, 2026, 11, 27, 15, 1)
    for _ in range(40):  # keep scanning as time passes, until every row is settled
        await service.scan_once()
        row = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE kind = 'contact.half' "
            "AND state IN ('pending', 'sending')")
        if row is not None and row[0] == 0:
            break
        clock.advance(seconds=15)
    fake_api.clear_faults()
    failed = [c for c in fake_api.calls_to("sendMessage", ok=False)]
    assert failed, "the fault injection did not trigger"
    for u in users:
        new = [body(m) for m in u.sent[before[u.chat_id]:]]
        assert len(new) == 1, new  # exactly once, whatever failed on the way
        assert re.match(r"⏳ 投诉工单 #\d+：首次联系客户的时限已过一半", new[0])
    states = Counter(r[0] for r in await services.db.fetchall(
        "SELECT state FROM reminders WHERE kind = 'contact.half'"))
    assert states == {"sent": 8}


async def test_blocked_user_goes_to_the_lead(services: Services, channel: TelegramChannel,
                                             fake_api: FakeBotAPI, clock: FakeClock) -> None:
    await register(fake_api, services, 42, "张三")
    lead = await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    await quick_complaint(services, 42, "李先生")
    fake_api.blocked_chats.add(42)
    at(clock, 2026, 11, 27, 15, 1)
    result = await service_for(services, channel).scan_once()
    assert result.failed == 1
    assert body(lead.last).startswith("⚠️ 张三 收不到机器人的提醒")
    assert "投诉工单 #1：" in body(lead.last)
