"""The store on SQLite and on PostgreSQL (issue #11): one interface, the same rows, migrations
on both, instances starting together, and a SQLite deployment copied to PostgreSQL whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from bot.clock import FakeClock
from bot.config import Settings, SettingsError, load_settings
from bot.services import Services
from bot.storage.db import MIGRATIONS_DIR, PG_SUFFIX, Backend, Database, migrations
from bot.storage.pg import VERSIONS, PgDatabase
from tests import pg_server as pg_server_module
from tests.conftest import Chat, make_user
from tests.pg_server import PgServer, PostgresUnavailable

pytestmark = pytest.mark.both_backends
LATEST = migrations()[-1][0]


async def test_rows_by_name_and_index_and_the_new_id(database: Backend) -> None:
    async with database.tx() as tx:
        first = await tx.execute("INSERT INTO teams(name, created_at) VALUES (?, ?)",
                                 ("城东供电所", "2026-11-27T02:30:00+00:00"))
        second = await tx.execute("INSERT INTO teams(name, created_at) VALUES (?, 'a?b')",
                                  ("城西供电所",))
        assert (first, second, tx.rowcount) == (1, 2, 1)
        await tx.execute("INSERT INTO teams(name, created_at) VALUES (?, ?) "
                         "ON CONFLICT DO NOTHING", ("城东供电所", "x"))
        assert tx.rowcount == 0  # already there: nothing changed
    row = await database.fetchone("SELECT id, name, created_at FROM teams WHERE id = ?", (2,))
    assert row is not None
    assert (row["name"], row[0], row[2]) == ("城西供电所", 2, "a?b")  # a ? in a string stays
    assert dict(row) == {"id": 2, "name": "城西供电所", "created_at": "a?b"}
    total = await database.fetchone("SELECT sum(id) AS s, count(*) AS n FROM teams")
    assert total is not None and (total["s"], total["n"]) == (3, 2)
    assert type(total["s"]) is int  # not PostgreSQL's Decimal


async def test_every_migration_runs_on_both_and_is_recorded(database: Backend) -> None:
    assert await database.schema_version() == LATEST
    # The functions the queries take from SQLite exist on PostgreSQL too.
    row = await database.fetchone(
        "SELECT group_concat(v, ',') AS g, julianday('2026-11-28T00:00:00+00:00') "
        "- julianday('2026-11-27T12:00:00+00:00') AS d, json_extract('{\"job\": \"x\"}', "
        "'$.job') AS j FROM (SELECT 'a' AS v UNION ALL SELECT 'b') t")
    assert row is not None and (sorted(row["g"].split(",")), row["d"], row["j"]) == (
        ["a", "b"], 0.5, "x")


def test_every_postgresql_variant_belongs_to_a_numbered_migration() -> None:
    numbered = {p.name for _, p in migrations()}
    variants = sorted(MIGRATIONS_DIR.glob(f"*.{PG_SUFFIX}.sql"))
    assert variants and all(v.name.replace(f".{PG_SUFFIX}", "") in numbered for v in variants)


@pytest.mark.parametrize("start", [n for n, _ in migrations()][:-1])
async def test_each_version_upgrades_in_place(db_backend: str, tmp_path: Path,
                                              request: pytest.FixtureRequest,
                                              start: int) -> None:
    """Every migration has a runnable form on both stores, from each earlier version."""
    db: Backend
    if db_backend == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        url = await server.empty_database()
        db = PgDatabase(url)
    else:
        db = Database(tmp_path / "old.db")
    await db.connect(migrate_to=start)
    assert await db.schema_version() == start
    await db.close()
    await db.connect()
    try:
        assert await db.schema_version() == LATEST
    finally:
        await db.close()


async def test_instances_starting_together_migrate_once(pg_server: PgServer) -> None:
    """Two instances start at once on an empty store: one migrates, the other waits for the
    advisory lock and finds the work done."""
    url = await pg_server.empty_database()
    first, second = PgDatabase(url), PgDatabase(url)
    await asyncio.gather(first.connect(), second.connect())
    try:
        rows = await first.fetchall(f"SELECT version FROM {VERSIONS} ORDER BY version")
        assert [r["version"] for r in rows] == [n for n, _ in migrations()]
        assert await second.schema_version() == LATEST
    finally:
        await first.close()
        await second.close()


def test_the_database_url_is_checked_at_start() -> None:
    assert load_settings(database_url=" ").database_url is None  # blank: SQLite
    with pytest.raises(SettingsError, match="TAIQU_DATABASE_URL: expected a PostgreSQL URL"):
        load_settings(database_url="mysql://root@db/taiqu")
    # WeCom shares the store like Telegram (issue #11): its inbox is on PostgreSQL too.
    both = load_settings(database_url="postgresql://taiqu@db/taiqu", wecom_corp_id="ww1")
    assert (both.database_url, both.wecom_corp_id) == ("postgresql://taiqu@db/taiqu", "ww1")


def test_without_postgresql_the_suite_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_server_module, "DEBIAN_BINARIES", str(tmp_path / "*" / "bin"))
    with pytest.raises(PostgresUnavailable) as err:
        PgServer().start()
    assert "apt-get install -y postgresql" in str(err.value)
    assert "TAIQU_TEST_DATABASE_URL" in str(err.value)


# --- taiqu-bot db copy ----------------------------------------------------------------------

@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """This deployment before the move: on its SQLite file."""
    return load_settings(db_path=tmp_path / "taiqu.db")


async def _log_patrol(chat: Chat) -> str:
    await chat.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    await chat.say("无")
    await chat.photo("test:p1")
    await chat.press("完成")
    await chat.press("跳过")
    await chat.press("保存")
    return chat.text


def _copy(settings: Settings, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("TAIQU_DB_PATH", str(settings.db_path))
    return main(["db", "copy", "--to", url])


async def test_db_copy_moves_a_deployment_and_a_second_run_doubles_nothing(
        sqlite_settings: Settings, clock: FakeClock, pg_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.assistant import Assistant

    services = await Services.open(sqlite_settings, clock)
    user = await make_user(services, "张三", external_id="zhang")
    zhang = Chat(Assistant(services), "test", "zhang")
    assert "已保存工作日志 #1" in await _log_patrol(zhang)
    await services.close()

    assert await asyncio.to_thread(_copy, sqlite_settings, pg_url, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "worklogs: 1 行 / rows, 新复制 / copied 1, 目标共 / in target 1" in out
    assert "worklog_photos: 1 行" in out and "复制完成" in out
    # Run again: nothing doubled.
    assert await asyncio.to_thread(_copy, sqlite_settings, pg_url, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "worklogs: 1 行 / rows, 新复制 / copied 0, 目标共 / in target 1" in out

    # The same person carries on, now on PostgreSQL: the next entry is #2, not a clash with #1.
    moved = await Services.open(sqlite_settings.model_copy(update={"database_url": pg_url}),
                                clock)
    try:
        zhang = Chat(Assistant(moved), "test", "zhang")
        await zhang.say("我的日志")
        assert "#1 2026-11-26 周四 15:00 3号台区 巡视" in zhang.text
        await zhang.press("#1 3号台区")
        assert "2号杆拉线松动" in zhang.text and "照片：1 张" in zhang.text
        assert "已保存工作日志 #2" in await _log_patrol(zhang)
        row = await moved.db.fetchone("SELECT user_id, occurred_at FROM worklogs WHERE id = 1")
        assert row is not None and row["user_id"] == user.id
        assert row["occurred_at"] == "2026-11-26T07:00:00+00:00"
    finally:
        await moved.close()


async def test_a_withdrawn_logs_number_stays_used_after_the_move(
        sqlite_settings: Settings, clock: FakeClock, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.assistant import Assistant

    services = await Services.open(sqlite_settings, clock)
    await make_user(services, "张三", external_id="zhang")
    zhang = Chat(Assistant(services), "test", "zhang")
    assert "已保存工作日志 #1" in await _log_patrol(zhang)
    assert "已保存工作日志 #2" in await _log_patrol(zhang)
    await zhang.press("撤销")
    await zhang.press("确定删除")  # the second thought
    await services.close()
    assert await asyncio.to_thread(_copy, sqlite_settings, pg_url, monkeypatch) == 0
    moved = await Services.open(sqlite_settings.model_copy(update={"database_url": pg_url}),
                                clock)
    try:
        zhang = Chat(Assistant(moved), "test", "zhang")
        assert "已保存工作日志 #3" in await _log_patrol(zhang)  # #2 stays the withdrawn one's
    finally:
        await moved.close()


async def test_db_copy_refuses_a_target_at_another_schema_version(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], sqlite_settings: Settings) -> None:
    older = migrations()[-2][0]
    old = await Database(sqlite_settings.db_path).connect(migrate_to=older)
    await old.close()
    assert await asyncio.to_thread(_copy, sqlite_settings, pg_url, monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"source {older}, target {LATEST}" in err and "upgrade the SQLite file first" in err
    target = await PgDatabase(pg_url).connect()
    try:
        assert await target.fetchone("SELECT 1 FROM teams") is None  # nothing copied
    finally:
        await target.close()
