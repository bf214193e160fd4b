"""Issue #8, item 7: personal data at rest is readable by the bot's account only: the
database, its WAL/SHM and every export are 0600, their directories 0700, whatever the
umask; files and directories left open by an older version are tightened on start."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.channels.terminal import TerminalChat
from bot.cli import main
from bot.clock import FakeClock
from bot.config import load_settings
from bot.customers_io import export_customers
from bot.events import Attachment
from bot.services import Services
from tests.conftest import make_user, use_store
from tests.test_reports import TEAM_A, make_people, seed


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The usual 022 (files 0644 by default): what a deployment typically runs with."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_new_database_directory_and_side_files(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "fresh" / "data" / "taiqu.db"
    services = await Services.open(load_settings(db_path=db), clock)
    try:
        await make_user(services, "张三")  # writes: the WAL and SHM exist now
        for side in ("-wal", "-shm"):
            assert Path(f"{db}{side}").exists()
            assert mode(Path(f"{db}{side}")) == 0o600, side
        assert mode(db) == 0o600
        assert mode(db.parent) == 0o700
    finally:
        await services.close()


def test_a_fresh_start_makes_the_directory_private_without_a_false_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`run` and `chat` take the lease before opening the database: the lease created the
    new directory with the umask's 0755, and the database then "tightened" it with a
    warning that an older version had left it readable, on every fresh install."""
    db = tmp_path / "fresh" / "data" / "taiqu.db"
    env = {"TAIQU_DB_PATH": str(db)}
    p = subprocess.run([sys.executable, "-m", "bot", "chat", "--demo", "--user", "张三"],
                       input="/quit\n", capture_output=True, text=True, timeout=60,
                       env={**{k: v for k, v in os.environ.items()
                               if not k.startswith("TAIQU_")}, **env, "PYTHONUTF8": "1"})
    assert p.returncode == 0, p.stderr
    assert "readable by other accounts" not in p.stderr
    assert mode(db.parent) == 0o700 and mode(Path(f"{db}.lock")) == 0o600


async def test_an_existing_open_database_is_tightened_on_start(tmp_path: Path,
                                                               clock: FakeClock) -> None:
    folder = tmp_path / "old"
    db = folder / "taiqu.db"
    services = await Services.open(load_settings(db_path=db), clock)
    await make_user(services, "张三")
    await services.close()
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            path.chmod(0o644)
    folder.chmod(0o755)
    services = await Services.open(load_settings(db_path=db), clock)
    try:
        assert mode(db) == 0o600 and mode(folder) == 0o700
        await make_user(services, "李四")
        assert mode(Path(f"{db}-wal")) == 0o600
    finally:
        await services.close()


async def test_a_database_in_a_shared_sticky_directory_leaves_the_directory_open(
        tmp_path: Path, clock: FakeClock) -> None:
    """TAIQU_DB_PATH=/tmp/x.db must not close /tmp to every other account (it once did: the
    throwaway PostgreSQL of the tests, run as `postgres`, then could not start)."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    db = shared / "taiqu.db"
    services = await Services.open(load_settings(db_path=db), clock)
    try:
        await make_user(services, "张三")
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
        assert mode(db) == 0o600  # the database itself is still private
    finally:
        await services.close()


async def test_exports_are_private(services: Services, clock: FakeClock, tmp_path: Path,
                                   assistant: Assistant,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    await make_people(services, clock)
    await seed(services, clock)
    # The terminal channel's exports/ folder.
    user = await make_user(services, "赵七")
    saved = TerminalChat(assistant, user, io.StringIO()).save_attachment(
        Attachment("周报.xlsx", b"data"))
    assert mode(saved) == 0o600 and mode(saved.parent) == 0o700
    # The customer export, masked and --full; an existing file is made private too.
    for full in (False, True):
        target = tmp_path / f"customers-{full}.xlsx"
        target.write_bytes(b"old")
        target.chmod(0o644)
        await export_customers(services, TEAM_A, target, full=full)
        assert mode(target) == 0o600
    # The printable log, from the CLI.
    use_store(monkeypatch, services.settings)
    target = tmp_path / "logs.xlsx"
    assert await asyncio.to_thread(main, ["export", "logs", "--team", TEAM_A, "--from",
                                          "2026-11-30", "--to", "2026-12-06",
                                          str(target)]) == 0
    assert mode(target) == 0o600
