"""/report's figures are declared reads (figures.Making) and a pure function of their rows
(made as they come), run in one round trip (Backend.fetch_many; issue #12). On PostgreSQL that
trip returns each read's rows as JSON: the figures, the XLSX's detail rows and the message
made from them must be those of the same reads run one by one (asyncpg's own types)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.assistant import Assistant
from bot.features.reports import figures
from bot.features.reports.figures import Scope
from bot.features.reports.ranges import Period
from bot.features.reports.text import render
from bot.services import Services
from bot.storage.db import iso
from tests.test_read_round_trips import LEAD, MANAGER, a_team_with_one_of_everything

pytestmark = pytest.mark.both_backends


async def test_the_figures_read_in_one_trip_are_those_read_one_by_one(
        services: Services, assistant: Assistant) -> None:
    await a_team_with_one_of_everything(services, assistant)
    db = services.db
    user = await db.fetchone("SELECT id, team_id FROM users WHERE name = ?", (MANAGER,))
    lead = await db.fetchone("SELECT id FROM users WHERE name = ?", (LEAD,))
    assert user is not None and lead is not None
    now = services.clock.now()
    await db.execute("INSERT INTO worklog_comments(worklog_id, user_id, body, created_at) "
                     "VALUES (1, ?, '看过了', ?)", (lead["id"], iso(now)))
    await db.execute("UPDATE reminders SET state = 'sent', sent_at = ?, kind = 'repair.due' "
                     "WHERE id = (SELECT min(id) FROM reminders)", (iso(now),))
    today = now.astimezone(services.settings.tz).date()
    # A month from last week, judged three weeks on: every deadline of it passed.
    period = Period(today - timedelta(days=7), today + timedelta(days=21), services.settings.tz)
    later = now + timedelta(days=21)
    for scope in (Scope(user["team_id"], "城东供电所"),
                  Scope(user["team_id"], "城东供电所", user["id"], MANAGER)):
        making = figures.Making(scope, period, later, detail=True)
        for (sql, p), into in zip(making.reads, making.into, strict=True):
            into(iter(await db.fetchall(sql, p)))  # as the one trip hands them over
        one_by_one = making.made()
        fig = await figures.compute(db, scope, period, later, detail=True)
        assert fig == one_by_one, scope
        assert render(fig, "zh_CN") == render(one_by_one, "zh_CN")
    # The data reached every kind of figure (else the comparison says little).
    t, det = fig.total, fig.detail
    assert det is not None
    assert (t.entries, t.complaints_new, t.arrears_new, t.outages, t.reminders_overdue) == (
        2, 1, 2, 1, 1), t
    assert t.arrears_new_cents and t.on_time.late and t.special_to_tell, t
    assert fig.overdue and fig.unpatrolled and det.repairs and det.outages and det.arrears
    assert det.categories and det.complaints and any(w.comments for w in det.logs)
