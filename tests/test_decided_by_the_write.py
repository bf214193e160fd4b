"""What a save used to read before its write is found by the write itself (issue #12: the
step's read and the write), and it still says and plans what the read made it say and plan:
a household the register lists as medical since, the deciders of a team without a lead,
the lead a hazard goes to gone meanwhile, a record moved on meanwhile."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.models import Role
from bot.services import Services
from bot.storage.batch import Batch, Declined, Unchanged
from bot.storage.customers import CustomerData
from tests.conftest import Chat, at, make_user
from tests.test_arrears import act
from tests.tg_harness import L

pytestmark = pytest.mark.both_backends


async def add_medical(services: Services, name: str = "李奶奶") -> None:
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    area = (await services.people.areas_for(user))[0]
    await services.customers.create(user, CustomerData(
        account_no="5500012345", name=name, area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=("medical",)), services.clock.now())


async def zhang_in_a_team(services: Services, assistant: Assistant, lead: bool = True) -> Chat:
    """张三, a manager, in a team with a lead (王班长) or without."""
    await make_user(services, "张三")
    if lead:
        await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三")


async def register_arrears(chat: Chat, prepaid: str = "否") -> None:
    await chat.say("登记欠费 5500012345 王五 500元")
    await chat.say("9月1日")
    await chat.press(prepaid)
    await chat.press("保存")
    assert "已登记欠费" in chat.text, chat.text


async def pending(services: Services) -> list[tuple[str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE r.subject = 'arrears' AND r.state = 'pending' ORDER BY r.kind, u.id")
    return [(r[0], r[1]) for r in rows]


async def one(services: Services, sql: str) -> object:
    row = await services.db.fetchone(sql)
    assert row is not None
    return row[0]


async def test_a_needed_update_says_which_guard_held_it_back(services: Services) -> None:
    """Batch.update(declined_when=...): the wording when its read says so, else Unchanged."""
    await make_user(services, "张三")
    for when, raised in ((1, Declined), (0, Unchanged)):
        batch = Batch()
        batch.update("UPDATE users SET name = name WHERE id = ? AND 1 = 0", (1,), 1,
                     declined="hazard.no_lead",
                     declined_when=("SELECT CAST(? AS INTEGER) = 1", (when,)))
        with pytest.raises(Unchanged) as caught:
            await services.db.write_batch(batch)
        assert type(caught.value) is raised


async def test_a_notice_on_a_household_made_medical_since_asks_the_lead(
        services: Services, assistant: Assistant) -> None:
    zhang = await zhang_in_a_team(services, assistant)
    await register_arrears(zhang)
    await add_medical(services)  # the register lists it after the arrears were saved
    await act(zhang, "-|arrears.arrn|1")
    assert L("arrears.medical_note") in zhang.text
    assert "已请 王班长 决定是否停电" in zhang.text, zhang.text
    assert await pending(services) == [("decision", "王班长"), ("followup", "张三")]
    assert await one(services, "SELECT medical FROM arrears WHERE id = 1") == 1


async def test_a_notice_in_a_team_without_a_lead_asks_its_admins_or_says_none(
        services: Services, assistant: Assistant) -> None:
    zhang = await zhang_in_a_team(services, assistant, lead=False)
    await add_medical(services)
    await register_arrears(zhang)
    await act(zhang, "-|arrears.arrn|1")
    assert L("arrears.no_lead") in zhang.text and "已请" not in zhang.text
    assert await pending(services) == [("followup", "张三")]
    # a prepaid one is asked at once: of the admins, when the team has no lead
    await make_user(services, "赵管理", role=Role.ADMIN, areas=())
    await zhang.say("登记欠费 5500012345 王五 300元")
    await zhang.say("9月1日")
    await zhang.press("是")
    await zhang.press("保存")
    assert "已请 赵管理 决定是否停电" in zhang.text, zhang.text
    assert L("arrears.not_in_register").split("{")[0] not in zhang.text


async def test_a_notice_on_a_plain_household_plans_the_cutoff(
        services: Services, assistant: Assistant) -> None:
    zhang = await zhang_in_a_team(services, assistant)
    await register_arrears(zhang)
    assert L("arrears.not_in_register").split("{")[0] in zhang.text
    await act(zhang, "-|arrears.arrn|1")
    assert L("arrears.medical_note") not in zhang.text
    assert await pending(services) == [("cutoff", "张三"), ("followup", "张三")]


async def cutoff_form_open(services: Services, assistant: Assistant, clock: FakeClock) -> Chat:
    """张三's arrears #1, its notice served and its period over, the 已停电 form open."""
    zhang = await zhang_in_a_team(services, assistant)
    await register_arrears(zhang)
    await act(zhang, "-|arrears.arrn|1")
    at(clock, 2026, 12, 20, 10, 0)
    await zhang.tap("-|arrears.arrc|1")
    await zhang.press("现在")
    return zhang


