"""What every reminder scan asks besides the due rows (rows in flight whose claim ran out, rows
held for a digest) is answered from an index of just those rows, on SQLite and PostgreSQL.
Before migration 0034 each scan read the whole reminders_user index for them: with 10 million
rows, seconds a minute (BENCHMARKS.md, issue #11)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.models import Role
from bot.services import Services
from bot.storage.db import iso
from bot.storage.reminders import Reminders
from tests.conftest import make_user

STATES = ("sent", "sent", "sent", "cancelled", "digested", "pending", "held", "sending")


async def _some_reminders(services: Services, clock: FakeClock) -> None:
    """A manager and a lead with reminders in every state, as a team has after a while."""
    lead = await make_user(services, "王组长", role=Role.LEAD)
    zhang = await make_user(services, "张三")
    now = clock.now()
    rows = [(lead.team_id, (zhang if i % 3 else lead).id, "complaint", i, "reply.due",
             iso(now - timedelta(hours=i)), STATES[i % len(STATES)], f"k{i}", iso(now),
             iso(now + timedelta(minutes=5)) if STATES[i % len(STATES)] == "sending" else None)
            for i in range(200)]
    async with services.db.tx() as tx:
        await tx.executemany(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, state, "
            "dedupe_key, created_at, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


async def _statements(services: Services,
                      calls: list[Callable[[], Awaitable[Any]]]) -> list[tuple[str, tuple]]:
    """The SQL (and parameters) the calls read `reminders` with, as the product runs it."""
    seen: list[tuple[str, tuple]] = []
    db = services.db
    real = {name: getattr(db, name) for name in ("fetchone", "fetchall")}

    def spy(name: str) -> Callable[..., Awaitable[Any]]:
        async def call(sql: str, params: Any = ()) -> Any:
            if "FROM reminders" in sql:
                seen.append((sql, tuple(params)))
            return await real[name](sql, params)
        return call

    for name in real:
        setattr(db, name, spy(name))
    try:
        for call in calls:
            await call()
    finally:
        for name, fn in real.items():
            setattr(db, name, fn)
    return seen


async def _plan(services: Services, sql: str, params: tuple) -> str:
    """The store's plan; PostgreSQL is told not to read a table this small whole anyway, so
    its choice among the indexes shows."""
    async with services.db.tx() as tx:
        if services.db.dialect == "postgresql":
            await tx.execute("SET LOCAL enable_seqscan = off")
            rows = await tx.fetchall("EXPLAIN " + sql, params)
            return "\n".join(str(r[0]) for r in rows)
        rows = await tx.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(r[3]) for r in rows)


@pytest.mark.parametrize(("what", "index"), [("held", "reminders_held"),
                                             ("sending", "reminders_sending")])
async def test_each_scan_finds_held_and_expired_rows_by_their_own_index(
        services: Services, clock: FakeClock, what: str, index: str) -> None:
    await _some_reminders(services, clock)
    rows = Reminders(services.db)
    calls: dict[str, list[Callable[[], Awaitable[Any]]]] = {
        "held": [rows.held_users, rows.release_held_of_deactivated],
        "sending": [lambda: rows.recover_expired(clock.now() + timedelta(hours=1))]}
    statements = await _statements(services, calls[what])
    assert statements, "the scan's look-up was not seen"
    for sql, params in statements:
        plan = await _plan(services, sql, params)
        # SQLite may also go person by person through reminders_user (the deactivated few)
        by_person = "SEARCH reminders USING COVERING INDEX reminders_user (user_id=?" in plan
        assert index in plan or by_person, (sql, plan)
        assert "SCAN reminders" not in plan and "Seq Scan on reminders" not in plan, plan
    # and the look-ups still do what they did: the expired claims went back to pending
    if what == "sending":
        left = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE state = 'sending'")
        assert left is not None and left[0] == 0
