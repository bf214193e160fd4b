"""SQLite: pragmas, numbered migrations upgrading old files in place, invites, UTC times."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.models import Role
from bot.services import Services
from bot.storage.db import Database, iso, migrations
from bot.storage.people import CODE_LENGTH, InviteError, People, _hash, new_code
from tests.conftest import T0


def test_migrations_are_numbered_without_gaps() -> None:
    numbers = [n for n, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_pragmas_and_latest_version(tmp_path: Path) -> None:
    async with Database(tmp_path / "x.db") as db:
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        assert await db.schema_version() == migrations()[-1][0]
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute("INSERT INTO areas(team_id, name, created_at) VALUES (999, 'x', 'y')")


async def test_a_confirmed_save_is_synced_to_disk(settings: Settings) -> None:
    """WAL + synchronous=NORMAL may roll back the last commits on a power cut, after the user
    already saw "✅ 已保存": the product's connection runs FULL (2), NORMAL only if configured."""
    settings = settings.model_copy(update={"database_url": None})  # SQLite's own setting
    services = await Services.open(settings)
    try:
        assert (await services.db.fetchone("PRAGMA synchronous"))[0] == 2  # type: ignore[index]
    finally:
        await services.close()
    fast = await Services.open(settings.model_copy(update={"sqlite_synchronous": "NORMAL"}))
    try:
        assert (await fast.db.fetchone("PRAGMA synchronous"))[0] == 1  # type: ignore[index]
    finally:
        await fast.close()


@pytest.mark.parametrize("start", [n for n, _ in migrations()][:-1])
async def test_every_earlier_version_upgrades_in_place(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    db = await Database(path).connect(migrate_to=start)
    assert await db.schema_version() == start
    # The invite as an old version wrote it (no user yet: today's named invites create one).
    code = new_code()
    async with db.tx() as tx:
        team_id = await People(db).ensure_team(tx, "城东供电所", T0)
        area_id = await People(db).ensure_area(tx, team_id, "3号台区", T0)
        await tx.execute(
            "INSERT INTO invites(code_hash, role, team_id, area_ids, name, created_at, "
            "expires_at) VALUES (?, 'manager', ?, ?, '张三', ?, ?)",
            (_hash(code), team_id, f"[{area_id}]", iso(T0), iso(T0 + timedelta(days=7))))
    await db.close()
    # The next start of a newer version finds the old file and upgrades it, keeping the data.
    async with Database(path) as db:
        assert await db.schema_version() == migrations()[-1][0]
        user = await People(db).redeem_invite(code, channel="t", external_id="1",
                                              fallback_name="x", now=T0)
        assert user.name == "张三" and user.team_name == "城东供电所"
        assert [a.name for a in await People(db).areas_for(user)] == ["3号台区"]


async def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    path = tmp_path / "x.db"
    async with Database(path) as db:
        version = await db.schema_version()
    broken = tmp_path / "migrations"
    broken.mkdir()
    for _, p in migrations():
        (broken / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    (broken / f"{version + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half_done(x);\nTHIS IS NOT SQL;\n", encoding="utf-8")
    monkeypatch.setattr("bot.storage.db.MIGRATIONS_DIR", broken)
    db = Database(path)
    with pytest.raises(sqlite3.OperationalError):
        await db.connect()
    assert await db.schema_version() == version
    assert await db.fetchone("SELECT name FROM sqlite_master WHERE name='half_done'") is None
    await db.close()


async def test_invites_store_only_a_hash(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with Database(tmp_path / "x.db") as db:
        people = People(db)
        inv = await people.create_invite(role=Role.LEAD, team="T", areas=[], name=None,
                                         now=clock.now(), ttl=timedelta(days=7))
        assert len(inv.code) == CODE_LENGTH and inv.code.isalnum()
        row = await db.fetchone("SELECT * FROM invites")
        assert row is not None and inv.code not in tuple(str(v) for v in row)
        assert row["expires_at"] == "2026-12-04T02:30:00+00:00"  # UTC, aware
        with pytest.raises(InviteError) as err:
            await people.redeem_invite("NOPE", channel="t", external_id="1",
                                       fallback_name="x", now=clock.now())
        assert err.value.reason == "unknown"
        user = await people.redeem_invite(inv.code, channel="t", external_id="1",
                                          fallback_name="王班长", now=clock.now())
        assert user.role is Role.LEAD and user.name == "王班长"
        codes = {(await people.create_invite(role=Role.MANAGER, team="T", areas=[], name=None,
                                             now=clock.now(), ttl=timedelta(days=1))).code
                 for _ in range(50)}
        assert len(codes) == 50
