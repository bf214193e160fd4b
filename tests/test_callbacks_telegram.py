"""回访 end to end through the real Telegram channel (PTB against the loopback fake Bot API),
on a real SQLite file: a complaint typed as one sentence with its 工单号 and 台区, answered,
the call-back reminder arriving in the chat when due, 不满意 recorded from that reminder's
button, and the lead told. T0 = Friday 2026-11-27 10:30 Shanghai."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import SHANGHAI
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, Msg, TgUser, body, labels, register, texts

pytestmark = pytest.mark.timeout(60)

ORDER = "2026112700123"


def at(clock: FakeClock, *args: int) -> None:
    clock.set(datetime(*args, tzinfo=SHANGHAI))  # type: ignore[misc]


async def scan(service: ReminderService, *users: TgUser) -> list[list[Msg]]:
    """Scan once: the messages each user received."""
    before = [len(u.sent) for u in users]
    await service.scan_once()
    return [[m for m in u.sent[n:] if m.get("method") == "sendMessage"]
            for u, n in zip(users, before, strict=True)]


async def test_callback_over_telegram(services: Services, channel: TelegramChannel,
                                      fake_api: FakeBotAPI, clock: FakeClock) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    lead = await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests

    r = await zhang.say(f"登记投诉 3号台区 工单号 {ORDER} 电压低")
    assert f"工单号 {ORDER}" in texts(r) and "台区 3号台区" in texts(r)
    await zhang.press("投诉")
    await zhang.say("跳过")
    await zhang.say("张先生")
    await zhang.say("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 11, 27, 14, 0)
    await zhang.press(L("btn.open_item"))
    await zhang.press(L("btn.replied"))
    await zhang.press("现在")
    await zhang.say("已更换接户线")
    r = await zhang.press("保存")
    assert "请在 2026-12-02 周三 14:00 前回访客户（3个工作日）" in texts(r)

    # The due day's morning digest lists it; at 14:01 it is overdue and escalated.
    at(clock, 2026, 12, 2, 8, 31)
    [digest], _ = await scan(service, zhang, lead)
    assert "投诉工单 #1（张先生）：回访客户 2026-12-02 周三 14:00 前" in body(digest)
    at(clock, 2026, 12, 2, 14, 1)
    [due], [escalated] = await scan(service, zhang, lead)
    assert "回访客户期限 2026-12-02 周三 14:00 已过" in body(due)
    assert L("btn.callback") in labels(due)
    assert "张三 的投诉工单 #1（张先生），回访客户期限" in body(escalated)

    r = await zhang.press(L("btn.callback"), message=due)
    assert L("callback.heading", item="投诉工单 #1（张先生）") in texts(r)
    await zhang.press("不满意")
    await zhang.say("电压仍然偏低")
    r = await zhang.press("保存")
    assert "已记录回访：投诉工单 #1（张先生），客户不满意。" in texts(r)
    assert "已通知班长" in texts(r)
    [alert], = await scan(service, lead)
    assert body(alert) == ("⚠️ 回访不满意：张三 的投诉工单 #1（张先生），客户表示不满意。\n"
                           "备注：电压仍然偏低")
    row = await services.db.fetchone(
        "SELECT order_no, callback_result, callback_note FROM complaints WHERE id = 1")
    assert row is not None and tuple(row) == (ORDER, "unsatisfied", "电压仍然偏低")
