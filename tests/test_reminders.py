"""Reminders end to end in the core: complaint deadlines, quiet hours, the digest, escalation,
retries, unreachable users, snooze, restart safety — with the clock moved, never slept."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.events import Reply
from bot.features.reports.figures import Scope, compute
from bot.features.reports.ranges import week_of
from bot.models import Role
from bot.notify import Dispatcher, OutcomeUnknown, RetryLater, Unreachable
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.services import Services
from bot.storage.people import UserPrefs
from tests.conftest import SHANGHAI, Chat, FakeNotifier, at, make_user


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def register_complaint(chat: Chat) -> None:
    """Accepted Fri 2026-11-27 10:30: contact due Mon 11-30 10:30, reply due Tue 12-08 10:30."""
    await chat.say("登记投诉")
    await chat.say("2026112700123")
    await chat.press("投诉")
    await chat.say("跳过")
    await chat.say("张先生")
    await chat.say("13800001234")
    await chat.press("现在")
    await chat.say("近一周频繁停电")
    await chat.press("保存")


async def test_complaint_deadlines_are_echoed(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    assert "已登记投诉工单 #1" in zhang.text
    assert "首次联系客户：2026-11-30 周一 10:30 前（1个工作日）" in zhang.text
    assert "答复处理意见：2026-12-08 周二 10:30 前（7个工作日）" in zhang.text


async def test_reminders_halfway_soon_due_escalate_and_daily(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    assert (await service.scan_once()).sent == 0
    at(clock, 2026, 11, 27, 15, 1)  # half-way to first contact (working time)
    await service.scan_once()
    [half] = notifier.texts("张三")
    assert "首次联系客户" in half and "2026-11-30 周一 10:30" in half
    at(clock, 2026, 11, 30, 8, 31)  # Monday: the digest, and 2 working hours before
    result = await service.scan_once()
    assert result.digests == 2  # the manager and the lead each get one summary
    # The 08:30 "due soon" reminder is folded into the one morning message, not a burst.
    assert len(notifier.texts("张三")) == 2
    assert notifier.texts("张三")[-1] == (
        "☀️ 早上好，张三！今天要处理的事（1 项）：\n"
        "• 投诉工单 #1（张先生）：首次联系客户 2026-11-30 周一 10:30 前（还剩 1 小时 59 分）")
    assert "投诉工单 #1" in notifier.texts("王班长")[-1]
    at(clock, 2026, 11, 30, 10, 31)  # contact overdue: manager told, lead escalated
    await service.scan_once()
    assert "期限 2026-11-30 周一 10:30 已过" in notifier.texts("张三")[-1]
    assert notifier.texts("王班长")[-1].startswith("⚠️ 超期提醒：张三 的投诉工单 #1")
    n = len(notifier.sent)
    await service.scan_once()
    assert len(notifier.sent) == n  # each sent once
    at(clock, 2026, 12, 1, 9, 1)  # still overdue the next working day: again, once
    await service.scan_once()
    assert len(notifier.sent) == n + 2
    # Contact recorded: the contact reminders stop, the reply ones remain.
    await zhang.tap("-|cplc|1")
    await zhang.press("现在")
    await zhang.press("电话")
    await zhang.press("保存")
    assert "已记录首次联系" in zhang.text and "（已超期）" in zhang.text
    n = len(notifier.sent)
    at(clock, 2026, 12, 2, 9, 1)
    await service.scan_once()
    assert not any("首次联系" in r.text for _, r in notifier.sent[n:])
    rows = await services.db.fetchall(
        "SELECT kind, state FROM reminders WHERE kind LIKE 'contact.%' AND state = 'pending'")
    assert rows == []
    # Replied: every contact and reply reminder stops (the call-back planned at the reply
    # has its own reminders, tests/test_callbacks.py).
    await zhang.tap("-|cplr|1")
    await zhang.press("现在")
    await zhang.say("已排查线路并更换老化接头")
    await zhang.press("保存")
    assert "已答复并办结" in zhang.text and "（按时）" in zhang.text
    at(clock, 2026, 12, 9, 10, 0)
    n = len(notifier.sent)
    await service.scan_once()
    assert all("投诉工单 #1" not in t or "回访客户" in t for _, r in notifier.sent[n:]
               for t in [r.text])


async def test_overdue_at_the_exact_due_minute_is_overdue_everywhere(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    """First contact is due Mon 11-30 10:30. At 10:30 sharp the "due" reminder goes out, so
    /todo (and the digest, built from the same items) and the weekly report call it overdue."""
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 30, 8, 31)
    await service.scan_once()  # the morning digest: the 10:30 reminder is sent on its own
    at(clock, 2026, 11, 30, 10, 30)
    await service.scan_once()
    assert "期限 2026-11-30 周一 10:30 已过" in notifier.texts("张三")[-1]
    await zhang.say("待办")
    assert "⚠️ 投诉工单 #1（张先生）：首次联系客户" in zhang.text
    team_id = (await services.people.users())[0].team_id
    fig = await compute(services.db, Scope(team_id, "test"), week_of(date(2026, 11, 30), SHANGHAI),
                        clock.now())
    assert [(o.kind, o.record_id, o.step) for o in fig.overdue] == [("complaint", 1, "contact")]
    assert fig.total.complaint_deadlines.late == 1


async def test_quiet_hours_hold_until_the_digest(team: tuple[Chat, Chat],
                                                 service: ReminderService,
                                                 notifier: FakeNotifier, clock: FakeClock,
                                                 services: Services) -> None:
    zhang, _ = team
    await register_complaint(zhang)  # half-way reminder due Fri 15:00
    at(clock, 2026, 11, 27, 22, 0)  # first scan in quiet hours (the bot was down): held
    result = await service.scan_once()
    assert notifier.sent == [] and result.held >= 1
    at(clock, 2026, 11, 28, 8, 0)  # Saturday 08:00: one digest instead of a burst
    await service.scan_once()
    assert len(notifier.texts("张三")) == 1
    assert notifier.texts("张三")[0].startswith("☀️ 早上好，张三")
    held = await services.db.fetchall("SELECT state FROM reminders WHERE state = 'digested'")
    assert held


async def test_halfway_and_soon_read_differently_and_say_what_is_left(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)  # half-way to first contact
    await service.scan_once()
    at(clock, 2026, 11, 30, 8, 0)  # Monday's digest first, then the 08:30 one on its own
    await service.scan_once()
    at(clock, 2026, 11, 30, 8, 31)
    await service.scan_once()
    half, _digest, soon = notifier.texts("张三")
    assert half == ("⏳ 投诉工单 #1（张先生）：首次联系客户的时限已过一半（还剩 2 天 19 小时），"
                    "期限 2026-11-30 周一 10:30。")
    assert soon == ("⏰ 投诉工单 #1（张先生）：请在 2026-11-30 周一 10:30 前首次联系客户"
                    "（还剩 1 小时 59 分）。")


async def test_catch_up_after_quiet_hours_folds_one_record_into_one_message(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    """Quiet hours after the morning digest (08:15-11:00): the 08:30 "soon" and the 10:30
    "due" are held; at 11:00 one message goes out, the latest stage, and both rows count
    as sent (never lost, never sent again)."""
    zhang, _ = team
    await register_complaint(zhang)
    user = (await services.people.users())[0]
    await UserPrefs(services.db).set_quiet(user.id, "08:15", "11:00")
    at(clock, 2026, 11, 30, 8, 5)  # the digest, before the quiet hours
    await service.scan_once()
    for hour, minute in ((8, 31), (10, 31)):
        at(clock, 2026, 11, 30, hour, minute)
        await service.scan_once()
    n = len(notifier.texts("张三"))
    assert notifier.texts("王班长")[-1].startswith("⚠️ 超期提醒")  # the lead has no quiet
    at(clock, 2026, 11, 30, 11, 1)
    await service.scan_once()
    [caught_up] = notifier.texts("张三")[n:]
    assert caught_up.startswith("⚠️ 投诉工单 #1（张先生）：首次联系客户期限 2026-11-30 周一 10:30 "
                                "已过（已超期 31 分钟）")
    rows = await services.db.fetchall(
        "SELECT kind, state, last_error FROM reminders WHERE user_id = ? AND kind IN "
        "('contact.soon', 'contact.due') ORDER BY id", (user.id,))
    assert [tuple(r) for r in rows] == [("contact.soon", "sent", "folded into reminder 3"),
                                        ("contact.due", "sent", None)]
    at(clock, 2026, 11, 30, 11, 30)
    await service.scan_once()
    assert len(notifier.texts("张三")) == n + 1


async def test_own_quiet_hours_setting(team: tuple[Chat, Chat]) -> None:
    zhang, _ = team
    await zhang.say("/settings")
    assert "免打扰时段：21:00–07:30（默认）" in zhang.text
    await zhang.press("修改免打扰")
    await zhang.say("22点-6点")
    await zhang.press("保存")
    assert "22:00–06:00" in zhang.text
    await zhang.say("/settings")
    assert "免打扰时段：22:00–06:00" in zhang.text
    await zhang.press("关闭免打扰")
    assert "免打扰时段：已关闭" in zhang.text


async def test_flood_limit_and_network_fault_retry_exactly_once(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    notifier.fail["张三"] = [RetryLater(30, "429"), ConnectionError("502")]
    at(clock, 2026, 11, 27, 15, 1)
    assert (await service.scan_once()).retried == 1
    clock.advance(seconds=31)
    assert (await service.scan_once()).retried == 1  # the network fault: backed off
    clock.advance(minutes=2)
    await service.scan_once()
    assert len(notifier.texts("张三")) == 1
    clock.advance(minutes=10)
    await service.scan_once()
    assert len(notifier.texts("张三")) == 1


async def test_blocked_user_is_marked_and_the_lead_gets_the_message(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    notifier.fail["张三"] = [Unreachable("Forbidden: bot was blocked by the user")]
    at(clock, 2026, 11, 27, 15, 1)
    assert (await service.scan_once()).failed == 1
    forwarded = notifier.texts("王班长")[-1]
    assert "张三 收不到机器人的提醒" in forwarded and "首次联系客户" in forwarded
    row = await services.db.fetchone("SELECT unreachable_at FROM user_settings")
    assert row is not None and row[0] is not None
    await zhang.say("/todo")  # writing again means reachable again
    row = await services.db.fetchone("SELECT unreachable_at FROM user_settings")
    assert row is not None and row[0] is None


async def test_a_lead_who_never_opened_the_bot_gets_the_escalation_on_first_visit(
        services: Services, assistant: Assistant, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    """The lead was invited but has not sent /start: no chat to push to. The escalation waits
    (not failed, not dropped, nobody told they are unreachable) and arrives, once, after
    the welcome on their first visit (in their first digest)."""
    zhang = Chat(assistant, "test", "张三")
    await make_user(services, "张三")
    invite = await services.people.create_invite(
        role=Role.LEAD, team="城东供电所", areas=[], name="王班长", now=clock.now(),
        ttl=timedelta(days=7))
    await register_complaint(zhang)
    at(clock, 2026, 11, 30, 10, 31)  # first contact overdue: escalated to the lead
    result = await service.scan_once()
    assert notifier.texts("王班长") == [] and result.failed == 0 and result.waiting == 1
    for _ in range(3):
        clock.advance(hours=1)
        await service.scan_once()
    rows = await services.db.fetchall(
        "SELECT r.state, r.last_error FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE u.name = '王班长' AND r.kind = 'contact.escalate'")
    assert [tuple(r) for r in rows] == [("pending", "waiting: has not opened the bot yet")]
    assert await services.db.fetchone(
        "SELECT 1 FROM user_settings WHERE unreachable_at IS NOT NULL") is None
    lead = Chat(assistant, "test", "王班长")
    await lead.say(f"/start {invite.code}")
    assert "王班长" in lead.text  # the welcome comes first
    await service.scan_once()
    # One message: the day's summary, which carries the waiting escalation (as it does
    # for anyone: the digest stands in for the single reminders due then).
    [first] = notifier.texts("王班长")
    assert "⚠️ 投诉工单 #1（张先生）：首次联系客户 2026-11-30 周一 10:30 前（已超期" in first
    row = await services.db.fetchone("SELECT state FROM reminders WHERE kind = 'contact.escalate'")
    assert row is not None and row[0] == "digested"
    clock.advance(minutes=5)
    await service.scan_once()
    assert len(notifier.texts("王班长")) == 1


async def test_an_escalation_held_in_quiet_hours_for_a_lead_not_yet_in_arrives_on_first_visit(
        services: Services, assistant: Assistant, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    """Held at night for a morning digest the lead never gets (no chat yet): their first
    visit, the next day, brings it out after the welcome."""
    zhang = Chat(assistant, "test", "张三")
    await make_user(services, "张三")
    invite = await services.people.create_invite(
        role=Role.LEAD, team="城东供电所", areas=[], name="王班长", now=clock.now(),
        ttl=timedelta(days=7))
    await register_complaint(zhang)
    at(clock, 2026, 11, 30, 22, 0)  # the bot was down all day: escalation due, quiet hours
    await service.scan_once()
    at(clock, 2026, 12, 1, 8, 5)  # the digests: none for the lead, who has no chat yet
    await service.scan_once()
    assert notifier.texts("王班长") == []
    at(clock, 2026, 12, 1, 10, 0)
    lead = Chat(assistant, "test", "王班长")
    await lead.say(f"/start {invite.code}")
    await service.scan_once()
    [first] = notifier.texts("王班长")
    assert "⚠️ 投诉工单 #1（张先生）：首次联系客户 2026-11-30 周一 10:30 前（已超期" in first
    row = await services.db.fetchone("SELECT state FROM reminders WHERE kind = 'contact.escalate'")
    assert row is not None and row[0] == "digested"


async def test_snooze_and_todo(team: tuple[Chat, Chat], service: ReminderService,
                               notifier: FakeNotifier, clock: FakeClock) -> None:
    zhang, lead = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)
    await service.scan_once()
    [(_, reply)] = notifier.sent
    snooze = next(b for row in reply.buttons for b in row if "1 小时后" in b.label)
    await zhang.tap(snooze.data)
    assert "2026-11-27 周五 16:01 再提醒你" in zhang.text
    clock.advance(minutes=59)
    await service.scan_once()
    assert len(notifier.sent) == 1
    clock.advance(minutes=2)
    await service.scan_once()
    assert len(notifier.sent) == 2
    await lead.tap(snooze.data)  # not the lead's reminder
    assert "不是发给你的" in lead.text
    await zhang.say("待办")
    assert "我的待办（1 项" in zhang.text and "首次联系客户 2026-11-30 周一 10:30 前" in zhang.text
    await lead.say("/todo")
    assert "班组待办（1 项" in lead.text


async def test_a_row_in_flight_is_sent_again_only_after_a_restart(
        team: tuple[Chat, Chat], services: Services, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)
    service = ReminderService(services, Dispatcher(services, [notifier]))
    await service.scan_once()
    # A crash right after the platform accepted a message but before it was recorded:
    await services.db.execute("UPDATE reminders SET state = 'sending' WHERE state = 'sent'")
    # ... or a live process still pushing it: no scan claims a 'sending' row while its claim lasts.
    clock.advance(minutes=5)
    await service.scan_once()
    assert len(notifier.sent) == 1
    # The next start-up of the lease holder re-sends it once, saying it may be a repeat.
    fresh = ReminderService(services, Dispatcher(services, [notifier]))
    assert await fresh.recover() == 1
    await fresh.scan_once()
    assert len(notifier.sent) == 2  # the documented crash duplicate
    assert notifier.texts("张三")[-1].startswith("🔁 补发：上次发送没有得到确认")
    await fresh.scan_once()
    assert len(notifier.sent) == 2


async def test_a_lost_answer_is_retried_later_not_at_once(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    """The platform may have shown a message whose answer was lost: no repeat in the same
    breath; one later re-send (at least once) that says it may be a repeat."""
    zhang, _ = team
    await register_complaint(zhang)
    notifier.fail["张三"] = [OutcomeUnknown("answer lost: timed out")]
    at(clock, 2026, 11, 27, 15, 1)
    assert (await service.scan_once()).unknown == 1
    assert notifier.sent == []
    clock.advance(seconds=services.settings.unknown_outcome_retry_seconds - 1)
    await service.scan_once()
    assert notifier.sent == []
    clock.advance(seconds=1)
    assert (await service.scan_once()).sent == 1
    assert notifier.texts("张三")[0].startswith("🔁 补发")


async def test_an_error_after_the_push_does_not_send_it_again(
        team: tuple[Chat, Chat], services: Services, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    """Planning the follow-up fails after the message went out: the row stays 'sent' (it
    used to go back to 'pending' and be sent again 5 minutes later)."""
    from dataclasses import replace

    from bot.router import app_router

    async def broken_follow_up(*args: object) -> None:
        raise RuntimeError("planning the next reminder failed")

    kind = replace(app_router().reminders["complaint"], after_sent=broken_follow_up)
    registry = replace(app_router(), reminders={**app_router().reminders, "complaint": kind})
    service = ReminderService(services, Dispatcher(services, [notifier]), router=registry)
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)
    await service.scan_once()
    assert len(notifier.sent) == 1
    clock.advance(minutes=10)
    await service.scan_once()
    assert len(notifier.sent) == 1


async def test_a_stopping_service_starts_no_new_push(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, services: Services) -> None:
    """Once a stop has begun (SIGTERM) nothing new is pushed, neither a reminder nor a
    morning digest (the drain only waits for what is in flight); the next start sends them."""
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 30, 8, 31)  # Monday: digests due, and reminders
    service.closing = True
    result = await service.scan_once()
    assert notifier.sent == [] and result.digests == 0
    row = await services.db.fetchone("SELECT count(*) FROM reminders WHERE state = 'pending'")
    assert row is not None and row[0] >= 1
    service.closing = False
    assert (await service.scan_once()).digests == 2


async def test_the_scheduler_really_runs_the_scan(team: tuple[Chat, Chat],
                                                  service: ReminderService,
                                                  notifier: FakeNotifier,
                                                  clock: FakeClock) -> None:
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)
    scheduler = ReminderScheduler(service, interval_seconds=0.05)
    scheduler.start()
    try:
        for _ in range(100):
            if notifier.sent:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert len(notifier.texts("张三")) == 1 and scheduler.runs >= 1


async def test_a_wall_clock_step_back_does_not_stop_the_scan(
        team: tuple[Chat, Chat], service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The clock steps back 10 minutes right after a scan: the next scans still come every
    interval (they sleep on the monotonic clock) and the jump is logged. Under APScheduler's
    wall-clock trigger the next scan came 10 minutes later."""
    from datetime import datetime, timedelta

    step = timedelta(0)

    class SteppedDatetime(datetime):  # what APScheduler (if still used) would read
        @classmethod
        def now(cls, tz: object = None) -> SteppedDatetime:  # type: ignore[override]
            return super().now(tz) + step  # type: ignore[arg-type, return-value]

    try:  # no longer a dependency; patched where present to show the old behaviour
        import apscheduler.schedulers.base as aps_base

        monkeypatch.setattr(aps_base, "datetime", SteppedDatetime)
    except ImportError:
        pass
    zhang, _ = team
    await register_complaint(zhang)
    at(clock, 2026, 11, 27, 15, 1)
    scheduler = ReminderScheduler(service, interval_seconds=0.05)
    scheduler.start()
    try:
        for _ in range(100):
            if scheduler.runs:
                break
            await asyncio.sleep(0.01)
        assert scheduler.runs >= 1
        step = timedelta(seconds=-600)
        clock.advance(seconds=-600)
        runs = scheduler.runs
        loop = asyncio.get_running_loop()
        started = loop.time()
        while scheduler.runs < runs + 2 and loop.time() - started < 3:
            await asyncio.sleep(0.01)
        assert scheduler.runs >= runs + 2, "the scan stopped after the clock stepped back"
    finally:
        await scheduler.stop()
    assert scheduler.clock_jumps == 1
    assert "wall clock jumped by -600 s" in caplog.text


