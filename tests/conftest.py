"""Shared fixtures: a real SQLite file (or a real PostgreSQL database), a fake clock, the
core, the Telegram channel on a loopback fake Bot API."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.assistant import Assistant
from bot.channel import FileTooLarge, ReceivedFile
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.events import Incoming, Outcome, Reply
from bot.models import Role, User
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage.db import Backend, Database
from bot.storage.pg import PgDatabase
from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI
from tests.pg_server import PgServer, PostgresUnavailable

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Friday morning; 昨天 is Thursday 2026-11-26.
T0 = datetime(2026, 11, 27, 10, 30, tzinfo=SHANGHAI)

# Read before _isolated_env clears every TAIQU_* variable. TAIQU_TEST_BACKEND=postgresql runs
# every test on PostgreSQL; by default only modules marked both_backends do, on both.
BACKENDS = ("sqlite", "postgresql")
TEST_BACKEND = os.environ.get("TAIQU_TEST_BACKEND", "sqlite")
TEST_DATABASE_URL = os.environ.get("TAIQU_TEST_DATABASE_URL") or None
if TEST_BACKEND not in BACKENDS:
    raise pytest.UsageError(f"TAIQU_TEST_BACKEND must be one of {BACKENDS}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only(why): a test of SQLite itself (its file, "
                            "its locks); left out of the PostgreSQL pass")
    config.addinivalue_line("markers", "postgresql_only(why): needs PostgreSQL as the store "
                            "(several instances sharing it); run in the PostgreSQL pass only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass (TAIQU_TEST_BACKEND=postgresql) leaves out the SQLite-only tests
    and the SQLite pass the PostgreSQL-only ones: the other pass runs them. Each says why it
    is one."""
    other = "sqlite_only" if TEST_BACKEND == "postgresql" else "postgresql_only"
    only = [item for item in items if item.get_closest_marker(other)]
    for item in only:
        if not item.get_closest_marker(other).args:  # type: ignore[union-attr]
            raise pytest.UsageError(f"{item.nodeid}: {other} needs its reason")
    if only:
        config.hook.pytest_deselected(items=only)
        items[:] = [item for item in items if item not in only]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    own = {m.args[0] for m in metafunc.definition.iter_markers("parametrize")}
    if ("db_backend" in metafunc.fixturenames and "db_backend" not in own  # one of its own
            and metafunc.definition.get_closest_marker("both_backends")
            and TEST_BACKEND == "sqlite"):
        metafunc.parametrize("db_backend", BACKENDS)


@pytest.fixture
def db_backend() -> str:
    return TEST_BACKEND


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL for the whole session, started on first use and stopped at the end.
    Without one, the run stops with how to get it: no test is skipped for its lack."""
    try:
        server = PgServer(TEST_DATABASE_URL).start()
    except PostgresUnavailable as exc:
        pytest.exit(str(exc), returncode=1)
    try:
        yield server
    finally:
        if TEST_DATABASE_URL:
            asyncio.run(server.drop_template())
        server.stop()


@pytest.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A fresh database at the latest schema, for this test only."""
    url = await pg_server.fresh_database()
    yield url
    # Dropped at once, on our own server too: a thousand tests' databases left to the end
    # are gigabytes, and deleting them then outlasts the last test's timeout.
    await pg_server.drop(url)


