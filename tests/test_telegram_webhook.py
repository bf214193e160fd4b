"""Telegram by webhook (issue #11): the real PTB Application behind our endpoint, the fake Bot
API POSTing updates to it as Telegram does (secret token header, in order, retried until a
2xx), a real SQLite file. An update is recorded before the 200, so nothing is lost when the
process stops after answering, and a redelivered update is handled once."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_webhook import CLAIM_LEASE, TelegramInbox
from bot.cli import main as cli_main
from bot.clock import FakeClock
from bot.config import Settings
from bot.serve import configured
from bot.services import Services
from tests.conftest import DEFAULT_TOKEN, telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, register, texts

pytestmark = pytest.mark.timeout(60)
SECRET = "s3cret-token_for-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_settings(settings: Settings, fake: FakeBotAPI, port: int) -> Settings:
    return telegram_settings(settings, fake).model_copy(update={
        "telegram_webhook_url": f"http://127.0.0.1:{port}/tg/hook",
        "telegram_webhook_secret": SECRET,
        "telegram_webhook_listen": f"127.0.0.1:{port}"})


async def start(services: Services, settings: Settings) -> TelegramChannel:
    channel = TelegramChannel(Assistant(services), settings)
    await channel.start()
    return channel


@pytest.fixture
async def hooked(services: Services, settings: Settings,
                 fake_api: FakeBotAPI) -> AsyncIterator[tuple[TelegramChannel, Settings]]:
    """An instance serving the webhook, and Telegram told where it is (as set-webhook does)."""
    s = webhook_settings(settings, fake_api, free_port())
    channel = await start(services, s)
    fake_api.bot().webhook_url = s.telegram_webhook_url or ""
    fake_api.bot().webhook_secret = SECRET
    yield channel, s
    await channel.stop()


async def inbox(services: Services) -> list[tuple[int, str]]:
    rows = await services.db.fetchall(
        "SELECT update_id, state FROM telegram_inbox ORDER BY update_id")
    return [(r["update_id"], r["state"]) for r in rows]


async def test_a_user_chats_through_the_webhook(
        hooked: tuple[TelegramChannel, Settings], services: Services,
        fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    assert "张三" in texts(zhang.greeting)
    got = await zhang.say("巡视 3号台区 昨天下午3点 2号杆拉线松动")
    assert "发现了什么问题或隐患" in texts(got)
    bot = fake_api.bot()
    assert all(status == 200 for _, status in bot.webhook_posts)
    assert not any(c.method == "getUpdates" for c in fake_api.calls)  # no polling at all
    assert {state for _, state in await inbox(services)} == {"done"}
    # Handled updates keep only their id (for redeliveries), not what people typed.
    rows = await services.db.fetchall("SELECT payload FROM telegram_inbox")
    assert {r["payload"] for r in rows} == {""}


async def test_an_instance_serving_the_webhook_is_up_for_the_load_balancer(
        hooked: tuple[TelegramChannel, Settings]) -> None:
    """/healthz answers 200 only while every channel is up: by webhook there is no polling."""
    channel, _ = hooked
    assert channel.up
    assert channel.webhook is not None
    await channel.webhook.stop()
    assert not channel.up


async def test_a_request_without_the_secret_is_refused_and_not_recorded(
        hooked: tuple[TelegramChannel, Settings], services: Services) -> None:
    _, s = hooked
    update = {"update_id": 999, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "x"}, "text": "/start"}}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret-0123456789"}):
            async with http.post(s.telegram_webhook_url or "", json=update,
                                 headers=headers) as resp:
                assert resp.status == 403
    assert await inbox(services) == []


async def test_a_redelivered_update_is_handled_once(
        hooked: tuple[TelegramChannel, Settings], services: Services,
        fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    await zhang.say("我的待办")
    bot = fake_api.bot()
    before = len(zhang.sent)
    last = max(bot.delivered)
    assert await bot.redeliver(last) == 200  # Telegram's 200 got lost: it sends it again
    await asyncio.sleep(0.3)
    assert len(zhang.sent) == before  # answered once, not twice
    assert (last, "done") in await inbox(services)


async def test_updates_recorded_before_a_stop_are_handled_at_the_next_start(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    """The process answered 200 and stopped before handling: nothing is lost."""
    s = webhook_settings(settings, fake_api, free_port())
    first = await start(services, s)
    bot = fake_api.bot()
    bot.webhook_url, bot.webhook_secret = s.telegram_webhook_url or "", SECRET
    zhang = await register(fake_api, services, 42, "张三")

    async def not_now(raw: dict) -> None:  # dies before handling anything
        raise asyncio.CancelledError

    assert first.webhook is not None
    first.webhook.handle = not_now
    sent_before = len(zhang.sent)
    bot._queue_user_message(42, {"text": "我的待办"}, None, None, None)
    for _ in range(100):  # Telegram got its 200 ...
        if bot.delivered and max(bot.delivered) == bot.next_update_id - 1:
            break
        await asyncio.sleep(0.02)
    await first.stop()
    assert len(zhang.sent) == sent_before  # ... but nobody was answered
    assert [st for _, st in await inbox(services)][-1] == "new"
    second = await start(services, s)  # another instance, or the same one restarted
    try:
        for _ in range(200):
            if len(zhang.sent) > sent_before:
                break
            await asyncio.sleep(0.02)
        assert L("todo.none") in texts(zhang.sent[sent_before:])
    finally:
        await second.stop()


async def test_one_persons_updates_are_answered_in_order(
        hooked: tuple[TelegramChannel, Settings], services: Services,
        fake_api: FakeBotAPI) -> None:
    zhang = await register(fake_api, services, 42, "张三")
    bot = fake_api.bot()
    sent_before = len(zhang.sent)
    for text in ("/help", "我的待办", "/settings"):
        bot._queue_user_message(42, {"text": text}, None, None, None)
    for _ in range(300):
        if len(zhang.sent) >= sent_before + 3:
            break
        await asyncio.sleep(0.02)
    answers = [m.get("text", "") for m in zhang.sent[sent_before:]]
    assert "使用帮助" in answers[0] and L("todo.none") in answers[1]
    assert "免打扰" in answers[2]


async def test_set_webhook_tells_telegram_the_url_and_secret(
        fake_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_api
    monkeypatch.setenv("TAIQU_TELEGRAM_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("TAIQU_TELEGRAM_BASE_URL", fake.base_url)
    monkeypatch.setenv("TAIQU_TELEGRAM_WEBHOOK_URL", "https://bot.example.cn/tg/hook")
    monkeypatch.setenv("TAIQU_TELEGRAM_WEBHOOK_SECRET", SECRET)
    assert await asyncio.to_thread(cli_main, ["telegram", "set-webhook"]) == 0
    bot = fake.bot()
    assert bot.webhook_url == "https://bot.example.cn/tg/hook"
    assert bot.webhook_secret == SECRET
    assert bot.webhook_allowed is not None
    assert await asyncio.to_thread(cli_main, ["telegram", "delete-webhook"]) == 0
    assert bot.webhook_url == ""


def test_a_webhook_without_a_secret_does_not_start(settings: Settings) -> None:
    from bot.config import SettingsError

    s = settings.model_copy(update={"telegram_token": DEFAULT_TOKEN,
                                    "telegram_webhook_url": "https://bot.example.cn/tg"})
    with pytest.raises(SettingsError, match="TAIQU_TELEGRAM_WEBHOOK_SECRET"):
        configured(s)


class RoundRobin:
    """A load balancer in front of several instances: each POST goes to the next one."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.sent_to: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/tg/hook", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/tg/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        i = len(self.sent_to) % len(self.targets)
        self.sent_to.append(i)
        async with aiohttp.ClientSession() as http, http.post(
                self.targets[i], data=await request.read(), headers={
                    "X-Telegram-Bot-Api-Secret-Token":
                        request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""),
                    "Content-Type": "application/json"}) as resp:
            return web.Response(status=resp.status)