async def test_a_backlog_larger_than_one_batch_drains_in_one_scan_once_each(
        services: Services, notifier: FakeNotifier, clock: FakeClock) -> None:
    """After an outage of the bot: 1,050 due rows (more than one batch of 1,000), urgent
    ones first, every one delivered exactly once in a single scan."""
    from bot.router import ReminderKind, Router
    from bot.storage.reminders import Reminder, Reminders

    async def render(ctx: object, r: Reminder) -> Reply:
        return Reply(f"r{r.subject_id}")

    registry = Router()
    registry.reminder_kind("synthetic", ReminderKind(render=render))
    users = [await make_user(services, f"经理{i}") for i in range(3)]
    now = clock.now()
    async with services.db.tx() as tx:
        for n in range(1050):
            u = users[n % 3]
            await Reminders.plan(tx, team_id=u.team_id, user_id=u.id, subject="synthetic",
                                 subject_id=n, kind="k", due_at=now, now=now,
                                 urgent=n >= 1040)
    service = ReminderService(services, Dispatcher(services, [notifier]), router=registry)
    result = await service.scan_once()
    assert result.sent == 1050
    texts = [r.text for _, r in notifier.sent]
    assert sorted(texts) == sorted(f"r{n}" for n in range(1050))  # once each
    for u in users:  # each user's urgent ones came before their others
        mine = [int(r.text[1:]) for who, r in notifier.sent if who == u.name]
        urgent = [i for i, n in enumerate(mine) if n >= 1040]
        assert urgent == list(range(len(urgent))) and urgent
    assert (await service.scan_once()).sent == 0


