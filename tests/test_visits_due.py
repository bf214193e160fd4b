"""Special customers due for a visit by their 走访周期 (issue #13 §3): the morning digest names
one once per cycle (remembered as database rows), /todo lists it every day until the visit is
recorded, and /report counts due / done / overdue per manager, team by team. Core dialogue,
real SQLite, fake clock (T0 = Fri 2026-11-27 10:30 Shanghai)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.models import Role, User
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import Chat, FakeNotifier, at, make_user

pytestmark = pytest.mark.timeout(60)


async def add_customer(services: Services, user: User, name: str, account: str,
                       every: int | None = 30) -> int:
    area = (await services.people.areas_for(user))[0]
    return await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=("elderly",), visit_every_days=every),
        services.clock.now())


async def record_visit(chat: Chat, customer_id: int) -> None:
    await chat.tap(f"-|customers.cust|{customer_id}")
    await chat.press("记录走访")
    await chat.press("现在")
    await chat.say("检查用电安全")
    for _ in range(3):
        await chat.press("跳过")
    await chat.press("保存")
    assert "已保存" in chat.text or "已记录" in chat.text, chat.text


async def test_the_digest_names_a_visit_due_once_per_cycle(
        services: Services, assistant: Assistant, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    manager = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    zhang, lead = Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")
    await zhang.say("/start")
    await lead.say("/start")
    cid = await add_customer(services, manager, "李奶奶", "5500012345")

    at(clock, 2026, 11, 28, 8, 0)
    await service.scan_once()
    assert any("李奶奶" in t for t in notifier.texts("张三"))
    assert any("李奶奶" in t for t in notifier.texts("王班长"))  # the lead's own mention

    at(clock, 2026, 11, 29, 8, 0)  # the next morning: same cycle, not named again
    notifier.sent.clear()
    await service.scan_once()
    assert not any("李奶奶" in t for t in notifier.texts("张三")), notifier.texts("张三")
    assert not any("李奶奶" in t for t in notifier.texts("王班长"))
    await zhang.say("/todo")  # the list still has it every day until the visit
    assert "李奶奶" in zhang.text
    rows = await services.db.fetchall("SELECT user_id FROM digest_mentions")
    assert len(rows) == 2

    await record_visit(zhang, cid)  # recording the visit clears it
    await zhang.say("/todo")
    assert "李奶奶" not in zhang.text
    at(clock, 2026, 11, 30, 8, 0)
    notifier.sent.clear()
    await service.scan_once()
    assert not any("李奶奶" in t for t in notifier.texts("张三"))

    # A cycle after the visit it is due again: the digest names it once more, once.
    at(clock, 2026, 12, 29, 8, 0)
    notifier.sent.clear()
    await service.scan_once()
    assert any("李奶奶" in t for t in notifier.texts("张三"))
    at(clock, 2026, 12, 30, 8, 0)
    notifier.sent.clear()
    await service.scan_once()
    assert not any("李奶奶" in t for t in notifier.texts("张三"))


async def test_a_digest_not_delivered_does_not_count_as_a_mention(
        services: Services, assistant: Assistant, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    manager = await make_user(services, "张三")
    await Chat(assistant, "test", "张三").say("/start")
    await add_customer(services, manager, "李奶奶", "5500012345")
    notifier.fail["张三"] = [ConnectionError("network down")]
    at(clock, 2026, 11, 28, 8, 0)
    await service.scan_once()
    assert notifier.texts("张三") == []
    at(clock, 2026, 11, 28, 8, 1)  # the next scan sends it, naming the visit
    await service.scan_once()
    assert any("李奶奶" in t for t in notifier.texts("张三"))


async def test_the_report_counts_visits_due_done_and_overdue_per_manager(
        services: Services, assistant: Assistant, clock: FakeClock) -> None:
    zhang_user = await make_user(services, "张三")
    lisi_user = await make_user(services, "李四", areas=("7号台区",))
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    other = await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    await make_user(services, "孙班长", role=Role.LEAD, team="城西供电所", areas=())
    zhang, lead = Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")
    west_lead = Chat(assistant, "test", "孙班长")
    visited = await add_customer(services, zhang_user, "李奶奶", "5500012345")
    await add_customer(services, zhang_user, "王爷爷", "5500012346")  # never visited: overdue
    await add_customer(services, zhang_user, "周大伯", "5500012347", every=None)  # no cycle
    await add_customer(services, lisi_user, "钱阿姨", "5500012348")
    await add_customer(services, other, "吴奶奶", "5500012349")
    await record_visit(zhang, visited)

    await lead.say("/report 本周")
    text = lead.text
    assert "🏠 走访周期：应走访 3 户，已走访 1 户，过期未走访 2 户" in text, text
    assert "张三：应走访 2 · 已走访 1 · 过期未访 1" in text
    assert "李四：应走访 1 · 已走访 0 · 过期未访 1" in text
    assert "赵六" not in text  # another team's manager
    [doc] = [a for r in lead.last.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["走访周期"]
    assert [c.value for c in sheet[1]] == ["客户经理", "应走访", "已走访", "过期未走访"]
    assert [c.value for c in sheet[2]] == ["张三", 2, 1, 1]

    await zhang.say("/report 本周")  # a manager's own report: his own counts, no per-person lines
    assert "🏠 走访周期：应走访 2 户，已走访 1 户，过期未走访 1 户" in zhang.text, zhang.text
    assert "李四" not in zhang.text

    await west_lead.say("/report 本周")
    assert "🏠 走访周期：应走访 1 户，已走访 0 户，过期未走访 1 户" in west_lead.text
    assert "张三" not in west_lead.text and "李奶奶" not in west_lead.text


async def test_the_monday_report_carries_the_visits_of_last_week(
        services: Services, assistant: Assistant, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    zhang_user = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    zhang, lead = Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")
    await lead.say("/start")
    visited = await add_customer(services, zhang_user, "李奶奶", "5500012345")
    await add_customer(services, zhang_user, "王爷爷", "5500012346")
    at(clock, 2026, 11, 30, 10, 0)  # Monday: a visit in the week of 11-30
    await record_visit(zhang, visited)
    at(clock, 2026, 12, 7, 8, 31)  # the next Monday's report covers that week
    await service.scan_once()
    [report] = [t for t in notifier.texts("王班长") if "工作汇总" in t]
    assert "🏠 走访周期：应走访 2 户，已走访 1 户，过期未走访 1 户" in report, report
    assert "张三：应走访 2 · 已走访 1 · 过期未访 1" in report
