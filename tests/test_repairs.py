"""Repairs through the core: `报修 3号台区 …`, arrival limits by area kind, urgent reminders
through quiet hours, escalation, arrival with a location, restoration, and refusals."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat, FakeNotifier, at, make_user


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def pending(services: Services) -> list[tuple[str, str, int]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name, r.urgent FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'repair' AND state = 'pending' ORDER BY r.due_at, r.kind")
    return [(r[0], r[1], r[2]) for r in rows]


async def test_repair_at_2350_through_the_night(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, lead = team
    at(clock, 2026, 11, 27, 23, 50)
    await zhang.say("报修 3号台区 变压器冒烟")
    assert "新报修登记，已填好：台区 3号台区 · 故障情况 变压器冒烟" in zhang.text
    assert "什么时候接到报修" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已登记报修 #1：3号台区（农村）" in zhang.text
    assert "到达现场期限：2026-11-28 周六 01:20 前（90分钟，还剩 1 小时 30 分）" in zhang.text
    assert await pending(services) == [("arrival.soon", "张三", 1), ("arrival.due", "张三", 1),
                                       ("arrival.escalate", "王班长", 1)]
    await zhang.say("待办")
    assert "报修 #1（3号台区）：到达现场 2026-11-28 周六 01:20 前" in zhang.text

    # 01:10, deep in quiet hours: the urgent "due in 10 minutes" goes through.
    at(clock, 2026, 11, 28, 1, 10)
    await service.scan_once()
    assert notifier.texts("张三") == [
        "⏰ 报修 #1（3号台区）：请在 2026-11-28 周六 01:20 前到达现场（还剩 10 分钟）。"]
    assert notifier.texts("王班长") == []
    # 01:21: overdue to the manager and escalated to the lead, at night.
    at(clock, 2026, 11, 28, 1, 21)
    await service.scan_once()
    assert "到达现场期限 2026-11-28 周六 01:20 已过（已超期 1 分钟）" in notifier.texts("张三")[-1]
    assert notifier.texts("王班长") == [
        "⚠️ 超期提醒：张三 的报修 #1（3号台区），到达现场期限 2026-11-28 周六 01:20 已过"
        "（已超期 1 分钟）。"]
    [(_, escalation)] = [(w, r) for w, r in notifier.sent if w == "王班长"]
    assert any("已到达" in b.label for row in escalation.buttons for b in row)

    # Arrival with the site location (2011 rules: no restore time limit).
    at(clock, 2026, 11, 28, 1, 30)
    await zhang.tap("-|repa|1")
    assert "记录到达现场：报修 #1（3号台区）" in zhang.text
    await zhang.press("现在")
    assert "发送现场位置" in zhang.text
    await zhang.location(31.86, 117.28)
    await zhang.press("保存")
    assert "报修 #1 已到达现场：2026-11-28 周六 01:30 （已超期）" in zhang.text
    assert "当前规则版本（sgcc-2011）对该地区没有恢复供电时限" in zhang.text
    assert await pending(services) == []
    await zhang.tap("-|rep|1")
    assert "🟡 已到达，抢修中" in zhang.text and "位置：31.86000, 117.28000" in zhang.text

    # Restored: closed, nothing left to remind.
    at(clock, 2026, 11, 28, 3, 5)
    await zhang.press("已恢复")
    await zhang.press("现在")
    await zhang.press("保存")
    assert ("报修 #1 已恢复供电（2026-11-28 周六 03:05），已办结。 共用时 3 小时 15 分。"
            in zhang.text)
    row = await services.db.fetchone("SELECT status, arrived_lat FROM repairs WHERE id = 1")
    assert row is not None and row[0] == "restored" and row[1] == pytest.approx(31.86)
    await lead.say("/todo")
    assert "报修" not in lead.text


async def test_city_area_newer_rules_restore_target_and_restart(
        team: tuple[Chat, Chat], notifier: FakeNotifier, clock: FakeClock,
        services: Services) -> None:
    zhang, _ = team
    services.settings = services.settings.model_copy(update={"ruleset": "sgcc-newer"})
    await services.db.execute("UPDATE areas SET kind = 'city' WHERE name = '5号台区'")
    await zhang.say("/repair")
    await zhang.press("5号台区")
    await zhang.say("10点15")  # received a quarter of an hour ago
    await zhang.say("整条街停电")
    await zhang.press("保存")
    assert "已登记报修 #1：5号台区（城区）" in zhang.text
    assert "2026-11-27 周五 11:00 前（45分钟" in zhang.text and "平均" in zhang.text
    at(clock, 2026, 11, 27, 10, 50)
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert "请在 2026-11-27 周五 11:00 前到达现场（还剩 10 分钟）" in notifier.texts("张三")[-1]
    n = len(notifier.sent)
    # A restart: a fresh service sends nothing a second time.
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert len(notifier.sent) == n
    at(clock, 2026, 11, 27, 10, 55)
    await zhang.tap("-|repa|1")
    await zhang.press("现在")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert "已到达现场：2026-11-27 周五 10:55 （按时）" in zhang.text
    assert "恢复供电期限：2026-11-27 周五 13:55 前（到达后3小时）" in zhang.text
    assert await pending(services) == [("restore.due", "张三", 1),
                                       ("restore.escalate", "王班长", 0)]
    at(clock, 2026, 11, 27, 14, 0)
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert "恢复供电期限 2026-11-27 周五 13:55 已过" in notifier.texts("张三")[-1]
    assert notifier.texts("王班长")[-1].startswith("⚠️ 超期提醒：张三 的报修 #1（5号台区）")
    await zhang.tap("-|repr|1")
    await zhang.say("13点50")  # restored before the deadline, recorded afterwards
    await zhang.press("保存")
    assert "已办结" in zhang.text and "（按时）" in zhang.text


async def test_bad_times_and_the_work_log_still_wins_with_jilu(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await zhang.say("记录报修 3号台区")
    draft = await services.conversations.get(1)
    assert draft is not None and draft.form == "worklog"
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("抢修 5号台区 明天下午3点 线路断了")  # a receipt time cannot lie ahead
    assert "还没到" in zhang.text and "台区 5号台区" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    await zhang.tap("-|repa|1")
    await zhang.say("10点")  # before the call was received
    await zhang.press("跳过")
    await zhang.press("保存")
    assert "这个时间早于 2026-11-27 周五 10:30" in zhang.text


async def test_other_teams_area_and_forged_buttons_are_refused(
        team: tuple[Chat, Chat], services: Services, assistant: Assistant) -> None:
    zhang, _ = team
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    zhao = Chat(assistant, "test", "赵六")
    await zhang.say("报修 9号台区 停电了")
    assert "「9号台区」不是你负责的台区。你负责的台区：3号台区、5号台区。" in zhang.text
    await zhang.say("9号台区")
    assert "「9号台区」不是你负责的台区" in zhang.text
    await zhang.press("3号台区")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已登记报修 #1" in zhang.text
    for data in ("-|rep|1", "-|repa|1", "-|repr|1"):
        await zhao.tap(data)
        assert "没有找到这条报修记录" in zhao.text, data
    row = await services.db.fetchone("SELECT status FROM repairs WHERE id = 1")
    assert row is not None and row[0] == "open"


async def test_a_late_scan_sends_only_the_overdue_message(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    zhang, _ = team
    await zhang.say("报修 3号台区 电杆倾斜")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 11, 27, 12, 30)  # the bot was down past the deadline
    await service.scan_once()
    [mine] = [t for t in notifier.texts("张三") if not t.startswith("☀️")]  # not the digest
    assert mine.startswith("⚠️ 报修 #1（3号台区）：到达现场期限 2026-11-27 周五 12:00 已过")
    assert len([t for t in notifier.texts("王班长") if "超期提醒" in t]) == 1


async def test_english(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("/lang en")
    await zhang.say("/repair 3号台区 pole leaning")
    assert "Repair" in zhang.text and "When was the call received?" in zhang.text
    await zhang.press("Now")
    await zhang.press("Save")
    assert "✅ Repair #1 registered: 3号台区 (rural)" in zhang.text
    assert "Arrive on site by 2026-11-27 Fri 12:00 (90 min" in zhang.text
    await zhang.press("Open")
    assert "🔴 Crew not on site yet" in zhang.text
