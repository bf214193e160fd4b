"""回访 after a complaint's reply or a repair's restoration (issue #13 §4), and the 95598
工单号 and 台区 on both: read from the sentence or the form, a bad number re-asked, the
call-back planned from the rule data, each result recorded, 不满意 told to the lead, an
overdue call-back escalated, the report figures, and isolation between teams.
T0 = Friday 2026-11-27 10:30 Shanghai (the conftest clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.features import complaints
from bot.models import Role
from bot.reminders import ReminderService
from bot.router import ReportPart, ReportScope, ReportSection
from bot.services import Services
from bot.storage.db import Database
from tests.conftest import SHANGHAI, Chat, FakeNotifier, at, make_user
from tests.test_reports import xlsx_of

ORDER = "2026112700123"


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def pending(services: Services, subject: str) -> list[tuple[str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = ? AND state = 'pending' ORDER BY r.kind, u.name", (subject,))
    return [(r[0], r[1]) for r in rows]


async def complaint_from_sentence(zhang: Chat) -> None:
    """`登记投诉 3号台区 工单号 … 电压低`: 台区, 工单号 and content filled; the rest asked."""
    await zhang.say(f"登记投诉 3号台区 工单号 {ORDER} 电压低")
    await zhang.press("投诉")
    await zhang.say("跳过")  # no 户号
    await zhang.say("张先生")
    await zhang.say("跳过")  # no phone
    await zhang.press("现在")
    await zhang.press("保存")


async def reply(zhang: Chat, rid: int = 1) -> None:
    await zhang.tap(f"-|complaints.cplr|{rid}")
    await zhang.press("现在")
    await zhang.say("已更换接户线")
    await zhang.press("保存")


# --- 工单号 and 台区 --------------------------------------------------------------------
async def test_order_no_and_area_read_from_the_sentence(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await zhang.say(f"登记投诉 3号台区 工单号 {ORDER} 电压低")
    assert f"工单号 {ORDER}" in zhang.text and "台区 3号台区" in zhang.text
    assert "内容 电压低" in zhang.text
    await zhang.press("投诉")
    await zhang.say("跳过")
    await zhang.say("张先生")
    await zhang.say("跳过")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已登记投诉工单 #1" in zhang.text
    row = await services.db.fetchone(
        "SELECT c.order_no, a.name FROM complaints c JOIN areas a ON a.id = c.area_id")
    assert row is not None and tuple(row) == (ORDER, "3号台区")
    await zhang.tap("-|complaints.cpl|1")
    assert f"工单号：{ORDER}" in zhang.text and "台区：3号台区" in zhang.text


async def test_bad_order_no_is_asked_again_politely(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("登记投诉 工单号 12345 电压低")  # a bad number in the sentence: a notice
    assert "工单号「12345」不对：95598 工单号是 13 位数字" in zhang.text
    assert "95598 工单号？" in zhang.text  # ... and asked at its own step, content kept
    await zhang.say("2026-11-27")
    assert "工单号「2026-11-27」不对" in zhang.text
    await zhang.say(ORDER)
    assert "工单类型？" in zhang.text
    await zhang.press("投诉")
    await zhang.say("跳过")
    await zhang.say("张先生")
    await zhang.say("跳过")
    await zhang.press("现在")
    assert "电压低" in zhang.text  # the content from the sentence survived the re-asking
    await zhang.press("保存")
    assert "已登记投诉工单 #1" in zhang.text


async def test_area_offered_on_the_summary_and_the_only_area_filled(
        services: Services, assistant: Assistant) -> None:
    await make_user(services, "张三")
    await make_user(services, "李四", areas=("7号台区",))
    zhang, li = Chat(assistant, "test", "张三"), Chat(assistant, "test", "李四")
    # Two areas: not asked one by one, offered as ➕ on the summary.
    await zhang.say("登记投诉")
    for step in (ORDER, "!投诉", "跳过", "张先生", "跳过", "!现在", "电压低"):
        await (zhang.press(step[1:]) if step.startswith("!") else zhang.say(step))
    await zhang.press("➕ 台区")
    await zhang.press("5号台区")
    await zhang.press("保存")
    # One area: filled without a question.
    await li.say("登记投诉")
    for step in (ORDER, "!投诉", "跳过", "王先生", "跳过", "!现在", "表计异常", "!保存"):
        await (li.press(step[1:]) if step.startswith("!") else li.say(step))
    rows = await services.db.fetchall(
        "SELECT a.name FROM complaints c JOIN areas a ON a.id = c.area_id ORDER BY c.id")
    assert [r[0] for r in rows] == ["5号台区", "7号台区"]


async def test_repair_order_no_from_the_sentence(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await zhang.say(f"报修 3号台区 工单号 {ORDER} 变压器冒烟")
    assert f"工单号 {ORDER}" in zhang.text and "故障情况 变压器冒烟" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    await zhang.tap("-|repairs.rep|1")
    assert f"工单号：{ORDER}" in zhang.text
    row = await services.db.fetchone("SELECT order_no FROM repairs")
    assert row is not None and row[0] == ORDER


# --- the call-back ----------------------------------------------------------------------
async def test_callback_planned_at_reply_and_recorded_satisfied(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock) -> None:
    zhang, lead = team
    await complaint_from_sentence(zhang)
    at(clock, 2026, 11, 27, 14, 0)
    await reply(zhang)
    # 3 working days from Friday 14:00 (rule data): Wednesday 14:00.
    assert "请在 2026-12-02 周三 14:00 前回访客户（3个工作日）" in zhang.text
    assert await pending(services, "complaint") == [("callback.due", "张三"),
                                                    ("callback.escalate", "王班长")]
    await zhang.say("待办")
    assert "回访客户 2026-12-02 周三 14:00 前" in zhang.text
    await zhang.tap("-|complaints.cpl|1")
    assert "回访期限：2026-12-02 周三 14:00" in zhang.text
    await zhang.press("📞 回访")
    assert "记录回访：投诉工单 #1" in zhang.text and "客户对处理结果满意吗" in zhang.text
    await zhang.press("满意")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert "已记录回访：投诉工单 #1（张先生），客户满意。" in zhang.text
    assert await pending(services, "complaint") == []
    await zhang.tap("-|complaints.cpl|1")
    assert "回访期限：2026-12-02 周三 14:00 · 已完成于" in zhang.text and "· 满意" in zhang.text
    assert zhang.last is not None and not any(
        "回访" in b.label for r in zhang.last.replies for row in r.buttons for b in row)
    # A stale 回访 button records nothing twice.
    await zhang.tap("-|complaints.cplb|1")
    row = await services.db.fetchone("SELECT callback_result FROM complaints")
    assert row is not None and row[0] == "satisfied"
    await lead.say("待办")
    assert "回访" not in lead.text


async def test_basic_satisfied_with_a_note_after_a_repair(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock,
        service: ReminderService, notifier: FakeNotifier) -> None:
    zhang, _ = team
    await zhang.say("报修 3号台区 线路断了")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 11, 27, 12, 0)
    await zhang.tap("-|repairs.repr|1")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已办结" in zhang.text and "请在 2026-12-02 周三 12:00 前回访客户" in zhang.text
    await zhang.press("📞 回访")  # offered right on the restoration message
    await zhang.press("基本满意")
    await zhang.say("希望以后停电提前通知")
    await zhang.press("保存")
    assert "客户基本满意" in zhang.text and "已通知班长" not in zhang.text
    row = await services.db.fetchone("SELECT callback_result, callback_note FROM repairs")
    assert row is not None and tuple(row) == ("basic", "希望以后停电提前通知")
    await service.scan_once()
    assert notifier.texts("王班长") == []


async def test_unsatisfied_tells_the_lead_at_once(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock,
        service: ReminderService, notifier: FakeNotifier) -> None:
    zhang, _ = team
    await complaint_from_sentence(zhang)
    at(clock, 2026, 11, 27, 14, 0)
    await reply(zhang)
    at(clock, 2026, 11, 30, 9, 0)
    await zhang.tap("-|complaints.cplb|1")
    await zhang.press("不满意")
    await zhang.say("电压仍然偏低")
    await zhang.press("保存")
    assert "客户不满意" in zhang.text and "已通知班长" in zhang.text
    await service.scan_once()
    [alert] = notifier.texts("王班长")
    assert alert == ("⚠️ 回访不满意：张三 的投诉工单 #1（张先生），客户表示不满意。\n"
                     "备注：电压仍然偏低")
    assert notifier.texts("张三") == []
    await service.scan_once()  # told once
    assert len(notifier.texts("王班长")) == 1


async def test_overdue_callback_escalates_to_the_lead(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock,
        service: ReminderService, notifier: FakeNotifier) -> None:
    zhang, _ = team
    await complaint_from_sentence(zhang)
    at(clock, 2026, 11, 27, 14, 0)
    await reply(zhang)
    at(clock, 2026, 12, 2, 13, 59)
    await service.scan_once()
    assert notifier.texts("王班长") == []
    at(clock, 2026, 12, 2, 14, 1)
    await service.scan_once()
    assert "回访客户期限 2026-12-02 周三 14:00 已过" in notifier.texts("张三")[-1]
    assert notifier.texts("王班长")[-1].startswith(
        "⚠️ 超期提醒：张三 的投诉工单 #1（张先生），回访客户期限 2026-12-02 周三 14:00 已过")
    # Done late: every call-back reminder stops.
    await zhang.tap("-|complaints.cplb|1")
    await zhang.press("满意")
    await zhang.press("跳过")
    await zhang.press("保存")
    n = len(notifier.sent)
    at(clock, 2026, 12, 4, 10, 0)
    await service.scan_once()
    assert not any("回访" in r.text for _, r in notifier.sent[n:])


# --- report and isolation ---------------------------------------------------------------
async def report(db: Database, scope: ReportScope) -> ReportPart:
    """回访 is one section over complaints and repairs, declared by the complaints feature."""
    [section] = complaints.router.report_sections
    assert isinstance(section, ReportSection)
    return await section.read(db, scope)


def week(services: Services, team_id: int, user_id: int | None = None) -> ReportScope:
    start = datetime(2026, 11, 30, tzinfo=SHANGHAI)
    return ReportScope(team_id, user_id, start, start + timedelta(days=7),
                       services.clock.now(), "zh_CN")


async def test_report_rate_and_satisfaction_per_manager_and_area(
        team: tuple[Chat, Chat], services: Services, assistant: Assistant,
        clock: FakeClock) -> None:
    zhang, lead = team
    await make_user(services, "李四")
    li = Chat(assistant, "test", "李四")
    await complaint_from_sentence(zhang)  # #1, 3号台区
    await zhang.say("报修 5号台区 线路断了")  # repair #1, 5号台区
    await zhang.press("现在")
    await zhang.press("保存")
    await complaint_from_sentence(li)  # #2, 李四's
    at(clock, 2026, 11, 27, 14, 0)
    await reply(zhang, 1)
    await reply(li, 2)
    await zhang.tap("-|repairs.repr|1")
    await zhang.press("现在")
    await zhang.press("保存")
    at(clock, 2026, 11, 30, 9, 0)
    for who, data, result in ((zhang, "-|complaints.cplb|1", "满意"),
                              (zhang, "-|repairs.repb|1", "不满意")):
        await who.tap(data)
        await who.press(result)
        await who.press("跳过")
        await who.press("保存")
    at(clock, 2026, 12, 7, 9, 0)
    team_id = (await services.people.users())[0].team_id
    part = await report(services.db, week(services, team_id))
    assert part.lines == [
        "回访：应回访 3，已回访 2（回访率 67%）；满意 1，基本满意 0，不满意 1",
        "· 张三：应回访 2，已回访 2（100%）；满意 1，基本满意 0，不满意 1",
        "· 李四：应回访 1，已回访 0（0%）；满意 0，基本满意 0，不满意 0",
        "· 3号台区：应回访 2，已回访 1（50%）；满意 1，基本满意 0，不满意 0",
        "· 5号台区：应回访 1，已回访 1（100%）；满意 0，基本满意 0，不满意 1"]
    assert part.sheet_title == "回访" and len(part.rows) == 3
    assert part.rows[0][:5] == ["投诉", 1, ORDER, "3号台区", "张三"]
    # One manager's own report: only theirs.
    zhang_id = next(u.id for u in await services.people.users() if u.name == "张三")
    mine = await report(services.db, week(services, team_id, zhang_id))
    assert mine.lines[0].startswith("回访：应回访 2，已回访 2")
    # The weekly report the lead asks for carries the section.
    out = await lead.say("/report 上周")
    assert "回访：应回访 3，已回访 2（回访率 67%）" in lead.text
    wb = xlsx_of(out)
    assert [c.value for c in wb["回访"][1]] == [
        "类别", "编号", "95598工单号", "台区", "客户经理", "回访期限", "回访时间", "回访结果",
        "备注"]
    assert wb["回访"]["H3"].value is None and wb["回访"]["H4"].value == "不满意"  # 李四 not yet
    complaints_sheet = list(wb["投诉"].iter_rows(values_only=True))
    assert complaints_sheet[0][-1] == "台区" and complaints_sheet[1][-1] == "3号台区"


async def test_another_team_sees_no_callback(
        team: tuple[Chat, Chat], services: Services, assistant: Assistant,
        clock: FakeClock) -> None:
    zhang, _ = team
    await make_user(services, "赵五", team="城西供电所", areas=("9号台区",))
    await make_user(services, "钱班长", role=Role.LEAD, team="城西供电所", areas=())
    zhao, other_lead = Chat(assistant, "test", "赵五"), Chat(assistant, "test", "钱班长")
    await complaint_from_sentence(zhang)
    at(clock, 2026, 11, 27, 14, 0)
    await reply(zhang)
    for chat in (zhao, other_lead):
        await chat.tap("-|complaints.cplb|1")
        assert "客户对处理结果满意吗" not in chat.text
        await chat.tap("-|complaints.cpl|1")
        assert "张先生" not in chat.text
        await chat.say("待办")
        assert "回访" not in chat.text
    row = await services.db.fetchone("SELECT callback_at FROM complaints")
    assert row is not None and row[0] is None
    west = next(u.team_id for u in await services.people.users() if u.name == "赵五")
    assert (await report(services.db, week(services, west))).lines == []


async def test_repair_order_no_offered_on_the_summary(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await zhang.say("报修 3号台区 线路断了")
    await zhang.press("现在")
    await zhang.press("➕ 工单号")
    await zhang.say("95598")
    assert "工单号「95598」不对：95598 工单号是 13 位数字，请重新输入。" in zhang.text
    await zhang.say(ORDER)
    assert f"工单号：{ORDER}" in zhang.text and "故障情况：线路断了" in zhang.text
    await zhang.press("保存")
    row = await services.db.fetchone("SELECT order_no, description FROM repairs")
    assert row is not None and tuple(row) == (ORDER, "线路断了")
