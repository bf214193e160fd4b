"""What the delivery promise survives: a second instance on the same database, kill -9, a
graceful SIGTERM with pushes in flight, and answers lost after Telegram accepted a message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import bot.services
from bot.channels.telegram import TelegramChannel
from bot.cli import _run
from bot.clock import FakeClock
from bot.config import ROOT, Settings
from bot.lease import DatabaseLease, LeaseHeld
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import at, telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.test_reminders_telegram import quick_complaint
from tests.test_terminal_chat import chat
from tests.tg_harness import L, body, register, start_channel


async def _wait(predicate: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _bot_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env.update(TAIQU_TELEGRAM_TOKEN=settings.telegram_token or "",
               TAIQU_TELEGRAM_BASE_URL=settings.telegram_base_url,
               TAIQU_TELEGRAM_BASE_FILE_URL=settings.telegram_base_file_url,
               TAIQU_DB_PATH=str(settings.db_path), PYTHONPATH=str(ROOT),
               NO_PROXY="127.0.0.1,localhost")
    return env


# --- one serving process per database ------------------------------------------------------
async def test_a_second_run_on_the_same_database_exits_and_kill_9_frees_it(
        settings: Settings, fake_api: FakeBotAPI, tmp_path: Path) -> None:
    env = _bot_env(telegram_settings(settings, fake_api))
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # deleteWebhook comes right before the first long poll (which is only recorded when
        # it returns, after its timeout).
        await _wait(lambda: fake_api.calls_to("deleteWebhook"), 30,
                    "the first instance to start polling")
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(second.communicate(), 30)
        except TimeoutError:
            second.kill()
            await second.wait()
            raise AssertionError("a second instance started on the same database") from None
        assert second.returncode != 0
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and out == b"", lines
        assert "另一个 taiqu-bot 正在使用这个数据库" in lines[0]
        assert "another taiqu-bot is already serving this database" in lines[0]
        assert f"pid {first.pid}" in lines[0]
        # kill -9: no clean-up ran, yet the kernel has dropped the lock at once.
        first.kill()
        await first.wait()
        with DatabaseLease(settings.db_path) as lease:
            assert lease.held
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


def test_a_live_holder_is_never_displaced(settings: Settings) -> None:
    with DatabaseLease(settings.db_path):
        with pytest.raises(LeaseHeld):
            DatabaseLease(settings.db_path).acquire()
        with pytest.raises(LeaseHeld):
            DatabaseLease(settings.db_path).acquire()
    with DatabaseLease(settings.db_path) as again:  # released: the next start gets it
        assert again.held


def test_a_chat_beside_a_running_bot_leaves_the_reminders_to_it(tmp_path: Path) -> None:
    """`taiqu-bot chat` on the database `run` is serving still works, but does not scan
    reminders (it would send them a second time, and from the terminal)."""
    db = tmp_path / "taiqu.db"
    with DatabaseLease(db):  # what a running `taiqu-bot run` holds
        p = chat(db, ["/quit"], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    assert "taiqu-bot run is serving this database; it sends the reminders" in p.stderr
    assert L("menu.hello", name="张三") in p.stdout
    p = chat(db, ["/quit"], "--user", "张三")  # alone again: no note
    assert p.returncode == 0 and "taiqu-bot run" not in p.stderr, p.stderr


# --- SIGTERM drains the pushes in flight ----------------------------------------------------
async def test_sigterm_finishes_the_pushes_in_flight_before_exit(
        services: Services, settings: Settings, fake_api: FakeBotAPI, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    chats = list(range(100, 106))
    await register_quietly(services, settings, fake_api, chats)
    for chat_id in chats:
        await quick_complaint(services, chat_id, f"客户{chat_id}")
    at(clock, 2026, 11, 27, 15, 1)
    fake_api.latency["sendMessage"] = 0.4  # a slow link: the pushes are in flight a while
    monkeypatch.setattr(bot.services, "SystemClock", lambda: clock)
    before = {c: len(fake_api.sent(c)) for c in chats}
    run = asyncio.create_task(_run(telegram_settings(settings, fake_api)))

    async def sending() -> int:
        row = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE state = 'sending'")
        return int(row[0]) if row else 0

    for _ in range(500):
        if await sending():
            break
        await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)  # what systemd sends
    assert await asyncio.wait_for(run, 30) == 0
    states = Counter(r[0] for r in await services.db.fetchall(
        "SELECT state FROM reminders WHERE kind = 'contact.half'"))
    delivered = sum(len(fake_api.sent(c)) - before[c] for c in chats)
    assert states.get("sending", 0) == 0, states  # nothing left to be repeated at restart
    assert states.get("sent", 0) == delivered >= 1, (states, delivered)


async def register_quietly(services: Services, settings: Settings, fake_api: FakeBotAPI,
                           chats: list[int]) -> None:
    """Telegram users registered through a channel that is stopped again (so the only
    poller later is the one under test)."""
    channel = await start_channel(services, settings, fake_api)
    try:
        for chat_id in chats:
            await register(fake_api, services, chat_id, f"经理{chat_id}")
    finally:
        await channel.stop()


# --- an answer lost after Telegram accepted the message -------------------------------------
async def test_a_lost_answer_is_not_repeated_at_once_and_the_repeat_says_so(
        services: Services, settings: Settings, channel: TelegramChannel,
        fake_api: FakeBotAPI, clock: FakeClock) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    await quick_complaint(services, 42, "李先生")
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    before = len(zhang.sent)
    fake_api.fail_next("sendMessage", "lost")  # carried out, then the connection drops
    at(clock, 2026, 11, 27, 15, 1)
    assert (await service.scan_once()).unknown == 1
    assert fake_api.answers_lost == 1
    reminders = [body(m) for m in zhang.sent[before:]]
    assert len(reminders) == 1, reminders  # not sent again in the same breath
    assert reminders[0].startswith("⏳ 投诉工单 #1")
    clock.advance(seconds=settings.unknown_outcome_retry_seconds)
    assert (await service.scan_once()).sent == 1
    reminders = [body(m) for m in zhang.sent[before:]]
    assert len(reminders) == 2  # at least once: the one duplicate, marked as such
    assert reminders[1].startswith(L("reminder.maybe_repeat") + "\n⏳ 投诉工单 #1")
    await service.scan_once()
    assert len(zhang.sent) - before == 2