async def test_two_instances_answer_one_person_in_order_and_once(
        services: Services, settings: Settings, fake_api: FakeBotAPI,
        clock: FakeClock) -> None:
    """Updates of one person spread over two instances by a round-robin balancer: each is
    answered once, in the order sent, though the first instance is slow on the first one."""
    settings_a = webhook_settings(settings, fake_api, free_port())
    settings_b = webhook_settings(settings, fake_api, free_port())
    services_b = await Services.open(settings, clock)  # the same database, another process
    a = await start(services, settings_a)
    b = await start(services_b, settings_b)
    balancer = RoundRobin([settings_a.telegram_webhook_url or "",
                           settings_b.telegram_webhook_url or ""])
    await balancer.start()
    bot = fake_api.bot()
    bot.webhook_url, bot.webhook_secret = balancer.url, SECRET
    try:
        zhang = await register(fake_api, services, 42, "张三")
        assert a.webhook is not None
        handle_a = a.webhook.handle

        async def slow_first(raw: dict) -> None:
            if "/help" in str(raw):
                await asyncio.sleep(0.5)  # B would answer the next one first, unless held
            await handle_a(raw)

        a.webhook.handle = slow_first
        before = len(zhang.sent)
        for text in ("/help", "我的待办", "/settings", "/help"):
            bot._queue_user_message(42, {"text": text}, None, None, None)
        for _ in range(400):
            if len(zhang.sent) >= before + 4:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # nothing more arrives (no update answered twice)
        answers = [m.get("text", "") for m in zhang.sent[before:]]
        assert len(answers) == 4
        assert "使用帮助" in answers[0] and L("todo.none") in answers[1]
        assert "免打扰" in answers[2] and "使用帮助" in answers[3]
        assert set(balancer.sent_to) == {0, 1}  # both instances received some
    finally:
        await balancer.stop()
        await b.stop()
        await a.stop()
        await services_b.close()


async def test_a_dead_instances_claim_expires_and_another_takes_over(
        services: Services, clock: FakeClock) -> None:
    zhang_id = "42"
    dead = TelegramInbox(services.db, owner="dead-host:1:abc")
    update = {"update_id": 77, "message": {
        "message_id": 9, "date": 0, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "张三"}, "text": "/help"}}
    assert await dead.record(77, zhang_id, json.dumps(update), clock.now())
    assert await dead.next_in(zhang_id, clock.now()) is not None  # claimed, then killed -9
    live = TelegramInbox(services.db, owner="live-host:2:def")
    assert await live.waiting_people(clock.now()) == []  # held by the dead one's lease
    assert await live.next_in(zhang_id, clock.now()) is None
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    assert await live.waiting_people(clock.now()) == [zhang_id]
    row = await live.next_in(zhang_id, clock.now())
    assert row is not None and row.key == 77
    await live.done(row.id, clock.now())
    assert await live.next_in(zhang_id, clock.now()) is None
