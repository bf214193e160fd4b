"""Issue #8, item 1: one failing team or person never stops a periodic job (the Monday
report, the morning digest) for the others: the failure is logged, recorded in the audit
log, retried on later scans up to TAIQU_JOB_ATTEMPTS times, and the others go on."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import FakeClock
from bot.events import Reply
from bot.features.reports import handlers
from bot.features.reports.figures import Scope
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import FakeNotifier, at
from tests.test_reports import TEAM_A, World, make_people, seed

INTRO = "📬 上周工作汇总（每周一自动发送）"


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    return await seed(services, clock)


async def test_a_failing_team_does_not_stop_the_monday_report_for_the_others(
        seeded: World, services: Services, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = handlers.report_reply

    async def broken_for_team_a(services: Services, scope: Scope, *args: Any,
                                **kw: Any) -> Reply:
        if scope.team_name == TEAM_A:
            raise ValueError("bad data in team A")
        return await real(services, scope, *args, **kw)

    monkeypatch.setattr(handlers, "report_reply", broken_for_team_a)
    notifier = FakeNotifier()
    service = ReminderService(services, Dispatcher(services, [notifier]))
    at(clock, 2026, 12, 7, 8, 31)
    result = await service.scan_once()
    got = sorted({who for who, r in notifier.sent if r.text.startswith(INTRO)})
    assert got == ["赵六", "钱班长"] and result.jobs == 2
    failed = await services.db.fetchall(
        "SELECT user_id, json_extract(detail, '$.job') AS job, json_extract(detail, '$.error') "
        "AS error FROM audit_log WHERE entity = 'job' AND action = 'failed'")
    assert len(failed) == 4 and {r["job"] for r in failed} == {"weekly_report"}
    assert all("bad data in team A" in r["error"] for r in failed)
    # Tried again on later scans, then given up (TAIQU_JOB_ATTEMPTS): no retry every minute.
    for minute in (32, 33, 34, 35):
        at(clock, 2026, 12, 7, 8, minute)
        await service.scan_once()
    attempts = await services.db.fetchone(
        "SELECT count(*) FROM audit_log WHERE entity = 'job' AND action = 'failed'")
    assert attempts is not None and attempts[0] == 4 * services.settings.job_attempts
    done = await services.db.fetchone(
        "SELECT count(*) FROM job_runs WHERE job = 'weekly_report' AND period = '2026-11-30'")
    assert done is not None and done[0] == 6


async def test_a_failing_digest_does_not_stop_the_others_or_the_reminders(
        seeded: World, services: Services, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = FakeNotifier()
    service = ReminderService(services, Dispatcher(services, [notifier]))
    real = service.send_digest
    zhang = seeded.users["张三"]

    async def broken_for_zhang(user: Any, *args: Any) -> bool:
        if user.id == zhang:
            raise ValueError("a record that cannot be worded")
        return await real(user, *args)

    monkeypatch.setattr(service, "send_digest", broken_for_zhang)
    at(clock, 2026, 12, 8, 8, 1)  # Tuesday: digests, and 李四's outage reminder is due
    result = await service.scan_once()
    assert result.digests >= 1
    digests = {who for who, r in notifier.sent if r.text.startswith("☀️")}
    assert "李四" in digests and "张三" not in digests
    failed = await services.db.fetchall(
        "SELECT user_id FROM audit_log WHERE entity = 'job' AND action = 'failed'")
    assert [r["user_id"] for r in failed] == [zhang]
