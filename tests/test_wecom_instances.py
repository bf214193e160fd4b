"""WeCom with several instances on one PostgreSQL (issue #11): two real WeCom channels (each its
callback endpoint process, inbox worker and sender, each its own connection to the one
database) behind a round-robin balancer of the fake WeCom's callbacks. One person's messages
are answered once each and in order whichever instance got them; a redelivery is handled
once; an instance that dies leaves its claims to run out, then the other takes over; the fake
WeCom gets every reply once."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from bot.assistant import Assistant
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.store import OutItem, WeComStore
from bot.cli import _run
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.events import Incoming, Outcome
from bot.inbox_drain import SWEEP_SECONDS
from bot.services import Services
from tests.conftest import make_user, use_store
from tests.fakewecom import FakeWeCom
from tests.test_wecom_cli import free_port, wecom_env
from tests.tg_harness import L
from tests.wecom_harness import shown, tick, wecom_settings

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("db_backend", ["postgresql"])]
ZHANG = "zhangsan"


@dataclass
class Instance:
    """One taiqu-bot process: its own connection to the store, core and WeCom channel."""

    services: Services
    assistant: Assistant
    channel: WeComChannel
    dead: bool = False

    @property
    def owner(self) -> str:
        return self.channel.store.owner


async def start_instance(settings: Settings, clock: FakeClock, fake: FakeWeCom) -> Instance:
    services = await Services.open(settings, clock)
    assistant = Assistant(services)
    channel = WeComChannel(assistant, wecom=wecom_settings(fake))
    await channel.start()
    return Instance(services, assistant, channel)


async def stop(instance: Instance) -> None:
    await instance.channel.stop()
    await instance.services.close()


async def kill(instance: Instance) -> None:
    """kill -9, as far as one test process can play it: every task of the instance stops
    where it is and its connection goes; nothing is released, its claims stay in the
    database until their lease runs out."""
    ch = instance.channel
    await ch.server.stop()
    tasks = [t for t in (ch._housekeeping, ch.sender._loop, ch.inbox.drain._sweeper) if t]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await ch.inbox.lanes.close()
    await ch.sender.lanes.close()
    await ch.client.aclose()
    await instance.services.close()
    instance.dead = True


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f
        assert f.dropped == [] and f.truncated == []


@pytest.fixture
async def pair(services: Services, settings: Settings, clock: FakeClock,
               fake: FakeWeCom) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances behind the balancer; 张三 is a registered WeCom member."""
    await make_user(services, "张三", channel="wecom", external_id=ZHANG)
    a = await start_instance(settings, clock, fake)
    b = await start_instance(settings, clock, fake)
    fake.behind_balancer(a.channel.url, b.channel.url)
    try:
        yield a, b
    finally:
        for instance in (b, a):
            if not instance.dead:
                await stop(instance)


async def settle(*instances: Instance) -> None:
    """Until no instance has anything left to handle or send (another's work included)."""
    for _ in range(3):
        for instance in instances:
            await instance.channel.idle()


async def delivered(fake: FakeWeCom, *texts: str) -> None:
    for text in texts:
        assert await fake.deliver(fake.text_xml(ZHANG, text)) == (200, "")


def hold_on(instance: Instance, text: str) -> asyncio.Event:
    """The instance's core gets stuck on `text` (set the event returned to let it go)."""
    release = asyncio.Event()
    handle: Callable[[Incoming], Awaitable[Outcome]] = instance.assistant.handle

    async def stuck(event: Incoming) -> Outcome:
        if event.text == text:
            await release.wait()
        return await handle(event)

    instance.assistant.handle = stuck  # type: ignore[method-assign]
    return release


# The answers, in order, to what 张三 sends below (/help is a text and its buttons).
HELP, TODO, SETTINGS, CANCEL = ("使用帮助", "请选择"), (L("todo.none"),), ("⚙️ 设置",), \
    (L("form.nothing_to_cancel"),)


def answers(fake: FakeWeCom) -> list[str]:
    return [shown(m) for m in fake.sent(ZHANG)]


def in_order(fake: FakeWeCom, *expected: str) -> None:
    got = answers(fake)
    assert len(got) == len(expected), got  # each answered once: none lost, none twice
    for text, want in zip(got, expected, strict=True):
        assert want in text, got


