"""Files sent in chat (issue #14, part 0): a document reaches the first feature reader that
recognises it, with its bytes, on Telegram (the real PTB channel on the fake Bot API), WeCom
(the real channel on the fake WeCom) and the terminal; a file no reader takes, or one over
TAIQU_UPLOAD_MAX_MB, gets a polite answer and an open form is asked again."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.channels.terminal import TerminalChat
from bot.events import Outcome
from bot.features import build_router
from bot.models import Role
from bot.router import Router
from bot.services import Ctx, Services
from tests.conftest import Chat, make_user
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.tg_harness import L, body, has_keyboard, register, telegram_settings
from tests.wecom_harness import WcUser, start_wecom, texts

pytestmark = pytest.mark.timeout(60)

PROBE_LINE = "探针清单（CSV/XLSX）"  # not a locale key: t() gives it back as it is
MB = 1024 * 1024


@dataclass
class Probe:
    """A test feature reading CSV/XLSX files whose content starts with 'probe'."""

    got: list[tuple[str, str, bytes]] = field(default_factory=list)  # (who, name, bytes)
    router: Router = field(default_factory=lambda: Router("probe"))

    def __post_init__(self) -> None:
        async def sniff(filename: str, data: bytes) -> bool:
            return data.startswith(b"probe")

        @self.router.file_reader(kinds=("csv", "xlsx"), sniff=sniff, describe=PROBE_LINE)
        async def handle(ctx: Ctx, filename: str, data: bytes) -> Outcome:
            self.got.append((ctx.user.name, filename, data))
            return Outcome().add(f"收到 {filename}，{len(data)} 字节")

    def root(self) -> Router:
        """The application's features with the probe reader first."""
        return Router().include_router(self.router).include_router(build_router())


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def core(services: Services, probe: Probe) -> Assistant:
    return Assistant(services, probe.root())


async def test_a_file_reaches_the_reader_that_recognises_it(services: Services, core: Assistant,
                                                            probe: Probe) -> None:
    await make_user(services, "张三")
    chat = Chat(core, "test", "张三")
    out = await chat.file("欠费.csv", b"probe,1,2\n")
    assert chat.text == "收到 欠费.csv，10 字节"
    assert probe.got == [("张三", "欠费.csv", b"probe,1,2\n")]
    assert out.replies[0].buttons == []


async def test_a_file_no_reader_takes_gets_the_list_of_files_read(services: Services,
                                                                  core: Assistant,
                                                                  probe: Probe) -> None:
    await make_user(services, "张三")
    chat = Chat(core, "test", "张三")
    await chat.file("照片说明.pdf", b"%PDF-1.4")  # no reader reads .pdf: not even fetched
    first = chat.text
    assert first.startswith(L("files.not_read", name="照片说明.pdf"))
    assert L("files.readable_line", what=PROBE_LINE) in first
    await chat.file("别的表.csv", b"account,amount\n")  # a CSV, but not the probe's
    assert chat.text.startswith(L("files.not_read", name="别的表.csv"))
    assert has_menu(chat.last)
    assert probe.got == []


def has_menu(out: Outcome | None) -> bool:
    return out is not None and bool(out.replies[-1].buttons)


