"""Line loss end to end through the real Telegram channel (PTB against the loopback fake Bot
API, a real SQLite file): the lead sends the export as a document, the manager is told at
once and answers 已核查 from that push, the lead accepts the cause from theirs, `线损 3号台区`
sends the chart as a photo."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bot.channels.telegram import TelegramChannel
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.test_lineloss import EXAMPLE_XLSX
from tests.tg_harness import body, labels, register, texts

pytestmark = pytest.mark.timeout(60)

ZHANG, LEAD, LI = 42, 7, 43


async def test_import_notice_check_accept_and_chart_over_telegram(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, ZHANG, "张三")
    lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
    await register(fake_api, services, LI, "李四", areas=("7号台区",))
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests are done: later scans send singly

    sent = await lead.send_file(EXAMPLE_XLSX.read_bytes(), "日线损.xlsx")
    assert "线损导入完成：新增 21 条，更新 0 条，错误 0 行" in texts(sent)
    assert "#1 线损 3号台区" in labels(sent[-1])
    await service.scan_once()
    [notice] = [m for m in zhang.sent if "线损连续" in body(m)]
    assert "📉 3号台区 线损连续 2 天异常" in body(notice)
    assert labels(notice)[:3] == ["📄 打开", "🔍 已核查", "📈 线损曲线"]
    await zhang.press("已核查", notice)
    await zhang.press("窃电")
    await zhang.say("12号表后私拉乱接，已报稽查")
    await zhang.press("跳过")
    saved = await zhang.press("保存")
    assert "线损异常 #1 已核查（窃电），已提交班长确认" in texts(saved)

    before = len(lead.sent)
    await service.scan_once()
    [review] = [m for m in lead.sent[before:] if "已核查" in body(m)]
    assert "张三 已核查线损异常 #1（3号台区）：窃电（12号表后私拉乱接，已报稽查）" in body(review)
    closed = await lead.press("接受原因", review)
    assert "已接受原因，线损异常 #1 已关闭" in texts(closed)
    row = await services.db.fetchone("SELECT status, closed_how, cause FROM lineloss_items")
    assert row is not None and tuple(row) == ("closed", "accepted", "theft")

    shown = await zhang.say("线损 3号台区")
    assert [m["method"] for m in shown][:2] == ["sendMessage", "sendPhoto"]
    assert "📉 3号台区 近 30 天线损" in body(shown[0])
    png = shown[1]["photo"]["content"]
    drawn = json.loads(Image.open(io.BytesIO(png)).info["Description"])
    assert drawn["area"] == "3号台区" and drawn["abnormal"] == ["2026-11-25", "2026-11-26"]
