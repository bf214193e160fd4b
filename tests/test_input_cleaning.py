"""Issue #8, items 1 and 14: a control character (U+0007 BEL, U+001B ESC, NUL, C1) or a
bidi override (U+202A-U+202E, U+2066-U+2069) in typed text, a profile name, a command-line
name or an imported cell never reaches the database; file names made from user-supplied
text carry none of them, nor path separators."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.channels.terminal import TerminalChat
from bot.cli import main
from bot.customers_io import import_customers
from bot.events import Attachment, Incoming
from bot.features.reports.figures import Scope
from bot.features.reports.handlers import file_stem
from bot.models import Role
from bot.services import Services
from tests.conftest import Chat, make_user, use_store
from tests.test_reports import week

BAD = "\x07\x1b[31m\x00\u202e\u2066\x85\x7f"  # BEL, ESC, NUL, RLO, LRI, NEL (C1), DEL
CONTROLS = "\x07\x1b\x00\u202e\u2066\x85\x7f"


def bad_free(text: str) -> bool:
    return not any(ch in text for ch in CONTROLS)


def test_clean_text_keeps_line_breaks_only_where_wanted() -> None:
    from bot.textutil import clean_text, safe_filename

    assert clean_text(f"2号杆\r\n拉线\t松动{BAD}") == "2号杆\n拉线\t松动[31m"
    assert clean_text("张\t三\n", multiline=False) == "张 三 "
    assert clean_text("普通文字，不变") == "普通文字，不变"
    name = safe_filename("..\u202e/张三\x00 周报:gpj.xlsx")
    assert name == "张三_周报_gpj.xlsx"
    assert safe_filename("\u202e\x00") == "file"


async def test_typed_text_and_profile_names_arrive_clean(services: Services,
                                                         assistant: Assistant) -> None:
    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name=None,
        now=services.clock.now(), ttl=timedelta(days=7))
    # A Telegram profile name with NUL, a bidi override and a line break.
    await assistant.handle(Incoming("test", "u1", display_name="\u202e张\x00三\n",
                                    text=f"/start {invite.code}"))
    user = await services.people.by_identity("test", "u1")
    assert user is not None and user.name == "张三"
    chat = Chat(assistant, "test", "u1")
    await chat.say(f"巡视 3号台区 昨天下午3点 2号杆拉线松动{BAD}")
    await chat.say("拉线\x1b需紧固\r\n明天再去\x07")
    await chat.press("跳过")  # photos
    await chat.press("跳过")  # location
    await chat.press("保存")
    assert "已保存工作日志" in chat.text
    row = await services.db.fetchone("SELECT content, problems FROM worklogs")
    assert row is not None
    assert row["content"] == "2号杆拉线松动[31m"
    assert row["problems"] == "拉线需紧固\n明天再去"  # the line break stays


async def test_command_line_names_arrive_clean(services: Services,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, services.settings)
    rc = await asyncio.to_thread(main, ["invite", "--role", "manager", "--team",
                                        "城东\x07供电所", "--areas", "3号\u202e台区",
                                        "--name", "张\x00三"])
    assert rc == 0
    team = await services.db.fetchone("SELECT name FROM teams")
    area = await services.db.fetchone("SELECT name FROM areas")
    invite = await services.db.fetchone("SELECT name FROM invites")
    assert team is not None and area is not None and invite is not None
    assert (team["name"], area["name"], invite["name"]) == ("城东供电所", "3号台区", "张三")


async def test_imported_cells_arrive_clean(services: Services, tmp_path: Path) -> None:
    await make_user(services, "王班长", Role.LEAD, areas=("3号台区",))
    path = tmp_path / "in.csv"
    path.write_text(
        "户号,户名,台区,地址,联系电话,类别,具体情况\n"
        f"5500012345,李\x07四{BAD},3号台区,东门村\x1b3组,13800001234,独居老人,"
        f"\"第一行\r\n第二行\x00\"\n", encoding="utf-8")
    result = await import_customers(services, path, "城东供电所")
    assert (result.inserted, result.error_rows) == (1, 0), result.errors
    row = await services.db.fetchone("SELECT name, address, situation FROM customers")
    assert row is not None
    assert (row["name"], row["address"], row["situation"]) == (
        "李四[31m", "东门村3组", "第一行\n第二行")


def test_file_names_from_profile_names_are_clean() -> None:
    scope = Scope(1, "城东供电所", 2, "..\u202e/张\x00三\u2066\\x")
    stem = file_stem("report", scope, week(), "zh_CN")
    assert bad_free(stem) and "/" not in stem and "\\" not in stem
    assert not stem.startswith(".") and "张三" in stem


async def test_terminal_saves_attachments_inside_exports_only(
        services: Services, assistant: Assistant, tmp_path: Path) -> None:
    user = await make_user(services, "张三")
    chat = TerminalChat(assistant, user, io.StringIO())
    path = chat.save_attachment(Attachment("../../\u202e张三\x00.xlsx", b"x"))
    assert path.parent == services.settings.db_path.parent / "exports"
    assert path.name == "张三.xlsx"