@pytest.fixture
async def database(db_backend: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The store, connected and migrated: a SQLite file or a PostgreSQL database."""
    if db_backend == "sqlite":
        async with Database(tmp_path / "x.db") as db:
            yield db
        return
    # (not through pg_url: an async fixture cannot be looked up from inside another)
    server: PgServer = request.getfixturevalue("pg_server")
    url = await server.fresh_database()
    async with PgDatabase(url) as pg:
        yield pg
    await server.drop(url)  # at once, as pg_url does


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer .env or TAIQU_* variable leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("TAIQU_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def settings(tmp_path: Path, db_backend: str, request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue("pg_url") if db_backend == "postgresql" else None
    # The digest all at 08:00 (no spread window): the tests of what a digest says scan once
    # at the digest time; tests/test_digest_spread.py covers the spread (issue #12).
    return load_settings(db_path=tmp_path / "taiqu.db", database_url=url,
                         digest_window_minutes=0)


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    s = await Services.open(settings, clock)
    yield s
    await s.close()


def use_store(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """A CLI command run in this test works on the test's store (SQLite file or PostgreSQL)."""
    monkeypatch.setenv("TAIQU_DB_PATH", str(settings.db_path))
    if settings.database_url:
        monkeypatch.setenv("TAIQU_DATABASE_URL", settings.database_url)


async def make_user(services: Services, name: str, role: Role = Role.MANAGER,
                    team: str = "城东供电所", areas: tuple[str, ...] = ("3号台区", "5号台区"),
                    channel: str = "test", external_id: str | None = None) -> User:
    """A registered user, through the same invite path a real one takes."""
    invite = await services.people.create_invite(
        role=role, team=team, areas=list(areas), name=name, now=services.clock.now(),
        ttl=timedelta(days=7))
    return await services.people.redeem_invite(
        invite.code, channel=channel, external_id=external_id or name, fallback_name=name,
        now=services.clock.now())


@dataclass
class MemoryFiles:
    """A channel's file source for tests talking to the core directly: files by reference."""

    files: dict[str, bytes] = field(default_factory=dict)

    async def fetch_file(self, ref: str, max_bytes: int) -> ReceivedFile:
        data = self.files[ref]
        if len(data) > max_bytes:
            raise FileTooLarge(len(data))
        return ReceivedFile(data)


@dataclass
class Chat:
    """Talk to the core as one user, the way a channel does."""

    assistant: Assistant
    channel: str
    external_id: str
    last: Outcome | None = None

    async def say(self, text: str) -> Outcome:
        self.last = await self.assistant.handle(Incoming(self.channel, self.external_id,
                                                         text=text))
        return self.last

    async def press(self, label: str) -> Outcome:
        """Press the button whose label contains `label` in the latest outcome."""
        assert self.last is not None, "nothing on screen yet"
        shown = ([self.last.edit] if self.last.edit else []) + self.last.replies
        for reply in reversed(shown):
            for row in reply.buttons:
                for b in row:
                    if label in b.label:
                        return await self.tap(b.data)
        labels = [b.label for r in shown for row in r.buttons for b in row]
        raise AssertionError(f"no button {label!r}; buttons: {labels}")

    async def tap(self, data: str) -> Outcome:
        self.last = await self.assistant.handle(Incoming(self.channel, self.external_id,
                                                         callback=data))
        return self.last

    async def photo(self, ref: str) -> Outcome:
        self.last = await self.assistant.handle(Incoming(self.channel, self.external_id,
                                                         photo=ref))
        return self.last

    async def location(self, lat: float, lon: float) -> Outcome:
        self.last = await self.assistant.handle(Incoming(self.channel, self.external_id,
                                                         location=(lat, lon)))
        return self.last

    async def file(self, filename: str, data: bytes) -> Outcome:
        """Send a file (as a document), fetched from an in-memory source of this channel."""
        source = self.assistant.files.setdefault(self.channel, MemoryFiles())
        assert isinstance(source, MemoryFiles)
        ref = f"file{len(source.files) + 1}"
        source.files[ref] = data
        self.last = await self.assistant.handle(Incoming(
            self.channel, self.external_id, document=ref, filename=filename))
        return self.last

    @property
    def text(self) -> str:
        assert self.last is not None
        parts = ([self.last.edit.text] if self.last.edit else [])
        return "\n".join(parts + [r.text for r in self.last.replies])

    @property
    def buttons(self) -> list[str]:
        """The labels of the buttons on screen now."""
        assert self.last is not None
        shown = ([self.last.edit] if self.last.edit else []) + self.last.replies
        return [b.label for r in shown for row in r.buttons for b in row]


def at(clock: FakeClock, *args: int) -> None:
    """Move the fake clock to a local (Asia/Shanghai) time: at(clock, 2026, 11, 30, 8, 31)."""
    clock.set(datetime(*args, tzinfo=SHANGHAI))  # type: ignore[misc]


@dataclass
class FakeNotifier:
    """A channel's push end for reminder tests: records what each user got; `fail` makes
    a user's next pushes raise (RetryLater, Unreachable ...) in order."""

    channel: str = "test"
    sent: list[tuple[str, Reply]] = field(default_factory=list)
    fail: dict[str, list[Exception]] = field(default_factory=dict)

    async def push(self, external_id: str, reply: Reply) -> None:
        queue = self.fail.get(external_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((external_id, reply))

    def texts(self, who: str) -> list[str]:
        return [r.text for w, r in self.sent if w == who]

    def last(self, who: str) -> Reply:
        return [r for w, r in self.sent if w == who][-1]


@pytest.fixture
def notifier() -> FakeNotifier:
    """A push end recording what each user got (the reminder tests' channel)."""
    return FakeNotifier()


@pytest.fixture
def service(services: Services, notifier: FakeNotifier) -> ReminderService:
    """The real reminder service delivering through `notifier`."""
    return ReminderService(services, Dispatcher(services, [notifier]))


@pytest.fixture
async def assistant(services: Services) -> Assistant:
    from bot.channels.telegram import TELEGRAM_CAPS

    core = Assistant(services)
    # Dialogue tests talk as channel "test" with Telegram's caps: outcomes come shaped as a
    # Telegram user gets them, and a button whose data is over 64 bytes fails the test
    # (the core checks a channel's limit when it shapes, not when a button is built).
    core.register_channel("test", TELEGRAM_CAPS)
    return core


@pytest.fixture
async def zhang(services: Services, assistant: Assistant) -> Chat:
    await make_user(services, "张三")
    return Chat(assistant, "test", "张三")


# --- Telegram on the loopback fake Bot API ------------------------------------------------
@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def channel(services: Services, settings: Settings,
                  fake_api: FakeBotAPI) -> AsyncIterator[TelegramChannel]:
    """The real Telegram channel (PTB Application) serving the fake Bot API."""
    from tests.tg_harness import start_channel  # tg_harness imports this module

    ch = await start_channel(services, settings, fake_api)
    yield ch
    await ch.stop()


def telegram_settings(base: Settings, fake: FakeBotAPI) -> Settings:
    return base.model_copy(update={"telegram_token": DEFAULT_TOKEN,
                                   "telegram_base_url": fake.base_url,
                                   "telegram_base_file_url": fake.base_file_url})
