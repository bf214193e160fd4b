"""/todo as the whole day (issue #15 §4.1): every open item, special customers due for a visit
by their 走访周期 (recording the visit clears it), each line naming its owner on a lead's
list, and the lead's list opening with what waits for the lead's decision (a medical
household's cut-off, an escalated overdue item). Core dialogue, real SQLite, fake clock
(T0 = Fri 2026-11-27 10:30 Shanghai)."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.models import Role, User
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import Chat, at, make_user
from tests.tg_harness import L

pytestmark = pytest.mark.timeout(60)

VISIT = L("customer.todo_visit", name="李奶奶", area="3号台区", days=30,
          last=L("customers.never_visited"))
DECISION = L("arrears.todo.decision", item=L("arrears.title", id=1, name="李奶奶"),
             due="2026-12-04 周五 10:30")


async def add_customer(services: Services, user: User, name: str, account: str,
                       cats: tuple[str, ...], every: int | None) -> int:
    area = (await services.people.areas_for(user))[0]
    return await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=cats, visit_every_days=every), services.clock.now())


async def medical_arrears_notice_served(zhang: Chat) -> None:
    await zhang.say("登记欠费 5500012345 500元")
    await zhang.say("9月1日")
    await zhang.press("否")
    await zhang.press("保存")
    await zhang.tap("-|arrn|1")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已请 王班长 决定是否停电" in zhang.text, zhang.text


async def register_complaint(chat: Chat) -> None:
    """Accepted at T0: first contact due Mon 11-30 10:30 (escalated to the lead then)."""
    for step in ("登记投诉", "2026112700123"):
        await chat.say(step)
    await chat.press("投诉")
    for step in ("跳过", "张先生", "13800001234"):
        await chat.say(step)
    await chat.press("现在")
    await chat.say("近一周频繁停电")
    await chat.press("保存")


def lines(chat: Chat) -> list[str]:
    return chat.text.splitlines()


async def test_the_whole_day_with_owners_decisions_first_and_visits(
        services: Services, assistant: Assistant, clock: FakeClock) -> None:
    manager = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await make_user(services, "李四", areas=("7号台区",))
    zhang, lead = Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")
    lisi = Chat(assistant, "test", "李四")
    await add_customer(services, manager, "李奶奶", "5500012345", ("medical",), every=30)
    await add_customer(services, manager, "王五", "5500012346", ("elderly",), every=None)
    await medical_arrears_notice_served(zhang)
    await register_complaint(zhang)

    # The manager: his own items and his area's visit due, no owner names.
    await zhang.say("/todo")
    got = lines(zhang)
    assert got[0] == L("todo.title", count=3)
    assert got[1] == "⚠️ " + VISIT  # never visited: due since it was registered
    assert got[2].startswith("• 投诉工单 #1") and got[3] == "• " + DECISION
    assert "王五" not in zhang.text  # no visit cycle, never on the list
    assert L("customer.todo_button", name="李奶奶") in [
        b.label for r in zhang.last.replies for row in r.buttons for b in row]
    await lisi.say("/todo")  # another manager's area: not his visit
    assert lisi.text == L("todo.none")

    # The lead: the decision waiting for him first, then the rest, each with its owner.
    await lead.say("/todo")
    assert lines(lead) == [
        L("todo.title_team", count=3), L("todo.for_lead", count=1),
        "• " + L("todo.owned", owner="张三", text=DECISION), L("todo.others", count=2),
        "⚠️ " + L("todo.owned", owner="张三", text=VISIT), lines(lead)[5]]
    assert lines(lead)[5].startswith("• " + L("todo.owned", owner="张三", text="投诉工单 #1"))

    # Past the first-contact deadline the complaint is escalated: it joins the decisions.
    at(clock, 2026, 11, 30, 10, 31)
    await lead.say("/todo")
    assert lines(lead)[1] == L("todo.for_lead", count=2)
    assert lines(lead)[2].startswith("⚠️ " + L("todo.owned", owner="张三", text="投诉工单 #1"))

    # Recording the visit from the card clears it from the list.
    await zhang.say("/todo")
    await zhang.press(L("customer.todo_button", name="李奶奶"))
    await zhang.press(L("btn.record_visit"))
    await zhang.press("现在")
    await zhang.say("检查制氧机供电")
    for _ in range(3):
        await zhang.press("跳过")
    await zhang.press("保存")
    await zhang.say("/todo")
    assert "李奶奶（3号台区）" not in zhang.text and lines(zhang)[0] == L("todo.title", count=2)

    # A cycle later it is due again.
    clock.advance(days=30)
    await zhang.say("/todo")
    assert "⚠️ " + L("customer.todo_visit", name="李奶奶", area="3号台区", days=30,
                     last=L("customer.todo_last", when="2026-11-30 周一")) in lines(zhang)


async def test_the_whole_list_pages_instead_of_sending_back_to_todo(
        services: Services, assistant: Assistant) -> None:
    manager = await make_user(services, "张三")
    for i in range(15):
        await add_customer(services, manager, f"客户{i:02d}", f"55000200{i:02d}", ("elderly",),
                           every=30)
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("/todo")
    got = lines(zhang)
    assert got[:2] == [L("todo.title", count=15), L("todo.page", first=1, last=12)]
    assert len(got) == 14 and "/todo" not in zhang.text
    assert [b.label for b in zhang.last.replies[0].buttons[-1]] == [L("btn.next_page")]
    await zhang.press(L("btn.next_page"))
    got = lines(zhang)
    assert got[:2] == [L("todo.title", count=15), L("todo.page", first=13, last=15)]
    assert [line.split("（")[0] for line in got[2:]] == [
        f"⚠️ 走访特殊客户 客户{i:02d}" for i in (12, 13, 14)]
    assert [b.label for b in zhang.last.replies[0].buttons[-1]] == [L("btn.prev_page")]