async def test_a_file_over_the_cap_is_refused_before_reading(services: Services,
                                                             core: Assistant,
                                                             probe: Probe) -> None:
    services.settings.upload_max_mb = 1
    await make_user(services, "张三")
    chat = Chat(core, "test", "张三")
    await chat.file("大表.csv", b"probe" + b"x" * (MB + MB // 2))
    assert chat.text == L("files.too_large", size="1.5", limit=1)
    assert probe.got == []


async def test_a_file_sent_inside_a_form_keeps_the_form(services: Services, core: Assistant,
                                                        probe: Probe) -> None:
    await make_user(services, "张三")
    chat = Chat(core, "test", "张三")
    await chat.say("登记欠费")
    question = chat.text
    await chat.file("a.csv", b"probe")
    assert chat.text.startswith("收到 a.csv，5 字节")
    assert chat.text.endswith(question.splitlines()[-1])
    await chat.file("b.pdf", b"%PDF")
    assert chat.text.startswith(L("files.not_read", name="b.pdf"))
    assert chat.text.endswith(question.splitlines()[-1])
    assert await services.conversations.get((await services.people.users())[0].id) is not None


# --- Telegram ------------------------------------------------------------------------------
@pytest.fixture
async def tg(services: Services, fake_api: FakeBotAPI,
             core: Assistant) -> AsyncIterator[FakeBotAPI]:
    from bot.channels.telegram import TelegramChannel

    ch = TelegramChannel(core, telegram_settings(services.settings, fake_api))
    await ch.start()
    yield fake_api
    await ch.stop()


async def test_telegram_document_reaches_the_reader_with_its_bytes(
        services: Services, tg: FakeBotAPI, probe: Probe) -> None:
    lead = await register(tg, services, 7, "王班长", role=Role.LEAD, areas=())
    content = b"probe\xef\xbc\x8c" + bytes(range(256)) * 40  # any bytes, kept exactly
    r = await lead.send_file(content, "欠费清单.xlsx")
    assert body(r[0]) == f"收到 欠费清单.xlsx，{len(content)} 字节"
    assert probe.got == [("王班长", "欠费清单.xlsx", content)]
    r = await lead.document()  # report.pdf: no reader reads a PDF
    assert body(r[0]).startswith(L("files.not_read", name="report.pdf"))
    assert has_keyboard(r[0])


async def test_telegram_file_over_the_cap_is_never_downloaded(
        services: Services, tg: FakeBotAPI, probe: Probe) -> None:
    services.settings.upload_max_mb = 1
    lead = await register(tg, services, 7, "王班长", role=Role.LEAD, areas=())
    r = await lead.send_file(b"probe" + b"0" * (2 * MB), "大清单.csv", "text/csv")
    assert body(r[0]) == L("files.too_large", size="2.0", limit=1)
    assert probe.got == []
    assert len(tg.calls_to("getFile")) == 1 and tg.downloads == []  # size known: not fetched


# --- WeCom ---------------------------------------------------------------------------------
@pytest.fixture
async def wecom_fake() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as f:
        yield f


async def test_wecom_file_reaches_the_reader_with_its_name_and_bytes(
        services: Services, core: Assistant, wecom_fake: FakeWeCom, probe: Probe) -> None:
    await make_user(services, "王班长", Role.LEAD, areas=(), channel="wecom",
                    external_id="wangbz")
    channel = await start_wecom(services, wecom_fake, core)
    try:
        lead = WcUser(wecom_fake, channel, "wangbz")
        content = b"probe," + "户号".encode("gbk") * 1000
        r = await lead.file(content, "欠费清单.csv")
        assert texts(r) == f"收到 欠费清单.csv，{len(content)} 字节"
        assert probe.got == [("王班长", "欠费清单.csv", content)]
        r = await lead.file(b"%PDF-1.4 ...", "说明.pdf")
        assert texts(r).startswith(L("files.not_read", name="说明.pdf"))
    finally:
        await channel.stop()


# --- the terminal ----------------------------------------------------------------------------
async def test_terminal_file_command_sends_a_local_file(services: Services, core: Assistant,
                                                        probe: Probe, tmp_path: Path) -> None:
    user = await make_user(services, "王班长", Role.LEAD, areas=(), channel="terminal",
                           external_id="1")
    out = io.StringIO()
    chat = TerminalChat(core, user, out)
    chat.user = user
    path = tmp_path / "欠费清单.csv"
    path.write_bytes(b"probe,local\n")
    # The terminal signs in by user id: link it as run_terminal does.
    async with services.db.tx() as tx:
        await services.people.link_identity(tx, "terminal", str(user.id), user.id,
                                            services.clock.now())
    await chat.send(f"/file {path}")
    assert "收到 欠费清单.csv，12 字节" in out.getvalue()
    assert probe.got == [("王班长", "欠费清单.csv", b"probe,local\n")]
    await chat.send(f"/file {tmp_path / 'missing.csv'}")
    assert L("files.fetch_failed") in out.getvalue()
    await chat.send("/file")
    assert L("terminal.file_usage") in out.getvalue()
