"""`taiqu-bot run` serves every configured channel in one process (Telegram on the fake Bot
API, WeCom stubbed by a fake channel through the channel-factory registry), and the
Dispatcher pushes to the identity a person used last, shaped for that channel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from bot import cli, serve
from bot.assistant import Assistant
from bot.channel import ChannelCaps
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Button, Reply
from bot.notify import Dispatcher, RetryLater, Unreachable
from bot.serve import ChannelFactory, Runner
from bot.services import Services
from tests.conftest import FakeNotifier, make_user, telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.tg_harness import L, TgUser, body, register

NARROW = ChannelCaps(max_text=2048, text_unit="byte", max_buttons=6, max_button_data=1024,
                     can_edit=False, toasts=False, menus_per_language=False)


@dataclass
class FakeWeCom:
    """Stands in for the WeCom channel (built on its own branch) in the factory registry."""

    assistant: Assistant
    name: str = "wecom"
    caps: ChannelCaps = NARROW
    notifier: FakeNotifier = field(default_factory=lambda: FakeNotifier("wecom"))
    events: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


@pytest.fixture
def wecom_stub(monkeypatch: pytest.MonkeyPatch) -> list[FakeWeCom]:
    built: list[FakeWeCom] = []

    def build(assistant: Assistant, settings: Settings) -> FakeWeCom:
        built.append(FakeWeCom(assistant))
        return built[-1]

    factories = [f if f.name != "wecom" else ChannelFactory("wecom", f.configured, build)
                 for f in serve.CHANNEL_FACTORIES]
    monkeypatch.setattr(serve, "CHANNEL_FACTORIES", factories)
    return built


async def test_run_with_both_channels_serves_both_in_one_process(
        settings: Settings, fake_api: FakeBotAPI, wecom_stub: list[FakeWeCom]) -> None:
    both = telegram_settings(settings, fake_api).model_copy(update={"wecom_corp_id": "ww1"})
    stop = asyncio.Event()
    running = asyncio.create_task(cli._run(both, stop))
    for _ in range(200):  # until both are up
        if wecom_stub and wecom_stub[0].events and fake_api.bot().my_commands(None, ""):
            break
        await asyncio.sleep(0.02)
    (wecom,) = wecom_stub
    assert wecom.events == ["start"]
    assert set(wecom.assistant.caps) == {"telegram", "wecom"}  # one Assistant for both
    # Telegram answers meanwhile, from the same process and database.
    services = await Services.open(both)
    try:
        zhang = await register(fake_api, services, 42, "张三")
        assert "张三" in body(zhang.greeting[0])
        assert await services.people.by_identity("telegram", "42") is not None
    finally:
        await services.close()
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
    assert wecom.events == ["start", "stop"]


def test_run_with_wecom_configured_but_not_built_says_so(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAIQU_WECOM_CORP_ID", "ww1")
    monkeypatch.setattr(serve, "WECOM_MODULE", "bot.channels.wecom.not_there")
    assert cli.main(["run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "TAIQU_WECOM_CORP_ID" in line


async def test_runner_holds_every_channels_notifier_and_caps(
        services: Services, settings: Settings, fake_api: FakeBotAPI,
        wecom_stub: list[FakeWeCom]) -> None:
    both = telegram_settings(settings, fake_api).model_copy(update={"wecom_corp_id": "ww1"})
    services.settings = both
    runner = Runner(services, serve.configured(both))
    assert [c.name for c in runner.channels] == ["telegram", "wecom"]
    assert set(runner.dispatcher.notifiers) == {"telegram", "wecom"}
    assert runner.dispatcher.caps["wecom"] == NARROW
    assert runner.dispatcher.caps["telegram"].max_text == 4096


# --- the Dispatcher ------------------------------------------------------------------------
@pytest.fixture
async def two(services: Services) -> tuple[int, FakeNotifier, FakeNotifier, Dispatcher]:
    """张三 bound on telegram (as "t1"), a minute later on wecom (as "w1"): used last."""
    user = await make_user(services, "张三", channel="telegram", external_id="t1")
    services.clock.advance(minutes=1)  # type: ignore[attr-defined]
    async with services.db.tx() as tx:
        await services.people.link_identity(tx, "wecom", "w1", user.id, services.clock.now())
    tg, wc = FakeNotifier("telegram"), FakeNotifier("wecom")
    caps = {"wecom": NARROW}
    return user.id, tg, wc, Dispatcher(services, [tg, wc], caps)


async def test_push_goes_to_the_identity_used_last(
        services: Services, assistant: Assistant, clock: FakeClock,
        two: tuple[int, FakeNotifier, FakeNotifier, Dispatcher]) -> None:
    from bot.events import Incoming

    user_id, tg, wc, dispatcher = two
    clock.advance(minutes=1)
    await assistant.handle(Incoming("wecom", "w1", text="/help"))
    await dispatcher.push(user_id, Reply("一"))
    clock.advance(minutes=1)
    await assistant.handle(Incoming("telegram", "t1", text="/help"))
    await dispatcher.push(user_id, Reply("二"))
    clock.advance(seconds=5)  # switching back is written at once, not every 10 minutes
    await assistant.handle(Incoming("wecom", "w1", text="/help"))
    await dispatcher.push(user_id, Reply("三"))
    clock.advance(minutes=1)
    await assistant.handle(Incoming("telegram", "t1", text="/help"))
    await dispatcher.push(user_id, Reply("四"))
    assert wc.texts("w1") == ["一", "三"] and tg.texts("t1") == ["二", "四"]


async def test_unreachable_falls_back_to_the_other_identity(
        services: Services, two: tuple[int, FakeNotifier, FakeNotifier, Dispatcher]) -> None:
    user_id, tg, wc, dispatcher = two
    wc.fail["w1"] = [Unreachable("81013 outside the visible range")]
    await dispatcher.push(user_id, Reply("提醒"))
    assert tg.texts("t1") == ["提醒"] and wc.texts("w1") == []
    wc.fail["w1"] = [RetryLater(30, "45009")]  # busy is not unreachable: try later, same one
    with pytest.raises(RetryLater):
        await dispatcher.push(user_id, Reply("再提醒"))
    assert tg.texts("t1") == ["提醒"]
    wc.fail["w1"] = [Unreachable("gone")]
    tg.fail["t1"] = [Unreachable("blocked")]
    with pytest.raises(Unreachable, match="wecom: gone; telegram: blocked"):
        await dispatcher.push(user_id, Reply("没人收"))


async def test_pushes_are_shaped_for_the_channel(
        services: Services, assistant: Assistant,
        two: tuple[int, FakeNotifier, FakeNotifier, Dispatcher]) -> None:
    from bot.events import Incoming

    user_id, _, wc, dispatcher = two
    assistant.register_channel("wecom", NARROW)
    choices = [[Button(f"{i}号台区", f"-|cmd|x{i}")] for i in range(1, 9)]
    await dispatcher.push(user_id, Reply("超期提醒\n" + "明细" * 400, choices))
    parts = wc.texts("w1")
    assert len(parts) == 2 and all(len(p.encode()) <= 2048 for p in parts)
    assert "8. 8号台区" in parts[-1] and not wc.last("w1").buttons
    assert (await services.pending.get("wecom", "w1"))[6].data == "-|cmd|x7"
    # The typed 7 answers the push: the core presses -|cmd|x7 (an unknown command here).
    out = await assistant.handle(Incoming("wecom", "w1", text="7"))
    assert L("button.stale_long") in "\n".join(r.text for r in out.replies)


async def test_the_telegram_user_sees_no_difference(
        services: Services, settings: Settings, fake_api: FakeBotAPI) -> None:
    """Telegram registered through its channel: eight buttons stay eight buttons."""
    from bot.channels.telegram import TelegramChannel

    channel = TelegramChannel(Assistant(services), telegram_settings(settings, fake_api))
    await channel.start()
    try:
        zhang: TgUser = await register(fake_api, services, 42, "张三",
                                       areas=tuple(f"{i}号台区" for i in range(1, 9)))
        await zhang.say("/log")
        msgs = await zhang.say("巡视")
        assert "8号台区" in [b["text"] for m in msgs for row in
                             (m.get("reply_markup") or {}).get("inline_keyboard", [])
                             for b in row]
        assert L("button.choose_hint") not in "\n".join(body(m) for m in msgs)
    finally:
        await channel.stop()


def test_run_with_a_wrong_wecom_setting_stops_before_anything_opens(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        settings: Settings) -> None:
    monkeypatch.setenv("TAIQU_DB_PATH", str(settings.db_path))
    monkeypatch.setenv("TAIQU_WECOM_CORP_ID", "ww1")
    for key, value in (("AGENT_ID", "1000002"), ("SECRET", "s"), ("TOKEN", "tok"),
                       ("AES_KEY", "too-short")):
        monkeypatch.setenv(f"TAIQU_WECOM_{key}", value)
    monkeypatch.setattr(serve, "WECOM_MODULE", "bot.channels.wecom.config")  # "it exists"
    assert cli.main(["run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "TAIQU_WECOM_AES_KEY" in line
    assert not settings.db_path.exists()


def test_run_whose_wecom_port_is_taken_says_so_in_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        settings: Settings) -> None:
    """The ops engineer's likeliest first-day mistake: TAIQU_WECOM_LISTEN names a port
    another program (or the previous run, still stopping) holds. One line naming the
    setting, status 2, like any other wrong setting; not a traceback."""
    import socket

    from tests.fakewecom import DEFAULT_AES_KEY, DEFAULT_TOKEN

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("TAIQU_DB_PATH", str(settings.db_path))
        for key, value in (("CORP_ID", "ww1"), ("AGENT_ID", "1000002"), ("SECRET", "s"),
                           ("TOKEN", DEFAULT_TOKEN), ("AES_KEY", DEFAULT_AES_KEY),
                           ("LISTEN", f"127.0.0.1:{port}"),
                           ("API_BASE", "http://127.0.0.1:9")):
            monkeypatch.setenv(f"TAIQU_WECOM_{key}", value)
        assert cli.main(["run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "TAIQU_WECOM_LISTEN" in line and f"127.0.0.1:{port}" in line, line
