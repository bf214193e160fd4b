"""Arrears (欠费) end to end in the core: registration to closure with its reminders, bad
input, the notice period before a cut-off, medical households (the lead decides), prepaid
customers, the urgent restore deadline, restart safety and team isolation — clock moved."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.events import Reply
from bot.features.arrears import parse_amount_text
from bot.forms.fields import Invalid
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.customers import CustomerData
from bot.storage.people import UserPrefs
from tests.conftest import Chat, FakeNotifier, at, make_user


def labels(chat: Chat) -> list[str]:
    assert chat.last is not None
    return [b.label for r in chat.last.replies for row in r.buttons for b in row]


def button(reply: Reply, label: str) -> str:
    return next(b.data for row in reply.buttons for b in row if label in b.label)


@dataclass
class Team:
    zhang: Chat
    lead: Chat
    manager: User


@pytest.fixture
async def team(services: Services, assistant: Assistant, service: ReminderService) -> Team:
    manager = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await service.scan_once()  # today's (empty) digest is done: later scans send singly
    return Team(Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长"), manager)


async def add_customer(services: Services, user: User, name: str, cats: tuple[str, ...],
                       account: str = "5500012345") -> None:
    area = (await services.people.areas_for(user))[0]
    await services.customers.create(user, CustomerData(
        account_no=account, name=name, area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=cats), services.clock.now())


async def register(chat: Chat, line: str = "登记欠费 5500012345 500元", since: str = "10月1日",
                   prepaid: str = "否") -> None:
    await chat.say(line)
    await chat.say(since)
    await chat.press(prepaid)
    await chat.press("保存")
    assert "已登记欠费" in chat.text, chat.text


async def act(chat: Chat, data: str) -> None:
    """Press an action button on the card and answer its one question with 现在."""
    await chat.tap(data)
    await chat.press("现在")
    await chat.press("保存")


async def pending(services: Services) -> list[tuple[str, int, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, r.urgent, r.due_at FROM reminders r WHERE subject = 'arrears' "
        "AND state = 'pending' ORDER BY due_at, kind")
    return [(r[0], r[1], r[2]) for r in rows]


async def status(services: Services) -> str:
    row = await services.db.fetchone("SELECT status FROM arrears WHERE id = 1")
    assert row is not None
    return str(row[0])


# --- amounts --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cents"), [
    ("500", 50000), ("500.5", 50050), ("￥500", 50000), ("¥500", 50000), ("500元", 50000),
    ("1,200.50", 120050), ("１２００", 120000), ("500.00元", 50000), (" 500 元 ", 50000),
    ("1.2万", 1200000), ("0.01", 1), ("1，200", 120000),
    # issue #15: amounts in Chinese numerals are read
    ("五百", 50000), ("三百元", 30000), ("一千二百五十元", 125000), ("三百五十块五", 35050),
    ("两千块钱", 200000), ("一万二", 1200000), ("五块三毛二", 532)])
def test_amount_formats(text: str, cents: int) -> None:
    assert parse_amount_text(text) == cents


@pytest.mark.parametrize(("text", "key"), [
    ("-5", "negative"), ("负500", "negative"), ("五百几", "words"), ("几百元", "words"),
    ("abc", "invalid"), ("0", "zero"), ("0.00元", "zero"), ("500.555", "decimals"),
    ("1,20", "invalid"), ("", "invalid"), ("1000000000", "too_big")])
def test_amount_refusals(text: str, key: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_amount_text(text)
    assert err.value.key == f"arrears.amount.{key}"


# --- the whole life cycle -------------------------------------------------------------
async def test_registration_to_closure_with_reminders(
        team: Team, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    zhang, lead = team.zhang, team.lead
    await add_customer(services, team.manager, "李四", ("elderly",))
    await zhang.say("/arrears")
    await zhang.say("5500012345")  # the register knows the name: not asked (#15)
    assert "户名已填好" in zhang.text and "欠费金额（元）？" in zhang.text
    await zhang.say("500元")
    await zhang.say("10月1日")
    await zhang.press("否")
    assert "户号：5500012345（特殊客户档案：李四）" in zhang.text and "户名：李四" in zhang.text
    await zhang.press("保存")
    assert ("✅ 已登记欠费 #1：李四（户号 5500012345），欠费 ￥500.00，2026-10-01 周四 起"
            "（已欠 57 天）。") in zhang.text
    assert "每 3天 提醒你跟进催费，下次：2026-11-30 周一 09:00" in zhang.text
    assert "送达满 7天 后才能停电" in zhang.text and "不在特殊客户档案中" not in zhang.text
    row = await services.db.fetchone("SELECT amount_cents, since, in_register, customer_name "
                                     "FROM arrears WHERE id = 1")
    assert row is not None and tuple(row) == (50000, "2026-10-01", 1, "李四")

    # Follow-up every 3 days while unpaid.
    at(clock, 2026, 11, 30, 8, 1)
    await service.scan_once()  # the morning digest lists it ...
    assert "欠费 #1（李四）：催费跟进 2026-11-30 周一 09:00" in notifier.texts("张三")[-1]
    at(clock, 2026, 11, 30, 9, 1)
    await service.scan_once()  # ... and the follow-up itself comes at 09:00
    assert notifier.texts("张三")[-1] == (
        "💬 催费跟进：欠费 #1（李四），户号 5500012345，欠费 ￥500.00，已欠 60 天。"
        "下一步：送达停电通知书。")
    assert ("followup", 0, "2026-12-03T01:00:00+00:00") in await pending(services)

    # The cut-off notice: earliest cut-off = delivery + 7 days.
    await act(zhang, "-|arrn|1")
    assert "已记录停电通知书送达（2026-11-30 周一 09:01）" in zhang.text
    assert "最早可停电：2026-12-07 周一 09:01（通知期 7天）" in zhang.text
    await zhang.tap("-|arr|1")
    assert "🟠 停电通知书已送达" in zhang.text and "还剩 7 天 0 小时" in zhang.text
    assert "✂️ 已停电" not in labels(zhang)

    # Before the notice period ends a cut-off is refused, with the earliest time.
    at(clock, 2026, 12, 7, 8, 1)
    await service.scan_once()
    at(clock, 2026, 12, 7, 9, 0)
    await zhang.tap("-|arrc|1")
    assert "还不能停电" in zhang.text and "最早 2026-12-07 周一 09:01 才能停电" in zhang.text
    assert "停电记录" not in zhang.text and await status(services) == "notice_served"

    # At the end of the notice period: "cut-off now possible", and the button appears.
    at(clock, 2026, 12, 7, 9, 2)
    await service.scan_once()
    reminder = notifier.last("张三")
    assert reminder.text.startswith("✂️ 欠费 #1（李四）：停电通知书送达已满通知期"
                                    "（2026-12-07 周一 09:01），现在可以依法停电。")
    await zhang.tap(button(reminder, "已停电"))
    await zhang.press("现在")
    await zhang.press("保存")
    assert "⚫ 欠费 #1 已记录停电（2026-12-07 周一 09:02）。" in zhang.text
    assert "客户缴清后须在 24小时 内恢复供电" in zhang.text
    assert not any(k == "cutoff" for k, _, _ in await pending(services))

    # Paid late in the evening: restore within 24 h, urgent reminders even in quiet hours.
    at(clock, 2026, 12, 8, 23, 0)
    await act(zhang, "-|arrp|1")
    assert "✅ 欠费 #1 已记录缴费 ￥500.00（2026-12-08 周二 23:00）。" in zhang.text
    assert "请在 2026-12-09 周三 23:00 前恢复供电（24小时，还剩 1 天 0 小时）" in zhang.text
    assert [(k, u) for k, u, _ in await pending(services)] == [
        ("restore.soon", 1), ("restore.due", 1), ("restore.escalate", 1)]
    at(clock, 2026, 12, 9, 8, 1)
    await service.scan_once()
    assert "恢复供电 2026-12-09 周三 23:00 前" in notifier.texts("张三")[-1]
    at(clock, 2026, 12, 9, 21, 1)  # quiet hours (21:00-07:30) do not hold it
    await service.scan_once()
    assert notifier.texts("张三")[-1] == (
        "⏰ 欠费 #1（李四）：请在 2026-12-09 周三 23:00 前恢复供电（还剩 1 小时 59 分）。")
    at(clock, 2026, 12, 9, 23, 1)  # overdue: the manager, and the lead is told
    await service.scan_once()
    assert "恢复供电期限 2026-12-09 周三 23:00 已过（已超期 1 分钟）" in notifier.texts("张三")[-1]
    assert notifier.texts("王班长")[-1] == (
        "⚠️ 超期提醒：张三 的欠费 #1（李四），恢复供电期限 2026-12-09 周三 23:00 已过"
        "（已超期 1 分钟）。")
    n = len(notifier.sent)
    await service.scan_once()
    assert len(notifier.sent) == n  # each sent once

    # Restored: closed, late.
    at(clock, 2026, 12, 9, 23, 30)
    await act(zhang, "-|arrs|1")
    assert "💡 欠费 #1 已复电（2026-12-09 周三 23:30），已办结。 （已超期）" in zhang.text
    await lead.tap("-|arr|1")
    assert "🟢 已复电（已办结）" in lead.text and labels(lead) == []
    assert await pending(services) == []
    at(clock, 2026, 12, 12, 10, 0)
    n = len(notifier.sent)
    await service.scan_once()
    assert all("欠费" not in r.text for _, r in notifier.sent[n:])


async def test_paid_before_any_cutoff_closes_at_once(team: Team, services: Services) -> None:
    zhang = team.zhang
    await register(zhang, "登记欠费 5500012345 王五 300")
    await act(zhang, "-|arrp|1")
    assert "未停过电，无需复电，已办结" in zhang.text
    await zhang.tap("-|arr|1")
    assert "🟢 已缴费（未停电，已办结）" in zhang.text and labels(zhang) == []
    assert await pending(services) == []
    await zhang.tap("-|arrp|1")  # a stale button: the card, nothing recorded twice
    assert "🟢 已缴费（未停电，已办结）" in zhang.text


async def test_bad_input_is_refused_and_asked_again(team: Team, services: Services) -> None:
    zhang = team.zhang
    await zhang.say("/arrears")
    await zhang.say("12345")
    assert "户号「12345」不对" in zhang.text
    await zhang.say("5500099999")  # not in the register: allowed
    await zhang.say("跳过")
    for text, says in (("-5", "不能是负数"), ("五百几", "例如 350.5"), ("abc", "没看懂金额"),
                       ("0", "要大于 0"), ("500.555", "最多到分")):
        await zhang.say(text)
        assert says in zhang.text and "欠费金额（元）？" in zhang.text, text
    await zhang.say("1,200.50")
    await zhang.say("12月1日")
    assert "不能晚于今天" in zhang.text
    await zhang.say("乱七八糟")
    assert "没看懂时间「乱七八糟」" in zhang.text
    await zhang.say("10月1日")
    await zhang.say("也许")
    assert "请回答 是 或 否" in zhang.text
    await zhang.press("否")
    assert "户号：5500099999（不在特殊客户档案中）" in zhang.text
    await zhang.press("保存")  # no name and none on file: asked for, nothing saved
    assert "需要填写户名" in zhang.text
    assert await services.db.fetchone("SELECT id FROM arrears") is None
    await zhang.press("修改")
    await zhang.press("户名")
    await zhang.say("赵大")
    await zhang.press("保存")
    assert "✅ 已登记欠费 #1：赵大（户号 5500099999），欠费 ￥1,200.50" in zhang.text
    assert "ℹ️ 户号 5500099999 不在特殊客户档案中（已照常登记）。" in zhang.text
    row = await services.db.fetchone("SELECT amount_cents, in_register FROM arrears")
    assert row is not None and tuple(row) == (120050, 0)
    # Action times: a bare date or a future time is refused.
    await zhang.tap("-|arrn|1")
    await zhang.say("昨天")
    assert "只有日期，请写上几点" in zhang.text
    await zhang.say("明天上午9点")
    assert "还没到" in zhang.text
    await zhang.say("9月1日上午9点")
    await zhang.press("保存")
    assert "早于欠费起始日期" in zhang.text and await status(services) == "collecting"


async def test_prefill_from_one_sentence(team: Team, services: Services) -> None:
    zhang = team.zhang
    await add_customer(services, team.manager, "李四", ("elderly",))
    await zhang.say("登记欠费 5500012345 500元")
    assert "已填好：户号 5500012345（特殊客户档案：李四） · 欠费金额 ￥500.00" in zhang.text
    assert "特殊客户档案：李四（3号台区），户名已填好。" in zhang.text  # from the register
    assert "欠费起始日期？" in zhang.text
    await zhang.say("取消")
    await zhang.press("确定放弃")
    await zhang.say("登记欠费 5500012345 五百 上周一")  # issue #15: Chinese numerals are read
    assert "欠费金额 ￥500.00 · 欠费起始 2026-11-16 周一" in zhang.text


# --- medical households ---------------------------------------------------------------
async def _medical(team: Team, services: Services, service: ReminderService,
                   notifier: FakeNotifier) -> Reply:
    """A medical household, notice served at T0 (Fri 11-27 10:30): the lead is asked."""
    await add_customer(services, team.manager, "李奶奶", ("medical", "elderly"))
    await register(team.zhang, since="9月1日")
    assert "⚕️ 该户在特殊客户档案中登记为医疗设备/生命支持用电" in team.zhang.text
    await act(team.zhang, "-|arrn|1")
    assert "已请 王班长 决定是否停电" in team.zhang.text
    await service.scan_once()
    ask = notifier.last("王班长")
    assert ask.text.startswith("⚕️ 请你决定是否停电：张三 的欠费 #1（李奶奶），户号 5500012345")
    assert "最早可停电：2026-12-04 周五 10:30" in ask.text
    return ask


async def test_medical_household_lead_approves(team: Team, services: Services,
                                               service: ReminderService,
                                               notifier: FakeNotifier, clock: FakeClock) -> None:
    zhang, lead = team.zhang, team.lead
    ask = await _medical(team, services, service, notifier)
    await zhang.tap("-|arr|1")
    assert "⚕️ 需班长决定" in labels(zhang) and "✂️ 已停电" not in labels(zhang)
    # The manager cannot take the lead's decision, not even with the lead's button data.
    await zhang.tap(button(ask, "同意停电"))
    assert "须由班长决定，你不能代为选择" in zhang.text
    row = await services.db.fetchone("SELECT lead_decision FROM arrears WHERE id = 1")
    assert row is not None and row[0] is None
    # 需班长决定 asks again (once a day).
    await zhang.tap("-|arrq|1")
    assert "已请 王班长 决定" in zhang.text
    await zhang.tap("-|arrq|1")
    n = len(notifier.texts("王班长"))
    await service.scan_once()
    assert len(notifier.texts("王班长")) == n + 1
    # The notice period ends: still no cut-off for the manager, and no "cut-off" reminder.
    at(clock, 2026, 12, 4, 8, 1)
    await service.scan_once()
    at(clock, 2026, 12, 4, 10, 31)
    await service.scan_once()
    assert not any("现在可以依法停电" in t for t in notifier.texts("张三"))
    await zhang.tap("-|arrc|1")
    assert "停电须班长决定，班长还没有决定" in zhang.text and "停电记录" not in zhang.text
    # The lead approves from the message, with a reason confirmed by 保存 (issue #15 §3: it
    # was one tap): the manager is told and may now cut off.
    await lead.tap(button(ask, "同意停电"))
    assert "请写明同意停电的理由" in lead.text
    await lead.say("已上门核实，制氧机已停用")
    await lead.press("保存")
    assert "✅ 已记录：同意停电" in lead.text
    await lead.tap("-|arr|1")
    assert "班长决定：✅ 王班长 同意停电" in lead.text
    assert "同意停电理由：已上门核实，制氧机已停用" in lead.text
    await service.scan_once()
    texts = notifier.texts("张三")
    assert ("⚕️ 欠费 #1（李奶奶）：✅ 王班长 同意停电。\n"
            "同意停电理由：已上门核实，制氧机已停用") in texts
    assert any("现在可以依法停电" in t for t in texts)
    await zhang.tap("-|arr|1")
    assert "✂️ 已停电" in labels(zhang)
    await act(zhang, "-|arrc|1")
    assert "已记录停电" in zhang.text and await status(services) == "cut_off"
    await lead.tap(button(ask, "不停电"))  # decided already: it stands
    assert "这户已经决定过了：✅ 王班长 同意停电" in lead.text


async def test_medical_household_lead_refuses(team: Team, services: Services,
                                              service: ReminderService, notifier: FakeNotifier,
                                              clock: FakeClock) -> None:
    zhang, lead = team.zhang, team.lead
    ask = await _medical(team, services, service, notifier)
    await lead.tap(button(ask, "不停电"))
    assert "⛔ 已记录：不停电" in lead.text
    await service.scan_once()
    assert "⚕️ 欠费 #1（李奶奶）：⛔ 王班长 决定不停电。" in notifier.texts("张三")
    at(clock, 2026, 12, 5, 10, 0)  # after the notice period
    await zhang.tap("-|arr|1")
    assert "班长决定：⛔ 王班长 决定不停电" in zhang.text
    assert labels(zhang) == ["💰 已缴费"]
    await zhang.tap("-|arrc|1")
    assert "班长 王班长 已决定该户不停电" in zhang.text
    kinds = {k for k, _, _ in await pending(services)}
    assert kinds == {"followup"}  # follow-ups go on; no cut-off reminder
    await zhang.say("/todo")
    assert "班长决定不停电，继续催缴" in zhang.text


async def test_medical_flag_added_to_the_register_later_still_counts(
        team: Team, services: Services, clock: FakeClock) -> None:
    zhang = team.zhang
    await register(zhang, "登记欠费 5500012345 周八 500", since="9月1日")
    await act(zhang, "-|arrn|1")
    await add_customer(services, team.manager, "周八", ("medical",))  # registered afterwards
    at(clock, 2026, 12, 5, 10, 0)
    await zhang.tap("-|arr|1")
    assert "✂️ 已停电" not in labels(zhang) and "⚕️ 需班长决定" in labels(zhang)
    await zhang.tap("-|arrc|1")
    assert "停电须班长决定" in zhang.text


# --- prepaid --------------------------------------------------------------------------
async def test_prepaid_has_no_notice_or_cutoff(team: Team, services: Services,
                                               service: ReminderService,
                                               notifier: FakeNotifier, clock: FakeClock) -> None:
    zhang = team.zhang
    await register(zhang, "登记欠费 5500012345 钱七 88.8", prepaid="是")
    assert "远程费控用户：按费控协议由系统自动停电、复电，不适用停电通知书" in zhang.text
    assert "送达停电通知书" not in zhang.text
    await zhang.tap("-|arr|1")
    assert labels(zhang) == ["💰 已缴费"] and "远程费控：是" in zhang.text
    await zhang.tap("-|arrn|1")
    assert "远程费控用户不需要送达停电通知书" in zhang.text
    await zhang.tap("-|arrc|1")
    assert "由费控系统按协议停电" in zhang.text and await status(services) == "collecting"
    assert {k for k, _, _ in await pending(services)} == {"followup"}
    at(clock, 2026, 11, 30, 8, 1)
    await service.scan_once()
    at(clock, 2026, 11, 30, 9, 1)
    await service.scan_once()
    assert "远程费控用户，系统按协议自动停复电" in notifier.texts("张三")[-1]
    await act(zhang, "-|arrp|1")
    assert "费控系统会自动复电，已办结" in zhang.text and await pending(services) == []


async def test_prepaid_medical_household_asks_the_lead_at_once(
        team: Team, services: Services, service: ReminderService,
        notifier: FakeNotifier) -> None:
    await add_customer(services, team.manager, "孙婆婆", ("medical",))
    await register(team.zhang, prepaid="是")
    assert "已请 王班长 决定是否停电" in team.zhang.text
    await service.scan_once()
    assert "费控系统可能自动停电" in notifier.texts("王班长")[-1]


# --- robustness -----------------------------------------------------------------------
async def test_restart_sends_nothing_twice(team: Team, services: Services,
                                           notifier: FakeNotifier, clock: FakeClock) -> None:
    await register(team.zhang, "登记欠费 5500012345 吴九 200")
    first = ReminderService(services, Dispatcher(services, [notifier]))
    at(clock, 2026, 11, 30, 8, 1)
    await first.scan_once()
    at(clock, 2026, 11, 30, 9, 1)
    await first.scan_once()
    assert sum("催费跟进" in t for t in notifier.texts("张三")) == 2  # digest + follow-up
    fresh = ReminderService(services, Dispatcher(services, [notifier]))
    n = len(notifier.sent)
    await fresh.scan_once()
    await first.scan_once()
    assert len(notifier.sent) == n
    rows = await services.db.fetchall(
        "SELECT state, count(*) FROM reminders WHERE kind = 'followup' GROUP BY state")
    assert {r[0]: r[1] for r in rows} == {"sent": 1, "pending": 1}


async def test_followup_folded_into_the_digest_still_repeats(
        team: Team, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    """A held follow-up is folded into the digest, never 'sent': the chain must go on."""
    await UserPrefs(services.db).set_quiet(team.manager.id, "08:30", "12:00")
    await register(team.zhang, "登记欠费 5500012345 郑十 200")
    at(clock, 2026, 11, 30, 9, 1)
    assert (await service.scan_once()).held == 1
    at(clock, 2026, 11, 30, 12, 1)
    await service.scan_once()
    assert "💬 催费跟进：欠费 #1（郑十）" in notifier.texts("张三")[-1]  # the held one, folded in
    rows = await services.db.fetchall(
        "SELECT state, due_at FROM reminders WHERE kind = 'followup' ORDER BY due_at")
    assert [tuple(r) for r in rows] == [("digested", "2026-11-30T01:00:00+00:00"),
                                        ("pending", "2026-12-03T01:00:00+00:00")]


async def test_todo_for_manager_and_lead(team: Team, services: Services) -> None:
    await register(team.zhang, "登记欠费 5500012345 冯一 200")
    await team.zhang.say("待办")
    assert "欠费 #1（冯一）：催费跟进 2026-11-30 周一 09:00。下一步：送达停电通知书。" in (
        team.zhang.text)
    await team.lead.say("/todo")
    assert "班组待办（1 项" in team.lead.text and "欠费 #1（冯一）" in team.lead.text


async def test_other_teams_cannot_open_or_press(team: Team, services: Services,
                                                assistant: Assistant) -> None:
    await add_customer(services, team.manager, "李奶奶", ("medical",))
    await register(team.zhang)
    await act(team.zhang, "-|arrn|1")
    await make_user(services, "赵六", team="城西供电所", areas=("1号台区",))
    await make_user(services, "孙班长", role=Role.LEAD, team="城西供电所", areas=())
    await make_user(services, "李雷")  # same team, not the owner
    stranger, other_lead = Chat(assistant, "test", "赵六"), Chat(assistant, "test", "孙班长")
    colleague = Chat(assistant, "test", "李雷")
    for chat in (stranger, other_lead, colleague):
        for data in ("-|arr|1", "-|arrn|1", "-|arrc|1", "-|arrp|1", "-|arrs|1", "-|arrq|1",
                     "-|arry|1", "-|arrx|1"):
            await chat.tap(data)
            assert "没有找到这条欠费记录" in chat.text, (chat.external_id, data)
            assert "李奶奶" not in chat.text
    await other_lead.say("/todo")
    assert "欠费" not in other_lead.text
    row = await services.db.fetchone("SELECT status, lead_decision FROM arrears WHERE id = 1")
    assert row is not None and tuple(row) == ("notice_served", None)


async def test_recent_arrears_warn_about_the_30_day_rule(team: Team) -> None:
    zhang = team.zhang
    await register(zhang, "登记欠费 5500012345 陈二 200", since="11月10日")
    await act(zhang, "-|arrn|1")
    assert "到 2026-12-04 周五 10:30 时欠费只有 24 天" in zhang.text
    await register(zhang, "登记欠费 5500012345 陈二 80")  # the same household again
    assert "该户号还有未结清的欠费：#1" in zhang.text
