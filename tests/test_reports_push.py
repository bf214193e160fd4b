"""The Monday push on the reminder scan: at TAIQU_WEEKLY_REPORT_TIME each lead gets the team's
report for the week just ended and each manager their own; once (a second scan, a fresh
service after a restart), held in quiet hours, retried after a flood limit."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import SettingsError, load_settings
from bot.events import Reply
from bot.features.reports.figures import Scope
from bot.features.reports.handlers import report_reply
from bot.models import Role
from bot.notify import Dispatcher, RetryLater, Unreachable
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.people import UserPrefs
from tests.conftest import SHANGHAI, Chat, make_user
from tests.test_reminders import FakeNotifier
from tests.test_reports import TEAM_A, World, make_people, seed, week

INTRO = "📬 上周工作汇总（每周一自动发送）"


def at(clock: FakeClock, *args: int) -> None:
    clock.set(datetime(*args, tzinfo=SHANGHAI))  # type: ignore[misc]


def reports(notifier: FakeNotifier) -> dict[str, list[Reply]]:
    out: dict[str, list[Reply]] = {}
    for who, reply in notifier.sent:
        if reply.text.startswith(INTRO):
            out.setdefault(who, []).append(reply)
    return out


class ReportNotifier(FakeNotifier):
    """Faults (`fail`) hit the weekly reports only, not the morning digests."""

    async def push(self, external_id: str, reply: Reply) -> None:
        queue = self.fail.get(external_id)
        if queue and reply.text.startswith(INTRO):
            raise queue.pop(0)
        self.sent.append((external_id, reply))


@pytest.fixture
def notifier() -> FakeNotifier:
    return ReportNotifier()


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    return await seed(services, clock)


async def test_monday_morning_each_gets_their_report_once(
        seeded: World, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock, assistant: Assistant) -> None:
    at(clock, 2026, 12, 7, 8, 29)
    await service.scan_once()
    assert reports(notifier) == {}  # not yet
    at(clock, 2026, 12, 7, 8, 31)
    result = await service.scan_once()
    got = reports(notifier)
    assert sorted(got) == ["张三", "李四", "王五", "王班长", "赵六", "钱班长"]
    assert all(len(v) == 1 for v in got.values())
    assert result.jobs == 6
    lead = got["王班长"][0]
    assert lead.text.startswith(
        INTRO + "\n📊 城东供电所 工作汇总\n2026-11-30 周一 — 2026-12-06 周日")
    assert [a.kind for a in lead.attachments] == ["document", "photo"]
    # Exactly what /report would have said at that moment, after the intro line.
    same = await report_reply(services, Scope(seeded.teams[TEAM_A], TEAM_A), week(),
                              clock.now(), "zh_CN")
    assert lead.text == INTRO + "\n" + same.text
    assert got["钱班长"][0].text.startswith(INTRO + "\n📊 城西供电所 工作汇总")
    assert "张三" not in got["钱班长"][0].text
    zhang = got["张三"][0]
    assert zhang.text.startswith(INTRO + "\n📊 张三 的工作汇总（城东供电所）")
    # A manager's Excel comes on a tap, not unasked (issue #12): one send each on Monday.
    assert "李四" not in zhang.text and zhang.attachments == []
    assert zhang.text.endswith("📎 明细 Excel 点下方按钮获取")
    [[button]] = zhang.buttons
    assert button.label == "📎 要 Excel 明细"
    tapped = await Chat(assistant, "test", "张三").tap(button.data)
    [files] = tapped.replies
    assert files.text == "📎 2026-11-30 — 2026-12-06 的 Excel 明细"
    assert [a.filename for a in files.attachments] == ["工作汇总_张三_2026-11-30_2026-12-06.xlsx"]
    assert "📝 本期没有记工作日志" in got["王五"][0].text
    # A second scan, later scans that day and a fresh service (a restart) send nothing more.
    await service.scan_once()
    at(clock, 2026, 12, 7, 15, 0)
    await service.scan_once()
    fresh = ReminderService(services, Dispatcher(services, [notifier]))
    at(clock, 2026, 12, 8, 9, 0)
    await fresh.scan_once()
    assert {k: len(v) for k, v in reports(notifier).items()} == dict.fromkeys(got, 1)
    rows = await services.db.fetchall(
        "SELECT period, count(*) FROM job_runs WHERE job = 'weekly_report' GROUP BY period")
    assert [tuple(r) for r in rows] == [("2026-11-30", 6)]
    # Next Monday: the next week's report.
    at(clock, 2026, 12, 14, 8, 30)
    await service.scan_once()
    assert {k: len(v) for k, v in reports(notifier).items()} == dict.fromkeys(got, 2)
    assert "2026-12-07 周一 — 2026-12-13 周日" in reports(notifier)["王班长"][1].text


async def test_quiet_hours_hold_the_report_until_they_end(
        seeded: World, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    await UserPrefs(services.db).set_quiet(seeded.users["王班长"], "07:00", "10:00")
    at(clock, 2026, 12, 7, 8, 31)
    await service.scan_once()
    assert "王班长" not in reports(notifier) and "张三" in reports(notifier)
    at(clock, 2026, 12, 7, 9, 59)
    await service.scan_once()
    assert "王班长" not in reports(notifier)
    at(clock, 2026, 12, 7, 10, 0)
    await service.scan_once()
    assert len(reports(notifier)["王班长"]) == 1
    await service.scan_once()
    assert len(reports(notifier)["王班长"]) == 1


async def test_flood_limit_retries_on_the_next_scan_and_unreachable_is_dropped(
        seeded: World, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    notifier.fail["张三"] = [RetryLater(30, "flood limit")]
    notifier.fail["李四"] = [Unreachable("blocked")]
    at(clock, 2026, 12, 7, 8, 31)
    await service.scan_once()
    assert "张三" not in reports(notifier) and "王班长" in reports(notifier)
    clock.advance(minutes=1)
    await service.scan_once()
    assert len(reports(notifier)["张三"]) == 1
    assert "李四" not in reports(notifier)  # blocked the bot: not tried every minute
    clock.advance(minutes=1)
    await service.scan_once()
    assert "李四" not in reports(notifier) and len(reports(notifier)["张三"]) == 1


async def test_down_on_monday_sends_on_tuesday_and_new_people_wait_a_week(
        seeded: World, services: Services, service: ReminderService, notifier: FakeNotifier,
        clock: FakeClock) -> None:
    at(clock, 2026, 12, 2, 12, 0)  # joined on Wednesday of the reported week
    await make_user(services, "孙八", team=TEAM_A, areas=("4号台区",))
    at(clock, 2026, 12, 8, 9, 0)  # the bot was down all Monday
    await service.scan_once()
    got = reports(notifier)
    assert "王班长" in got and "孙八" not in got


async def test_the_report_time_is_a_setting(seeded: World, services: Services,
                                            service: ReminderService, notifier: FakeNotifier,
                                            clock: FakeClock) -> None:
    services.settings = services.settings.model_copy(update={"weekly_report_time": "09:15"})
    at(clock, 2026, 12, 7, 9, 14)
    await service.scan_once()
    assert reports(notifier) == {}
    at(clock, 2026, 12, 7, 9, 15)
    await service.scan_once()
    assert len(reports(notifier)) == 6
    with pytest.raises(SettingsError, match="TAIQU_WEEKLY_REPORT_TIME"):
        load_settings(weekly_report_time="25:00")


async def test_admins_get_no_push(services: Services, service: ReminderService,
                                  notifier: FakeNotifier, clock: FakeClock) -> None:
    at(clock, 2026, 11, 1, 10, 0)
    await make_user(services, "管理员", Role.ADMIN, areas=())
    at(clock, 2026, 12, 7, 8, 31)
    await service.scan_once()
    assert reports(notifier) == {}


async def test_a_big_monday_is_spread_over_scans(
        seeded: World, services: Services, clock: FakeClock) -> None:
    """Paced by the send budget, not a count (issue #12): a scan works on the reports at most
    TAIQU_PERIODIC_JOB_SECONDS, the next one goes on. Each push here takes 20 s of the
    clock, as a budget crowded by replies would; the scan stops after 40 s."""

    class Slow(ReportNotifier):
        async def push(self, external_id: str, reply: Reply) -> None:
            await super().push(external_id, reply)
            clock.advance(seconds=20)

    services.settings.periodic_job_seconds = 40
    services.settings.job_push_workers = 1
    notifier = Slow()
    service = ReminderService(services, Dispatcher(services, [notifier]))
    at(clock, 2026, 12, 7, 8, 31)
    await service.scan_once()
    assert len(reports(notifier)) == 2
    for _ in range(3):
        clock.advance(minutes=1)
        await service.scan_once()
    assert {k: len(v) for k, v in reports(notifier).items()} == {
        "张三": 1, "李四": 1, "王五": 1, "王班长": 1, "赵六": 1, "钱班长": 1}


async def test_a_stop_during_the_monday_push_starts_no_new_report(
        seeded: World, services: Services, clock: FakeClock) -> None:
    """SIGTERM stops taking new sends and drains the ones in flight (TAIQU_SHUTDOWN_DRAIN_
    SECONDS). The Monday job went on pushing report after report to everyone during the
    drain, so the drain's cut-off could fall in the middle of one (sent, not recorded: sent
    again by the next start)."""
    service: ReminderService

    class StopDuringFirst(ReportNotifier):
        async def push(self, external_id: str, reply: Reply) -> None:
            await super().push(external_id, reply)
            if reply.text.startswith(INTRO):
                service.closing = True  # the stop arrives while this push is in flight

    notifier = StopDuringFirst()
    services.settings.job_push_workers = 1  # one push in flight when the stop comes
    service = ReminderService(services, Dispatcher(services, [notifier]))
    at(clock, 2026, 12, 7, 7, 45)  # before the 08:00 digests: only the reports go
    services.settings.weekly_report_time = "06:00"
    await service.scan_once()
    assert sum(map(len, reports(notifier).values())) == 1  # the one in flight, recorded
    rows = await services.db.fetchall("SELECT user_id FROM job_runs WHERE job = 'weekly_report'")
    assert len(rows) == 1
    # The next start sends the others, once each.
    notifier2 = ReportNotifier()
    notifier2.sent = notifier.sent
    await ReminderService(services, Dispatcher(services, [notifier2])).scan_once()
    got = reports(notifier2)
    assert sorted(got) == ["张三", "李四", "王五", "王班长", "赵六", "钱班长"]
    assert all(len(v) == 1 for v in got.values())
