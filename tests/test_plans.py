"""月度计划 and 考核 (issue #14 §4) through the core: a draft prefilled with the visits due,
the patrols of each 台区 and last month's unfinished items (结转); typed additions, changes
and one-tap removal; 提交给班长, 退回 with a comment, resubmitted, 通过; items ticked by the
work log and by ✅; the morning digest; the month-end result, 考核 and the monthly report with
the team's targets. Real SQLite, fake clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.events import Reply
from bot.features.plans.report import REPORT
from bot.features.plans.store import Month, NewItem, create_plan_into
from bot.models import Role, User
from bot.reminders import ReminderService
from bot.router import ReportScope
from bot.services import Services
from bot.storage.batch import Batch
from bot.storage.customers import CustomerData
from tests.conftest import Chat, FakeNotifier, at, make_user

pytestmark = pytest.mark.timeout(60)


def data_of(reply: Reply, label: str) -> str:
    return next(b.data for row in reply.buttons for b in row if label in b.label)


def labels(out: Chat) -> list[str]:
    assert out.last is not None
    return [b.label for r in out.last.replies for row in r.buttons for b in row]


async def add_customer(services: Services, user: User, name: str, account: str,
                       every: int = 30) -> int:
    area = (await services.people.areas_for(user))[0]
    return await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=("elderly",), visit_every_days=every),
        services.clock.now())


@pytest.fixture
async def team(services: Services, assistant: Assistant,
               clock: FakeClock) -> tuple[Chat, Chat, User]:
    """张三 (3号台区, 5号台区) and 王班长; another team (城西: 赵六, 钱班长) beside them.
    The register has 李奶奶 in 3号台区, visited every 30 days, never yet."""
    zhang = await make_user(services, "张三")
    await make_user(services, "李四", areas=("7号台区",))
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    await make_user(services, "钱班长", role=Role.LEAD, team="城西供电所", areas=())
    await add_customer(services, zhang, "李奶奶", "5500012345")
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长"), zhang


async def visit_logged(services: Services, zhang: Chat) -> None:
    """张三 records a visit to 李奶奶 now, from her card."""
    customer = await services.db.fetchone("SELECT id FROM customers")
    assert customer is not None
    await zhang.tap(f"-|customers.cust|{customer[0]}")
    await zhang.press("记录走访")
    await zhang.press("现在")
    await zhang.say("检查用电安全")
    for _ in range(3):
        await zhang.press("跳过")
    await zhang.press("保存")


DRAFT = ("📋 张三 · 2026年12月工作计划 · 📝 草稿\n"
         "1. ⬜ 走访 李奶奶（3号台区） · 12月1日\n"
         "2. ⬜ 巡视 3号台区（第1次） · 12月16日\n"
         "3. ⬜ 巡视 5号台区（第1次） · 12月16日\n"
         "4. ⬜ 巡视 3号台区（第2次） · 12月31日\n"
         "5. ⬜ 巡视 5号台区（第2次） · 12月31日")


async def test_draft_edit_submit_return_resubmit_approve(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock,
        notifier: FakeNotifier, service: ReminderService) -> None:
    zhang, lead, _ = team
    at(clock, 2026, 12, 1, 10, 0)
    await service.scan_once()  # the day's digests are out: later scans push singly
    await zhang.say("本月计划")
    assert "已按走访周期、各台区巡视和上月未完成项生成本月计划草稿" in zhang.text
    assert DRAFT in zhang.text
    assert labels(zhang) == ["✖1", "✖2", "✖3", "✖4", "✖5", "📤 提交给班长"]

    # Typed: a free item with its day; bad days re-prompted politely, nothing lost.
    await zhang.say("加 12号 抄表核对")
    assert "已添加：抄表核对（12月12日）" in zhang.text
    assert "6. ⬜ 抄表核对 · 12月12日" in zhang.text
    await zhang.say("加 40号 线损分析")
    assert "本月（2026年12月）没有 40 号" in zhang.text
    await zhang.say("加 2027年1月5日 线损分析")
    assert "1月5日 不在本月（2026年12月），计划只能安排本月的事" in zhang.text
    await zhang.say("加 线损分析")  # no day: the month's last working day
    assert "已添加：线损分析（12月31日）" in zhang.text
    await zhang.say("改 6 15号")
    assert "已修改第 6 项" in zhang.text and "6. ⬜ 抄表核对 · 12月15日" in zhang.text
    await zhang.say("改 2 抄表")
    assert "走访和巡视项只能改日期" in zhang.text
    await zhang.say("改 9 15号")
    assert "没有第 9 项（计划共 7 项）" in zhang.text

    # One tap removes, one tap brings it back.
    await zhang.press("✖7")
    assert "已删除：线损分析" in zhang.text and "线损分析 ·" not in zhang.text
    await zhang.press("撤销删除")
    assert "7. ⬜ 线损分析 · 12月31日" in zhang.text
    await zhang.press("✖7")

    await zhang.press("提交给班长")
    assert "📤 已提交给 王班长，等待审核。" in zhang.text and "⏳ 待班长审核" in zhang.text
    assert "✖" not in " ".join(labels(zhang))  # no more changes while it waits
    await zhang.say("加 20号 培训")
    assert "计划⏳ 待班长审核，不能再改" in zhang.text
    assert (await service.scan_once()).sent == 1
    push = notifier.last("王班长")
    assert push.text.startswith("📋 张三 提交了2026年12月工作计划（6 项），请审核：")
    assert [b.label for b in push.buttons[0]] == ["✅ 通过", "↩️ 退回"]
    assert (await service.scan_once()).sent == 0  # never twice

    await lead.tap(data_of(push, "退回"))
    assert "退回 张三 的2026年12月计划" in lead.text
    await lead.say("少了5号台区的线损核查")
    await lead.press("保存")
    assert "↩️ 已退回 张三 的2026年12月计划" in lead.text
    await service.scan_once()
    back = notifier.last("张三")
    assert back.text.startswith("↩️ 王班长 退回了你的2026年12月计划，请修改后再提交：")
    assert "退回意见（王班长）：少了5号台区的线损核查" in back.text
    await lead.tap(data_of(push, "通过"))  # the old push: decided already
    assert "已经处理过了" in lead.text

    await zhang.say("加 18号 5号台区线损核查")
    await zhang.press("提交给班长")
    await service.scan_once()
    again = notifier.last("王班长")
    assert again.text.startswith("📋 张三 提交了2026年12月工作计划（7 项）")
    await lead.tap(data_of(again, "通过"))
    assert "✅ 已通过 张三 的2026年12月计划" in lead.text
    await service.scan_once()
    assert notifier.last("张三").text == "✅ 王班长 通过了你的2026年12月计划。"
    assert (await service.scan_once()).sent == 0
    await lead.tap(data_of(again, "通过"))
    assert "已经处理过了" in lead.text
    await zhang.say("本月计划")
    assert "✅ 已通过" in zhang.text and labels(zhang) == ["✅6", "✅7"]  # the free items


async def test_work_ticks_items_and_the_digest_lists_the_week_once_a_day(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock,
        notifier: FakeNotifier, service: ReminderService) -> None:
    zhang, lead, _ = team
    at(clock, 2026, 12, 14, 10, 0)  # a Monday
    await service.scan_once()
    await zhang.say("本月计划")
    await zhang.say("加 15号 抄表核对")
    await zhang.say("今天上午去3号台区巡视了，设备正常")
    await zhang.press("保存")
    await zhang.say("本月计划")
    assert "1. ⬜ 走访 李奶奶（3号台区） · 12月14日" in zhang.text
    assert "2. ✅ 巡视 3号台区（第1次） · 12月16日" in zhang.text
    assert "4. ⬜ 巡视 3号台区（第2次） · 12月31日" in zhang.text
    assert "已完成 1/6 项" in zhang.text

    # The next morning's digest: this week's unfinished items in one line, once a day.
    at(clock, 2026, 12, 15, 8, 0)
    await service.scan_once()
    digest = notifier.last("张三")
    assert ("本周计划（3 项未完成）：走访 李奶奶（3号台区）（12月14日）；"
            "巡视 5号台区（第1次）（12月16日）；抄表核对（12月15日）") in digest.text
    sent = len(notifier.sent)
    await service.scan_once()
    assert len(notifier.sent) == sent

    # A visit recorded on the customer ticks the visit; ✅ ticks the free item.
    await visit_logged(services, zhang)
    await zhang.say("本月计划")
    assert "1. ✅ 走访 李奶奶" in zhang.text
    await zhang.press("提交给班长")
    await lead.say("计划")
    assert "张三：⏳ 待班长审核（完成 2/6 项）" in lead.text
    await lead.press("张三的计划")
    await lead.press("通过")
    await zhang.say("本月计划")
    await zhang.press("✅6")
    assert "已完成：抄表核对" in zhang.text and "6. ✅ 抄表核对" in zhang.text
    assert "已完成 3/6 项" in zhang.text


async def approved_plan(zhang: Chat, lead: Chat, service: ReminderService,
                        notifier: FakeNotifier) -> None:
    await zhang.say("本月计划")
    await zhang.press("提交给班长")
    await service.scan_once()
    await lead.tap(data_of(notifier.last("王班长"), "通过"))
    await service.scan_once()


async def test_month_end_result_evaluation_and_the_monthly_report(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock,
        notifier: FakeNotifier, service: ReminderService) -> None:
    zhang, lead, _ = team
    at(clock, 2026, 12, 1, 10, 0)
    await service.scan_once()
    await approved_plan(zhang, lead, service, notifier)
    await visit_logged(services, zhang)
    await zhang.say("说明 2 还早")
    assert "现在没有要提交完成情况的计划" in zhang.text

    # From the month's last working day (Thu 2026-12-31) at 09:00: reminded once.
    at(clock, 2026, 12, 31, 8, 59)
    await service.scan_once()
    assert not [t for t in notifier.texts("张三") if "请提交" in t]
    at(clock, 2026, 12, 31, 9, 0)
    await service.scan_once()
    await service.scan_once()
    reminded = [r for w, r in notifier.sent if w == "张三" and "请提交" in r.text]
    assert [r.text for r in reminded] == [
        "📝 今天起请提交2026年12月计划完成情况（已完成 1/5 项）。"]
    await zhang.tap(data_of(reminded[0], "提交完成情况"))
    assert ("📝 2026年12月计划完成情况：完成 1/5 项\n未完成：\n"
            "2. ⬜ 巡视 3号台区（第1次）") in zhang.text
    await zhang.say("说明 2 台风天停电抢修，未能巡视")
    assert "已记下第 2 项的说明" in zhang.text
    assert "（说明：台风天停电抢修，未能巡视）" in zhang.text
    await zhang.say("说明 1 已走访")
    assert "第 1 项已完成，不用写说明" in zhang.text
    assert zhang.last is not None
    send = data_of(zhang.last.replies[-1], "提交完成情况")
    await zhang.tap(send)
    assert "📨 已提交完成情况：完成 1/5 项，已告诉 王班长。" in zhang.text
    await zhang.tap(send)  # the same button again: once only
    assert zhang.last is not None and zhang.last.toast == "完成情况已经提交过了"

    await service.scan_once()
    reported = notifier.last("王班长")
    assert reported.text == "📨 张三 提交了2026年12月计划完成情况：完成 1/5 项，请考核。"
    assert [r.text for w, r in notifier.sent if w == "张三" and "请提交" in r.text] == [
        reminded[0].text]  # the result is in: no more reminders
    await lead.tap(data_of(reported, "考核"))
    assert "考核 张三 的2026年12月计划：完成 1/5 项" in lead.text
    assert "（说明：台风天停电抢修，未能巡视）" in lead.text
    await lead.press("良好")
    await lead.say("走访到位，巡视要补上")
    await lead.press("保存")
    assert "🏅 已考核 张三 的2026年12月计划：良好" in lead.text
    await service.scan_once()
    assert notifier.last("张三").text == (
        "🏅 王班长 对你的2026年12月计划的考核：良好 · 走访到位，巡视要补上")
    assert (await service.scan_once()).sent == 0

    # The monthly report: done / total and the grade per manager, the targets.
    at(clock, 2027, 1, 4, 10, 0)
    await lead.say("/report 上月")
    text = lead.text
    assert "📋 2026年12月计划：\n• 张三：完成 1/5 项 · 良好\n• 李四：未制定计划" in text
    assert ("🎯 目标 vs 实际：\n• 电费回收率：目标 ≥99.5%，无数据\n• 线损率：目标 ≤6%，无数据\n"
            "• 到期走访完成率：目标 100%，实际 50% ❌") in text  # 李奶奶 due again by 12-31
    await zhang.say("/report 上月")
    assert "• 张三：完成 1/5 项 · 良好" in zhang.text and "李四" not in zhang.text
    await lead.say("/report 上周")
    assert "计划：" not in lead.text and "目标 vs 实际" not in lead.text


async def november_drafted_and_patrolled(clock: FakeClock, zhang: Chat, *said: str) -> None:
    """On Fri 2026-11-27 张三 drafts his plan, says `said` and logs a patrol of 3号台区;
    then it is Tue 12-01."""
    at(clock, 2026, 11, 27, 10, 0)
    await zhang.say("本月计划")
    for text in said:
        await zhang.say(text)
    await zhang.say("今天上午去3号台区巡视了，设备正常")
    await zhang.press("保存")
    at(clock, 2026, 12, 1, 10, 0)


async def test_last_months_unfinished_items_are_carried_over(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock) -> None:
    zhang, _, _ = team
    await november_drafted_and_patrolled(clock, zhang, "加 28号 抄表核对")
    await zhang.say("/plan")
    assert ("1. ⬜ 〔结转〕走访 李奶奶（3号台区） · 12月1日\n"
            "2. ⬜ 〔结转〕巡视 5号台区 · 12月1日\n"
            "3. ⬜ 〔结转〕巡视 3号台区 · 12月1日\n"
            "4. ⬜ 〔结转〕巡视 5号台区 · 12月1日\n"
            "5. ⬜ 〔结转〕抄表核对 · 12月1日\n"
            "6. ⬜ 巡视 3号台区（第1次） · 12月16日") in zhang.text
    assert zhang.text.count("李奶奶") == 1  # carried, not planned twice
    await zhang.say("/plan 上月")
    assert "2026年11月工作计划" in zhang.text and "✅ 巡视 3号台区" in zhang.text


async def test_the_report_reads_open_plans_from_the_log_and_only_whom_it_reports(
        team: tuple[Chat, Chat, User], services: Services, assistant: Assistant,
        clock: FakeClock) -> None:
    """A plan still open counts what the work log ticked, as its card does; a manager's
    report reads his own plan and items only (issue #12: a report reads what it reports)."""
    zhang, lead, manager = team
    at(clock, 2026, 11, 27, 10, 0)
    await Chat(assistant, "test", "李四").say("本月计划")
    await november_drafted_and_patrolled(clock, zhang)
    await lead.say("/report 上月")
    assert ("📋 2026年11月计划：\n• 张三：完成 1/5 项 · 📝 草稿\n"
            "• 李四：完成 0/2 项 · 📝 草稿") in lead.text
    tz = services.settings.tz
    november = (datetime(2026, 11, 1, tzinfo=tz), datetime(2026, 12, 1, tzinfo=tz))
    rows = await services.db.fetch_many(REPORT.reads(ReportScope(
        manager.team_id, manager.id, *november, clock.now(), "zh_CN")))
    managers, plans, items, _, patrols = rows
    assert [r["name"] for r in managers] == ["张三"]
    assert {int(r["user_id"]) for r in [*plans, *patrols]} == {manager.id}
    assert {int(r["plan_id"]) for r in items} == {int(plans[0]["id"])}
    assert len(items) == 5


async def test_a_plan_opened_by_id_is_ticked_by_its_own_months_log(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock) -> None:
    """Opened from a button (by id), a plan's items are ticked by the work log of the plan's
    own month: last month's read with the plan (one round trip after the step's read), an
    older month's by a second read."""
    zhang, lead, _ = team
    await november_drafted_and_patrolled(clock, zhang)
    db = services.db
    for (year, month, day), most in (((2026, 12, 1), 2), ((2027, 1, 5), 3)):
        at(clock, year, month, day, 10, 0)
        await lead.say("你好")
        await db.settle()
        db.trips.reset()
        await lead.tap("-|plans.see|1")
        await db.settle()
        assert "2026年11月工作计划" in lead.text and "✅ 巡视 3号台区" in lead.text, lead.text
        assert db.trips.trips + db.trips.inline == most, (year, month)


async def test_team_isolation(team: tuple[Chat, Chat, User], services: Services,
                              clock: FakeClock, notifier: FakeNotifier,
                              service: ReminderService) -> None:
    zhang, lead, _ = team
    at(clock, 2026, 12, 1, 10, 0)
    await service.scan_once()
    await zhang.say("本月计划")
    await zhang.press("提交给班长")
    await service.scan_once()
    push = notifier.last("王班长")
    assert notifier.texts("钱班长") == []  # only the manager's own team's lead
    other, li = Chat(lead.assistant, "test", "钱班长"), Chat(lead.assistant, "test", "李四")
    for who in (other, li):
        await who.tap(data_of(push, "通过"))
        assert "找不到这份计划" in who.text
        await who.tap(data_of(push, "退回"))
        assert "找不到这份计划" in who.text
    await li.tap(next(b.data for row in push.buttons for b in row).replace("ok", "open"))
    assert "找不到这份计划" in li.text
    await other.say("计划")
    assert "张三" not in other.text and "全班2026年12月工作计划" in other.text
    await lead.say("计划")
    assert "张三：⏳ 待班长审核（完成 0/5 项）" in lead.text and "李四：还没有制定" in lead.text
    assert "赵六" not in lead.text
    row = await services.db.fetchone("SELECT status FROM plans")
    assert row is not None and row[0] == "submitted"


async def test_an_approval_the_morning_digest_meets_is_still_told(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock,
        notifier: FakeNotifier, service: ReminderService) -> None:
    zhang, lead, _ = team
    at(clock, 2026, 12, 1, 10, 0)
    await service.scan_once()
    await zhang.say("本月计划")
    await zhang.press("提交给班长")
    at(clock, 2026, 12, 2, 7, 45)  # approved before the morning digest, no scan between
    await lead.say("计划")
    await lead.press("张三的计划")
    await lead.press("通过")
    at(clock, 2026, 12, 2, 8, 0)
    await service.scan_once()
    texts = notifier.texts("张三")
    assert any(t.startswith("☀️") and "本周计划" in t for t in texts)  # the digest
    assert texts[-1] == "✅ 王班长 通过了你的2026年12月计划。"  # and the notice, not folded


async def test_a_drafted_plan_shows_as_it_reads_back(
        team: tuple[Chat, Chat, User], services: Services, clock: FakeClock) -> None:
    """Drafting words the new plan's card from what it wrote (its items' ids in row order,
    what ticks them read in the write: issue #12, no read back): the same card, buttons and
    ticks as the plan read afterwards, carried items, visits and patrols done before it
    was drafted included."""
    zhang, _, _ = team
    await november_drafted_and_patrolled(clock, zhang, "加 28号 抄表核对")
    await visit_logged(services, zhang)
    await zhang.say("今天上午去5号台区巡视了，设备正常")
    await zhang.press("保存")
    drafted = await zhang.say("本月计划")
    assert "已按走访周期" in zhang.text
    assert "1. ✅ 〔结转〕走访 李奶奶（3号台区） · 12月1日" in zhang.text
    assert "2. ✅ 〔结转〕巡视 5号台区 · 12月1日" in zhang.text
    assert "6. ⬜ 巡视 3号台区（第1次） · 12月16日" in zhang.text
    again = await zhang.say("本月计划")
    card, read = drafted.replies[-1], again.replies[-1]
    assert card.text.split("\n", 1)[1] == read.text
    assert card.buttons == read.buttons


async def test_a_plan_drafted_twice_keeps_the_first_ones_items(services: Services) -> None:
    """A second draft of the same plan (a double tap, another instance) adds nothing: its
    items are written only with a plan the write created."""
    user = await make_user(services, "张三")
    month, now = Month(2026, 12), services.clock.now()
    day = month.first
    played = []
    for n in (2, 3):
        batch = Batch()
        pid, refs = create_plan_into(batch, user.team_id, user.id, month,
                                     [NewItem("free", day, body=f"{n}-{k}") for k in range(n)],
                                     now)
        ran = await services.db.write_batch(batch)
        played.append((ran.id_of(pid), [ran.changed(r) for r in refs]))
    assert played[0][0] == played[1][0]
    assert played[0][1] == [True, True] and played[1][1] == [False, False, False]
    rows = await services.db.fetchall("SELECT body, position FROM plan_items ORDER BY id")
    assert [(r["body"], r["position"]) for r in rows] == [("2-0", 1), ("2-1", 2)]
