"""Issue #8, item 8: a masked file never identifies a household in a sensitive category
(medical equipment, disability, low income): no full 户号, phone, street address, sensitive
category or emergency contact name, in any of the files, as bot.privacy.MASKS defines;
`customers export --full` (admins) still has everything."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.customers_io import COLUMNS, export_customers
from bot.services import Services
from tests.conftest import Chat
from tests.test_reports import TEAM_A, L, World, add_log, insert, make_people, seed

# The seeded team's customers: 5500010002 陈桂兰 (medical), 5500010003 周建国 (disabled).
SENSITIVE = {"5500010002": "陈桂兰", "5500010003": "周建国"}
CATEGORY_LABELS = ("医疗设备/生命支持用电", "残疾人")


def cells(data: bytes) -> list[str]:
    wb = load_workbook(io.BytesIO(data))
    return [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if c.value is not None]


def leaks(texts: list[str], secrets: list[str]) -> list[str]:
    return [s for s in secrets if any(s in t for t in texts)]


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    w = await seed(services, clock)
    await services.db.execute(
        "UPDATE customers SET address = '东门村3组12号', emergency_name = '陈小红', "
        "emergency_phone = '13900005678' WHERE account_no = '5500010002'")
    medical = await services.db.fetchone(
        "SELECT id FROM customers WHERE account_no = '5500010002'")
    assert medical is not None
    cid = medical["id"]
    # A visit, a complaint and arrears about the medical household in the reported week.
    await add_log(services, w, "张三", L(2026, 12, 3, 9, 0), ("visit",), "1号台区",
                  "走访，检查制氧机供电", customer=cid)
    await insert(services, "complaints", team_id=w.teams[TEAM_A], user_id=w.users["张三"],
                 kind="complaint", account_no="5500010002", customer_id=cid,
                 customer_name="陈桂兰", accepted_at=L(2026, 12, 2, 10, 0), content="电压低",
                 ruleset="sgcc-2011", status="open", created_at=L(2026, 12, 2, 10, 0))
    await insert(services, "arrears", team_id=w.teams[TEAM_A], user_id=w.users["张三"],
                 account_no="5500010002", customer_id=cid, customer_name="陈桂兰",
                 amount_cents=10000, since="2026-10-01", ruleset="sgcc-2011",
                 created_at=L(2026, 12, 2, 9, 0), status="collecting")
    return w


def secrets() -> list[str]:
    return [*SENSITIVE, *SENSITIVE.values(), "东门村3组", "13900005678", "陈小红",
            *CATEGORY_LABELS]


async def test_customer_export_masked_and_full(seeded: World, services: Services,
                                               tmp_path: Path) -> None:
    masked = tmp_path / "masked.xlsx"
    await export_customers(services, TEAM_A, masked)
    texts = cells(masked.read_bytes())
    assert leaks(texts, [*secrets(), "13800001234"]) == []
    assert "5500****02" in texts and "陈**" in texts and "东门村***" in texts
    assert "特殊客户（敏感类别不显示）" in texts and "陈**" in texts
    full = tmp_path / "full.xlsx"
    await export_customers(services, TEAM_A, full, full=True)
    assert leaks(cells(full.read_bytes()), secrets()) == secrets()  # all there, for admins


async def test_weekly_report_masked(seeded: World, assistant: Assistant) -> None:
    out = await Chat(assistant, "test", "王班长").say("/report 上周")
    texts = cells(out.replies[0].attachments[0].data)
    assert leaks(texts, [*SENSITIVE, *SENSITIVE.values(), *CATEGORY_LABELS]) == []
    assert texts.count("5500****02") == 3  # the visit, its log entry and the arrears
    assert "独居/空巢/孤寡老人" in texts  # not a sensitive category: still shown
    assert "5500010001" in texts  # nor is that customer's 户号 masked


async def test_paper_log_masked(seeded: World, assistant: Assistant) -> None:
    out = await Chat(assistant, "test", "王班长").say("/export 日志 上周")
    texts = cells(out.replies[0].attachments[0].data)
    assert leaks(texts, [*SENSITIVE, *SENSITIVE.values()]) == []
    assert "5500****02 陈**" in texts


def test_the_table_names_real_columns() -> None:
    from bot.privacy import MASKS, mask

    assert set(MASKS["customers"]) <= {c.key for c in COLUMNS}
    assert mask("customers", "phone", "13812345678", sensitive=False) == "138****5678"
    assert mask("customers", "categories", ["elderly", "medical"], sensitive=True) == [
        "elderly", "hidden"]
    assert mask("report.logs", "account", "5500012345", sensitive=False) == "5500012345"