@pytest.mark.parametrize("paid", [False, True])
async def test_a_cutoff_of_a_household_made_medical_meanwhile_is_refused(
        services: Services, assistant: Assistant, clock: FakeClock, paid: bool) -> None:
    """The lead's say first (as the read before the write gave it), whatever else changed."""
    zhang = await cutoff_form_open(services, assistant, clock)
    await add_medical(services)
    if paid:
        await services.db.execute("UPDATE arrears SET status = 'paid' WHERE id = 1")
    await zhang.press("保存")
    assert "停电须班长决定，班长还没有决定" in zhang.text, zhang.text
    assert "已记录停电" not in zhang.text
    assert await one(services, "SELECT status FROM arrears WHERE id = 1") == (
        "paid" if paid else "notice_served")


async def test_a_cutoff_of_a_record_moved_on_meanwhile_says_so(
        services: Services, assistant: Assistant, clock: FakeClock) -> None:
    zhang = await cutoff_form_open(services, assistant, clock)
    await services.db.execute("UPDATE arrears SET status = 'paid' WHERE id = 1")
    await zhang.press("保存")
    assert L("arrears.changed") in zhang.text and "须班长决定" not in zhang.text, zhang.text


async def hand_form_open(services: Services, assistant: Assistant) -> Chat:
    zhang = await zhang_in_a_team(services, assistant)
    await zhang.say("登记隐患 3号台区 2号杆拉线松动 严重")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    await zhang.tap("-|hazards.hzh|1")
    await zhang.say("需要停电处理")
    return zhang


@pytest.mark.parametrize("cleared", [False, True])
async def test_handing_a_hazard_up_when_the_lead_left_meanwhile_is_refused(
        services: Services, assistant: Assistant, cleared: bool) -> None:
    zhang = await hand_form_open(services, assistant)
    await services.db.execute("UPDATE users SET active = 0 WHERE name = '王班长'")
    if cleared:
        await services.db.execute("UPDATE hazards SET status = 'cleared' WHERE id = 1")
    await zhang.press("保存")
    assert L("hazard.no_lead") in zhang.text, zhang.text
    assert await one(services, "SELECT count(*) FROM reminders WHERE kind LIKE 'handed.%'") == 0


async def test_handing_a_hazard_cleared_meanwhile_says_so(
        services: Services, assistant: Assistant) -> None:
    zhang = await hand_form_open(services, assistant)
    await services.db.execute("UPDATE hazards SET status = 'cleared' WHERE id = 1")
    await zhang.press("保存")
    assert L("hazard.not_open").format(id=1) in zhang.text, zhang.text
    await make_user(services, "李班长", role=Role.LEAD, areas=())
    await services.db.execute("UPDATE hazards SET status = 'open' WHERE id = 1")
    await zhang.press("保存")  # both leads named, by id
    assert "隐患 #1 已转报班长（王班长、李班长）" in zhang.text, zhang.text
