"""Free reminders from a sentence (issue #13 §3): each sentence form shown back as a concrete
date and time to confirm (确认 / 改时间 / 取消), bad and past times asked again, the push at the
minute with snooze and 完成, quiet hours unless urgent, 我的提醒 with 取消, and teams (and
people) kept apart. Core dialogue, real SQLite, fake clock (T0 = Fri 2026-11-27 10:30)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat, FakeNotifier, at, make_user
from tests.test_terminal_chat import chat as terminal_chat

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def me(zhang: Chat) -> Chat:
    await zhang.say("/start")  # opened the bot: pushes reach him
    return zhang


def buttons(chat: Chat) -> list[str]:
    assert chat.last is not None
    return [b.label for r in chat.last.replies for row in r.buttons for b in row]


async def open_rows(services: Services) -> list[tuple[str, str, str]]:
    rows = await services.db.fetchall(
        "SELECT f.what, f.remind_at, r.state FROM free_reminders f JOIN reminders r "
        "ON r.subject = 'free_reminder' AND r.subject_id = f.id ORDER BY f.id")
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.mark.parametrize(("sentence", "what", "when"), [
    ("3天后提醒我回访李四", "回访李四", "2026-11-30 周一 09:00（没说钟点，按 09:00）"),
    ("下周一上午提醒我交线损分析", "交线损分析", "2026-11-30 周一 09:00（上午默认钟点，可改时间）"),
    ("明天8点提醒我抄表", "抄表", "2026-11-28 周六 08:00"),
    ("提醒我 周五下午 交报表", "交报表", "2026-11-27 周五 15:00（下午默认钟点，可改时间）"),
    ("提醒我交报表 下周三下午3点", "交报表", "2026-12-02 周三 15:00"),
])
async def test_each_sentence_form_is_shown_back_as_a_date_and_time(
        me: Chat, services: Services, sentence: str, what: str, when: str) -> None:
    await me.say(sentence)
    assert "请确认提醒：" in me.text, me.text
    assert f"提醒内容：{what}" in me.text and f"提醒时间：{when}" in me.text
    assert buttons(me)[:2] == ["✅ 确认", "🕒 改时间"] and "✖️ 取消" in buttons(me)
    await me.press("确认")
    assert me.text.startswith(f"好的，{when.split('（')[0]} 提醒你：{what}"), me.text
    assert [(w, s) for w, _, s in await open_rows(services)] == [(what, "pending")]


async def test_no_time_and_a_past_time_are_asked_again_keeping_the_rest(
        me: Chat, services: Services) -> None:
    await me.say("提醒我交报表")
    assert "没听出提醒的时间" in me.text and "什么时候提醒你" in me.text, me.text
    await me.say("哪天都行")  # not a time: asked again, politely, nothing lost
    assert "没听懂“哪天都行”这个时间" in me.text and "什么时候提醒你" in me.text
    await me.say("今天上午9点")  # 10:30 now: past
    assert "2026-11-27 周五 09:00 已经过去了（现在是 2026-11-27 周五 10:30）" in me.text
    await me.say("下午4点")
    assert "提醒内容：交报表" in me.text and "提醒时间：2026-11-27 周五 16:00" in me.text
    await me.press("确认")
    assert "好的，2026-11-27 周五 16:00 提醒你：交报表" in me.text

    await me.say("昨天提醒我抄表")  # a past day in the sentence: asked, with the reason
    assert "已经过去了" in me.text and "什么时候提醒你" in me.text, me.text
    await me.press("1小时后")
    assert "提醒内容：抄表" in me.text and "提醒时间：2026-11-27 周五 11:30" in me.text


async def test_change_time_and_cancel(me: Chat, services: Services, clock: FakeClock) -> None:
    await me.say("明天8点提醒我抄表")
    await me.press("改时间")
    assert "什么时候提醒你" in me.text and "当前" in me.text, me.text
    await me.say("后天下午3点")
    assert "提醒时间：2026-11-29 周日 15:00" in me.text and "提醒内容：抄表" in me.text
    assert me.last is not None
    confirm = next(b.data for r in me.last.replies for row in r.buttons for b in row
                   if "确认" in b.label)
    await me.tap(confirm)
    assert "好的，2026-11-29 周日 15:00 提醒你：抄表" in me.text
    await me.tap(confirm)  # a second press (a slow network) saves nothing twice
    assert len(await open_rows(services)) == 1

    await me.say("明天8点提醒我交报表")
    await me.press("取消")
    await me.press("确定")  # the engine's cancel question: one wet thumb is not enough
    assert len(await open_rows(services)) == 1

    # Confirmed only after the moment passed: asked for a new time, nothing saved.
    await me.say("10分钟后提醒我回电话")
    clock.advance(minutes=15)
    await me.press("确认")
    assert "已经过去了" in me.text and len(await open_rows(services)) == 1, me.text


async def test_the_push_comes_at_the_minute_with_snooze_and_done(
        me: Chat, services: Services, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    await me.say("今天下午3点提醒我交线损分析")
    await me.press("确认")
    at(clock, 2026, 11, 27, 14, 59)
    await service.scan_once()  # the day's digest lists it; no push yet
    assert [t[:2] for t in notifier.texts("张三")] == ["☀️"]
    notifier.sent.clear()
    at(clock, 2026, 11, 27, 15, 0)
    await service.scan_once()
    await service.scan_once()  # a second scan sends nothing twice
    assert notifier.texts("张三") == ["⏰ 提醒：交线损分析\n（2026-11-27 周五 15:00）"]
    push = notifier.last("张三")
    labels = [b.label for row in push.buttons for b in row]
    assert labels == ["✅ 完成", "⏰ 1 小时后", "⏰ 明天 8:00"], labels

    snooze = next(b.data for row in push.buttons for b in row if "1 小时" in b.label)
    await me.tap(snooze)
    assert "2026-11-27 周五 16:00" in me.text, me.text
    at(clock, 2026, 11, 27, 16, 0)
    await service.scan_once()
    assert len(notifier.texts("张三")) == 2 and notifier.texts("张三")[1].startswith("⏰ 提醒")

    done = next(b.data for row in notifier.last("张三").buttons for b in row if "完成" in b.label)
    await me.tap(done)
    assert me.text == "已完成：交线损分析"
    await me.tap(done)  # pressed again: said so, nothing else
    assert "已经完成或取消" in me.text
    await me.say("/todo")
    assert "交线损分析" not in me.text


async def test_quiet_hours_hold_it_for_the_digest_unless_urgent(
        me: Chat, services: Services, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    await me.say("今晚10点提醒我关窗")
    await me.press("确认")
    assert "免打扰时段" in me.text, me.text
    await me.say("紧急 今晚10点半提醒我去3号台区看看")
    assert "提醒内容：去3号台区看看" in me.text and "紧急（免打扰时段也推送）" in me.text
    await me.press("确认")
    assert "已标为紧急" in me.text
    at(clock, 2026, 11, 27, 22, 31)
    await service.scan_once()
    assert [t.splitlines()[0] for t in notifier.texts("张三")] == ["⏰ 提醒：去3号台区看看"]
    at(clock, 2026, 11, 28, 8, 0)  # the morning digest carries the held one: not lost
    await service.scan_once()
    digest = notifier.texts("张三")[-1]
    assert digest.startswith("☀️ 早上好，张三") and "关窗" in digest, digest


async def test_my_reminders_lists_the_open_ones_with_cancel(
        me: Chat, services: Services, clock: FakeClock, notifier: FakeNotifier,
        service: ReminderService) -> None:
    await me.say("我的提醒")
    assert "现在没有未完成的提醒" in me.text
    for sentence in ("明天8点提醒我抄表", "3天后提醒我回访李四"):
        await me.say(sentence)
        await me.press("确认")
    await me.press("我的提醒")
    assert me.text.splitlines() == ["📋 我的提醒（2 条未完成）：",
                                    "1. 2026-11-28 周六 08:00 抄表",
                                    "2. 2026-11-30 周一 09:00 回访李四"], me.text
    await me.press("取消 1. 抄表")
    assert me.text == "已取消提醒：抄表"
    at(clock, 2026, 11, 28, 8, 0)
    await service.scan_once()  # cancelled: no push (and no digest line) for it
    assert not any("抄表" in t for t in notifier.texts("张三"))
    await me.say("我的提醒")
    assert "1. 2026-11-30 周一 09:00 回访李四" in me.text and "抄表" not in me.text


async def test_nobody_else_sees_or_closes_ones_reminders(
        me: Chat, services: Services, assistant: Assistant) -> None:
    await make_user(services, "李四")  # same team
    await make_user(services, "赵六", team="城西供电所", areas=("9号台区",))
    lisi, zhao = Chat(assistant, "test", "李四"), Chat(assistant, "test", "赵六")
    await me.say("明天8点提醒我抄表")
    await me.press("确认")
    for other in (lisi, zhao):
        await other.say("我的提醒")
        assert "现在没有未完成的提醒" in other.text
        for action in ("done", "cancel"):
            await other.tap(f"-|notes.{action}|1")
            assert "已经完成或取消" in other.text
    assert [s for _, _, s in await open_rows(services)] == ["pending"]
    await me.say("我的提醒")
    assert "抄表" in me.text


async def test_a_reminder_sentence_inside_another_form_is_a_new_request(me: Chat) -> None:
    await me.say("记录巡视 3号台区")
    await me.say("明天8点提醒我抄表")
    assert "「明天8点提醒我抄表」是要做新的事吗" in me.text, me.text
    await me.press("先放一边")
    assert "提醒内容：抄表" in me.text and "提醒时间：2026-11-28 周六 08:00" in me.text, me.text
    await me.press("确认")
    assert "好的，2026-11-28 周六 08:00 提醒你：抄表" in me.text
    assert "巡视" in me.text  # the log set aside is taken up again


async def test_remind_command_asks_what_then_when(me: Chat) -> None:
    await me.say("/remind")
    assert "要提醒你做什么" in me.text, me.text
    await me.say("交台区线损分析")
    assert "什么时候提醒你" in me.text and "明天8点" in me.text  # with examples
    await me.press("明天上午")
    assert "提醒时间：2026-11-28 周六 09:00（上午默认钟点，可改时间）" in me.text, me.text
    await me.press("确认")
    await me.say("/remind 明天8点 抄表")  # the command takes the sentence too
    assert "请确认提醒：" in me.text and "提醒内容：抄表" in me.text, me.text
    assert "提醒时间：2026-11-28 周六 08:00" in me.text


def test_the_terminal_chat_sets_one_by_typed_words(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = terminal_chat(db, ["明天8点提醒我抄表", "确认", "我的提醒", "/quit"],
                      "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    assert "请确认提醒：" in p.stdout and "提醒你：抄表" in p.stdout, p.stdout
    assert "📋 我的提醒（1 条未完成）" in p.stdout
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT what, state FROM free_reminders").fetchall() == [
            ("抄表", "open")]
    finally:
        con.close()
