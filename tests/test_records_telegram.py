"""Complaints, arrears, outages and repairs end to end through the real Telegram channel (PTB
long polling against the loopback fake Bot API), on a real SQLite file, with the clock moved
between reminder scans (T0 = Friday 2026-11-27 10:30 Shanghai; nothing sleeps but the short
real waits of the harness and of the delivery retries).

Users register with an invite over Telegram (/start CODE): the manager 张三 (3号/5号台区, chat
42) and the lead 王班长 (chat 7). Each record type goes from registration (typed and button
answers) to closure, where the closing actions are pressed on the reminder messages that
arrived in the chat. Then: snooze, quiet hours and the morning digest, escalation, a blocked
user, 429/502 faults while many reminders fall due, and a restart between reminders."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import SHANGHAI, Chat
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import (
    L,
    Msg,
    TgUser,
    body,
    callback_data,
    labels,
    register,
    start_channel,
    texts,
)

pytestmark = pytest.mark.timeout(60)

ZHANG, LEAD = 42, 7
SNOOZE = [L("btn.snooze_hour"), L("btn.snooze_morning")]
OPEN = L("btn.open_item")
WEEKLY = L("report.push_intro")


# --- fixtures and helpers -------------------------------------------------------------
@dataclass
class Team:
    zhang: TgUser
    lead: TgUser
    service: ReminderService
    clock: FakeClock
    services: Services

    async def scan_at(self, *when: int) -> dict[str, list[Msg]]:
        """Move the clock, scan once; the messages each chat received during the scan."""
        return await scan_at(self.service, self.clock, [self.zhang, self.lead], *when)

    async def user(self, name: str) -> User:
        return next(u for u in await self.services.people.users() if u.name == name)


async def scan_at(service: ReminderService, clock: FakeClock, users: list[TgUser],
                  *when: int) -> dict[str, list[Msg]]:
    if when:
        at(clock, *when)
    before = {u.name: len(u.sent) for u in users}
    await service.scan_once()
    return {u.name: [m for m in u.sent[before[u.name]:] if not weekly_report(m)] for u in users}


def weekly_report(msg: Msg) -> bool:
    """The Monday report push (another feature) comes on the same scans: not a reminder."""
    return msg.get("method") != "sendMessage" or body(msg).startswith(WEEKLY)


@pytest.fixture
async def team(services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
               clock: FakeClock) -> Team:
    zhang = await register(fake_api, services, ZHANG, "张三")
    lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests are done: later scans send singly
    return Team(zhang, lead, service, clock, services)


def at(clock: FakeClock, *args: int) -> None:
    clock.set(datetime(*args, tzinfo=SHANGHAI))  # type: ignore[misc]


def left(days: int = 0, hours: int = 0, minutes: int | None = None) -> str:
    return L("time.left", span=_span(days, hours, minutes))


def late(days: int = 0, hours: int = 0, minutes: int | None = None) -> str:
    return L("time.overdue", span=_span(days, hours, minutes))


def _span(days: int, hours: int, minutes: int | None) -> str:
    if days:
        return L("time.days_hours", days=days, hours=hours)
    if hours:
        return L("time.hours_minutes", hours=hours, minutes=minutes or 0)
    return L("time.minutes", minutes=minutes)


def only(msgs: list[Msg]) -> Msg:
    assert len(msgs) == 1, [body(m) for m in msgs]
    return msgs[0]


def count(user: TgUser, text: str) -> int:
    """How many messages in the chat read exactly `text`."""
    return sum(1 for m in user.sent if body(m) == text)


async def reminders(services: Services, subject: str) -> list[tuple[str, str, str]]:
    """(kind, recipient, state) of every reminder row about `subject`, by id."""
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name, r.state FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE r.subject = ? ORDER BY r.id", (subject,))
    return [(r[0], r[1], r[2]) for r in rows]


async def open_rows(services: Services) -> int:
    row = await services.db.fetchone(
        "SELECT count(*) FROM reminders WHERE state IN ('pending', 'sending', 'held')")
    return int(row[0]) if row else -1


async def record(services: Services, table: str, columns: str) -> tuple[Any, ...]:
    row = await services.db.fetchone(f"SELECT {columns} FROM {table} WHERE id = 1")
    assert row is not None
    return tuple(row)


async def add_customer(services: Services, owner: User, name: str, account: str,
                       cats: tuple[str, ...], area: str = "3号台区") -> int:
    area_id = next(a.id for a in await services.people.areas_for(owner) if a.name == area)
    return await services.customers.create(owner, CustomerData(
        account_no=account, name=name, area_id=area_id, address="东风村3组", phone="13800001234",
        categories=cats), services.clock.now())


async def register_complaint(zhang: TgUser) -> list[Msg]:
    """Typed and pressed answers; accepted now. Returns the saved message(s)."""
    r = await zhang.say("登记投诉")
    assert L("form.complaint.order_no") in texts(r)
    await zhang.say("2026112700123")
    await zhang.press("投诉")
    await zhang.press("跳过")  # no 户号
    await zhang.say("张先生")
    await zhang.say("13800001234")
    await zhang.press("现在")
    await zhang.say("近一周频繁停电")
    return await zhang.press("保存")


async def register_repair(zhang: TgUser, area: str = "3号台区", received: str | None = None,
                          what: str = "变压器冒烟") -> list[Msg]:
    await zhang.say("/repair")
    await zhang.press(area)
    if received is None:
        await zhang.press("现在")
    else:
        await zhang.say(received)
    await zhang.say(what)
    return await zhang.press("保存")


COMPLAINT = L("complaint.title", id=1, kind=L("complaint.kind.complaint"), who="（张先生）")
CONTACT, REPLY = L("complaint.step.contact"), L("complaint.step.reply")
CONTACT_DUE, REPLY_DUE = "2026-11-30 周一 10:30", "2026-12-08 周二 10:30"
REPAIR = L("repair.title", id=1, area="3号台区")
ARRIVAL = L("repair.step.arrival")


# --- 1. complaint -----------------------------------------------------------------------
async def test_complaint_from_registration_to_closure(team: Team, services: Services) -> None:
    zhang = team.zhang
    saved = await register_complaint(zhang)
    assert body(saved[0]) == "\n".join([
        L("complaint.saved", id=1, kind=L("complaint.kind.complaint")),
        L("complaint.contact_by", when=CONTACT_DUE, rule="1个工作日"),
        L("complaint.reply_by", when=REPLY_DUE, rule="7个工作日")])
    assert labels(saved[0]) == [OPEN]
    assert await reminders(services, "complaint") == [
        ("contact.half", "张三", "pending"), ("contact.soon", "张三", "pending"),
        ("contact.due", "张三", "pending"), ("contact.escalate", "王班长", "pending"),
        ("reply.half", "张三", "pending"), ("reply.soon", "张三", "pending"),
        ("reply.due", "张三", "pending"), ("reply.escalate", "王班长", "pending")]

    # Half-way to the first contact: the manager only, with the action and snooze buttons.
    got = await team.scan_at(2026, 11, 27, 15, 1)
    half = only(got["张三"])
    assert body(half) == L("reminder.half", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                           left=left(2, 19))
    assert labels(half) == [OPEN, L("btn.contacted"), *SNOOZE]
    assert got["王班长"] == []
    card = only(await zhang.press(OPEN, message=half))
    assert body(card).splitlines()[:2] == [COMPLAINT, L("complaint.status.open")]
    assert f"{L('field.contact_due')}：{CONTACT_DUE} · {left(2, 19)}" in body(card)
    assert labels(card) == [L("btn.contacted"), L("btn.replied")]

    # Monday 08:31: one morning digest each; the 08:30 "due soon" is folded into it.
    got = await team.scan_at(2026, 11, 30, 8, 31)
    todo_line = L("todo.complaint", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                  left=left(hours=1, minutes=59))
    digest = only(got["张三"])
    assert body(digest) == "\n".join([L("digest.title", name="张三", count=1), "• " + todo_line])
    assert labels(digest) == ["#1 投诉", L("btn.todo")]
    assert body(only(got["王班长"])) == "\n".join([L("digest.title", name="王班长", count=1),
                                                "• " + todo_line])

    # 10:31: overdue to the manager, escalated to the lead — once each.
    got = await team.scan_at(2026, 11, 30, 10, 31)
    overdue = only(got["张三"])
    assert body(overdue) == L("reminder.overdue", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                              late=late(minutes=1))
    assert labels(overdue) == [OPEN, L("btn.contacted"), *SNOOZE]
    assert body(only(got["王班长"])) == L("reminder.escalate", owner="张三", item=COMPLAINT,
                                        what=CONTACT, due=CONTACT_DUE, late=late(minutes=1))
    got = await team.scan_at()
    assert got == {"张三": [], "王班长": []}

    # 已联系 pressed on the overdue reminder itself.
    r = await zhang.press(L("btn.contacted"), message=overdue)
    assert L("complaint.contact_heading", item=COMPLAINT) in texts(r)
    await zhang.press("现在")
    await zhang.press("电话")
    r = await zhang.press("保存")
    assert L("complaint.contacted", id=1) + " " + L("deadline.late") in texts(r)
    assert await record(services, "complaints", "status, contact_method") == ("contacted", "phone")

    # The next working day's overdue repeat was planned, then cancelled by the contact.
    got = await team.scan_at(2026, 12, 1, 9, 1)
    assert got == {"张三": [], "王班长": []}

    # Half-way to the reply: 已答复 pressed on that reminder closes the complaint.
    got = await team.scan_at(2026, 12, 2, 15, 1)
    reply_half = only(got["张三"])
    assert body(reply_half) == L("reminder.half", item=COMPLAINT, what=REPLY, due=REPLY_DUE,
                                 left=left(5, 19))
    assert labels(reply_half) == [OPEN, L("btn.replied"), *SNOOZE]
    assert got["王班长"] == []
    r = await zhang.press(L("btn.replied"), message=reply_half)
    assert L("complaint.reply_heading", item=COMPLAINT) in texts(r)
    await zhang.press("现在")
    await zhang.say("已更换老化接头，电压恢复正常")
    r = await zhang.press("保存")
    assert L("complaint.closed", id=1) + " " + L("deadline.on_time") in texts(r)
    # The reply plans the call-back (issue #13 §4): recorded at once from that message.
    await zhang.press(L("btn.callback"))
    await zhang.press(L("callback.result.satisfied"))
    await zhang.press(L("btn.skip"))
    await zhang.press("保存")

    # Closed and called back: nothing more, the old action buttons only show the card.
    got = await team.scan_at(2026, 12, 8, 10, 31)
    assert got == {"张三": [], "王班长": []}
    r = await zhang.press(L("btn.contacted"), message=half)
    assert L("complaint.status.closed") in texts(r)
    row = await record(services, "complaints",
                       "status, contacted_at, replied_at, reply_result")
    assert row == ("closed", "2026-11-30T02:31:00+00:00", "2026-12-02T07:01:00+00:00",
                   "已更换老化接头，电压恢复正常")
    rows = await reminders(services, "complaint")
    assert rows[:8] == [
        ("contact.half", "张三", "sent"), ("contact.soon", "张三", "digested"),
        ("contact.due", "张三", "sent"), ("contact.escalate", "王班长", "sent"),
        ("reply.half", "张三", "sent"), ("reply.soon", "张三", "cancelled"),
        ("reply.due", "张三", "cancelled"), ("reply.escalate", "王班长", "cancelled")]
    # Planned after two pushes the scan makes side by side (张三's, 王班长's): which of the
    # two rows came first is up to the store (on PostgreSQL the pushes really overlap).
    assert sorted(rows[8:10]) == [
        ("contact.overdue", "张三", "cancelled"), ("contact.overdue_lead", "王班长", "cancelled")]
    assert rows[10:] == [
        ("callback.due", "张三", "cancelled"), ("callback.escalate", "王班长", "cancelled")]
    assert await open_rows(services) == 0


# --- 2. arrears -------------------------------------------------------------------------
ARREARS = L("arrears.title", id=1, name="李四")
CUTOFF_FROM = "2026-12-07 周一 09:01"


async def test_arrears_from_registration_to_closure(team: Team, services: Services) -> None:
    zhang, lead = team.zhang, team.lead
    await add_customer(services, await team.user("张三"), "李四", "5500012345", ("elderly",))
    await zhang.say("/arrears")
    r = await zhang.say("5500012345")  # on file: the name is filled, not asked (#15)
    assert L("register.on_file", name="李四", area="3号台区") in texts(r)
    assert L("form.arrears.amount") in texts(r)
    await zhang.say("￥500")
    await zhang.say("10月1日")
    r = await zhang.press("否")
    assert L("register.account_on_file", account="5500012345", name="李四", flags="") in texts(r)
    assert "户名：李四" in texts(r)
    saved = (await zhang.press("保存"))[0]
    assert body(saved) == "\n".join([
        L("arrears.saved", id=1, name="李四", account="5500012345", amount="￥500.00",
          since="2026-10-01 周四", days=57),
        L("arrears.followup_line", every="3天", when="2026-11-30 周一 09:00"),
        L("arrears.next_notice", period="7天")])
    assert labels(saved) == [OPEN]
    assert await reminders(services, "arrears") == [("followup", "张三", "pending")]

    # Monday: the digest lists the follow-up, which itself comes at 09:00 with its buttons.
    got = await team.scan_at(2026, 11, 30, 8, 1)
    todo_line = "• " + L("arrears.todo.followup", item=ARREARS, due="2026-11-30 周一 09:00",
                         step=L("arrears.step.notice"))
    assert body(only(got["张三"])) == "\n".join([L("digest.title", name="张三", count=1),
                                                 todo_line])
    assert labels(only(got["王班长"])) == [L("arrears.todo.button", id=1, name="李四"),
                                           L("btn.todo")]
    got = await team.scan_at(2026, 11, 30, 9, 1)
    follow = only(got["张三"])
    assert body(follow) == L("arrears.reminder.followup", item=ARREARS, account="5500012345",
                             amount="￥500.00", days=60, step=L("arrears.step.notice"))
    assert labels(follow) == [OPEN, L("btn.arrears_paid"), L("btn.arrears_notice"), *SNOOZE]
    assert got["王班长"] == []

    # 通知书已送达, pressed on the follow-up.
    r = await zhang.press(L("btn.arrears_notice"), message=follow)
    assert L("arrears.notice_heading", item=ARREARS) in texts(r)
    await zhang.press("现在")
    r = await zhang.press("保存")
    assert body(r[0]) == "\n".join([
        L("arrears.notice_saved", id=1, when="2026-11-30 周一 09:01"),
        L("arrears.cutoff_from", when=CUTOFF_FROM, period="7天")])

    # Follow-ups go on every 3 days, now naming the earliest cut-off (no notice button).
    for day, days in ((3, 63), (6, 66)):
        got = await team.scan_at(2026, 12, day, 9, 1)
        follow_n = only(got["张三"])
        assert body(follow_n) == L(
            "arrears.reminder.followup", item=ARREARS, account="5500012345", amount="￥500.00",
            days=days, step=L("arrears.step.cutoff_from", when=CUTOFF_FROM))
        assert labels(follow_n) == [OPEN, L("btn.arrears_paid"), *SNOOZE]
        assert got["王班长"] == []
    got = await team.scan_at(2026, 12, 7, 8, 1)
    assert body(only(got["张三"])) == "\n".join([
        L("digest.title", name="张三", count=1),
        "• " + L("arrears.todo.cutoff", item=ARREARS, due=CUTOFF_FROM)])

    # The notice period is over: "cut-off possible", and 已停电 on that very message.
    got = await team.scan_at(2026, 12, 7, 9, 2)
    cutoff = only(got["张三"])
    assert body(cutoff) == L("arrears.reminder.cutoff", item=ARREARS, when=CUTOFF_FROM)
    assert labels(cutoff) == [OPEN, L("btn.arrears_cutoff"), L("btn.arrears_paid"), *SNOOZE]
    assert got["王班长"] == []
    r = await zhang.press(L("btn.arrears_cutoff"), message=cutoff)
    assert L("arrears.cutoff_heading", item=ARREARS) in texts(r)
    await zhang.press("现在")
    r = await zhang.press("保存")
    assert body(r[0]) == "\n".join([L("arrears.cutoff_saved", id=1, when="2026-12-07 周一 09:02"),
                                    L("arrears.restore_rule", period="24小时")])
    assert await record(services, "arrears", "status") == ("cut_off",)

    # Paid late at night: 已缴费, pressed on the same cut-off reminder.
    at(team.clock, 2026, 12, 8, 23, 0)
    await zhang.press(L("btn.arrears_paid"), message=cutoff)
    await zhang.press("现在")
    r = await zhang.press("保存")
    assert body(r[0]) == "\n".join([
        L("arrears.paid_saved", id=1, amount="￥500.00", when="2026-12-08 周二 23:00"),
        L("arrears.restore_by", when="2026-12-09 周三 23:00", period="24小时",
          left=left(1, 0))])

    # The restore deadline is urgent: it comes at 21:01, inside the quiet hours.
    got = await team.scan_at(2026, 12, 9, 21, 1)
    restore = only(got["张三"])
    assert body(restore) == L("reminder.soon", item=ARREARS, what=L("arrears.step.restore"),
                              due="2026-12-09 周三 23:00", left=left(hours=1, minutes=59))
    assert labels(restore) == [OPEN, L("btn.arrears_restored"), *SNOOZE]
    at(team.clock, 2026, 12, 9, 22, 30)
    await zhang.press(L("btn.arrears_restored"), message=restore)
    await zhang.press("现在")
    r = await zhang.press("保存")
    assert body(r[0]) == (L("arrears.restored_saved", id=1, when="2026-12-09 周三 22:30") + " "
                          + L("deadline.on_time"))

    # Closed: no overdue message, no escalation, nothing left to remind.
    got = await team.scan_at(2026, 12, 9, 23, 1)
    assert got == {"张三": [], "王班长": []}
    card = only(await zhang.press(OPEN, message=restore))
    assert L("arrears.status.restored") in body(card) and labels(card) == []
    assert body(only(await lead.say("/todo"))) == L("todo.none")
    row = await record(services, "arrears",
                       "status, amount_cents, in_register, notice_served_at, cutoff_earliest, "
                       "cut_off_at, paid_at, restore_due, restored_at")
    assert row == ("restored", 50000, 1, "2026-11-30T01:01:00+00:00",
                   "2026-12-07T01:01:00+00:00", "2026-12-07T01:02:00+00:00",
                   "2026-12-08T15:00:00+00:00", "2026-12-09T15:00:00+00:00",
                   "2026-12-09T14:30:00+00:00")
    assert await reminders(services, "arrears") == [
        ("followup", "张三", "sent"), ("followup", "张三", "sent"), ("cutoff", "张三", "sent"),
        ("followup", "张三", "sent"), ("followup", "张三", "cancelled"),
        ("restore.soon", "张三", "sent"), ("restore.due", "张三", "cancelled"),
        ("restore.escalate", "王班长", "cancelled")]
    assert await open_rows(services) == 0


# --- 3. outage --------------------------------------------------------------------------
OUTAGE = L("outage.title", id=1, kind=L("outage.kind.planned"), areas="3号台区")
NOTICE_DUE = "2026-11-28 周六 10:00"
LI = f"李奶奶（3号台区 · {L('category.medical')}）"
WANG = f"王大爷（3号台区 · {L('category.elderly')}）"


async def test_outage_from_registration_to_closure(team: Team, services: Services) -> None:
    zhang = team.zhang
    me = await team.user("张三")
    await add_customer(services, me, "李奶奶", "1000000001", ("medical",))
    await add_customer(services, me, "王大爷", "1000000002", ("elderly",))
    await add_customer(services, me, "赵阿姨", "1000000004", ("elderly",), area="5号台区")
    await zhang.say("登记停电")
    r = await zhang.press("3号台区")
    assert labels(r[0])[:2] == ["☑ 3号台区", "☐ 5号台区"]
    await zhang.press(L("btn.done"))
    await zhang.press(L("outage.kind.planned"))
    await zhang.say("12月5日10点")
    await zhang.say("17点")  # a clock time alone: on the start's day
    r = await zhang.say("10kV东风线检修")
    assert "结束：2026-12-05 周六 17:00" in texts(r)
    saved = (await zhang.press("保存"))[0]
    assert body(saved) == "\n".join([
        L("outage.saved", id=1, kind=L("outage.kind.planned"), areas="3号台区"),
        L("outage.span", start="2026-12-05 周六 10:00", end="2026-12-05 周六 17:00"),
        L("outage.notice_by", when=NOTICE_DUE, rule="7天"),
        L("outage.customers_to_tell", count=2, names="李奶奶、王大爷")])
    assert labels(saved) == [L("btn.outage_checklist")]
    assert await reminders(services, "outage") == [
        ("notice.due", "张三", "pending"), ("notice.escalate", "王班长", "pending"),
        ("untold.daybefore", "张三", "pending"), ("restore.ask", "张三", "pending")]

    # The checklist card: one customer told by phone at once.
    card = only(await zhang.press(L("btn.outage_checklist"), message=saved))
    assert L("outage.checklist", told=0, total=2) in body(card)
    assert "☐ " + LI in body(card) and "赵阿姨" not in body(card)
    phone = L("outage.phone", phone="138****1234")  # each row: tick, and call (#15)
    assert labels(card) == [L("btn.outage_notice_posted"), "☐ 李奶奶", phone, "☐ 王大爷", phone,
                            L("btn.outage_cancel")]
    r = await zhang.press("☐ 李奶奶", message=card)
    assert body(r[0]) == L("outage.ask_how", name="李奶奶")
    r = await zhang.press(L("outage.how_btn.phone"))
    assert ("☑ " + L("outage.told_line", who=LI, how=L("outage.how.phone"),
                      when="2026-11-27 周五 10:30")) in texts(r)

    # Saturday: the digest, then the notice deadline passes unposted: manager and lead.
    got = await team.scan_at(2026, 11, 28, 8, 0)
    todo_line = "• " + L("todo.outage_notice", item=OUTAGE, due=NOTICE_DUE,
                         left=left(hours=2, minutes=0))
    assert body(only(got["张三"])) == "\n".join([L("digest.title", name="张三", count=1),
                                                 todo_line])
    assert body(only(got["王班长"])) == "\n".join([L("digest.title", name="王班长", count=1),
                                                  todo_line])
    got = await team.scan_at(2026, 11, 28, 10, 1)
    what = L("outage.step.notice")
    overdue = only(got["张三"])
    assert body(overdue) == L("reminder.overdue", item=OUTAGE, what=what, due=NOTICE_DUE,
                              late=late(minutes=1))
    assert labels(overdue) == [L("btn.outage_checklist"), L("btn.outage_notice_posted"), *SNOOZE]
    escalation = only(got["王班长"])
    assert body(escalation) == L("reminder.escalate", owner="张三", item=OUTAGE, what=what,
                                 due=NOTICE_DUE, late=late(minutes=1))
    assert labels(escalation) == labels(overdue)
    # 已张贴公告 on the reminder: the message turns into the updated checklist.
    r = await zhang.press(L("btn.outage_notice_posted"), message=overdue)
    edited = only(r)
    assert edited["message_id"] == overdue["message_id"]
    assert "☑ " + L("outage.notice_posted_at", when="2026-11-28 周六 10:01") in body(edited)
    assert zhang.answers()[-1]["text"] == L("outage.notice_posted_toast")

    # The day before (urgent): only the customer not yet told, ticked from that message.
    got = await team.scan_at(2026, 12, 4, 9, 0)
    daybefore = only(got["张三"])
    assert body(daybefore) == "\n".join([
        L("outage.daybefore", item=OUTAGE, start="2026-12-05 周六 10:00", count=1),
        "☐ " + WANG + " " + L("outage.phone", phone="138****1234")])
    assert labels(daybefore) == ["☐ 王大爷", L("outage.phone", phone="138****1234"),
                                 L("btn.outage_checklist"), *SNOOZE]
    assert got["王班长"] == []
    await zhang.press("☐ 王大爷", message=daybefore)
    r = await zhang.press(L("outage.how_btn.visit"))
    assert L("outage.checklist", told=2, total=2) in texts(r)

    # At the end time: has power been restored? 已恢复供电 on that message closes it.
    got = await team.scan_at(2026, 12, 5, 8, 0)
    assert L("todo.outage_upcoming", item=OUTAGE, start="2026-12-05 周六 10:00",
             left=left(hours=2, minutes=0)) in body(only(got["张三"]))
    got = await team.scan_at(2026, 12, 5, 17, 0)
    ask = only(got["张三"])
    assert body(ask) == L("outage.restore_ask", item=OUTAGE, end="2026-12-05 周六 17:00")
    assert labels(ask) == [L("btn.outage_restored"), L("btn.outage_checklist"), *SNOOZE]
    assert got["王班长"] == []
    r = await zhang.press(L("btn.outage_restored"), message=ask)
    assert body(r[0]) == L("outage.closed", id=1, when="2026-12-05 周六 17:00")
    assert L("outage.status.done") in body(r[1]) and labels(r[1]) == []

    got = await team.scan_at(2026, 12, 6, 9, 0)
    assert got == {"张三": [], "王班长": []}
    assert await record(services, "outages", "status, notice_posted_at, restored_at") == (
        "done", "2026-11-28T02:01:00+00:00", "2026-12-05T09:00:00+00:00")
    told = await services.db.fetchall(
        "SELECT c.name, n.how FROM outage_notices n JOIN customers c ON c.id = n.customer_id "
        "WHERE n.told_at IS NOT NULL ORDER BY c.id")
    assert [tuple(t) for t in told] == [("李奶奶", "phone"), ("王大爷", "visit")]
    assert await reminders(services, "outage") == [
        ("notice.due", "张三", "sent"), ("notice.escalate", "王班长", "sent"),
        ("untold.daybefore", "张三", "sent"), ("restore.ask", "张三", "sent")]
    assert await open_rows(services) == 0


# --- 4. repair --------------------------------------------------------------------------
REPAIR_BUTTONS = [OPEN, L("btn.repair_arrived"), L("btn.repair_restored")]


async def test_repair_from_registration_to_closure(team: Team, services: Services) -> None:
    zhang = team.zhang
    saved = (await register_repair(zhang, received="10点20"))[0]
    assert body(saved) == "\n".join([
        L("repair.saved", id=1, area="3号台区", kind=L("repair.area_kind.rural")),
        L("repair.arrive_by", when="2026-11-27 周五 11:50", rule="90分钟",
          left=left(hours=1, minutes=20))])
    assert labels(saved) == REPAIR_BUTTONS
    assert await reminders(services, "repair") == [
        ("arrival.soon", "张三", "pending"), ("arrival.due", "张三", "pending"),
        ("arrival.escalate", "王班长", "pending")]

    got = await team.scan_at(2026, 11, 27, 11, 40)
    soon = only(got["张三"])
    assert body(soon) == L("reminder.soon", item=REPAIR, what=ARRIVAL,
                           due="2026-11-27 周五 11:50", left=left(minutes=10))
    assert labels(soon) == [*REPAIR_BUTTONS, *SNOOZE]
    assert got["王班长"] == []

    # 已到达 on the reminder, with the site's location.
    at(team.clock, 2026, 11, 27, 11, 45)
    r = await zhang.press(L("btn.repair_arrived"), message=soon)
    assert L("repair.arrive_heading", item=REPAIR) in texts(r)
    r = await zhang.press("现在")
    assert L("form.repair_arrive.location") in texts(r)
    r = await zhang.location(31.86, 117.28)
    assert "位置：31.86000, 117.28000" in texts(r)
    r = await zhang.press("保存")
    assert body(r[0]) == "\n".join([
        L("repair.arrived", id=1, when="2026-11-27 周五 11:45") + " " + L("deadline.on_time"),
        L("repair.no_restore_rule", ruleset="sgcc-2011")])

    # Arrived in time: no overdue message and no escalation.
    got = await team.scan_at(2026, 11, 27, 11, 51)
    assert got == {"张三": [], "王班长": []}

    # 已恢复 on the same reminder closes it.
    at(team.clock, 2026, 11, 27, 13, 5)
    r = await zhang.press(L("btn.repair_restored"), message=soon)
    assert L("repair.restore_heading", item=REPAIR) in texts(r)
    await zhang.press("现在")
    r = await zhang.press("保存")
    assert body(r[0]) == (L("repair.closed", id=1, when="2026-11-27 周五 13:05") + " "
                          + L("repair.took", span=L("time.hours_minutes", hours=2, minutes=45))
                          + "\n" + L("callback.planned", when="2026-12-02 周三 13:05",
                                      rule="3个工作日"))  # issue #13 §4: the call-back
    r = await zhang.press(L("btn.repair_arrived"), message=soon)  # stale: just the card
    assert L("repair.status.restored") in texts(r) and labels(r[0]) == [L("btn.callback")]
    await zhang.press(L("btn.callback"))
    await zhang.press(L("callback.result.satisfied"))
    await zhang.press(L("btn.skip"))
    await zhang.press("保存")

    assert await record(services, "repairs",
                        "status, received_at, arrived_at, arrived_lat, arrived_lon, "
                        "restored_at") == (
        "restored", "2026-11-27T02:20:00+00:00", "2026-11-27T03:45:00+00:00", 31.86, 117.28,
        "2026-11-27T05:05:00+00:00")
    assert await reminders(services, "repair") == [
        ("arrival.soon", "张三", "sent"), ("arrival.due", "张三", "cancelled"),
        ("arrival.escalate", "王班长", "cancelled"), ("callback.due", "张三", "cancelled"),
        ("callback.escalate", "王班长", "cancelled")]
    assert await open_rows(services) == 0


# --- snooze -----------------------------------------------------------------------------
async def test_snooze_from_the_reminder_message_redelivers_once(
        team: Team, services: Services) -> None:
    zhang = team.zhang
    await register_complaint(zhang)
    got = await team.scan_at(2026, 11, 27, 15, 1)
    half = only(got["张三"])

    # 1 小时后: again at 16:01, once.
    r = await zhang.press(L("btn.snooze_hour"), message=half)
    assert body(only(r)) == L("reminder.snoozed", when="2026-11-27 周五 16:01")
    assert zhang.answers()[-1]["text"] == L("reminder.snoozed_toast")
    assert labels(half) == [OPEN, L("btn.contacted"), *SNOOZE]  # the reminder keeps them
    assert (await team.scan_at(2026, 11, 27, 16, 0)) == {"张三": [], "王班长": []}
    got = await team.scan_at(2026, 11, 27, 16, 1)
    again = only(got["张三"])
    assert body(again) == L("reminder.half", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                            left=left(2, 18))
    assert labels(again) == [OPEN, L("btn.contacted"), *SNOOZE]
    assert got["王班长"] == []
    assert (await team.scan_at(2026, 11, 27, 17, 30)) == {"张三": [], "王班长": []}

    # 明天 8:00, pressed on the re-delivered message: Saturday 08:00 sharp, once.
    r = await zhang.press(L("btn.snooze_morning"), message=again)
    assert body(only(r)) == L("reminder.snoozed", when="2026-11-28 周六 08:00")
    assert (await team.scan_at(2026, 11, 28, 7, 59)) == {"张三": [], "王班长": []}
    got = await team.scan_at(2026, 11, 28, 8, 0)
    morning = only(got["张三"])
    assert body(morning) == L("reminder.half", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                              left=left(2, 2))
    assert labels(morning) == [OPEN, L("btn.contacted"), *SNOOZE]
    assert (await team.scan_at(2026, 11, 28, 12, 0)) == {"张三": [], "王班长": []}

    for text in (body(half), body(again), body(morning)):
        assert count(zhang, text) == 1
    row = await services.db.fetchone(
        "SELECT state, sent_at FROM reminders WHERE kind = 'contact.half'")
    assert row is not None and tuple(row) == ("sent", "2026-11-28T00:00:00+00:00")
    # Another user cannot snooze it (the lead taps the forged data).
    [data] = [d for d in callback_data(morning) if "|todo.snz|" in d and d.endswith(":0")]
    r = await team.lead.tap(team.lead.last["message_id"], data)
    assert L("reminder.snooze_gone") in texts(r)


# --- quiet hours and the morning digest -------------------------------------------------
async def test_quiet_hours_hold_until_the_digest_but_urgent_ones_go_through(
        team: Team, services: Services) -> None:
    zhang = team.zhang
    # A temporary outage ending at 22:00: its "restored?" question is not urgent.
    await zhang.say("登记临时停电 3号台区")
    await zhang.say("今天18点")
    await zhang.say("22点")
    await zhang.say("更换跌落式熔断器")
    r = await zhang.press("保存")
    assert L("outage.no_customers") in texts(r)
    # Arrears cut off and paid yesterday 23:00 (typed past times): restore by 23:00 tonight.
    await zhang.say("登记欠费 5500099999 赵大 800")
    await zhang.say("10月1日")
    await zhang.press("否")
    saved = (await zhang.press("保存"))[0]
    card = only(await zhang.press(OPEN, message=saved))
    await zhang.press(L("btn.arrears_notice"), message=card)
    await zhang.say("11月19日上午9点")
    saved = (await zhang.press("保存"))[0]
    card = only(await zhang.press(OPEN, message=saved))
    await zhang.press(L("btn.arrears_cutoff"), message=card)
    await zhang.say("昨天上午10点")
    saved = (await zhang.press("保存"))[0]
    card = only(await zhang.press(OPEN, message=saved))
    await zhang.press(L("btn.arrears_paid"), message=card)
    await zhang.say("昨天晚上11点")
    r = await zhang.press("保存")
    arrears = L("arrears.title", id=1, name="赵大")
    restore_due = "2026-11-27 周五 23:00"
    assert L("arrears.restore_by", when=restore_due, period="24小时",
             left=left(hours=12, minutes=30)) in texts(r)

    # 21:01, quiet hours: the urgent restore reminder goes through.
    got = await team.scan_at(2026, 11, 27, 21, 1)
    restore_what = L("arrears.step.restore")
    assert body(only(got["张三"])) == L("reminder.soon", item=arrears, what=restore_what,
                                       due=restore_due, left=left(hours=1, minutes=59))
    # 22:00: the outage's question is held for the morning, nothing arrives.
    at(team.clock, 2026, 11, 27, 22, 0)
    result = await team.service.scan_once()
    assert result.held == 1 and result.sent == 0
    assert await reminders(services, "outage") == [("restore.ask", "张三", "held")]
    # 22:50: a repair call at night; everything about it is urgent.
    at(team.clock, 2026, 11, 27, 22, 50)
    await zhang.say("报修 5号台区 线路断了")
    await zhang.press("现在")
    await zhang.press("保存")
    got = await team.scan_at(2026, 11, 27, 23, 1)
    assert body(only(got["张三"])) == L("reminder.overdue", item=arrears, what=restore_what,
                                       due=restore_due, late=late(minutes=1))
    assert body(only(got["王班长"])) == L("reminder.escalate", owner="张三", item=arrears,
                                        what=restore_what, due=restore_due, late=late(minutes=1))
    repair = L("repair.title", id=1, area="5号台区")
    arrival_due = "2026-11-28 周六 00:20"
    got = await team.scan_at(2026, 11, 28, 0, 10)
    soon = only(got["张三"])
    assert body(soon) == L("reminder.soon", item=repair, what=ARRIVAL, due=arrival_due,
                           left=left(minutes=10))
    assert labels(soon) == [*REPAIR_BUTTONS, *SNOOZE]
    got = await team.scan_at(2026, 11, 28, 0, 21)
    assert body(only(got["张三"])) == L("reminder.overdue", item=repair, what=ARRIVAL,
                                       due=arrival_due, late=late(minutes=1))
    assert body(only(got["王班长"])) == L("reminder.escalate", owner="张三", item=repair,
                                        what=ARRIVAL, due=arrival_due, late=late(minutes=1))
    assert (await team.scan_at(2026, 11, 28, 7, 0)) == {"张三": [], "王班长": []}

    # 08:00: one digest with the held question and the day's other open items.
    got = await team.scan_at(2026, 11, 28, 8, 0)
    outage = L("outage.title", id=1, kind=L("outage.kind.temporary"), areas="3号台区")
    lines = [
        "⚠️ " + L("todo.outage_restore", item=outage, end="2026-11-27 周五 22:00"),
        "⚠️ " + L("arrears.todo.restore", item=arrears, due=restore_due,
                  left=late(hours=9, minutes=0)),
        "⚠️ " + L("todo.repair_arrival", item=repair, due=arrival_due,
                  left=late(hours=7, minutes=40))]
    digest = only(got["张三"])
    assert body(digest) == "\n".join([L("digest.title", name="张三", count=3), *lines])
    assert labels(digest) == ["#1 停电", L("arrears.todo.button", id=1, name="赵大"),
                              L("repair.todo_button", id=1, area="5号台区"), L("btn.todo")]
    assert body(only(got["王班长"])) == "\n".join([L("digest.title", name="王班长", count=3),
                                                  *lines])
    assert await reminders(services, "outage") == [("restore.ask", "张三", "digested")]
    assert (await team.scan_at(2026, 11, 28, 9, 0)) == {"张三": [], "王班长": []}
    # The digest's button opens the outage, whose card closes it.
    card = only(await zhang.press("#1 停电", message=digest))
    r = await zhang.press(L("btn.outage_restored"), message=card)
    assert body(r[0]) == L("outage.closed", id=1, when="2026-11-28 周六 09:00")
    assert await record(services, "outages", "status") == ("done",)


# --- escalation ---------------------------------------------------------------------------
async def test_overdue_contact_and_arrival_escalate_to_the_lead(
        team: Team, services: Services) -> None:
    zhang, lead = team.zhang, team.lead
    await register_complaint(zhang)
    await team.scan_at(2026, 11, 27, 15, 1)
    await team.scan_at(2026, 11, 30, 8, 31)  # Monday's digests
    at(team.clock, 2026, 11, 30, 10, 0)
    await zhang.say("报修 3号台区 电杆倾斜")
    await zhang.press("现在")
    await zhang.press("保存")

    # The complaint's first contact is overdue: the lead is told, naming the manager.
    got = await team.scan_at(2026, 11, 30, 10, 31)
    assert body(only(got["张三"])).startswith("⚠️ " + COMPLAINT)
    escalation = only(got["王班长"])
    assert body(escalation) == L("reminder.escalate", owner="张三", item=COMPLAINT,
                                 what=CONTACT, due=CONTACT_DUE, late=late(minutes=1))
    assert labels(escalation) == [OPEN, L("btn.contacted"), *SNOOZE]
    card = only(await lead.press(OPEN, message=escalation))  # the lead sees the team's item
    assert body(card).splitlines()[:2] == [COMPLAINT, L("complaint.status.open")]
    assert L("field.owner") + "：张三" in body(card)

    # The repair's arrival is overdue: escalated at once, and the lead records the arrival.
    got = await team.scan_at(2026, 11, 30, 11, 20)
    assert got["王班长"] == [] and len(got["张三"]) == 1
    got = await team.scan_at(2026, 11, 30, 11, 31)
    arrival_due = "2026-11-30 周一 11:30"
    assert body(only(got["张三"])) == L("reminder.overdue", item=REPAIR, what=ARRIVAL,
                                       due=arrival_due, late=late(minutes=1))
    repair_escalation = only(got["王班长"])
    assert body(repair_escalation) == L("reminder.escalate", owner="张三", item=REPAIR,
                                        what=ARRIVAL, due=arrival_due, late=late(minutes=1))
    # An overdue emergency offers only the short snoozes (issue #15 §3), never 明天 8:00.
    assert labels(repair_escalation) == [*REPAIR_BUTTONS, L("btn.snooze_minutes", minutes=30),
                                         L("btn.snooze_minutes", minutes=60)]
    assert (await team.scan_at(2026, 11, 30, 11, 35)) == {"张三": [], "王班长": []}
    await lead.press(L("btn.repair_arrived"), message=repair_escalation)
    await lead.press("现在")
    await lead.press("跳过")
    r = await lead.press("保存")
    assert body(r[0]).startswith(L("repair.arrived", id=1, when="2026-11-30 周一 11:35") + " "
                                 + L("deadline.late"))
    assert await record(services, "repairs", "status, arrived_at") == (
        "arrived", "2026-11-30T03:35:00+00:00")

    # Still not contacted the next working day: the digests list it as overdue, and at
    # 09:00 both are reminded once more, once.
    got = await team.scan_at(2026, 12, 1, 8, 1)
    overdue_line = "⚠️ " + L("todo.complaint", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE,
                             left=late(hours=21, minutes=31))
    assert overdue_line in body(only(got["张三"])).splitlines()
    assert overdue_line in body(only(got["王班长"])).splitlines()
    got = await team.scan_at(2026, 12, 1, 9, 1)
    assert body(only(got["张三"])) == L("reminder.overdue", item=COMPLAINT, what=CONTACT,
                                       due=CONTACT_DUE, late=late(hours=22, minutes=31))
    assert body(only(got["王班长"])) == L("reminder.escalate", owner="张三", item=COMPLAINT,
                                        what=CONTACT, due=CONTACT_DUE,
                                        late=late(hours=22, minutes=31))
    assert (await team.scan_at(2026, 12, 1, 9, 30)) == {"张三": [], "王班长": []}
    assert count(lead, body(escalation)) == 1 and count(lead, body(repair_escalation)) == 1


# --- a blocked user -----------------------------------------------------------------------
async def test_blocked_user_reminder_goes_to_the_lead_until_they_write_again(
        team: Team, services: Services, fake_api: FakeBotAPI) -> None:
    zhang, lead = team.zhang, team.lead
    await register_complaint(zhang)
    fake_api.blocked_chats.add(ZHANG)
    n = len(zhang.sent)
    at(team.clock, 2026, 11, 27, 15, 1)
    before = len(lead.sent)
    result = await team.service.scan_once()
    assert result.failed == 1 and len(zhang.sent) == n
    forwarded = only(lead.sent[before:])
    half = L("reminder.half", item=COMPLAINT, what=CONTACT, due=CONTACT_DUE, left=left(2, 19))
    assert body(forwarded) == L("reminder.unreachable", name="张三") + "\n\n" + half
    assert labels(forwarded) == [OPEN, L("btn.contacted")]
    card = only(await lead.press(OPEN, message=forwarded))
    assert body(card).startswith(COMPLAINT)
    assert (await reminders(services, "complaint"))[0] == ("contact.half", "张三", "failed")
    row = await services.db.fetchone("SELECT unreachable_at FROM user_settings")
    assert row is not None and row[0] == "2026-11-27T07:01:00+00:00"

    # The user unblocks the bot and writes: reachable again.
    fake_api.blocked_chats.discard(ZHANG)
    at(team.clock, 2026, 11, 27, 16, 0)
    r = await zhang.say("待办")
    assert body(r[0]).startswith(L("todo.title", count=1))
    row = await services.db.fetchone("SELECT unreachable_at FROM user_settings")
    assert row is not None and row[0] is None

    # The next reminders arrive in the user's own chat; the lead gets only the escalation.
    got = await team.scan_at(2026, 11, 30, 8, 31)
    assert body(only(got["张三"])).startswith(L("digest.title", name="张三", count=1))
    got = await team.scan_at(2026, 11, 30, 10, 31)
    assert body(only(got["张三"])) == L("reminder.overdue", item=COMPLAINT, what=CONTACT,
                                       due=CONTACT_DUE, late=late(minutes=1))
    assert body(only(got["王班长"])).startswith("⚠️ 超期提醒：张三 的" + COMPLAINT)
    assert sum(1 for m in lead.sent if body(m).startswith(
        L("reminder.unreachable", name="张三"))) == 1


async def test_blocked_users_morning_digest_is_not_lost(
        team: Team, services: Services, fake_api: FakeBotAPI) -> None:
    zhang = team.zhang
    await register_complaint(zhang)
    await team.scan_at(2026, 11, 27, 15, 1)
    fake_api.blocked_chats.add(ZHANG)
    got = await team.scan_at(2026, 11, 30, 8, 31)  # the digest, with the 08:30 "due soon"
    assert got["张三"] == []
    forwarded = [m for m in got["王班长"]
                 if body(m).startswith(L("reminder.unreachable", name="张三"))]
    assert len(forwarded) == 1 and CONTACT in body(forwarded[0])


# --- 429 / 502 while many reminders fall due ---------------------------------------------
async def settle(service: ReminderService, services: Services, clock: FakeClock,
                 kinds: tuple[str, ...]) -> int:
    """Scan as time passes until no reminder of `kinds` is due and unsettled; scans used."""
    marks = ",".join("?" for _ in kinds)
    for scans in range(1, 61):
        await service.scan_once()
        row = await services.db.fetchone(
            f"SELECT count(*) FROM reminders WHERE kind IN ({marks}) "
            "AND state IN ('pending', 'sending')", kinds)
        if row is not None and row[0] == 0:
            return scans
        clock.advance(seconds=5)
    raise AssertionError("reminders still unsettled after 60 scans")


async def test_429_and_502_on_a_fifth_of_sends_lose_and_duplicate_nothing(
        services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
    managers = [await register(fake_api, services, 100 + i, f"经理{i}") for i in range(6)]
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    await service.scan_once()  # today's (empty) digests
    # Each manager's complaint (accepted 10:30) and repair (received 13:50), through the
    # core as their Telegram identity would (the forms are covered above, over Telegram).
    for i, m in enumerate(managers):
        chat = Chat(Assistant(services), "telegram", str(m.chat_id))
        at(clock, 2026, 11, 27, 10, 30)
        for step in ("登记投诉", "跳过", "!投诉", "跳过", f"客户{i}", "跳过", "!现在", "电压低",
                     "!保存"):
            await (chat.press(step[1:]) if step.startswith("!") else chat.say(step))
        assert L("complaint.saved", id=i + 1, kind="投诉") in chat.text
        at(clock, 2026, 11, 27, 13, 50)
        for step in ("报修 3号台区 线路断了", "!现在", "!保存"):
            await (chat.press(step[1:]) if step.startswith("!") else chat.say(step))
        assert L("repair.saved", id=i + 1, area="3号台区", kind="农村") in chat.text
    before = {u.chat_id: len(u.sent) for u in [lead, *managers]}

    picked: list[str] = []  # which faults the fake answered with
    pick = fake_api._pick_fault

    def recording(method: str) -> tuple[str, int] | None:
        fault = pick(method)
        if fault is not None:
            picked.append(fault[0])
        return fault

    monkeypatch.setattr(fake_api, "_pick_fault", recording)
    fake_api.fail_ratio("sendMessage", 0.2, kinds=("429", "502"), seed=20261127,
                        retry_after=1)
    at(clock, 2026, 11, 27, 15, 10)  # the complaints' half-way and the repairs' "10 min left"
    await settle(service, services, clock, ("contact.half", "arrival.soon"))
    at(clock, 2026, 11, 27, 15, 21)  # the arrivals overdue: managers and, six times, the lead
    await settle(service, services, clock, ("arrival.due", "arrival.escalate"))
    fake_api.clear_faults()

    failed = fake_api.calls_to("sendMessage", ok=False)
    assert len(failed) >= 3, "the fault injection did not trigger"
    assert set(picked) == {"429", "502"}, picked
    for i, m in enumerate(managers):
        item = L("complaint.title", id=i + 1, kind="投诉", who=f"（客户{i}）")
        repair = L("repair.title", id=i + 1, area="3号台区")
        starts = {  # the "time left" part depends on how long the retries took
            "contact.half": f"⏳ {item}：{CONTACT}的时限已过一半（还剩 2 天 ",
            "arrival.soon": f"⏰ {repair}：请在 2026-11-27 周五 15:20 前{ARRIVAL}（还剩 ",
            "arrival.due": f"⚠️ {repair}：{ARRIVAL}期限 2026-11-27 周五 15:20 已过（已超期 "}
        new = [body(x) for x in m.sent[before[m.chat_id]:]]
        kinds = Counter(next((k for k, p in starts.items() if t.startswith(p)), t) for t in new)
        assert kinds == {"contact.half": 1, "arrival.soon": 1, "arrival.due": 1}, new
        escalation = f"⚠️ 超期提醒：经理{i} 的{repair}，{ARRIVAL}期限 2026-11-27 周五 15:20 已过"
        assert sum(body(x).startswith(escalation) for x in lead.sent[before[LEAD]:]) == 1
    assert len(lead.sent) - before[LEAD] == 6
    states = Counter(r[0] for r in await services.db.fetchall(
        "SELECT state FROM reminders WHERE kind IN "
        "('contact.half', 'arrival.soon', 'arrival.due', 'arrival.escalate')"))
    assert states == {"sent": 24}
    due = await services.db.fetchone(
        "SELECT count(*) FROM reminders WHERE state IN ('pending', 'sending', 'held') "
        "AND due_at <= ?", (clock.now().isoformat(timespec="seconds"),))
    assert due is not None and due[0] == 0
    ok = Counter(c.params["chat_id"] for c in fake_api.calls_to("sendMessage", ok=True))
    for u in [lead, *managers]:  # every accepted send is a message in the chat, no more
        assert ok[u.chat_id] == len(u.sent)


# --- restart between reminders ------------------------------------------------------------
async def test_restart_between_reminders_loses_and_repeats_nothing(
        settings: Settings, clock: FakeClock, fake_api: FakeBotAPI) -> None:
    services = await Services.open(settings, clock)
    channel = await start_channel(services, settings, fake_api)
    try:
        zhang = await register(fake_api, services, ZHANG, "张三")
        lead = await register(fake_api, services, LEAD, "王班长", role=Role.LEAD, areas=())
        service = ReminderService(services, Dispatcher(services, [channel.notifier]))
        await service.scan_once()
        await register_complaint(zhang)
        at(clock, 2026, 11, 27, 14, 0)
        await register_repair(zhang)
        users = [zhang, lead]
        half = only((await scan_at(service, clock, users, 2026, 11, 27, 15, 1))["张三"])
        soon = only((await scan_at(service, clock, users, 2026, 11, 27, 15, 20))["张三"])
        assert body(soon).startswith("⏰ " + REPAIR)
    finally:  # the process goes away mid-way
        await channel.stop()
        await services.close()

    services = await Services.open(settings, clock)
    channel = await start_channel(services, settings, fake_api)
    try:
        service = ReminderService(services, Dispatcher(services, [channel.notifier]))
        got = await scan_at(service, clock, users, 2026, 11, 27, 15, 20)
        assert got == {"张三": [], "王班长": []}  # nothing sent twice after the restart
        got = await scan_at(service, clock, users, 2026, 11, 27, 15, 31)
        arrival_due = "2026-11-27 周五 15:30"
        assert body(only(got["张三"])) == L("reminder.overdue", item=REPAIR, what=ARRIVAL,
                                           due=arrival_due, late=late(minutes=1))
        assert body(only(got["王班长"])) == L("reminder.escalate", owner="张三", item=REPAIR,
                                            what=ARRIVAL, due=arrival_due,
                                            late=late(minutes=1))
        # A button on a message sent before the restart still acts.
        at(clock, 2026, 11, 27, 15, 40)
        await zhang.press(L("btn.repair_arrived"), message=soon)
        await zhang.press("现在")
        await zhang.press("跳过")
        r = await zhang.press("保存")
        assert body(r[0]).startswith(L("repair.arrived", id=1, when="2026-11-27 周五 15:40"))
        got = await scan_at(service, clock, users, 2026, 11, 30, 8, 31)
        assert body(only(got["张三"])).startswith(L("digest.title", name="张三", count=2))
        got = await scan_at(service, clock, users, 2026, 11, 30, 10, 31)
        assert body(only(got["张三"])) == L("reminder.overdue", item=COMPLAINT, what=CONTACT,
                                           due=CONTACT_DUE, late=late(minutes=1))
        assert body(only(got["王班长"])).startswith("⚠️ 超期提醒：张三 的" + COMPLAINT)
        for msg in (half, soon):
            assert count(zhang, body(msg)) == 1
        states = Counter(r[0] for r in await services.db.fetchall(
            "SELECT state FROM reminders WHERE state IN ('pending', 'sending', 'held') "
            "AND due_at <= ?", ("2026-11-30T02:31:00+00:00",)))
        assert states == {}
    finally:
        await channel.stop()
        await services.close()



async def test_a_held_reminder_appears_in_the_digest_even_if_its_item_is_due_later(
        team: Team, services: Services) -> None:
    zhang = team.zhang
    await register_complaint(zhang)
    half = only((await team.scan_at(2026, 11, 27, 15, 1))["张三"])
    at(team.clock, 2026, 11, 27, 20, 30)  # "remind me in an hour": 21:30, in quiet hours
    r = await zhang.press(L("btn.snooze_hour"), message=half)
    assert body(only(r)) == "\n".join([L("reminder.snoozed", when="2026-11-27 周五 21:30"),
                                        L("reminder.snoozed_quiet")])
    at(team.clock, 2026, 11, 27, 21, 30)
    assert (await team.service.scan_once()).held == 1
    got = await team.scan_at(2026, 11, 28, 8, 0)
    digest = only(got["张三"])
    assert (await reminders(services, "complaint"))[0] == ("contact.half", "张三", "digested")
    # The held reminder was "summed up" here: it must say what it was about.
    assert COMPLAINT in body(digest) and CONTACT in body(digest), body(digest)
