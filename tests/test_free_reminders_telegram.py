"""A free reminder end to end through the real Telegram channel (PTB Application) against
the loopback fake Bot API: the sentence, 确认, the push at the minute with 完成 and the
snoozes, a snooze that brings it back, 完成 that ends it; 我的提醒 and the /remind menu entry."""

from __future__ import annotations

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import at
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import body, labels, register, texts


async def test_a_free_reminder_over_telegram(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))

    shown = await zhang.say("下周一上午提醒我交线损分析")
    assert "提醒时间：2026-11-30 周一 09:00" in texts(shown), texts(shown)
    assert labels(shown[-1])[:2] == ["✅ 确认", "🕒 改时间"]
    saved = await zhang.press("确认")
    assert "好的，2026-11-30 周一 09:00 提醒你：交线损分析" in texts(saved), texts(saved)

    at(clock, 2026, 11, 30, 8, 59)  # Monday: the digest lists it, the push is not yet due
    await service.scan_once()
    assert body(zhang.last).startswith("☀️ 早上好，张三")
    at(clock, 2026, 11, 30, 9, 0)
    assert (await service.scan_once()).sent == 1
    push = zhang.last
    assert body(push) == "⏰ 提醒：交线损分析\n（2026-11-30 周一 09:00）"
    assert labels(push) == ["✅ 完成", "⏰ 1 小时后", "⏰ 明天 8:00"]

    snoozed = await zhang.press("1 小时后", message=push)
    assert any("2026-11-30 周一 10:00" in body(m) for m in snoozed), texts(snoozed)
    at(clock, 2026, 11, 30, 10, 0)
    assert (await service.scan_once()).sent == 1
    again = zhang.last
    assert body(again).startswith("⏰ 提醒：交线损分析")
    done = await zhang.press("完成", message=again)
    assert any(body(m) == "已完成：交线损分析" for m in done), texts(done)

    listed = await zhang.say("我的提醒")
    assert "现在没有未完成的提醒" in texts(listed)
    menu = {c["command"]: c["description"] for c in fake_api.my_commands(None, "zh")}
    assert menu["remind"] == "设一条提醒"  # in the / menu from the router, no core edit