async def test_one_persons_messages_through_two_instances_are_answered_once_in_order(
        pair: tuple[Instance, Instance], fake: FakeWeCom) -> None:
    a, b = pair
    slow = hold_on(a, "/settings")  # A is slow on the first: B would answer the second first
    await delivered(fake, "/settings", "我的待办", "/settings", "/cancel", "/todo")
    assert fake.delivered_to == [0, 1, 0, 1, 0]  # alternately to A and B
    await asyncio.sleep(0.3)
    assert fake.sent(ZHANG) == []  # nobody overtook the first message
    slow.set()
    await settle(a, b)
    in_order(fake, *SETTINGS, *TODO, *SETTINGS, *CANCEL, *TODO)
    rows = await a.services.db.fetchall("SELECT state, claimed_by FROM wecom_inbox")
    assert {(r[0], r[1]) for r in rows} == {("done", None)}


async def test_a_redelivery_to_the_other_instance_is_handled_once(
        pair: tuple[Instance, Instance], fake: FakeWeCom) -> None:
    a, b = pair
    await delivered(fake, "我的待办")
    assert await fake.redeliver() == (200, "")  # WeCom's retry, to B this time
    assert await fake.redeliver() == (200, "")
    assert fake.delivered_to == [0, 1, 0]
    await settle(a, b)
    in_order(fake, *TODO)
    assert a.channel.server.duplicates + b.channel.server.duplicates == 2
    rows = await a.services.db.fetchall("SELECT state FROM wecom_inbox")
    assert [r[0] for r in rows] == ["done"]


async def test_an_instance_dying_mid_step_leaves_its_claim_to_the_other_after_the_lease(
        pair: tuple[Instance, Instance], fake: FakeWeCom, clock: FakeClock,
        settings: Settings) -> None:
    a, b = pair
    hold_on(a, "/settings")  # A dies while its core works on this
    await delivered(fake, "/settings")
    for _ in range(500):  # until A holds the message
        row = await b.services.db.fetchone("SELECT claimed_by FROM wecom_inbox")
        if row is not None and row[0] == a.owner:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("A never took the message")
    await delivered(fake, "/cancel")  # to B, which must not answer it before the first
    await kill(a)
    await settle(b)
    assert fake.sent(ZHANG) == []  # A's claim still runs: B waits
    tick(clock, fake, b.channel, settings.inbox_claim_seconds + 1)
    await settle(b)
    in_order(fake, *SETTINGS, *CANCEL)


async def test_a_callback_acknowledged_by_an_instance_that_then_died_is_answered_by_the_other(
        pair: tuple[Instance, Instance], fake: FakeWeCom) -> None:
    """A crash right after the 200: the callback is in the shared inbox, unclaimed, and the
    other instance's sweep (every few seconds, nobody pokes it) answers it."""
    a, _ = pair
    a.channel.server.on_new = lambda external_id: None  # A dies before handling it
    await a.channel.inbox.drain.stop_sweeping()
    await delivered(fake, "我的待办")
    assert fake.delivered_to == [0]
    await kill(a)
    await fake.wait_for(ZHANG, 1, timeout=SWEEP_SECONDS * 3)
    in_order(fake, *TODO)


async def test_an_instance_dying_mid_send_leaves_the_message_to_the_other_after_the_lease(
        services: Services, settings: Settings, clock: FakeClock, fake: FakeWeCom) -> None:
    await make_user(services, "张三", channel="wecom", external_id=ZHANG)
    settings = settings.model_copy(update={"inbox_claim_seconds": 30})  # TAIQU_INBOX_CLAIM_…
    a = await start_instance(settings, clock, fake)
    in_flight = asyncio.Event()

    async def never_answers(to: str, text: str) -> None:  # WeCom does not answer A
        in_flight.set()
        await asyncio.Event().wait()

    a.channel.client.send_text = never_answers  # type: ignore[method-assign]
    fake.behind_balancer(a.channel.url)
    await delivered(fake, "我的待办")
    await asyncio.wait_for(in_flight.wait(), 10)  # A claimed the answer and is sending it
    b = await start_instance(settings, clock, fake)  # B joins behind the balancer
    fake.behind_balancer(a.channel.url, b.channel.url)
    fake.delivered_to.clear()
    try:
        await delivered(fake, "/cancel", "/settings")  # A records one, B the other
        await asyncio.sleep(0.2)
        await settle(b)
        assert fake.sent(ZHANG) == []  # B sends nothing before A's claimed first answer
        await kill(a)
        tick(clock, fake, b.channel, 29)
        await settle(b)
        assert fake.sent(ZHANG) == []  # A's claim lasts 30 s
        tick(clock, fake, b.channel, 2)
        await settle(b)
        in_order(fake, *TODO, *CANCEL, *SETTINGS)
        rows = await b.services.db.fetchall("SELECT state, claimed_by FROM wecom_outbox")
        assert {(r[0], r[1]) for r in rows} == {("sent", None)}
    finally:
        await stop(b)
        if not a.dead:
            await stop(a)


