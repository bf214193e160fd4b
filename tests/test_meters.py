"""电能表校验 and 抄表异常 (issue #14 §3): registered from a sentence, answered within the rule
set's working days, reminded and escalated, carried by /todo and the weekly report."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat, FakeNotifier, at, make_user
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import labels, register, texts


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def pending(services: Services) -> list[tuple[str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'meter' AND state = 'pending' ORDER BY r.due_at, r.kind")
    return [(r[0], r[1]) for r in rows]


async def test_a_reading_dispute_from_one_sentence(team: tuple[Chat, Chat], clock: FakeClock,
                                                   services: Services) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)  # a Friday
    await zhang.say("抄表异常 3100012345 本月电量比上月多一倍")
    assert "类型 抄表异常" in zhang.text and "户号" in zhang.text
    assert "本月电量比上月多一倍" in zhang.text
    assert "客户姓名" in zhang.text  # what the sentence did not say, and no register name
    await zhang.press("跳过")
    assert "受理时间" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已登记抄表异常 #1（户号 3100012345）" in zhang.text
    # 7 working days in the 2011 rule set: Mon 11-30 ... Tue 12-08.
    assert "2026-12-08 周二 10:30 前（7个工作日" in zhang.text
    assert [k for k, _ in await pending(services)] == [
        "answer.half", "answer.soon", "answer.due", "answer.escalate"]
    await zhang.say("待办")
    assert "抄表异常 #1（3100012345）：答复 2026-12-08 周二 10:30 前" in zhang.text


async def test_a_calibration_is_due_in_five_working_days_and_answered_from_the_card(
        team: tuple[Chat, Chat], clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)
    await zhang.say("电能表校验 3100012345 客户认为电表走得快")
    await zhang.press("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "2026-12-04 周五 10:30 前（5个工作日" in zhang.text
    await zhang.press("打开")
    assert "状态：待答复" in zhang.text
    await zhang.press("已答复")
    assert "什么时候把结果告诉客户的" in zhang.text
    await zhang.say("前天")  # before the acceptance: refused, politely, nothing lost
    assert "早于受理时间" in zhang.text
    await zhang.press("现在")
    await zhang.say("误差 +0.8%，合格")
    await zhang.press("保存")
    assert "#1 已答复并办结。" in zhang.text and "按时" in zhang.text
    assert await pending(services) == []  # every reminder of it is cancelled
    await zhang.say("待办")
    assert "电能表校验" not in zhang.text


async def test_a_bad_account_number_is_asked_again(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("/meter")
    await zhang.press("抄表异常")
    await zhang.say("12ab")
    assert "户号" in zhang.text and "抄表异常" not in zhang.text.split("\n")[0]
    await zhang.say("3100012345")
    assert "客户姓名" in zhang.text


async def test_overdue_reminds_daily_and_escalates_to_the_lead(
        team: tuple[Chat, Chat], clock: FakeClock, services: Services,
        service: ReminderService, notifier: FakeNotifier) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)
    await zhang.say("电能表校验 3100012345 走得快")
    await zhang.press("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 12, 4, 8, 1)
    await service.scan_once()  # the morning digest of the day it falls due
    at(clock, 2026, 12, 4, 10, 31)
    await service.scan_once()
    assert "已过" in notifier.texts("张三")[-1]
    assert any("张三" in t and "电能表校验 #1" in t for t in notifier.texts("王班长"))
    assert ("answer.overdue", "张三") in await pending(services)  # again next working day


async def test_another_team_cannot_open_it(team: tuple[Chat, Chat], services: Services,
                                           assistant: Assistant) -> None:
    zhang, _ = team
    await zhang.say("电能表校验 3100012345 走得快")
    await zhang.press("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    other = Chat(assistant, "test", "赵六")
    await other.tap("-|meters.mtr|1")
    assert "没有找到这条记录" in other.text


async def test_the_weekly_report_carries_the_requests(
        team: tuple[Chat, Chat], clock: FakeClock) -> None:
    zhang, lead = team
    at(clock, 2026, 11, 23, 10, 0)  # Monday
    await zhang.say("抄表异常 3100012345 电量翻倍")
    await zhang.press("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 11, 25, 9, 0)
    await zhang.press("已答复")  # straight from the confirmation
    await zhang.press("现在")
    await zhang.say("抄表员录错，已更正")
    await zhang.press("保存")
    at(clock, 2026, 11, 30, 9, 0)
    out = await lead.say("/report 上周")
    assert "电能表校验/抄表异常" in lead.text
    assert "张三：受理 1，按时 1，超时 0，未答复 0；当前超期 0" in lead.text
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["表计工单"]
    row = [c.value for c in sheet[2]]
    assert row[1] == "抄表异常" and row[2] == "张三" and row[8] == "抄表员录错，已更正"


async def test_the_newer_rule_set_gives_five_days_for_a_reading(
        services: Services, assistant: Assistant, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "settings",
                        services.settings.model_copy(update={"ruleset": "sgcc-newer"}))
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    at(clock, 2026, 11, 27, 10, 30)
    await zhang.say("抄表异常 3100012345 电量翻倍")
    await zhang.press("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "2026-12-04 周五 10:30 前（5个工作日" in zhang.text


async def test_over_telegram(channel: TelegramChannel, services: Services,
                             fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    got = await zhang.say("电能表校验 3100012345 客户认为电表走得快")
    assert "客户姓名" in texts(got)
    got = await zhang.press("跳过")
    got = await zhang.press("现在")
    assert "请确认" in texts(got)
    got = await zhang.press("保存")
    assert "已登记电能表校验 #1" in texts(got)
    assert any("✅ 已答复" in labels(m) for m in got)
