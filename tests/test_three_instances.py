"""Three real `taiqu-bot run` processes on one PostgreSQL (issue #11): Telegram by webhook, a
round-robin balancer in front (as nginx, it tries the next instance when one refuses the
connection), 30 managers filling work logs and 300 reminders falling due at once, and one
instance killed with SIGKILL in the middle of the forms, the scan's holder in the middle of
the fan-out. Then counted: every confirmed entry in the database once, every reminder sent
once (at most the ones in flight at the kill twice, the repeat marked 补发), each person's
answers in the order of their messages and each message answered once (but the one in flight
at the kill), and never more sends a second than the token's shared rate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import Settings
from bot.features.notes import store as notes
from bot.services import Services
from bot.storage.db import iso
from bot.storage.leases import SCAN
from tests.conftest import make_user
from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI
from tests.test_telegram_webhook import SECRET, RoundRobin, free_port
from tests.tg_harness import L, body

pytestmark = [
    pytest.mark.postgresql_only("three instances share one store, which only PostgreSQL is"),
    pytest.mark.timeout(180),
]
USERS = 30
REMINDERS_EACH = 10  # 300 due at once
RATE = 40.0  # TAIQU_TELEGRAM_SENDS_PER_SECOND: the token's, shared by the instances
FIRST_CHAT = 7001
# Short leases (the defaults are minutes): a dead instance's share is taken over in seconds.
LEASES = {"TAIQU_SCAN_INTERVAL_SECONDS": "1", "TAIQU_INSTANCE_LEASE_SECONDS": "5",
          "TAIQU_REMINDER_CLAIM_SECONDS": "6", "TAIQU_INBOX_CLAIM_SECONDS": "6"}
# The fake Bot API stamps a call when its (busy) event loop gets to it: on a loaded machine
# calls spaced evenly by the sender can be stamped up to ~0.1 s closer together.
TIMING_SLACK = 0.1
REMINDER = re.compile(r"R(\d{3})号表箱核对")
REPEAT = L("reminder.maybe_repeat")


def max_sends_in_window(times: list[float], window: float) -> int:
    """The most calls made within any `window` seconds."""
    ordered, best, first = sorted(times), 0, 0
    for last, t in enumerate(ordered):
        while ordered[first] <= t - window:
            first += 1
        best = max(best, last - first + 1)
    return best


class FailoverRoundRobin(RoundRobin):
    """Each POST to the next instance; one that refuses or drops the connection is taken out
    and the POST goes to the next (nginx's proxy_next_upstream). The inbox is unique on the
    update id, so an update an instance recorded just before it died is not handled twice."""

    def __init__(self, targets: list[str]) -> None:
        super().__init__(targets)
        self.down: set[int] = set()
        self._turn = 0

    async def _forward(self, request: web.Request) -> web.Response:
        data = await request.read()
        headers = {"X-Telegram-Bot-Api-Secret-Token":
                   request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""),
                   "Content-Type": "application/json"}
        for _ in self.targets:
            i, self._turn = self._turn % len(self.targets), self._turn + 1
            if i in self.down:
                continue
            try:
                async with aiohttp.ClientSession() as http, http.post(
                        self.targets[i], data=data, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    self.sent_to.append(i)
                    return web.Response(status=resp.status)
            except (aiohttp.ClientConnectionError, TimeoutError):
                self.down.add(i)
        return web.Response(status=502)


@dataclass
class Instance:
    """One `taiqu-bot run` process: its webhook and /healthz ports, its log file."""

    number: int
    webhook_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    killed_at: float | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/tg/hook"

    async def start(self, env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:  # the child keeps its own descriptor
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, cwd=log.parent,
                stdout=out, stderr=asyncio.subprocess.STDOUT)

    async def healthy(self, http: aiohttp.ClientSession) -> bool:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"http://127.0.0.1:{self.health_port}/healthz",
                                timeout=aiohttp.ClientTimeout(total=2)) as answer:
                return answer.status == 200
        return False

    async def kill(self) -> None:
        """kill -9: nothing drained, released or given up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.killed_at = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def instance_env(settings: Settings, fake: FakeBotAPI, proxy_url: str, instance: Instance,
                 tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    assert settings.database_url is not None
    env.update(LEASES)
    env.update({
        "TAIQU_DATABASE_URL": settings.database_url,
        "TAIQU_DB_PATH": str(tmp / f"unused-{instance.number}.db"),
        "TAIQU_TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "TAIQU_TELEGRAM_BASE_URL": fake.base_url,
        "TAIQU_TELEGRAM_BASE_FILE_URL": fake.base_file_url,
        "TAIQU_TELEGRAM_WEBHOOK_URL": proxy_url,
        "TAIQU_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TAIQU_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{instance.webhook_port}",
        "TAIQU_HEALTH_PORT": str(instance.health_port),
        "TAIQU_HEALTH_HOST": "127.0.0.1",
        "TAIQU_TELEGRAM_SENDS_PER_SECOND": str(RATE),
        "TAIQU_DB_POOL_SIZE": "4",
    })
    return env


# The form's questions, each with what the manager answers to it.
def _answers(content: str) -> list[tuple[str, str | None]]:
    return [(L("form.worklog.time"), "现在"), (L("form.worklog.content"), content),
            (L("form.worklog.problems"), "跳过"), (L("form.worklog.photos"), "跳过"),
            (L("form.worklog.location"), "跳过"),
            (L("form.summary_title", title="工作日志"), "保存"),
            ("✅ 已保存工作日志 #", None)]


@dataclass
class Manager:
    """A manager typing a work log into Telegram, answering whatever the bot asks last."""

    fake: FakeBotAPI
    chat_id: int
    area: str
    said: list[str] = field(default_factory=list)

    @property
    def replies(self) -> list[str]:
        return [body(m) for m in self.fake.sent(self.chat_id)]

    async def fill_a_work_log(self) -> None:
        answers = _answers(f"{self.area}2号杆拉线松动")
        # The first two back to back: the balancer gives them to different instances, and
        # the second must still be handled after the first.
        await self._say(f"记录巡视 {self.area}", "现在")
        for _ in range(12):
            last = self.replies[-1]
            answer = next((a for asks, a in answers if asks in last), "")
            if answer is None:
                return  # saved
            assert answer, f"chat {self.chat_id}: unexpected {last!r}"
            await self._say(answer)
        raise AssertionError(f"chat {self.chat_id} never saved: {self.replies}")

    async def _say(self, *texts: str) -> None:
        before = len(self.replies)
        for text in texts:
            self.fake.user_sends(self.chat_id, text)
            self.said.append(text)
        await self.fake.wait_for(self.chat_id, before + len(texts), timeout=40)
        await asyncio.sleep(0.15)  # an answer given twice would come now

    def answered_in_order_once(self) -> bool:
        """Each message answered once, by the question that follows it, in order."""
        expected = [asks for asks, _ in _answers("")]
        got = self.replies
        return len(got) == len(self.said) == len(expected) and all(
            e in g for e, g in zip(expected, got, strict=True))


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Services]:
    """The test's own connection to the instances' database, on the real clock."""
    s = await Services.open(settings)
    yield s
    await s.close()


async def _managers(store: Services, fake: FakeBotAPI) -> list[Manager]:
    """USERS managers with a Telegram identity; their morning digests already sent today
    (the digest is tested elsewhere: here it would fold the reminders into itself)."""
    out = []
    today = datetime.now(store.settings.tz).date()
    for n in range(USERS):
        chat_id, area = FIRST_CHAT + n, f"{n + 1}号台区"
        user = await make_user(store, f"经理{n + 1}", areas=(area,), channel="telegram",
                               external_id=str(chat_id))
        fake.bot().chat(chat_id).first_name = user.name
        for day in (today, today + timedelta(days=1)):
            await store.db.execute("INSERT INTO job_runs(job, period, user_id, done_at) "
                                   "VALUES ('digest', ?, ?, ?)",
                                   (day.isoformat(), user.id, iso(datetime.now(UTC))))
        out.append(Manager(fake, chat_id, area))
    return out


async def _in_flight_at(store: Services, instance: Instance) -> set[int]:
    """The people whose update the killed instance was handling: the one that may be
    answered twice (its claim names the process)."""
    assert instance.process is not None
    rows = await store.db.fetchall(
        "SELECT DISTINCT person FROM telegram_inbox WHERE state = 'new' AND claimed_by LIKE ?",
        (f"%:{instance.process.pid}:%",))
    return {int(r["person"]) for r in rows}


async def _scan_holder(store: Services, instances: list[Instance]) -> Instance:
    """The live instance running the reminder scan (its lease names the process)."""
    alive = {i.process.pid: i for i in instances
             if i.process is not None and i.killed_at is None}
    holder: list[Instance] = []

    async def known() -> bool:
        row = await store.db.fetchone("SELECT holder FROM instance_leases WHERE name = ?",
                                      (SCAN,))
        holder[:] = [alive[pid]] if row and (pid := int(row["holder"].split(":")[1])) in alive \
            else []
        return bool(holder)

    await _until(known, 30, "an instance holding the scan's lease")
    return holder[0]


async def _until(check: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timeout: {what}"
        await asyncio.sleep(0.05)


def _reminders_sent(fake: FakeBotAPI, managers: list[Manager]) -> dict[int, list[str]]:
    """Each reminder's number: the texts that carried it."""
    got: dict[int, list[str]] = {}
    for m in managers:
        for text in m.replies:
            if found := REMINDER.search(text):
                got.setdefault(int(found.group(1)), []).append(text)
    return got


async def _plan_reminders(store: Services, managers: list[Manager]) -> None:
    """REMINDERS_EACH urgent reminders for each manager, all due at the same moment."""
    now = datetime.now(UTC)
    due = now + timedelta(seconds=2)
    for n, m in enumerate(managers):
        user = await store.people.by_identity("telegram", str(m.chat_id))
        assert user is not None
        for k in range(REMINDERS_EACH):
            number = n * REMINDERS_EACH + k
            await notes.add(store.db, user, f"R{number:03d}号表箱核对", due, True, now,
                            f"three-instances-{number}")


async def test_three_instances_survive_a_kill_in_the_forms_and_in_the_fan_out(
        store: Services, settings: Settings, tmp_path: Path) -> None:
    instances = [Instance(n) for n in (1, 2, 3)]
    balancer = FailoverRoundRobin([i.webhook_url for i in instances])
    async with FakeBotAPI() as fake, aiohttp.ClientSession() as http:
        await balancer.start()
        try:
            for i in instances:
                await i.start(instance_env(settings, fake, balancer.url, i, tmp_path),
                              tmp_path / f"instance-{i.number}.log")
            bot = fake.bot()
            bot.webhook_url, bot.webhook_secret = balancer.url, SECRET  # set-webhook
            managers = await _managers(store, fake)

            async def all_healthy() -> bool:
                return all([await i.healthy(http) for i in instances])

            await _until(all_healthy, 60, "three instances up")

            # --- the forms, one instance killed while they are being filled -----------------
            scanning = await _scan_holder(store, instances)
            victim = next(i for i in instances if i is not scanning)
            forms = asyncio.gather(*(m.fill_a_work_log() for m in managers))

            async def a_third_answered() -> bool:
                return sum(len(m.replies) for m in managers) >= USERS * 7 // 3

            await _until(a_third_answered, 60, "a third of the form steps answered")
            await victim.kill()
            in_flight = await _in_flight_at(store, victim)
            await asyncio.wait_for(forms, 90)
            assert not await victim.healthy(http)  # what a balancer checking /healthz sees

            rows = await store.db.fetchall(
                "SELECT w.id, i.external_id FROM worklogs w "
                "JOIN identities i ON i.user_id = w.user_id AND i.channel = 'telegram'")
            saved = Counter(int(r["external_id"]) for r in rows)
            assert saved == Counter(m.chat_id for m in managers)  # each confirmed once
            for m in managers:
                [entry] = [r["id"] for r in rows if int(r["external_id"]) == m.chat_id]
                assert any(f"✅ 已保存工作日志 #{entry}\n" in r for r in m.replies)
            disordered = [(m.said, m.replies) for m in managers
                          if m.chat_id not in in_flight and not m.answered_in_order_once()]
            assert disordered == []
            # The update an instance was handling when it died is handled again by another
            # (documented): one message of such a person may be answered twice, no more.
            assert all(len(m.said) <= len(m.replies) <= len(m.said) + 1
                       for m in managers if m.chat_id in in_flight)

            # --- 300 reminders due at once, the scan's holder killed mid fan-out -------------
            scanning = await _scan_holder(store, instances)
            await _plan_reminders(store, managers)
            total = USERS * REMINDERS_EACH

            async def a_third_sent() -> bool:
                return len(_reminders_sent(fake, managers)) >= total // 3

            await _until(a_third_sent, 60, "a third of the reminders sent")
            await scanning.kill()

            async def all_settled() -> bool:
                row = await store.db.fetchone(
                    "SELECT count(*) FROM reminders WHERE subject = ? AND state != 'sent'",
                    (notes.SUBJECT,))
                return row is not None and row[0] == 0

            await _until(all_settled, 60, "every reminder sent after the takeover")
            await asyncio.sleep(0.3)
            got = _reminders_sent(fake, managers)
            assert sorted(got) == list(range(total))  # none lost
            twice = {n: texts for n, texts in got.items() if len(texts) > 1}
            # Only those in flight at the kill (one per person at most), the repeat marked.
            assert all(len(texts) == 2 and texts[1].startswith(REPEAT)
                       and not texts[0].startswith(REPEAT) for texts in twice.values()), twice
            assert len({n // REMINDERS_EACH for n in twice}) == len(twice)
        finally:
            for i in instances:
                await i.stop()
            await balancer.stop()

        # --- never more than the token's rate, however many instances are alive ----------
        # The send budget is shared through the database (storage/send_budgets.py): RATE is
        # the bot token's, for all the instances together.
        times = fake.chat_call_times
        first, second = victim.killed_at, scanning.killed_at
        assert first is not None and second is not None
        for alive, part in ((3, [t for t in times if t < first]),
                            (2, [t for t in times if first <= t < second]),
                            (1, [t for t in times if t >= second])):
            most = max_sends_in_window(part, 1.0)
            assert most <= RATE * (1 + TIMING_SLACK), (alive, most)