async def test_an_outgoing_message_is_claimed_by_one_instance_only(
        services: Services, settings: Settings, clock: FakeClock) -> None:
    other = await Services.open(settings, clock)  # another instance's connection
    a = WeComStore(services.db, owner="host-a:1:aaa", claim_seconds=30)
    b = WeComStore(other.db, owner="host-b:2:bbb", claim_seconds=30)
    ids = await a.handled(None, ZHANG, [OutItem("text", {"content": "一"}),
                                        OutItem("text", {"content": "二"})], clock.now())
    at = clock.now().timestamp()
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():  # A in the middle of taking the first
            await conn.execute("SELECT id FROM wecom_outbox WHERE id = $1 FOR UPDATE", ids[0])
            async with asyncio.timeout(5):
                assert await b.claim(ids[0], ZHANG, at) is None  # skipped, not waited for
        assert await a.claim(ids[0], ZHANG, at) == 0  # taken
        assert await b.claim(ids[0], ZHANG, at) is None  # A has it
        await b.hold(ids[0], at, at + 60)  # B read it before A took it: no effect now
        assert await b.head(ZHANG, at) is None  # the second waits for the first: in order
        assert await b.open_recipients(at) == []
        later = at + 31  # A died mid-send: its claim has run out
        head = await b.head(ZHANG, later)
        assert head is not None and head.id == ids[0]
        assert await b.claim(ids[0], ZHANG, later) == 0
        assert await a.head(ZHANG, later + 1) is None  # B's now
        assert await b.sends_between(ZHANG, at, later + 1) == 2  # both attempts counted
    finally:
        await conn.close()
        await other.close()


async def test_run_serves_wecom_on_postgresql_and_healthz_reports_it(
        settings: Settings, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    """TAIQU_DATABASE_URL and TAIQU_WECOM_* together: served (refused before), and /healthz
    says whether WeCom's callback endpoint is up, as it does for Telegram."""
    port, health = free_port(), free_port()
    use_store(monkeypatch, settings)
    for k, v in wecom_env(fake, TAIQU_WECOM_LISTEN=f"127.0.0.1:{port}",
                          TAIQU_HEALTH_PORT=str(health),
                          TAIQU_HEALTH_HOST="127.0.0.1").items():
        monkeypatch.setenv(k, v)
    served = load_settings()
    assert served.database_url == settings.database_url
    services = await Services.open(served)
    try:
        await make_user(services, "张三", channel="wecom", external_id=ZHANG)
    finally:
        await services.close()
    stop_serving = asyncio.Event()
    task = asyncio.create_task(_run(served, stop_serving))
    url = f"http://127.0.0.1:{health}/healthz"
    try:
        async with aiohttp.ClientSession() as http:
            body = await _healthy(http, url, task)
            assert body["channels"] == {"wecom": "up"} and body["database"] == "ok"
            status, _ = await fake.post_callback(f"http://127.0.0.1:{port}/wecom/callback",
                                                 fake.text_xml(ZHANG, "我的待办"))
            assert status == 200
            await fake.wait_for(ZHANG)
            assert answers(fake) == [L("todo.none")]
            endpoint = next(p for p in multiprocessing.active_children()
                            if p.name == "wecom-callback")
            endpoint.kill()  # the callback endpoint process is gone
            endpoint.join(5)
            async with http.get(url) as answer:
                assert answer.status == 503
                assert (await answer.json())["channels"] == {"wecom": "down"}
    finally:
        stop_serving.set()
        assert await task == 0


async def _healthy(http: aiohttp.ClientSession, url: str,
                   task: asyncio.Task[int]) -> dict[str, object]:
    for _ in range(600):  # until the instance serves
        assert not task.done(), task
        try:
            async with http.get(url) as answer:
                if answer.status == 200:
                    return dict(await answer.json())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("/healthz never answered 200")
