"""Planned and temporary outages through the core: registration, the notice deadline, the
checklist of special customers, reminders with the clock moved, closure, and refusals."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import Chat, FakeNotifier, at, make_user


async def add_customer(services: Services, user: User, name: str, area: str, account: str,
                       cats: tuple[str, ...] = ("elderly",), active: bool = True) -> int:
    area_id = next(a.id for a in await services.people.areas_for(user) if a.name == area)
    cid = await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area_id, address="东风村3组", phone="13800001234",
        categories=cats), services.clock.now())
    if not active:
        await services.customers.set_active(user, cid, False, services.clock.now(), "搬走")
    return cid


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    """张三 (3号/5号台区) and his lead; two active special customers in 3号台区, one inactive
    there, and one in 5号台区."""
    zhang = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await add_customer(services, zhang, "李奶奶", "3号台区", "1000000001", ("medical",))
    await add_customer(services, zhang, "王大爷", "3号台区", "1000000002")
    await add_customer(services, zhang, "孙伯伯", "3号台区", "1000000003", active=False)
    await add_customer(services, zhang, "赵阿姨", "5号台区", "1000000004")
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def register(chat: Chat, start: str, end: str, kind: str = "计划检修",
                   area: str = "3号台区") -> None:
    await chat.say("登记停电")
    await chat.press(area)
    await chat.press("完成")
    await chat.press(kind)
    await chat.say(start)
    await chat.say(end)
    await chat.say("10kV东风线检修")
    await chat.press("保存")


async def pending(services: Services) -> list[tuple[str, int, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, r.urgent, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'outage' AND state = 'pending' ORDER BY r.kind, u.name")
    return [(r[0], r[1], r[2]) for r in rows]


async def test_planned_outage_from_registration_to_closure(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, lead = team
    await zhang.say("登记停电")
    assert "哪些台区停电" in zhang.text
    await zhang.press("3号台区")
    assert zhang.last is not None and zhang.last.edit is not None
    assert "☑ 3号台区" in [b.label for row in zhang.last.edit.buttons for b in row]
    await zhang.press("完成")
    await zhang.press("计划检修")
    await zhang.say("12月5日8点")
    await zhang.say("12月4日17点")  # before the start: refused with a clear re-prompt
    assert "结束必须在开始之后" in zhang.text and "什么时候恢复送电" in zhang.text
    await zhang.say("17点")  # a clock time alone is read on the start's day
    assert "原因" in zhang.text
    await zhang.say("10kV东风线检修")
    assert "结束：2026-12-05 周六 17:00" in zhang.text
    await zhang.press("保存")
    saved = zhang.text
    assert "已登记计划检修停电 #1：3号台区" in saved
    assert "告知期限：2026-11-28 周六 08:00 前（停电前7天）" in saved
    assert "受影响的特殊客户 2 户，需逐户告知：李奶奶、王大爷" in saved
    assert "登记晚了" not in saved
    assert await pending(services) == [
        ("notice.due", 0, "张三"), ("notice.escalate", 0, "王班长"), ("restore.ask", 0, "张三"),
        ("untold.daybefore", 1, "张三")]

    # The card: the checklist holds only the active customers of the affected area.
    await zhang.press("停电告知清单")
    card = zhang.text
    assert "已告知 0/2" in card and "☐ 李奶奶（3号台区 · 医疗设备/生命支持用电）" in card
    assert "王大爷" in card and "赵阿姨" not in card and "孙伯伯" not in card
    await zhang.say("待办")
    assert "张贴停电公告 2026-11-28 周六 08:00 前" in zhang.text

    # Notice posted: the notice reminders go; the lead will not be bothered.
    await zhang.tap("-|out|1")
    await zhang.press("已张贴公告")
    assert zhang.last is not None and zhang.last.edit is not None
    assert "☑ 已张贴停电公告（2026-11-27 周五 10:30）" in zhang.text
    assert [p[0] for p in await pending(services)] == ["restore.ask", "untold.daybefore"]

    # One customer told by phone.
    await zhang.press("☐ 李奶奶")
    assert "怎么告知 李奶奶 的？" in zhang.text
    await zhang.press("电话")
    assert "已告知 1/2" in zhang.text
    assert "☑ 李奶奶（3号台区 · 医疗设备/生命支持用电） — 电话告知" in zhang.text
    at(clock, 2026, 11, 28, 8, 1)  # the notice deadline passes: nothing, it was posted
    await service.scan_once()
    assert not any("公告" in t for _, r in notifier.sent for t in [r.text])

    # The day before: the urgent list names only who is still untold.
    at(clock, 2026, 12, 4, 9, 0)
    await service.scan_once()
    [daybefore] = [t for t in notifier.texts("张三") if "没有告知" in t]
    assert daybefore.startswith("🔴 计划检修停电 #1（3号台区）将于 2026-12-05 周六 08:00 开始")
    assert "还有 1 户" in daybefore and "王大爷" in daybefore and "李奶奶" not in daybefore
    [(_, reply)] = [(w, r) for w, r in notifier.sent if "没有告知" in r.text]
    snooze = next(b for row in reply.buttons for b in row if "1 小时后" in b.label)
    await zhang.tap(snooze.data)
    tell = next(b for row in reply.buttons for b in row if "王大爷" in b.label)
    await zhang.tap(tell.data)
    await zhang.press("上门")
    assert "已告知 2/2" in zhang.text
    clock.advance(hours=2)  # the snoozed list would be empty: it is not sent
    n = len(notifier.sent)
    await service.scan_once()
    assert len(notifier.sent) == n

    # At the end time: has power been restored? (After the day's morning digest.)
    at(clock, 2026, 12, 5, 8, 0)
    await service.scan_once()
    assert "确认恢复供电（计划 2026-12-05 周六 17:00 结束）" in notifier.texts("张三")[-1]
    at(clock, 2026, 12, 5, 17, 0)
    await service.scan_once()
    ask = notifier.texts("张三")[-1]
    assert ask == "🔌 计划检修停电 #1（3号台区）计划于 2026-12-05 周六 17:00 结束：恢复供电了吗？"
    [(_, reply)] = [(w, r) for w, r in notifier.sent if r.text == ask]
    restored = next(b for row in reply.buttons for b in row if "已恢复供电" in b.label)
    await zhang.tap(restored.data)
    assert "停电 #1 已恢复供电（2026-12-05 周六 17:00），已办结" in zhang.text
    row = await services.db.fetchone("SELECT status, restored_at FROM outages WHERE id = 1")
    assert row is not None and row[0] == "done" and row[1]
    assert await pending(services) == []
    await zhang.say("待办")
    assert "停电" not in zhang.text
    await lead.tap("-|out|1")  # the lead sees the whole record
    assert "🟢 已恢复供电" in lead.text
    assert "王大爷（3号台区 · 独居/空巢/孤寡老人） — 上门告知" in lead.text


async def test_registered_too_late_tells_manager_and_lead_at_once(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 22, 30)  # in quiet hours: the lead's notice is urgent all the same
    await register(zhang, "12月1日8点", "12月1日18点")
    assert "告知期限：2026-11-24 周二 08:00 前" in zhang.text
    assert "⚠️ 登记晚了：告知期限 2026-11-24 周二 08:00 已过" in zhang.text
    assert "已同时通知班长" in zhang.text
    await service.scan_once()
    [told] = notifier.texts("王班长")
    assert told.startswith("⚠️ 张三 登记的计划检修停电 #1（3号台区），2026-12-01 周二 08:00 开始，"
                           "登记时已超过告知期限 2026-11-24 周二 08:00")
    assert notifier.texts("张三") == []  # told in the saved message, not again at night
    await zhang.tap("-|out|1")
    assert "⚠️ 登记时已超过告知期限" in zhang.text


async def test_temporary_outage_notice_rule_differs_by_rule_set(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await register(zhang, "12月2日8点", "12点", kind="临时检修")
    assert "告知期限：无——当前规则版本（sgcc-2011）未规定临时检修停电的告知时限" in zhang.text
    assert [p[0] for p in await pending(services)] == ["restore.ask", "untold.daybefore"]
    await zhang.tap("-|out|1")
    assert "告知期限：无（当前规则版本未规定）" in zhang.text
    services.settings = services.settings.model_copy(update={"ruleset": "sgcc-newer"})
    await register(zhang, "11月29日8点", "11月29日12点", kind="临时检修")
    assert "告知期限：2026-11-28 周六 08:00 前（停电前24小时）" in zhang.text
    assert "针对重要客户" in zhang.text


async def test_several_areas_typed_and_another_teams_area_refused(
        team: tuple[Chat, Chat], services: Services, assistant: Assistant) -> None:
    zhang, _ = team
    other = await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    zhao = Chat(assistant, "test", "赵六")
    await zhang.say("登记停电")
    await zhang.say("9号台区")
    assert "「9号台区」不是你负责的台区。你负责的台区：3号台区、5号台区。" in zhang.text
    foreign = (await services.people.areas_for(other))[0].id
    draft = await services.conversations.get(1)
    assert draft is not None
    await zhang.tap(f"{draft.token}|tog|{foreign}")  # forged toggle: ignored
    draft = await services.conversations.get(1)
    assert draft is not None and not draft.state.values.get("areas")
    await zhang.say("3号台区、5号台区")
    assert "停电类型" in zhang.text
    await zhang.press("计划检修")
    await zhang.say("12月10日8点")
    await zhang.say("18点")
    await zhang.say("更换配变")
    await zhang.press("保存")
    assert "已登记计划检修停电 #1：3号台区、5号台区" in zhang.text
    assert "受影响的特殊客户 3 户" in zhang.text  # now 赵阿姨 of 5号台区 too
    # The free-text way names the foreign area at once.
    await zhang.say("登记计划停电 9号台区")
    assert "「9号台区」不是你负责的台区" in zhang.text and "类型 计划检修" in zhang.text
    await zhang.say("/cancel")
    # Another team's member cannot open or tick this outage with forged buttons.
    for data in ("-|out|1", "-|outn|1", "-|outc|1:1", "-|outh|1:1:phone", "-|outr|1"):
        await zhao.tap(data)
        assert "没有找到这条停电记录" in zhao.text, data
    row = await services.db.fetchone("SELECT notice_posted_at, status FROM outages WHERE id = 1")
    assert row is not None and row[0] is None and row[1] == "planned"
    told = await services.db.fetchone(
        "SELECT count(*) FROM outage_notices WHERE told_at IS NOT NULL")
    assert told is not None and told[0] == 0


async def test_restart_sends_nothing_twice_and_restore_waits_for_the_start(
        team: tuple[Chat, Chat], services: Services, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    zhang, lead = team
    await register(zhang, "12月5日10点", "17点")
    at(clock, 2026, 11, 28, 8, 0)  # the morning digest
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert "张贴停电公告 2026-11-28 周六 10:00 前" in notifier.texts("张三")[-1]
    at(clock, 2026, 11, 28, 10, 1)  # notice deadline, not posted: manager and lead told once
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert "张贴停电公告期限 2026-11-28 周六 10:00 已过" in notifier.texts("张三")[-1]
    assert any(t.startswith("⚠️ 超期提醒：张三 的计划检修停电 #1") for t in notifier.texts("王班长"))
    n = len(notifier.sent)
    await ReminderService(services, Dispatcher(services, [notifier])).scan_once()
    assert len(notifier.sent) == n
    await lead.tap("-|outr|1")  # before the start: not possible yet
    assert "开始后才能确认恢复供电" in lead.text


async def test_english(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("/lang en")
    await zhang.say("/outage")
    assert "Which areas lose power?" in zhang.text
    await zhang.say("3号台区")
    await zhang.press("Planned")
    await zhang.say("12月5日8点")
    await zhang.say("12月5日7点")
    assert "The end must come after the start" in zhang.text
    await zhang.say("12月5日17点")
    await zhang.say("line work")
    await zhang.press("Save")
    assert "✅ Planned maintenance outage #1 registered: 3号台区" in zhang.text
    assert "Give notice by 2026-11-28 Sat 08:00 (7 days before the outage)" in zhang.text
    await zhang.press("checklist")
    assert "Checklist (told 0/2)" in zhang.text and "☐ 李奶奶 (3号台区 · " in zhang.text
    await zhang.press("李奶奶")
    await zhang.press("Visit")
    assert "— in person" in zhang.text


async def test_free_text_prefills_areas_and_kind(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("登记临时停电 3号台区 5号台区")
    assert "📝 新停电登记，已填好：停电台区 3号台区、5号台区 · 类型 临时检修" in zhang.text
    assert "什么时候开始停电" in zhang.text


async def test_an_outage_not_started_can_be_called_off(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    await register(zhang, "12月10日8点", "12月10日17点")
    assert await pending(services)
    await zhang.tap("-|out|1")
    await zhang.press("取消这次停电")
    assert "确定取消计划检修停电 #1" in zhang.text
    await zhang.press("确定取消停电")
    assert zhang.last is not None and zhang.last.toast == "🚫 停电 #1 已取消，相关提醒已停止。"
    assert "⚪ 已取消" in zhang.text
    assert await pending(services) == []
    row = await services.db.fetchone("SELECT status FROM outages")
    assert row is not None and row[0] == "cancelled"
    at(clock, 2026, 12, 9, 9, 0)
    await service.scan_once()
    assert not any("停电 #1" in r.text for _, r in notifier.sent)
    # One already under way cannot be called off.
    await register(zhang, "刚才", "今天23点")
    await zhang.tap("-|outxy|2")
    assert zhang.last is not None and zhang.last.toast == "这次停电已经开始或已结束，不能取消。"


async def test_bare_hour_for_an_outage_start_is_the_next_one(team: tuple[Chat, Chat],
                                                             clock: FakeClock) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 16, 20)
    await zhang.say("登记停电")
    await zhang.press("3号台区")
    await zhang.press("完成")
    await zhang.press("临时检修")
    await zhang.say("5点")  # ahead of 16:20: 17:00 today, not 05:00 this morning
    await zhang.say("9点")  # after the start: 21:00
    await zhang.say("10kV东风线故障")
    assert "开始：2026-11-27 周五 17:00" in zhang.text, zhang.text
    assert "结束：2026-11-27 周五 21:00" in zhang.text, zhang.text
