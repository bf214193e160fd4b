"""Hazards end to end through the real Telegram channel (PTB against the loopback fake Bot
API, a real SQLite file): a work log with a problem, 转为隐患 pressed on its saved message, the
hazard handed to the lead who gets it pushed at once and clears it from that push."""

from __future__ import annotations

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import body, labels, register, texts

pytestmark = pytest.mark.timeout(60)

ZHANG, LEAD = 42, 7


async def test_log_to_hazard_to_lead_over_telegram(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    zhang = await register(fake_api, services, ZHANG, "张三")
    lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests are done: later scans send singly

    await zhang.say("今天上午去3号台区巡视了，发现2号杆拉线松动")
    await zhang.photo("AgAD-before")
    await zhang.press("完成")
    await zhang.press("跳过")
    saved = await zhang.press("保存")
    assert "🛠 转为隐患" in [lb for m in saved for lb in labels(m)], [body(m) for m in saved]
    opened = await zhang.press("转为隐患")
    assert "隐患内容 2号杆拉线松动 · 位置 2号杆 · 处理前照片 1 张" in texts(opened)
    await zhang.press("严重")
    await zhang.press("跳过")
    done = await zhang.press("保存")
    assert "已登记隐患 #1：3号台区（严重）" in texts(done)

    await zhang.press("转报班长")
    await zhang.say("需停电处理")
    handed = await zhang.press("保存")
    assert "隐患 #1 已转报班长（王班长）" in texts(handed)
    before = len(lead.sent)
    await service.scan_once()
    [notice] = [m for m in lead.sent[before:] if "转报了" in body(m)]
    assert "📨 张三 转报了隐患 #1（3号台区 2号杆）（严重）：2号杆拉线松动" in body(notice)
    assert labels(notice)[1:3] == ["🟡 开始处理", "✅ 已消除"]  # then the snooze buttons
    await lead.press("已消除", notice)
    await lead.say("已安排停电紧固")
    await lead.press("跳过")
    closed = await lead.press("保存")
    assert "隐患 #1 已消除" in texts(closed)
    row = await services.db.fetchone("SELECT status, result, photos_before FROM hazards")
    assert row is not None and row[0] == "cleared" and row[1] == "已安排停电紧固"
    assert "AgAD-before" in row[2]
