"""The features' report sections are declared reads (bot.router.ReportSection, issue #12: a
/report read a section at a time, 27-30 round trips): every section but plans' is one, all
of them are read in one round trip, and what a section makes of its rows read with the
others (on PostgreSQL through JSON) is what it makes of them read alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.assistant import Assistant
from bot.router import ReportScope, ReportSection, app_router
from bot.services import Services
from tests.test_read_round_trips import MANAGER, a_team_with_one_of_everything

pytestmark = pytest.mark.both_backends

def own(section: object) -> str:
    """The module a section comes from (its `part`'s, for a declared one)."""
    fn = section.part if isinstance(section, ReportSection) else section
    return str(getattr(fn, "__module__", ""))


def test_every_section_declares_its_reads() -> None:
    sections = app_router().report_sections
    undeclared = [own(s) for s in sections if not isinstance(s, ReportSection)]
    assert not undeclared, f"report sections reading their own rows: {undeclared}"
    assert sum(isinstance(s, ReportSection) for s in sections) >= 9


async def test_the_sections_read_together_in_one_trip_as_each_alone(
        services: Services, assistant: Assistant) -> None:
    """Read together (Backend.fetch_groups: on PostgreSQL each read's rows through JSON), each
    section makes the same part as from its reads run one by one (native column types)."""
    await a_team_with_one_of_everything(services, assistant)
    team = await services.db.fetchone("SELECT team_id, id FROM users WHERE name = ?", (MANAGER,))
    assert team is not None
    now = services.clock.now()
    declared = [s for s in app_router().report_sections if isinstance(s, ReportSection)]
    said = 0
    for user_id in (None, team[1]):
        for days in (7, 31):
            scope = ReportScope(team[0], user_id, now - timedelta(days=days),
                                now + timedelta(days=1), now, "zh_CN")
            db = services.db
            await db.settle()
            db.trips.reset()
            together = await db.fetch_groups([s.reads(scope) for s in declared])
            assert db.trips.trips + db.trips.inline == 1
            for section, rows in zip(declared, together, strict=True):
                alone = [await db.fetchall(sql, params) for sql, params in section.reads(scope)]
                assert section.part(scope, rows) == section.part(scope, alone), own(section)
                said += bool(section.part(scope, rows).lines)
    assert said >= 20  # most sections have something to say about the team's records
