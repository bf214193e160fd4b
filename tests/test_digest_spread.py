"""The morning digest spread over a window (issue #12): scanned every minute from 08:00, each
person gets it once, at their team's (or their own) fixed moment, never all at 08:00; on
WeCom never in minute :00 or :30. Nothing lost or doubled across scans and restarts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.events import GLOBAL_TOKEN, Button, Reply, callback
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService, digest_slot
from bot.router import ReminderKind, Router, TodoItem
from bot.services import Ctx, Services
from bot.storage.reminders import Reminder
from tests.conftest import FakeNotifier, at, make_user

DAY = (2026, 12, 2)  # a Wednesday


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db_path=tmp_path / "taiqu.db", digest_window_minutes=30)


def one_item_each() -> Router:
    """Everyone has one patrol due today, so everyone has a digest to get."""
    reg = Router()

    async def todo(ctx: Ctx) -> list[TodoItem]:
        due = ctx.local_now.replace(hour=17, minute=0, second=0, microsecond=0)
        return [TodoItem(due=due, text="巡视 3号台区：今天 17:00 前",
                         button=Button("📄 巡视", callback(GLOBAL_TOKEN, "cmd", "todo")))]

    async def render(ctx: Ctx, r: Reminder) -> Reply | None:
        return None

    reg.reminder_kind("patrol", ReminderKind(render=render, todo=todo))
    return reg


async def people(services: Services, channel: str, teams: list[str],
                 per_team: int) -> list[User]:
    out = []
    for team in teams:
        for i in range(per_team):
            name = f"{team[:2]}{channel}{i}"
            out.append(await make_user(services, name, Role.MANAGER, team=team,
                                       channel=channel, external_id=name))
    return out


async def scan_each_minute(service: ReminderService, clock: FakeClock, notifier: FakeNotifier,
                           minutes: int) -> dict[str, list[datetime]]:
    """Scan at 08:00, 08:01 ... as the scheduler does; when each person got a digest."""
    got: dict[str, list[datetime]] = {}
    for m in range(minutes):
        at(clock, *DAY, 8, 0)
        clock.advance(minutes=m, seconds=5)
        before = len(notifier.sent)
        await service.scan_once()
        for who, reply in notifier.sent[before:]:
            assert reply.text.startswith("☀️ 早上好"), reply.text
            got.setdefault(who, []).append(clock.now())
    return got


async def test_digest_goes_out_team_by_team_over_the_window_once_each(
        services: Services, clock: FakeClock, settings: Settings) -> None:
    at(clock, *DAY, 7, 0)
    teams = ["城东供电所", "城西供电所", "城南供电所", "城北供电所"]
    users = await people(services, "test", teams, 3)
    notifier = FakeNotifier()
    service = ReminderService(services, Dispatcher(services, [notifier]),
                              router=one_item_each())

    got = await scan_each_minute(service, clock, notifier, 40)

    assert Counter(len(v) for v in got.values()) == {1: len(users)}  # once each, nobody lost
    for u in users:
        slot = digest_slot(settings, u, datetime(*DAY).date())
        sent_at = got[u.name][0]
        assert slot <= sent_at < slot + timedelta(minutes=1)  # at their moment, not before
    by_team = {u.team_id: got[u.name][0] for u in users}
    assert len(set(by_team.values())) > 1  # teams apart, not one 08:00 wave
    for u in users:  # a team's people together
        assert got[u.name][0] == by_team[u.team_id]
    # A second pass (a restart, a second scheduler) sends nothing again.
    again = await scan_each_minute(service, clock, notifier, 40)
    assert again == {}


async def test_wecom_digests_keep_out_of_minute_00_and_30(
        services: Services, clock: FakeClock, settings: Settings) -> None:
    at(clock, *DAY, 7, 0)
    settings = settings.model_copy(update={"digest_window_minutes": 0})  # everyone 08:00
    services.settings = settings
    tg = await people(services, "test", ["城东供电所"], 2)
    wc = await people(services, "wecom", ["城东供电所"], 2)
    test_side, wecom_side = FakeNotifier(), FakeNotifier(channel="wecom")
    service = ReminderService(services, Dispatcher(services, [test_side, wecom_side]),
                              router=one_item_each())

    at(clock, *DAY, 8, 0, 20)
    await service.scan_once()
    assert sorted(w for w, _ in test_side.sent) == sorted(u.name for u in tg)
    assert wecom_side.sent == []  # WeCom asks bulk sends to avoid :00

    at(clock, *DAY, 8, 1, 20)
    await service.scan_once()
    assert sorted(w for w, _ in wecom_side.sent) == sorted(u.name for u in wc)
    assert len(test_side.sent) == len(tg)  # nobody twice
