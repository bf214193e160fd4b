"""Issue #8, item 1: every file writer copes with control characters stored before input
was cleaned (or written by another tool): the weekly report, the printable log, the
customer export and the chart; a name that looks like TeX is drawn as text."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.cli import main
from bot.clock import FakeClock
from bot.customers_io import export_customers
from bot.services import Services
from tests.conftest import Chat, use_store
from tests.test_reports import TEAM_A, L, World, add_log, make_people, seed

BAD = "\x07\x1b[31m\x00\u202e\u2066\x85\x7f"  # BEL, ESC, NUL, RLO, LRI, NEL (C1), DEL
CONTROLS = "\x07\x1b\x00\u202e\u2066\x85\x7f"


def bad_free(text: str) -> bool:
    return not any(ch in text for ch in CONTROLS)


def all_text(data: bytes) -> list[str]:
    wb = load_workbook(io.BytesIO(data))
    return [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if c.value is not None]


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    return await seed(services, clock)


async def stored_with_controls(services: Services, w: World) -> None:
    """Data written before input was cleaned (or by another tool): every text field. (NUL
    only on SQLite: PostgreSQL's text cannot hold it, so no stored data has it there.)"""
    bad = BAD if services.db.dialect == "sqlite" else BAD.replace("\x00", "")
    await add_log(services, w, "张三", L(2026, 12, 3, 10, 0), ("patrol",), "1号台区",
                  f"巡视{bad}线路\n第二行",
                  problems=f"问题{bad}")
    await services.db.execute("UPDATE users SET name = ? WHERE name = '李四'",
                              (f"李\u202e四{bad}",))
    await services.db.execute("UPDATE customers SET name = ?, address = ?, situation = ? "
                              "WHERE account_no = '5500010001'",
                              (f"刘{bad}德福", f"东门村{bad}", f"情况{bad}"))
    await services.db.execute("UPDATE areas SET name = ? WHERE name = '1号台区'",
                              ("1号\x07台区",))


async def test_reports_and_exports_survive_stored_control_characters(
        seeded: World, services: Services, assistant: Assistant, tmp_path: Path) -> None:
    await stored_with_controls(services, seeded)
    lead = Chat(assistant, "test", "王班长")
    out = await lead.say("/report 上周")
    files = out.replies[0].attachments
    assert [a.kind for a in files] == ["document", "photo"], lead.text
    texts = all_text(files[0].data)
    assert "巡视线路\n第二行" not in texts and "巡视[31m线路\n第二行" in texts
    assert all(bad_free(v) for v in texts)
    out = await lead.say("/export 日志 上周")
    (paper,) = out.replies[0].attachments
    assert all(bad_free(v) for v in all_text(paper.data))
    assert all(bad_free(a.filename) for a in (*files, paper))
    # The admin's customer export too, masked and in full.
    for full in (False, True):
        target = tmp_path / f"c{full}.xlsx"
        await export_customers(services, TEAM_A, target, full=full)
        assert all(bad_free(v) for v in all_text(target.read_bytes()))


async def test_cli_customer_export_with_a_control_character(
        seeded: World, services: Services, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await stored_with_controls(services, seeded)
    use_store(monkeypatch, services.settings)
    rc = await asyncio.to_thread(main, ["customers", "export", "--team", TEAM_A,
                                        str(tmp_path / "out.xlsx")])
    assert rc == 0


async def test_a_name_that_looks_like_tex_does_not_break_the_chart(
        seeded: World, services: Services, assistant: Assistant) -> None:
    await services.db.execute("UPDATE users SET name = ? WHERE name = '张三'", (r"$\foo$",))
    out = await Chat(assistant, "test", "王班长").say("/report 上周")
    assert [a.kind for a in out.replies[0].attachments] == ["document", "photo"]




NONCHARS = "\ufffe\uffff"  # not controls, but XML 1.0 cannot hold them either


async def test_characters_xml_cannot_hold_do_not_break_the_teams_files(
        seeded: World, services: Services, assistant: Assistant, tmp_path: Path) -> None:
    """U+FFFE / U+FFFF typed into one log (or stored by another tool) were written into
    the XLSX as they were: openpyxl wrote them, and every reader (Excel, WPS, openpyxl)
    then refused the whole team's weekly report and printable log."""
    zhang = Chat(assistant, "test", "张三")
    await zhang.say(f"巡视 1号台区 昨天下午3点 更换表箱{NONCHARS}")
    for _ in range(3):
        await zhang.say("跳过")
    await zhang.say("保存")
    row = await services.db.fetchone("SELECT content FROM worklogs ORDER BY id DESC")
    assert row is not None and row["content"] == "更换表箱"  # cleaned at input
    await add_log(services, seeded, "张三", L(2026, 12, 3, 10, 0), ("patrol",), "1号台区",
                  f"巡视{NONCHARS}线路")  # stored before input was cleaned
    await services.db.execute("UPDATE customers SET name = ? WHERE account_no = '5500010001'",
                              (f"刘{NONCHARS}德福",))
    lead = Chat(assistant, "test", "王班长")
    for command in ("/report 上周", "/export 日志 上周"):
        out = await lead.say(command)
        [xlsx] = [a for a in out.replies[0].attachments if a.filename.endswith(".xlsx")]
        assert "巡视线路" in all_text(xlsx.data)  # the file opens, the text is there
    target = tmp_path / "c.xlsx"
    await export_customers(services, TEAM_A, target, full=True)
    assert "刘德福" in all_text(target.read_bytes())