async def test_a_notice_the_digest_does_not_list_still_goes_out_after_it(
        services: Services, notifier: FakeNotifier, clock: FakeClock) -> None:
    """At the digest time a person gets the digest of their open items; a non-urgent notice
    due at the same scan about something the digest does not list (a new task, a lead's
    alert) is sent on its own, not settled as 'covered by the digest' (it once was, unseen)."""
    from bot.events import GLOBAL_TOKEN, Button, callback
    from bot.router import ReminderKind, Router, TodoItem
    from bot.services import Ctx
    from bot.storage.reminders import Reminder, Reminders

    open_item = callback(GLOBAL_TOKEN, "patrol.open", 1)

    async def todo(ctx: Ctx) -> list[TodoItem]:
        due = ctx.local_now.replace(hour=17, minute=0, second=0, microsecond=0)
        return [TodoItem(due=due, text="巡视 3号台区：今天 17:00 前",
                         button=Button("📄 巡视", open_item))]

    async def patrol(ctx: Ctx, r: Reminder) -> Reply:
        return Reply("⏰ 巡视 3号台区", [[Button("📄 打开", open_item)]])

    async def notice(ctx: Ctx, r: Reminder) -> Reply:
        return Reply("📌 新任务：核对电话", [[Button("接受", callback(GLOBAL_TOKEN, "t.ok", 9))]])

    router = Router()
    router.reminder_kind("patrol", ReminderKind(render=patrol, todo=todo))
    router.reminder_kind("notice", ReminderKind(render=notice))
    zhang = await make_user(services, "张三")
    at(clock, 2026, 11, 30, 8, 0)
    now = clock.now()
    async with services.db.tx() as tx:
        for subject in ("patrol", "notice"):
            await Reminders.plan(tx, team_id=zhang.team_id, user_id=zhang.id, subject=subject,
                                 subject_id=1, kind="due", due_at=now, now=now)
    service = ReminderService(services, Dispatcher(services, [notifier]), router=router)
    await service.scan_once()
    texts = notifier.texts("张三")
    assert any("今天要处理的事" in t and "巡视 3号台区" in t for t in texts)  # the digest
    assert "⏰ 巡视 3号台区" not in texts  # listed by the digest: no burst after it
    assert "📌 新任务：核对电话" in texts  # not listed: still sent, once
    await service.scan_once()
    assert notifier.texts("张三").count("📌 新任务：核对电话") == 1
