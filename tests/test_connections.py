"""业扩报装 (issue #14 §3, commitments 5 and 6): registered from a sentence, the supply-plan
reply and the connection held to the rule set's working days (the 2011 set counts them
apart, the newer one end to end), reminded and escalated, carried by /todo and the report."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.deadlines import load_ruleset
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


def offers(chat: Chat, label: str) -> bool:
    return any(label in b for b in chat.buttons)


def newer(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "settings",
                        services.settings.model_copy(update={"ruleset": "sgcc-newer"}))


async def pending(services: Services) -> list[tuple[str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'connection' AND state = 'pending' ORDER BY r.due_at, r.kind")
    return [(r[0], r[1]) for r in rows]


async def apply(chat: Chat, sentence: str = "业扩 居民 李四 新装8kW 3号台区") -> None:
    await chat.say(sentence)
    if "哪个台区" in chat.text:
        await chat.press("跳过")
    await chat.press("现在")
    await chat.press("保存")


def test_each_rule_set_states_its_figures() -> None:
    old, new = load_ruleset("sgcc-2011").connection, load_ruleset("sgcc-newer").connection
    assert old is not None and new is not None
    assert old.plan_reply is not None and old.connect_after_inspection is not None
    assert [old.plan_reply.get(k).amount for k in ("residential", "lv", "hv_single", "hv_dual")
            ] == [3, 7, 15, 30]
    assert [old.connect_after_inspection.get(k).amount
            for k in ("residential", "lv", "hv_single", "hv_dual")] == [3, 5, 5, 5]
    assert old.end_to_end is None and "end_to_end" in old.notes
    assert new.end_to_end is not None and new.plan_reply is None
    assert [new.end_to_end.get(k).amount for k in ("residential", "lv", "hv_single", "hv_dual")
            ] == [5, 6, 22, 32]


async def test_an_application_from_one_sentence_then_each_step_on_time(
        team: tuple[Chat, Chat], clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)  # a Friday
    await zhang.say("业扩 居民 李四 新装8kW 3号台区")
    summary = zhang.text
    assert "客户类别 居民" in summary and "申请人 李四" in summary
    assert "新装8kW" in summary and "3号台区" in summary
    assert "受理时间" in summary  # only what the sentence did not say
    await zhang.press("现在")
    await zhang.press("保存")
    assert "已登记业扩报装 #1（居民，李四）" in zhang.text
    # 2011: the plan in 3 working days (Mon 11-30, Tue 12-01, Wed 12-02).
    assert "答复供电方案：2026-12-02 周三 10:30 前（3个工作日" in zhang.text
    assert "验收合格后 3个工作日 内送电" in zhang.text
    assert [k for k, _ in await pending(services)] == [
        "plan.half", "plan.soon", "plan.due", "plan.escalate"]
    await zhang.say("待办")
    assert "业扩报装 #1（李四，居民）：答复供电方案 2026-12-02 周三 10:30 前" in zhang.text

    at(clock, 2026, 12, 1, 9, 0)
    await zhang.press("#1 业扩")  # the to-do line opens the card
    await zhang.press("方案已答复")
    await zhang.press("现在")
    await zhang.say("单相 8kW，接 3号台区 2号杆")
    await zhang.press("保存")
    assert "#1 供电方案已答复" in zhang.text and "按时" in zhang.text
    assert offers(zhang, "验收合格")  # the next step is one tap away
    assert await pending(services) == []  # the plan's reminders are gone, none yet to connect

    at(clock, 2026, 12, 3, 15, 0)  # Thursday
    await zhang.press("验收合格")
    await zhang.say("前天")  # before the plan reply: refused politely, nothing lost
    assert "早于上一步" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    # Connected within 3 working days of the acceptance: Fri, Mon, Tue 12-08.
    assert "装表接电：2026-12-08 周二 15:00 前（3个工作日" in zhang.text
    assert [k for k, _ in await pending(services)] == [
        "connect.half", "connect.soon", "connect.due", "connect.escalate"]

    at(clock, 2026, 12, 7, 11, 0)
    await zhang.press("已送电")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "#1 已装表送电，办结" in zhang.text and "按时" in zhang.text
    assert await pending(services) == []
    await zhang.say("待办")
    assert "业扩报装" not in zhang.text


async def test_the_connection_waits_for_the_works_acceptance_in_the_2011_set(
        team: tuple[Chat, Chat], clock: FakeClock) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)
    await apply(zhang)
    assert offers(zhang, "方案已答复") and not offers(zhang, "已送电")
    await zhang.press("方案已答复")
    await zhang.press("现在")
    await zhang.press("跳过")
    await zhang.press("保存")
    await zhang.press("打开")
    assert "状态：方案已答复，待验收/送电" in zhang.text
    assert offers(zhang, "验收合格") and not offers(zhang, "已送电")


async def test_the_newer_set_counts_end_to_end_and_connects_from_any_open_state(
        services: Services, assistant: Assistant, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    newer(services, monkeypatch)
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    zhang = Chat(assistant, "test", "张三")
    at(clock, 2026, 11, 27, 10, 30)
    await apply(zhang, "报装 高压单电源 城东机械厂 新装 400kVA")
    assert "已登记业扩报装 #1（高压单电源，城东机械厂）" in zhang.text
    # 22 working days from Fri 11-27: Dec has 23 working days from Mon 11-30 on.
    assert "装表接电（全流程）：2026-12-29 周二 10:30 前（22个工作日" in zhang.text
    assert "答复供电方案" not in zhang.text
    assert [k for k, _ in await pending(services)] == [
        "connect.half", "connect.soon", "connect.due", "connect.escalate"]
    assert offers(zhang, "已送电")
    await zhang.press("已送电")
    await zhang.press("现在")
    await zhang.press("保存")
    assert "#1 已装表送电，办结" in zhang.text
    assert await pending(services) == []


async def test_the_class_is_asked_when_the_sentence_does_not_say_it(
        team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("业扩 王五 增容")
    assert "客户类别？" in zhang.text
    await zhang.say("高压")  # not a class: both 高压 ones are offered, nothing lost
    assert "高压单电源" in zhang.text and "高压双电源" in zhang.text
    await zhang.press("高压双电源")
    assert "哪个台区" in zhang.text
    await zhang.press("跳过")
    await zhang.press("现在")
    assert "申请人：王五" in zhang.text and "申请内容：增容" in zhang.text
    await zhang.press("保存")
    assert "答复供电方案：" in zhang.text and "30个工作日" in zhang.text


async def test_overdue_reminds_daily_and_escalates_to_the_lead(
        team: tuple[Chat, Chat], clock: FakeClock, services: Services,
        service: ReminderService, notifier: FakeNotifier) -> None:
    zhang, _ = team
    at(clock, 2026, 11, 27, 10, 30)
    await apply(zhang)
    at(clock, 2026, 12, 2, 8, 1)
    await service.scan_once()  # the morning digest of the day it falls due
    at(clock, 2026, 12, 2, 10, 31)
    await service.scan_once()
    assert "已过" in notifier.texts("张三")[-1]
    assert any("张三" in t and "业扩报装 #1" in t for t in notifier.texts("王班长"))
    assert ("plan.overdue", "张三") in await pending(services)  # again next working day


async def test_another_team_cannot_open_it(team: tuple[Chat, Chat], services: Services,
                                           assistant: Assistant) -> None:
    zhang, _ = team
    await apply(zhang)
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    other = Chat(assistant, "test", "赵六")
    await other.tap("-|connections.cn|1")
    assert "没有找到这条业扩记录" in other.text
    await other.tap("-|connections.cnc|1")
    assert "没有找到这条业扩记录" in other.text


async def test_the_weekly_report_carries_the_applications(
        team: tuple[Chat, Chat], clock: FakeClock) -> None:
    zhang, lead = team
    at(clock, 2026, 11, 23, 10, 0)  # Monday
    await apply(zhang)
    at(clock, 2026, 11, 27, 9, 0)  # Friday: the plan was due Thursday 10:00
    await zhang.press("方案已答复")
    await zhang.press("现在")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert "已超期" in zhang.text
    at(clock, 2026, 11, 30, 9, 0)
    out = await lead.say("/report 上周")
    assert "业扩报装" in lead.text
    assert "张三：受理 1，方案按时 0、超时 1，送电按时 0、超时 0；当前超期 0" in lead.text
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["业扩报装"]
    row = [c.value for c in sheet[2]]
    assert row[1] == "居民" and row[2] == "张三" and row[3] == "李四" and row[4] == "3号台区"


async def test_over_telegram(channel: TelegramChannel, services: Services,
                             fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    got = await zhang.say("业扩 低压 城东超市 新装 30kW")
    assert "哪个台区" in texts(got)
    got = await zhang.press("跳过")
    got = await zhang.press("现在")
    assert "请确认" in texts(got)
    got = await zhang.press("保存")
    assert "已登记业扩报装 #1（低压非居民，城东超市）" in texts(got)
    assert "7个工作日" in texts(got)
    assert any("📋 方案已答复" in labels(m) for m in got)
