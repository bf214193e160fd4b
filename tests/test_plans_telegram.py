"""The monthly plan end to end through the real Telegram channel (PTB against the loopback
fake Bot API, a real SQLite file): drafted, an item removed with one tap, sent to the lead,
returned with a comment pushed back, changed, sent again and approved from the push."""

from __future__ import annotations

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import at
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import body, labels, register, texts

pytestmark = pytest.mark.timeout(60)

ZHANG, LEAD = 42, 7


async def test_plan_sent_returned_and_approved_over_telegram(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    at(clock, 2026, 12, 1, 10, 0)
    zhang = await register(fake_api, services, ZHANG, "张三")
    lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests are done: later scans send singly

    drafted = await zhang.say("本月计划")
    assert "📋 张三 · 2026年12月工作计划 · 📝 草稿" in texts(drafted)
    assert "2. ⬜ 巡视 5号台区（第1次） · 12月16日" in texts(drafted)
    removed = await zhang.press("✖4")
    assert "已删除：巡视 5号台区（第2次）" in texts(removed)
    added = await zhang.say("加 12号 抄表核对")
    assert "4. ⬜ 抄表核对 · 12月12日" in texts(added)
    sent = await zhang.press("提交给班长")
    assert "📤 已提交给 王班长，等待审核。" in texts(sent)

    before = len(lead.sent)
    await service.scan_once()
    [push] = [m for m in lead.sent[before:] if "提交了" in body(m)]
    assert body(push).startswith("📋 张三 提交了2026年12月工作计划（4 项），请审核：")
    assert labels(push) == ["✅ 通过", "↩️ 退回"]
    await lead.press("退回", push)
    await lead.say("巡视5号台区只安排了一次，请补上")
    returned = await lead.press("保存")
    assert "↩️ 已退回 张三 的2026年12月计划" in texts(returned)

    before = len(zhang.sent)
    await service.scan_once()
    [back] = [m for m in zhang.sent[before:] if "退回了" in body(m)]
    assert "退回意见（王班长）：巡视5号台区只安排了一次，请补上" in body(back)
    await zhang.say("加 28号 巡视5号台区（补）")
    await zhang.press("提交给班长")
    before = len(lead.sent)
    await service.scan_once()
    [again] = [m for m in lead.sent[before:] if "提交了" in body(m)]
    approved = await lead.press("通过", again)
    assert "✅ 已通过 张三 的2026年12月计划" in texts(approved)
    before = len(zhang.sent)
    await service.scan_once()
    assert [body(m) for m in zhang.sent[before:]] == ["✅ 王班长 通过了你的2026年12月计划。"]
    row = await services.db.fetchone("SELECT status, rounds FROM plans")
    assert row is not None and (row[0], row[1]) == ("approved", 2)
