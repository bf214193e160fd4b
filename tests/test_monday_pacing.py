"""The Monday report is paced by the send budget, not by a fixed 100 per scan (issue #12):
when the channel takes the pushes as fast as they come, one scan serves everyone, once."""

from __future__ import annotations

from collections import Counter

from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import FakeNotifier, at, make_user

INTRO = "📬 上周工作汇总（每周一自动发送）"
PEOPLE = 150


async def test_one_scan_serves_a_big_monday_when_the_budget_allows(
        services: Services, clock: FakeClock) -> None:
    at(clock, 2026, 11, 2, 9, 0)  # they joined weeks before the reported week
    for i in range(PEOPLE):
        await make_user(services, f"经理{i:03d}", Role.MANAGER, team=f"供电所{i % 5}")
    notifier = FakeNotifier()
    service = ReminderService(services, Dispatcher(services, [notifier]))

    at(clock, 2026, 12, 7, 8, 31)
    await service.scan_once()

    got = Counter(who for who, reply in notifier.sent if reply.text.startswith(INTRO))
    assert len(got) == PEOPLE and set(got.values()) == {1}
    await service.scan_once()  # and nothing twice
    again = Counter(who for who, reply in notifier.sent if reply.text.startswith(INTRO))
    assert again == got
