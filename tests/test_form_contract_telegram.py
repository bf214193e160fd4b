"""Issue #10 §3 through the real PTB Application on the loopback fake Bot API: a long list of
台区 is paged on its form step (the page turned in place), and `抢修记录 …` is a work log."""

from __future__ import annotations

import pytest

from bot.channels.telegram import TelegramChannel
from bot.services import Services
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import labels, register, texts, worklog_rows

pytestmark = pytest.mark.timeout(60)

AREAS = tuple(f"{i}号台区" for i in range(1, 16))


async def test_a_long_area_list_is_paged_in_place(
        channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三", areas=AREAS)
    r = await zhang.say("记录巡视")
    assert "在哪个台区？" in texts(r)
    first = zhang.last
    assert "12号台区" in labels(first) and "13号台区" not in labels(first)
    r = await zhang.press("下一页")
    [turned] = r
    assert turned["message_id"] == first["message_id"]  # the same message, edited
    assert "13号台区" in labels(turned) and "1号台区" not in labels(turned)
    await zhang.press("15号台区")
    await zhang.press("现在")
    await zhang.say("检查表箱")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    [row] = await worklog_rows(services)
    assert row["area_name"] == "15号台区" and row["content"] == "检查表箱"


async def test_work_then_record_is_a_work_log(
        channel: TelegramChannel, services: Services, fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    r = await zhang.say("抢修记录 3号台区 更换熔断器")
    assert "新工作日志" in texts(r) and "工作内容 更换熔断器" in texts(r)
    assert "报修登记" not in texts(r)
