"""Issue #15 §1 through the real PTB Application on the loopback fake Bot API: a voice-typed
run-on sentence fills a work log; 无异常 goes to the summary; quiet hours said in words."""

from __future__ import annotations

import pytest

from bot.channels.telegram import TelegramChannel
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, TgUser, body, labels, register, texts, worklog_rows

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def zhang(channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> TgUser:
    return await register(fake_api, services, 42, "张三")


async def test_voice_run_on_sentence_fills_the_log(zhang: TgUser, services: Services) -> None:
    r = await zhang.say("今天上午去3号台区巡视了发现2号杆拉线松动已经通知抢修")
    assert ("工作内容 3号台区巡视 · 发现问题 2号杆拉线松动已经通知抢修"
            in texts(r)), texts(r)
    assert "2026-11-27 周五 09:00（按「上午」默认时间，可修改）" in texts(r)
    assert L("form.worklog.photos") in texts(r)  # problems were said: not asked
    await zhang.press("跳过")  # photos
    r = await zhang.press("跳过")  # location
    assert "发现问题：2号杆拉线松动已经通知抢修" in texts(r)
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["content"] == "3号台区巡视" and row["problems"] == "2号杆拉线松动已经通知抢修"
    assert row["occurred_at"] == "2026-11-27T01:00:00+00:00"  # 09:00 in Shanghai
    assert row["items"] == ["patrol"] and row["area_name"] == "3号台区"


async def test_all_clear_sentence_offers_the_rest_on_the_summary(
        zhang: TgUser, services: Services) -> None:
    await zhang.say("巡式3号台区 无异常")  # one typo in the work word
    r = await zhang.press("现在")
    [summary] = [m for m in r if L("form.summary_title", title="工作日志") in body(m)]
    assert L("form.summary_title", title="工作日志") in body(summary)
    assert labels(summary)[:3] == ["➕ 发现问题", "➕ 照片", "➕ 位置"]
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["content"] == "无异常" and row["problems"] is None


async def test_quiet_hours_in_words(zhang: TgUser) -> None:
    await zhang.say("/quiet")
    r = await zhang.say("晚上10点到早上7点")
    assert "免打扰时段：22:00–07:00" in texts(r)
    r = await zhang.press("保存")
    assert L("settings.quiet_saved", start="22:00", end="07:00") in texts(r)
