"""Tasks from the lead (派任务) and matters sent up (上报), through the core: sentence prefill
for one, several or the whole team, bad input, accept / ask / answer / done, 上报 → reply and
→ task, reminders and escalation on a fake clock, team isolation and the report section."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Reply
from bot.features.tasks.handlers import told_when
from bot.models import Role
from bot.reminders import ReminderService
from bot.services import Ctx, Services
from bot.storage.people import UserPrefs
from tests.conftest import Chat, FakeNotifier, at, make_user


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat, Chat]:
    """王班长 leads 张三 and 李四; another team (城西, 赵六 and 钱班长) exists beside them."""
    await make_user(services, "张三")
    await make_user(services, "李四")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    await make_user(services, "赵六", team="城西供电所", areas=("7号台区",))
    await make_user(services, "钱班长", role=Role.LEAD, team="城西供电所", areas=())
    return (Chat(assistant, "test", "王班长"), Chat(assistant, "test", "张三"),
            Chat(assistant, "test", "李四"))


def buttons(reply: Reply) -> list[str]:
    return [b.label for row in reply.buttons for b in row]


def data_of(reply: Reply, label: str) -> str:
    return next(b.data for row in reply.buttons for b in row if label in b.label)


async def task_for_zhang(lead: Chat, service: ReminderService, notifier: FakeNotifier) -> Reply:
    """派任务 张三 …, saved and pushed: the push with its 接受 / 提问 / 完成."""
    await lead.say("派任务 张三 明天下班前 核对电话")
    await lead.press("保存")
    await service.scan_once()
    return notifier.last("张三")


async def pending(services: Services) -> list[tuple[str, str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name, r.due_at FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'task' AND state = 'pending' ORDER BY r.due_at, r.id")
    return [(r[0], r[1], r[2]) for r in rows]


async def test_one_assignee_from_a_sentence_then_accept_ask_answer_done(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    lead, zhang, _ = team
    await lead.say("派任务 张三 明天下班前 核对5号台区特殊客户电话")
    assert ("派任务，已填好：派给 张三 · 期限 2026-11-28 周六 17:30 · "
            "任务内容 核对5号台区特殊客户电话 · 台区 5号台区") in lead.text
    await lead.press("保存")
    assert "✅ 已派任务给 张三（1 人）：核对5号台区特殊客户电话" in lead.text
    assert [(k, n) for k, n, _ in await pending(services)] == [
        ("new", "张三"), ("due.soon", "张三"), ("due.due", "张三"), ("due.escalate", "王班长")]

    # Pushed at once (the next scan), with one-tap buttons; never twice.
    assert (await service.scan_once()).sent == 1
    push = notifier.last("张三")
    assert push.text.startswith("📌 王班长 派给你一个任务：任务 #1（核对5号台区特殊客户电话）")
    assert [b.label for b in push.buttons[0]] == ["👍 接受", "❓ 提问", "✅ 完成"]
    assert (await service.scan_once()).sent == 0

    await zhang.tap(data_of(push, "接受"))
    assert "已接受任务 #1" in zhang.text and "🟡 已接受" in zhang.text
    await zhang.tap(data_of(push, "提问"))
    assert "向班长提问：任务 #1" in zhang.text
    await zhang.say("特殊客户名单用哪一版？")
    await zhang.press("保存")
    assert "问题已发给 王班长" in zhang.text
    await service.scan_once()
    question = notifier.last("王班长")
    assert question.text == (
        "❓ 张三 对任务 #1（核对5号台区特殊客户电话）提问：特殊客户名单用哪一版？")
    await lead.tap(data_of(question, "回复"))
    assert "回复提问：张三：特殊客户名单用哪一版？" in lead.text
    await lead.say("用11月的")
    await lead.press("保存")
    assert "已回复 张三" in lead.text
    await service.scan_once()
    assert notifier.last("张三").text == (
        "💬 王班长 回复了你对任务 #1（核对5号台区特殊客户电话）的提问：用11月的")

    await zhang.tap(data_of(push, "完成"))
    await zhang.say("已核对12户，2户电话已更新")
    await zhang.photo("p1")
    await zhang.press("完成")
    await zhang.press("保存")
    assert "任务 #1（核对5号台区特殊客户电话） 已完成，已告诉 王班长。 （按时）" in zhang.text
    assert await pending(services) == []  # the deadline ladder is dropped
    await service.scan_once()
    done = notifier.last("王班长")
    assert done.text == (
        "✅ 张三 完成了任务 #1（核对5号台区特殊客户电话）：已核对12户，2户电话已更新")
    assert done.photos == ["test:p1"]
    await lead.say("任务")
    assert "没有未完成的任务" in lead.text


async def test_several_and_the_whole_team_each_get_their_own_item(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    lead, zhang, li = team
    await lead.say("派任务 张三、李四下周一下班前 抄表数据复核")
    assert "派给 张三、李四 · 期限 2026-11-30 周一 17:30 · 任务内容 抄表数据复核" in lead.text
    await lead.press("保存")
    assert "已派任务给 张三、李四（2 人）" in lead.text
    await lead.say("派任务 全班 今天下班前 交安全学习心得")
    assert "派给 全班" in lead.text
    await lead.press("保存")
    assert "已派任务给 全班（2 人）" in lead.text
    await service.scan_once()
    new = "📌 王班长 派给你一个任务：任务 #{}（{}）"
    for who, ids in (("张三", (1, 3)), ("李四", (2, 4))):  # beside the digest, each pushed once
        assert [t.split("\n")[0] for t in notifier.texts(who) if t.startswith("📌")] == [
            new.format(ids[0], "抄表数据复核"), new.format(ids[1], "交安全学习心得")]
    assert notifier.texts("赵六") == []  # the other team gets nothing

    # Each has their own item: 张三 finishing his leaves 李四's open.
    first = next(r for w, r in notifier.sent if w == "张三" and "抄表数据复核" in r.text
                 and r.text.startswith("📌"))
    await zhang.tap(data_of(first, "完成"))
    await zhang.say("已复核")
    await zhang.press("跳过")
    await zhang.press("保存")
    await li.say("任务")
    assert "📌 未完成的任务（2）" in li.text and "抄表数据复核" in li.text
    await lead.say("/tasks")
    assert "📌 未完成的任务（3）" in lead.text
    assert "李四 · " in lead.text and "张三 · " in lead.text
    await lead.say("待办")
    assert "任务 #2（抄表数据复核）" in lead.text


async def test_bad_input_is_refused_politely_and_nothing_is_lost(
        team: tuple[Chat, Chat, Chat], services: Services) -> None:
    lead, zhang, _ = team
    # A deadline in the past: the rest is kept, the deadline asked again.
    await lead.say("派任务 张三 昨天下班前 核对台账")
    assert "期限 2026-11-26 周四 17:30 已经过去了" in lead.text
    assert "什么时候之前完成" in lead.text
    await lead.say("今天上午9点")
    assert "已经过去了" in lead.text
    await lead.say("下周三")
    assert "派给：张三" in lead.text and "期限：2026-12-02 周三 17:30" in lead.text
    assert "任务内容：核对台账" in lead.text
    await lead.press("取消")
    await lead.press("确定")

    # An unknown name: 'did you mean' with a button that keeps the names understood.
    await lead.say("派任务 李四、张山 明天下午3点 清点表箱")
    assert "班组里没有「张山」。你是不是要找：张三" in lead.text
    await lead.press("张三")
    assert "派给：李四、张三" in lead.text and "期限：2026-11-28 周六 15:00" in lead.text
    assert "任务内容：清点表箱" in lead.text
    await lead.press("取消")
    await lead.press("确定")
    # A name of another team's manager is unknown too.
    await lead.say("/task")
    await lead.say("赵六")
    assert "班组里没有「赵六」" in lead.text and "可以派给：张三、李四" in lead.text

    # A manager may not give tasks.
    await zhang.say("派任务 李四 明天 核对")
    assert "派任务是班长的功能" in zhang.text
    await zhang.say("/task")
    assert "派任务是班长的功能" in zhang.text


async def test_reminder_before_the_deadline_and_escalation_to_the_lead(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    lead, _, _ = team
    await lead.say("派任务 张三 今天下班前 报送线损分析")
    await lead.press("保存")
    await service.scan_once()
    at(clock, 2026, 11, 27, 15, 31)  # two working hours before 17:30
    await service.scan_once()
    assert notifier.texts("张三")[-1] == (
        "⏰ 任务 #1（报送线损分析）：请在 2026-11-27 周五 17:30 前完成任务（还剩 1 小时 59 分）。")
    at(clock, 2026, 11, 27, 17, 31)
    await service.scan_once()
    assert "完成任务期限 2026-11-27 周五 17:30 已过" in notifier.texts("张三")[-1]
    assert [t for t in notifier.texts("王班长") if "超期" in t] == [
        "⚠️ 超期提醒：张三 的任务 #1（报送线损分析），完成任务期限 2026-11-27 周五 17:30 已过"
        "（已超期 1 分钟）。"]
    assert "完成" not in " ".join(buttons(notifier.last("王班长")))  # not the lead's to finish
    await lead.say("待办")
    assert "⚠️" in lead.text and "张三 · 任务 #1（报送线损分析）" in lead.text


async def test_up_report_reply_and_turn_into_a_task(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    lead, zhang, _ = team
    await zhang.photo("pole")  # sent first, with no form open: it goes with the matter
    await zhang.say("上报 2号杆拉线松动，需要停电处理")
    assert "照片" in zhang.text and "上报内容 2号杆拉线松动，需要停电处理" in zhang.text
    await zhang.photo("wire")
    await zhang.press("保存")
    assert "已上报给 王班长" in zhang.text
    await service.scan_once()
    up = notifier.last("王班长")
    assert up.text == "📣 张三 上报：2号杆拉线松动，需要停电处理"
    assert up.photos == ["test:pole", "test:wire"] and buttons(up) == ["💬 回复", "📌 转为任务"]
    assert notifier.texts("钱班长") == []  # only the sender's own team's lead

    await lead.tap(data_of(up, "回复"))
    await lead.say("周三安排停电")
    await lead.press("保存")
    await service.scan_once()
    assert notifier.last("张三").text == "💬 王班长 回复了你的上报：周三安排停电"

    await lead.tap(data_of(up, "转为任务"))
    assert "派给 张三" in lead.text and "任务内容 2号杆拉线松动，需要停电处理" in lead.text
    await lead.say("下周三下班前")
    await lead.press("保存")
    assert "已派任务给 张三（1 人）" in lead.text

    # The other team's lead cannot act on the button, even forged.
    other = Chat(lead.assistant, "test", "钱班长")
    await other.tap(data_of(up, "转为任务"))
    assert "找不到这条任务或消息" in other.text
    await other.say("任务")
    assert "没有未完成的任务" in other.text


async def test_accept_shows_the_questions_asked_before_and_a_second_tap_changes_nothing(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    """接受 writes and reads its card in one round trip: the card lists the questions asked
    while the task was open; a second tap shows the card as it is, accepted once."""
    lead, zhang, _ = team
    push = await task_for_zhang(lead, service, notifier)
    await zhang.tap(data_of(push, "提问"))
    await zhang.say("名单用哪一版？")
    await zhang.press("保存")
    await zhang.tap(data_of(push, "接受"))
    assert "已接受任务 #1" in zhang.text and "🟡 已接受" in zhang.text
    assert "❓ 张三：名单用哪一版？" in zhang.text and zhang.last.toast == "已接受"
    first = await services.db.fetchone("SELECT accepted_at FROM tasks WHERE id = 1")
    await zhang.tap(data_of(push, "接受"))
    assert "已接受任务" not in zhang.text and "🟡 已接受" in zhang.text
    assert "❓ 张三：名单用哪一版？" in zhang.text and zhang.last.toast is None
    assert await services.db.fetchone("SELECT accepted_at FROM tasks WHERE id = 1") == first


async def test_a_message_waits_for_the_digest_of_whoever_is_in_quiet_hours(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services, clock: FakeClock) -> None:
    """A question or result to a lead in quiet hours waits for their digest; the answer to a
    manager outside them goes out at once. Decided by the write (no read of their settings
    before it): each as the write found them."""
    lead, zhang, _ = team
    at(clock, 2026, 11, 27, 10, 0)
    push = await task_for_zhang(lead, service, notifier)
    wang = await services.db.fetchone("SELECT id FROM users WHERE name = '王班长'")
    assert wang is not None
    await UserPrefs(services.db).set_quiet(wang["id"], "09:30", "11:00")

    async def urgent_of(kind: str) -> list[tuple[str, int]]:
        rows = await services.db.fetchall(
            "SELECT u.name, r.urgent FROM reminders r JOIN task_messages m ON m.id = r.subject_id "
            "JOIN users u ON u.id = r.user_id WHERE r.subject = 'taskmsg' AND m.kind = ?",
            (kind,))
        return [(r[0], int(r[1])) for r in rows]

    await zhang.tap(data_of(push, "提问"))
    await zhang.say("名单用哪一版？")
    await zhang.press("保存")
    assert await urgent_of("question") == [("王班长", 0)]
    question = await services.db.fetchone("SELECT id FROM task_messages WHERE kind = 'question'")
    assert question is not None
    await lead.tap(f"-|tasks.ans|{question['id']}")
    await lead.say("用11月的")
    await lead.press("保存")
    assert await urgent_of("answer") == [("张三", 1)]
    await UserPrefs(services.db).set_quiet(wang["id"], None, None, off=True)
    await zhang.tap(data_of(push, "完成"))
    await zhang.say("已核对")
    await zhang.press("跳过")
    await zhang.press("保存")
    assert await urgent_of("done") == [("王班长", 1)]


async def test_a_task_given_to_someone_in_quiet_hours_waits_for_their_digest(
        team: tuple[Chat, Chat, Chat], services: Services, clock: FakeClock) -> None:
    """The new task's push to a manager in quiet hours waits for their digest; to one
    outside them it goes out at once (urgent). Only that push: the ladder's rungs are never
    urgent. Decided by the write, as it finds their settings."""
    lead, _, _ = team
    at(clock, 2026, 11, 27, 10, 0)
    zhang = await services.db.fetchone("SELECT id FROM users WHERE name = '张三'")
    assert zhang is not None
    await UserPrefs(services.db).set_quiet(zhang["id"], "09:30", "11:00")
    await lead.say("派任务 全班 明天下班前 核对电话")
    await lead.press("保存")
    rows = await services.db.fetchall(
        "SELECT u.name, r.kind, r.urgent FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE r.subject = 'task' AND (r.urgent = 1 OR r.kind = 'new') ORDER BY u.name, r.kind")
    assert [(r[0], r[1], int(r[2])) for r in rows] == [("张三", "new", 0), ("李四", "new", 1)]


async def test_the_reply_says_whose_push_waits_for_the_end_of_their_quiet_hours(
        team: tuple[Chat, Chat, Chat], services: Services, clock: FakeClock) -> None:
    """The saved task's reply says when each assignee hears of it, as the write decided:
    at once, or (in quiet hours, the push held) when their quiet hours end. Before, it said
    「对方会马上收到通知」 to a lead whose assignee would hear only in the morning."""
    lead, _, _ = team
    at(clock, 2026, 11, 27, 10, 0)
    zhang = await services.db.fetchone("SELECT id FROM users WHERE name = '张三'")
    assert zhang is not None
    await UserPrefs(services.db).set_quiet(zhang["id"], "09:30", "11:00")
    told = {"对方会马上收到通知": "now", "对方正在免打扰时段": "quiet",
            "张三 正在免打扰时段": "张三 quiet"}
    heard = []
    for who in ("李四", "张三", "全班"):
        await lead.say(f"派任务 {who} 明天下班前 核对电话")
        await lead.press("保存")
        assert f"已派任务给 {who}" in lead.text, lead.text
        heard.append([v for k, v in told.items() if k in lead.text])
    assert heard == [["now"], ["quiet"], ["张三 quiet"]]
    assert "其他人马上收到" in lead.text


async def test_the_team_as_another_instance_changed_it_is_the_one_a_task_goes_to(
        team: tuple[Chat, Chat, Chat], services: Services, settings: Settings,
        clock: FakeClock) -> None:
    """The managers a lead's step holds (bot.storage.team_managers) are used only while
    current: a manager who joins, leaves or is renamed on another instance (or by hand in
    SQL) is in the very next step's list, the save's 全班 included."""
    lead, _, _ = team
    await lead.say("派任务 全班 明天下班前 核对电话")  # the list held from here on
    other = await Services.open(settings, clock)  # another instance on the same store
    try:
        await make_user(other, "王五")
        await other.db.execute("UPDATE users SET active = 0 WHERE name = '李四'")
        await lead.press("保存")
        assert "已派任务给 全班（2 人）" in lead.text, lead.text
        assert [r[0] for r in await services.db.fetchall(
            "SELECT u.name FROM tasks t JOIN users u ON u.id = t.user_id ORDER BY t.id")] \
            == ["张三", "王五"]
        await other.db.execute("UPDATE users SET name = '张叁' WHERE name = '张三'")
        await lead.say("派任务 张叁、王五 明天下班前 核对表计")
        assert "派给 张叁、王五" in lead.text, lead.text
        await other.db.execute("UPDATE users SET role = 'lead' WHERE name = '王五'")
        await lead.press("保存")  # 王五 no longer a manager: dropped
        assert "已派任务给 张叁" in lead.text and "（1 人）" in lead.text, lead.text
        assert [r[0] for r in await services.db.fetchall(
            "SELECT u.name FROM tasks t JOIN users u ON u.id = t.user_id ORDER BY t.id")] \
            == ["张叁", "王五", "张叁"]  # 张三, renamed
    finally:
        await other.close()


async def test_a_matter_sent_up_with_no_lead_is_refused_and_nothing_is_sent(
        services: Services, assistant: Assistant, settings: Settings,
        clock: FakeClock) -> None:
    """The team's leads are found by the write: with none, nothing is written and the form
    stays open; once a lead joins (here on another instance), the same 保存 sends it."""
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("上报 2号杆拉线松动")
    await zhang.press("保存")
    assert "班组里还没有班长" in zhang.text, zhang.text
    assert await services.db.fetchall("SELECT id FROM task_messages") == []
    assert await services.db.fetchall("SELECT id FROM reminders") == []
    other = await Services.open(settings, clock)
    try:
        await make_user(other, "王班长", role=Role.LEAD, areas=())
        await make_user(other, "钱班长", role=Role.LEAD, areas=())
    finally:
        await other.close()
    await zhang.press("保存")
    assert "已上报给 王班长、钱班长" in zhang.text, zhang.text
    rows = await services.db.fetchall(
        "SELECT u.name, r.kind, r.urgent FROM reminders r JOIN users u ON u.id = r.user_id "
        "ORDER BY r.id")
    assert [(r[0], r[1], int(r[2])) for r in rows] == [("王班长", "report", 1),
                                                      ("钱班长", "report", 1)]


async def test_a_question_on_a_task_done_since_its_form_opened_is_refused(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    """The question form keeps the task as it opened; done meanwhile (on another device),
    the save is refused by its guard in SQL and nothing is sent."""
    lead, zhang, _ = team
    await zhang.tap(data_of(await task_for_zhang(lead, service, notifier), "提问"))
    await zhang.say("名单用哪一版？")
    await services.db.execute("UPDATE tasks SET status = 'done' WHERE id = 1")
    await zhang.press("保存")
    assert "这个任务不是派给你的" in zhang.text, zhang.text
    assert await services.db.fetchall("SELECT id FROM task_messages") == []


async def test_team_isolation_of_task_cards(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        services: Services) -> None:
    lead, _, li = team
    push = await task_for_zhang(lead, service, notifier)
    # 李四 (same team, not the assignee) and another team's manager see nothing to act on.
    await li.tap(data_of(push, "接受"))
    assert "找不到" in li.text
    zhao = Chat(lead.assistant, "test", "赵六")
    await zhao.tap(data_of(push, "完成"))
    assert "找不到" in zhao.text
    # The lead sees the card but has no 完成 of the assignee's.
    await lead.tap(data_of(push, "完成"))
    assert "核对电话" in lead.text and "完成" not in " ".join(
        b.label for r in lead.last.replies for row in r.buttons for b in row)


async def test_report_section_counts_per_manager(
        team: tuple[Chat, Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    lead, zhang, _ = team
    at(clock, 2026, 11, 23, 9, 0)  # Monday
    await lead.say("派任务 张三、李四 今天下班前 清点表箱")
    await lead.press("保存")
    await service.scan_once()
    at(clock, 2026, 11, 23, 11, 0)
    await zhang.tap(data_of(notifier.last("张三"), "完成"))
    await zhang.say("清点完毕")
    await zhang.press("跳过")
    await zhang.press("保存")
    at(clock, 2026, 11, 30, 9, 0)  # the next Monday: last week's report
    out = await lead.say("/report")
    assert "📌 班长派的任务（下达 / 完成 / 超期）：" in lead.text
    assert "• 张三：下达 1，完成 1，超期 0" in lead.text
    assert "• 李四：下达 1，完成 0，超期 1" in lead.text
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["任务"]
    assert [c.value for c in sheet[1]] == ["负责人", "下达", "完成", "超期"]
    assert [[c.value for c in row] for row in sheet.iter_rows(min_row=2)] == [
        ["张三", 1, 1, 0], ["李四", 1, 0, 1]]


async def test_in_the_local_chat_the_push_and_its_buttons_by_label(
        services: Services, assistant: Assistant) -> None:
    """`./taiqu chat`: the lead gives a task and reads a 上报; the manager, signed in to the
    terminal, gets the task as a push and accepts it by typing the button's label."""
    import io

    from bot.channels.terminal import TerminalChat, terminal_reminders

    zhang = await make_user(services, "张三", channel="terminal", external_id="1")
    boss = await make_user(services, "王班长", role=Role.LEAD, areas=(), channel="terminal",
                           external_id="2")
    lead_out, zhang_out = io.StringIO(), io.StringIO()
    lead, manager = TerminalChat(assistant, boss, lead_out), TerminalChat(assistant, zhang,
                                                                          zhang_out)
    await lead.send("派任务 张三 明天下班前 核对5号台区特殊客户电话")
    await lead.send("保存")
    assert "已派任务给 张三（1 人）" in lead_out.getvalue()
    await terminal_reminders(services, manager).scan_once()
    assert "📌 王班长 派给你一个任务：任务 #1（核对5号台区特殊客户电话）" in zhang_out.getvalue()
    await manager.send("接受")
    assert "已接受任务 #1" in zhang_out.getvalue()
    await manager.send("上报 5号台区有3户电话空号")
    await manager.send("保存")
    assert "已上报给 王班长" in zhang_out.getvalue()
    await terminal_reminders(services, lead).scan_once()
    assert "📣 张三 上报：5号台区有3户电话空号" in lead_out.getvalue()


async def test_a_reply_names_ten_people_in_quiet_hours_and_counts_the_rest(
        services: Services) -> None:
    """全班 of a big team at night: the reply stays one message, whoever is in quiet hours."""
    lead = await make_user(services, "王班长", role=Role.LEAD, areas=())
    ctx = Ctx(services, lead, services.clock.now())
    waiting = [f"经理{n:02d}" for n in range(12)]
    text = told_when(ctx, waiting, 30)
    assert "经理00、经理01" in text and "经理09 等 12 人 正在免打扰时段" in text, text
    assert "经理10" not in text
    assert told_when(ctx, waiting[:2], 30).startswith("经理00、经理01 正在免打扰时段")
