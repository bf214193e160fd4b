"""Issue #13 §5 "Fuller log entries": 处理结果, 涉及客户, 关联工单号 and more than one 台区 in
an entry, read from the sentence or added with the summary's ➕ buttons (never asked one by
one); a lead's 批注, told to the author at once and shown on the card and on paper."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.router import feature_callback
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import Chat, FakeNotifier, make_user
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, body
from tests.tg_harness import labels as tg_labels
from tests.tg_harness import register as tg_register

pytestmark = pytest.mark.timeout(60)
NOW_SHOWN = "2026-11-27 周五 10:30"
EXTRAS = ["➕ 其他台区", "➕ 处理结果", "➕ 涉及客户", "➕ 关联工单号"]


def labels(chat: Chat) -> list[str]:
    assert chat.last is not None
    return [b.label for r in chat.last.replies for row in r.buttons for b in row]


async def user_named(services: Services, name: str) -> User:
    return next(u for u in await services.people.users() if u.name == name)


async def add_customer(services: Services, owner: str, name: str, account: str,
                       area: str) -> int:
    user = await user_named(services, owner)
    area_id = next(a.id for a in await services.people.areas_for(user) if a.name == area)
    data = CustomerData(account_no=account, name=name, area_id=area_id,  # type: ignore[call-arg]
                        categories=("elderly",), address="东风村3组", phone="13800001234")
    return await services.customers.create(user, data, services.clock.now())


async def entry(services: Services, wid: int = 1) -> dict[str, Any]:
    row = await services.db.fetchone("SELECT * FROM worklogs WHERE id = ?", (wid,))
    assert row is not None
    areas = await services.db.fetchall(
        "SELECT a.name FROM worklog_areas wa JOIN areas a ON a.id = wa.area_id "
        "WHERE wa.worklog_id = ? ORDER BY wa.position", (wid,))
    return {**dict(row), "areas": [a["name"] for a in areas]}


@pytest.fixture
async def zhang(services: Services, assistant: Assistant) -> Chat:
    await make_user(services, "张三", areas=("3号台区", "5号台区", "7号台区"))
    return Chat(assistant, "test", "张三")


@pytest.fixture
async def lead(services: Services, assistant: Assistant, zhang: Chat) -> Chat:
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "王班长")


async def save_patrol(chat: Chat, sentence: str) -> None:
    await chat.say(sentence)
    await chat.press("现在")
    while "✅ 保存" not in labels(chat):
        await chat.press("跳过")
    await chat.press("保存")


# --- more than one 台区 -----------------------------------------------------------------
async def test_two_areas_in_one_sentence_are_saved_and_both_count_as_patrolled(
        zhang: Chat, lead: Chat, services: Services) -> None:
    await zhang.say("巡视 3号台区和5号台区 无异常")
    assert zhang.text.startswith(L("form.prefilled", title="工作日志", values=(
        "工作项目 巡视 · 台区 3号台区 · 其他台区 5号台区 · 工作内容 无异常")))
    await zhang.press("现在")
    assert "台区：3号台区\n其他台区：5号台区\n时间：" in zhang.text
    # The fuller fields are offered under 保存, not asked: the common case taps as before.
    assert labels(zhang)[3:8] == ["✅ 保存", "✏️ 修改", *EXTRAS[1:]]
    await zhang.press("保存")
    assert "3号台区、5号台区 · 巡视" in zhang.text
    assert (await entry(services))["areas"] == ["3号台区", "5号台区"]
    await zhang.press("查看")
    assert "台区：3号台区、5号台区" in zhang.text
    await zhang.say("我的日志")
    assert "3号台区、5号台区 巡视" in zhang.text
    # Only 7号台区 went unpatrolled this week: the entry patrolled both of its 台区.
    await lead.say("/report 本周")
    assert L("report.unpatrolled", n=1, areas="7号台区") in lead.text, lead.text


async def test_areas_said_with_one_suffix_and_added_from_the_summary(
        zhang: Chat, services: Services) -> None:
    await zhang.say("3号、5号台区巡视了，发现2号杆拉线松动")
    assert "其他台区 5号台区" in zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("巡视 3号台区和9号台区 无异常")  # 9号台区 is not his: said at once
    assert L("form.worklog.area.unknown", text="9号台区",
             options="3号台区、5号台区、7号台区") in zhang.text
    assert "其他台区" not in zhang.text
    await zhang.say("/cancel")
    await zhang.press("确定放弃")
    await zhang.say("巡视 3号台区 无异常")
    await zhang.press("现在")
    await zhang.press("➕ 其他台区")
    assert zhang.text.endswith(L("form.worklog.more_areas"))
    await zhang.say("5号台区、9号台区")  # 9号台区 is not his: said, nothing else lost
    assert L("form.worklog.more_areas.unknown", text="9号台区",
             options="3号台区、5号台区、7号台区") in zhang.text
    await zhang.say("5号台区，7号台区")
    assert "台区：3号台区\n其他台区：5号台区、7号台区\n" in zhang.text
    assert "工作内容：无异常" in zhang.text
    await zhang.press("保存")
    assert (await entry(services))["areas"] == ["3号台区", "5号台区", "7号台区"]


# --- 处理结果 and 关联工单号 -------------------------------------------------------------
async def test_result_and_ticket_from_the_sentence(zhang: Chat, services: Services) -> None:
    await zhang.say("巡视3号台区，发现2号杆拉线松动，处理结果：已紧固 工单号 2026112700123")
    assert "处理结果 已紧固" in zhang.text and "关联工单号 2026112700123" in zhang.text
    await zhang.press("现在")
    await zhang.press("跳过")  # photos
    await zhang.press("跳过")  # location
    assert "发现问题：2号杆拉线松动\n处理结果：已紧固\n关联工单号：2026112700123" in zhang.text
    assert "➕ 处理结果" not in labels(zhang) and "➕ 涉及客户" in labels(zhang)
    await zhang.press("保存")
    row = await entry(services)
    assert (row["result"], row["ticket_no"], row["problems"]) == (
        "已紧固", "2026112700123", "2号杆拉线松动")
    await zhang.press("查看")
    assert "处理结果：已紧固" in zhang.text and "关联工单号：2026112700123" in zhang.text


async def test_result_and_ticket_from_the_summary_with_a_polite_reprompt(
        zhang: Chat, services: Services) -> None:
    await zhang.say("巡视 3号台区 无异常")
    await zhang.press("现在")
    await zhang.press("➕ 处理结果")
    assert zhang.text.endswith(L("form.worklog.result"))
    await zhang.say("已通知业主更换表箱锁")
    await zhang.press("➕ 关联工单号")
    await zhang.say("12号")
    assert L("form.worklog.ticket.bad", text="12号") in zhang.text
    await zhang.say("GD-2026-1127")
    assert "处理结果：已通知业主更换表箱锁" in zhang.text
    assert "关联工单号：GD-2026-1127" in zhang.text
    await zhang.press("保存")
    row = await entry(services)
    assert (row["result"], row["ticket_no"]) == ("已通知业主更换表箱锁", "GD-2026-1127")


# --- 涉及客户 -------------------------------------------------------------------------
async def test_customer_by_name_account_or_pick_among_namesakes(
        zhang: Chat, services: Services) -> None:
    granny = await add_customer(services, "张三", "李奶奶", "5500020001", "5号台区")
    await add_customer(services, "张三", "陈国强", "5500020002", "3号台区")
    chen5 = await add_customer(services, "张三", "陈国强", "5500020003", "5号台区")
    await zhang.say("客户服务 3号台区 检查表箱接线")
    await zhang.press("现在")
    await zhang.press("跳过")  # problems
    await zhang.press("跳过")  # photos
    await zhang.press("跳过")  # location
    await zhang.press("➕ 涉及客户")
    assert zhang.text.endswith(L("form.worklog.customer"))
    await zhang.say("王大爷")  # nobody by that name: said so, the step asked again
    assert L("form.worklog.customer.unknown", text="王大爷") in zhang.text
    await zhang.say("陈国强")  # two: one tap picks
    assert L("form.worklog.customer.pick", text="陈国强", count=2) in zhang.text
    await zhang.press("陈国强（5号台区")
    assert "涉及客户：陈国强（5号台区，户号尾号 0003）" in zhang.text
    await zhang.press("✏️ 修改")
    await zhang.press("涉及客户")
    await zhang.say("5500020001")  # by 户号
    assert "涉及客户：李奶奶（5号台区，户号尾号 0001）" in zhang.text
    await zhang.press("保存")
    assert (await entry(services))["customer_id"] == granny != chen5
    await zhang.press("查看")
    assert "涉及客户：李奶奶（5号台区，户号尾号 0001）" in zhang.text


async def test_customer_from_the_account_in_the_sentence(zhang: Chat,
                                                         services: Services) -> None:
    granny = await add_customer(services, "张三", "李奶奶", "5500020001", "5号台区")
    await zhang.say("走访 5号台区 户号5500020001 了解用电情况 无异常")
    assert "涉及客户 李奶奶（5号台区，户号尾号 0001）" in zhang.text
    await zhang.press("现在")
    await zhang.press("保存")
    row = await entry(services)
    assert row["customer_id"] == granny and row["content"] == "了解用电情况 无异常"


# --- editing keeps everything -------------------------------------------------------------
async def test_editing_an_entry_keeps_its_fuller_fields(zhang: Chat, services: Services) -> None:
    granny = await add_customer(services, "张三", "李奶奶", "5500020001", "5号台区")
    await save_patrol(zhang, "巡视 3号台区和5号台区 无异常 户号5500020001 "
                             "工单号 2026112700123 处理结果：已紧固")
    await zhang.press("查看")
    await zhang.press("✏️ 修改")
    assert "其他台区：5号台区" in zhang.text and "处理结果：已紧固" in zhang.text
    await zhang.press("✏️ 修改")
    await zhang.press("工作内容")
    await zhang.say("巡视两个台区的线路")
    await zhang.press("保存")
    row = await entry(services)
    assert (row["content"], row["result"], row["ticket_no"], row["customer_id"],
            row["areas"]) == ("巡视两个台区的线路", "已紧固", "2026112700123", granny,
                              ["3号台区", "5号台区"])


async def test_an_entry_saved_before_the_fuller_fields_edits_as_it_was(
        zhang: Chat, services: Services) -> None:
    """A row written by the previous version (no worklog_areas row, no new columns)."""
    user = await user_named(services, "张三")
    area = (await services.people.areas_for(user))[0].id
    await services.db.execute(
        "INSERT INTO worklogs(id, team_id, area_id, user_id, occurred_at, content, created_at) "
        "VALUES (1, ?, ?, ?, '2026-11-26T07:00:00+00:00', '旧日志', '2026-11-26T07:05:00+00:00')",
        (user.team_id, area, user.id))
    await services.db.execute("INSERT INTO worklog_items(worklog_id, item) VALUES (1, 'patrol')")
    await zhang.tap(feature_callback("worklog", "log", 1))
    assert "台区：3号台区\n" in zhang.text and "处理结果" not in zhang.text
    await zhang.press("✏️ 修改")
    await zhang.press("保存")
    row = await entry(services)
    assert (row["content"], row["areas"], row["result"]) == ("旧日志", ["3号台区"], None)


# --- 批注 ------------------------------------------------------------------------------
async def test_lead_comments_the_author_is_told_and_it_shows_on_card_and_paper(
        zhang: Chat, lead: Chat, services: Services) -> None:
    notifier = FakeNotifier()
    reminders = ReminderService(services, Dispatcher(services, [notifier]))
    await save_patrol(zhang, "巡视 3号台区，发现2号杆拉线松动，处理结果：已紧固")
    await zhang.press("查看")
    assert "✍️ 批注" not in labels(zhang)  # the author sees no 批注 button
    await lead.tap(feature_callback("worklog", "log", 1))
    await lead.press("✍️ 批注")
    assert lead.text.startswith(L("log_comment.heading", id=1, author="张三", areas="3号台区",
                                  items="巡视"))
    assert L("form.log_comment.body") in lead.text
    await lead.say("拉线紧固后请补一张照片")
    await lead.press("保存")
    assert L("log_comment.saved", id=1, name="张三") in lead.text
    await reminders.scan_once()
    assert notifier.texts("张三") == [L("log_comment.pushed", lead="王班长", id=1,
                                       areas="3号台区", items="巡视",
                                       body="拉线紧固后请补一张照片")]
    await reminders.scan_once()
    assert len(notifier.texts("张三")) == 1  # told once, not on every scan
    await zhang.tap(feature_callback("worklog", "log", 1))
    assert L("logs.comment_line", author="王班长", when=NOW_SHOWN,
             body="拉线紧固后请补一张照片") in zhang.text
    # The printed log carries the result and the comment.
    out = await lead.say("/export 日志 本周")
    ws = load_workbook(io.BytesIO(out.replies[0].attachments[0].data)).active
    cells = [c.value for row in ws.iter_rows() for c in row if c.value]
    assert "处理结果" in cells and "已紧固" in cells
    assert "批注" in cells and "王班长：拉线紧固后请补一张照片" in cells
    # The report's XLSX log sheet too: a column each, the header naming it.
    out = await lead.say("/report 本周")
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    sheet = load_workbook(io.BytesIO(doc.data))["工作日志"]
    header, first = ([c.value for c in row] for row in sheet.iter_rows(max_row=2))
    shown = dict(zip(header, first, strict=True))
    assert (shown["处理结果"], shown["批注"], shown["关联工单号"]) == (
        "已紧固", "王班长：拉线紧固后请补一张照片", None)


async def test_a_manager_cannot_comment_nor_a_lead_of_another_team(
        zhang: Chat, lead: Chat, services: Services, assistant: Assistant) -> None:
    await make_user(services, "李四")
    await make_user(services, "赵班长", role=Role.LEAD, team="城西供电所", areas=())
    await save_patrol(zhang, "巡视 3号台区 无异常")
    li = Chat(assistant, "test", "李四")
    await li.tap(feature_callback("worklog", "logcmt", 1))  # not his entry: not even seen
    assert li.text == L("logs.not_found")
    await zhang.tap(feature_callback("worklog", "logcmt", 1))  # his own: no
    assert L("log_comment.not_allowed", id=1) in zhang.text
    other = Chat(assistant, "test", "赵班长")
    await other.tap(feature_callback("worklog", "logcmt", 1))
    assert other.text == L("logs.not_found")
    row = await services.db.fetchone("SELECT count(*) FROM worklog_comments")
    assert row is not None and row[0] == 0


# --- Telegram end to end ------------------------------------------------------------------
async def test_telegram_two_areas_a_result_and_the_leads_comment(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI) -> None:
    """Through the real PTB Application on the fake Bot API: the entry by sentence and one
    ➕, the lead's 批注 by buttons, and the push that tells the author."""
    zhang = await tg_register(fake_api, services, 42, "张三")
    lead = await tg_register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    await zhang.say("巡视 3号台区和5号台区 无异常")
    await zhang.press("现在")
    r = await zhang.press("➕ 处理结果")
    assert L("form.worklog.result") in [body(m) for m in r]
    r = await zhang.say("已紧固")
    assert "其他台区：5号台区" in body(r[-1]) and "处理结果：已紧固" in body(r[-1])
    r = await zhang.press("保存")
    assert "3号台区、5号台区 · 巡视" in body(r[0])
    await lead.say("/logs")
    r = await lead.press("#1 3号台区、5号台区")
    assert "台区：3号台区、5号台区" in body(r[-1]) and "处理结果：已紧固" in body(r[-1])
    await lead.press("✍️ 批注")
    await lead.say("两个台区都要补照片")
    r = await lead.press("保存")
    assert L("log_comment.saved", id=1, name="张三") in body(r[0])
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    assert (await service.scan_once()).sent == 1
    told = zhang.last
    assert body(told) == L("log_comment.pushed", lead="王班长", id=1, areas="3号台区、5号台区",
                           items="巡视", body="两个台区都要补照片")
    r = await zhang.press("查看", message=told)
    assert L("logs.comment_line", author="王班长", when=NOW_SHOWN,
             body="两个台区都要补照片") in body(r[-1])
    assert "✍️ 批注" not in tg_labels(r[-1])


# --- the local terminal chat ---------------------------------------------------------------
def test_terminal_chat_takes_two_areas_and_a_result(tmp_path: Path) -> None:
    from tests.test_terminal_chat import chat as terminal_chat

    db = tmp_path / "taiqu.db"
    p = terminal_chat(db, ["巡视 3号台区和5号台区 无异常", "现在", "➕ 处理结果", "已紧固",
                           "保存", "/quit"], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    summary = p.stdout[p.stdout.rindex(L("form.summary_title", title="工作日志")):]
    assert "其他台区：5号台区" in summary and "处理结果：已紧固" in summary
    assert "3号台区、5号台区 · 巡视" in p.stdout
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT result FROM worklogs").fetchall() == [("已紧固",)]
        assert con.execute("SELECT count(*) FROM worklog_areas").fetchone() == (2,)
    finally:
        con.close()
