"""隐患/缺陷 through the core: the sentence prefill, one tap from a saved work log, each status
change, bad input, team isolation, reminders and escalation on a fake clock, the report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.features.hazards import REPORT
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.router import ReportScope
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
        "WHERE subject = 'hazard' AND state = 'pending' ORDER BY r.due_at, r.kind, u.name")
    return [(r[0], r[1], r[2]) for r in rows]


def buttons(chat: Chat) -> list[str]:
    assert chat.last is not None
    return [b.label for r in chat.last.replies for row in r.buttons for b in row]


async def register(chat: Chat, sentence: str) -> None:
    """Say the sentence and skip the optional steps it leaves (photos, location)."""
    await chat.say(sentence)
    await chat.press("跳过")
    await chat.press("跳过")
    await chat.press("保存")


async def test_sentence_fills_area_place_severity_and_what(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await zhang.say("登记隐患 3号台区 2号杆拉线松动 严重")
    assert ("新隐患登记，已填好：台区 3号台区 · 隐患内容 拉线松动 · 位置 2号杆 · 等级 严重"
            in zhang.text)
    assert "可以发送现场照片（处理前）" in zhang.text  # only what the sentence did not say
    await zhang.photo("before-1")
    await zhang.press("完成")
    await zhang.press("跳过")  # the location
    await zhang.press("保存")
    assert "已登记隐患 #1：3号台区（严重）" in zhang.text
    # 严重: 7 calendar days from data/hazards.json
    assert "消除期限：2026-12-04 周五 10:30 前（7天" in zhang.text
    assert buttons(zhang)[1:] == ["🟡 开始处理", "✅ 已消除", "📨 转报班长"]
    row = await services.db.fetchone("SELECT place, what, severity, photos_before, status "
                                     "FROM hazards WHERE id = 1")
    assert row is not None and tuple(row) == ("2号杆", "拉线松动", "serious",
                                              '["test:before-1"]', "open")
    assert await pending(services) == [("deadline.soon", "张三", 0),
                                       ("deadline.due", "张三", 0),
                                       ("deadline.escalate", "王班长", 0)]


async def test_command_asks_every_step_and_bad_input_is_reprompted(
        team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("登记隐患 9号台区 表箱门损坏")
    assert "「9号台区」不是你负责的台区" in zhang.text
    assert "隐患在哪个台区" in zhang.text
    await zhang.say("12号台区")
    assert "「12号台区」不是你负责的台区" in zhang.text
    await zhang.press("5号台区")
    assert "具体位置" in zhang.text  # 表箱门损坏 kept: not asked again
    await zhang.press("跳过")
    await zhang.say("很急")
    assert "「很急」不是隐患等级" in zhang.text
    await zhang.press("危急")
    await zhang.press("跳过")
    await zhang.press("跳过")
    assert "隐患内容：表箱门损坏" in zhang.text
    await zhang.press("保存")
    assert "已登记隐患 #1：5号台区（危急）" in zhang.text
    assert "消除期限：2026-11-28 周六 10:30 前（24小时" in zhang.text

    await zhang.say("/hazard")
    await zhang.press("3号台区")
    await zhang.say("   ")
    assert "没有收到内容" in zhang.text and "发现了什么隐患" in zhang.text


async def test_one_tap_from_a_saved_work_log(team: tuple[Chat, Chat],
                                             services: Services) -> None:
    zhang, _ = team
    await zhang.say("今天上午去3号台区巡视了，发现2号杆拉线松动")
    await zhang.photo("log-photo")
    await zhang.press("完成")
    await zhang.press("跳过")  # location
    await zhang.press("保存")
    assert "🛠 转为隐患" in buttons(zhang)
    await zhang.press("转为隐患")
    assert ("新隐患登记，已填好：台区 3号台区 · 隐患内容 2号杆拉线松动 · 位置 2号杆 · "
            "处理前照片 1 张" in zhang.text)
    assert "隐患等级" in zhang.text
    await zhang.press("一般")
    await zhang.press("跳过")  # location
    await zhang.press("保存")
    assert "已登记隐患 #1：3号台区（一般）" in zhang.text
    row = await services.db.fetchone("SELECT worklog_id, photos_before FROM hazards")
    assert row is not None and tuple(row) == (1, '["test:log-photo"]')
    # The log's card now points at the hazard; a second conversion shows it instead.
    await zhang.tap("-|worklog.log|1")
    assert "🛠 查看隐患 #1" in buttons(zhang) and "🛠 转为隐患" not in buttons(zhang)
    await zhang.tap("-|hazards.fromlog|1")
    assert "工作日志 #1 已转为隐患 #1" in zhang.text
    count = await services.db.fetchone("SELECT COUNT(*) FROM hazards")
    assert count is not None and count[0] == 1


async def test_a_log_without_a_problem_offers_no_conversion(zhang: Chat) -> None:
    await zhang.say("今天上午去3号台区巡视了，一切正常")
    await zhang.press("保存")
    assert "已保存" in zhang.text or "#1" in zhang.text
    assert "🛠 转为隐患" not in buttons(zhang)


async def test_start_clear_and_the_card_offers_only_allowed_actions(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock) -> None:
    zhang, _ = team
    await register(zhang, "登记隐患 3号台区 2号杆拉线松动 一般")
    await zhang.press("开始处理")
    assert "隐患 #1 已开始处理" in zhang.text and "🟡 处理中" in zhang.text
    assert buttons(zhang) == ["✅ 已消除", "📨 转报班长"]
    clock.advance(hours=2)
    await zhang.press("已消除")
    assert "记录隐患已消除：隐患 #1（3号台区 2号杆）" in zhang.text
    await zhang.say("已紧固拉线")
    await zhang.photo("after-1")
    await zhang.press("完成")
    await zhang.press("保存")
    assert "隐患 #1 已消除（2026-11-27 周五 12:30）。 （按时）" in zhang.text
    assert await pending(services) == []
    await zhang.tap("-|hazards.hz|1")
    assert "🟢 已消除" in zhang.text and "处理结果：已紧固拉线" in zhang.text
    assert "处理后照片：1 张" in zhang.text
    assert buttons(zhang) == []
    # A stale 已消除 button on an old message changes nothing.
    await zhang.tap("-|hazards.hzc|1")
    assert "🟢 已消除" in zhang.text


async def test_hand_to_the_lead_who_is_told_at_once_and_sees_it_in_todo(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    zhang, lead = team
    await register(zhang, "登记隐患 3号台区 3号表箱 箱门锈蚀 严重")
    await zhang.press("转报班长")
    assert "转报班长：隐患 #1（3号台区 3号表箱）" in zhang.text
    await zhang.say("需停电处理")
    await zhang.press("保存")
    assert "隐患 #1 已转报班长（王班长）" in zhang.text
    assert await pending(services) == [("handed.notice", "王班长", 0)]
    await service.scan_once()
    assert notifier.texts("王班长") == [
        "📨 张三 转报了隐患 #1（3号台区 3号表箱）（严重）：箱门锈蚀\n原因：需停电处理\n"
        "消除期限：2026-12-04 周五 10:30（还剩 7 天 0 小时）"]
    assert "✅ 已消除" in [b.label for row in notifier.last("王班长").buttons for b in row]
    await zhang.say("/todo")
    assert "隐患 #1" not in zhang.text  # the lead holds it now
    await lead.say("/todo")
    assert "隐患 #1（3号台区 3号表箱）【严重】已转报，待班长处理：箱门锈蚀" in lead.text
    await lead.tap("-|hazards.hz|1")
    assert "📨 已转报班长" in lead.text and "转报原因：需停电处理" in lead.text
    assert buttons(lead) == ["🟡 开始处理", "✅ 已消除"]
    # The lead hands it back to be worked on: the owner's reminders come back.
    clock.advance(minutes=30)
    await lead.press("开始处理")
    assert "🟡 处理中" in lead.text
    assert await pending(services) == [("deadline.soon", "张三", 0),
                                       ("deadline.due", "张三", 0),
                                       ("deadline.escalate", "王班长", 0)]
    # Handed up a second time: the lead is told again, not silently deduplicated.
    clock.advance(minutes=30)
    await zhang.tap("-|hazards.hzh|1")
    await zhang.say("仍需停电")
    await zhang.press("保存")
    assert await pending(services) == [("handed.notice", "王班长", 0)]


async def test_reminder_before_the_deadline_and_escalation_when_overdue(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    zhang, lead = team
    await register(zhang, "登记隐患 5号台区 10号杆 绝缘子破损 危急")
    assert await pending(services) == [("deadline.soon", "张三", 1),
                                       ("deadline.due", "张三", 1),
                                       ("deadline.escalate", "王班长", 1)]
    await zhang.say("待办")
    assert "隐患 #1（5号台区 10号杆）【危急】绝缘子破损" in zhang.text
    at(clock, 2026, 11, 28, 6, 30)  # 4 hours before, in quiet hours: 危急 goes through
    await service.scan_once()
    assert notifier.texts("张三") == [
        "⏰ 隐患 #1（5号台区 10号杆）：请在 2026-11-28 周六 10:30 前消除隐患（还剩 4 小时 0 分）。"]
    assert notifier.texts("王班长") == []
    at(clock, 2026, 11, 28, 10, 31)
    await service.scan_once()
    assert "消除隐患期限 2026-11-28 周六 10:30 已过" in notifier.texts("张三")[-1]
    assert ("⚠️ 超期提醒：张三 的隐患 #1（5号台区 10号杆），消除隐患期限 2026-11-28 周六 10:30 已过"
            "（已超期 1 分钟）。") in notifier.texts("王班长")
    assert any("隐患 #1" in t for t in notifier.texts("王班长") if t.startswith("☀️"))  # digest
    n = len(notifier.sent)
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert len(notifier.sent) == n  # a restart sends nothing twice
    await lead.say("/todo")
    assert "隐患 #1" in lead.text and "张三" in lead.text


async def test_todo_lists_critical_first(team: tuple[Chat, Chat], clock: FakeClock) -> None:
    zhang, _ = team
    await register(zhang, "登记隐患 3号台区 2号杆拉线松动 一般")
    clock.advance(days=29)  # the 一般 one is now due in a day, before the 危急
    await register(zhang, "登记隐患 5号台区 7号杆 倾斜 危急")
    await zhang.say("/todo")
    assert zhang.text.index("隐患 #2") < zhang.text.index("隐患 #1")


async def test_other_teams_never_see_a_hazard(team: tuple[Chat, Chat], services: Services,
                                              assistant: Assistant) -> None:
    zhang, _ = team
    await register(zhang, "登记隐患 3号台区 2号杆拉线松动 严重")
    await make_user(services, "赵班长", role=Role.LEAD, team="城西供电所", areas=("9号台区",))
    await make_user(services, "李四", team="城西供电所", areas=("9号台区",))
    for name in ("赵班长", "李四"):
        other = Chat(assistant, "test", name)
        await other.tap("-|hazards.hz|1")
        assert "没有找到这条隐患记录" in other.text
        await other.tap("-|hazards.hzs|1")
        assert "没有找到这条隐患记录" in other.text
        await other.say("/todo")
        assert "隐患" not in other.text
    row = await services.db.fetchone("SELECT status FROM hazards WHERE id = 1")
    assert row is not None and row[0] == "open"


async def test_report_section_counts_per_manager_and_area_critical_first(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock,
        assistant: Assistant) -> None:
    zhang, lead = team
    await make_user(services, "李四", areas=("5号台区",))
    li = Chat(assistant, "test", "李四")
    await register(zhang, "登记隐患 3号台区 2号杆拉线松动 一般")
    await register(zhang, "登记隐患 3号台区 4号杆 鸟窝 严重")
    await register(li, "登记隐患 5号台区 1号表箱 漏电 危急")
    await zhang.tap("-|hazards.hzc|1")
    await zhang.say("已紧固")
    await zhang.press("跳过")
    await zhang.press("保存")
    clock.advance(days=2)  # the 危急 one is overdue now
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = '城东供电所'")
    assert row is not None
    start = clock.now() - timedelta(days=7)
    part = await REPORT.read(services.db, ReportScope(row[0], None, start, clock.now(), clock.now(),
                                                 "zh_CN"))
    text = "\n".join(part.lines)
    assert "🛠 隐患：新发现 3，已消除 1，超期未消除 1" in text
    assert "按人：张三 发现2/消除1/超期0；李四 发现1/消除0/超期1" in text
    assert "按台区：3号台区 发现2/消除1/超期0；5号台区 发现1/消除0/超期1" in text
    critical, serious = "#3 5号台区 1号表箱 漏电【危急】", "#2 3号台区 4号杆 鸟窝【严重】"
    assert text.index(critical) < text.index(serious)
    assert "⚠️已超期" in text
    assert [r[0] for r in part.rows] == [3, 2, 1]
    assert part.header[0] == "编号"
    await lead.say("/report 本周")
    assert "🛠 隐患：新发现 3" in lead.text


async def test_no_hand_over_in_a_team_without_a_lead(zhang: Chat) -> None:
    await register(zhang, "登记隐患 3号台区 2号杆拉线松动 一般")
    assert buttons(zhang)[1:] == ["🟡 开始处理", "✅ 已消除"]
    await zhang.tap("-|hazards.hzh|1")  # an old button: the card says why
    assert "你的班组还没有班长，无法转报" in zhang.text
