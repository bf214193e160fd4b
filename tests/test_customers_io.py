"""特殊客户 import (CSV/GBK/XLSX) and export (masked / --full), in-process and via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.config import ROOT
from bot.customers_io import COLUMNS, CustomersIOError, export_customers, import_customers
from bot.i18n import t
from bot.models import Role, User
from bot.services import Services
from bot.storage.db import iso
from tests.conftest import T0, make_user

EXAMPLE_CSV = ROOT / "data" / "examples" / "special_customers.csv"
EXAMPLE_XLSX = ROOT / "data" / "examples" / "special_customers.xlsx"
TEAM = "城东供电所"
HEADER = ",".join(c.header for c in COLUMNS)

# Row numbers as Excel shows them (header = 1). Row 2 has a line break inside quotes: still
# one spreadsheet row. Rows 3 and 9 are blank. Extra column 备注 at the end, messy header.
MESSY = "\ufeff" + "\n".join([
    " 户号 ,户名,台区,地址,联系电话,类别,具体情况,紧急联系人,紧急联系人电话,走访周期（天）,"
    "停电优先告知,代缴,备注",
    '3201000101,王秀英,3号台区,东门村一组12号,13800001201,独居、留守,"82岁独居\n听力不好",'
    "王建国,139 0000 1201,30,是,否,随便写",
    ",,,,,,,,,,,,",
    "３２０１０００１０２,李德福,3号台区,东门村二组5号,１３８ ００００ １２０２,"
    "医疗设备/生命支持用电；残疾,制氧机,,,15,√,,",
    "3201000103,赵建华,5号台区,南湖小区8栋,abc,低保,,,,,否,否,",
    "3201000101,王秀英二,3号台区,东门村一组12号,13800001299,独居,,,,,,,",
    "3201000104,陈国强,9号台区,建设路120号,13800001318,欠费,,,,,,,",
    "3201000105,周海燕,5号台区,南湖小区5栋,13800001240,,,,,,,,",
    "",
    "3201000106,城东社区卫生服务中心,５号台区,建设路88号,0551 6200 3301,重要客户,二级负荷,"
    "刘主任,,每月,Y,1,",
]) + "\n"


async def lead(services: Services) -> User:
    return await make_user(services, "王班长", Role.LEAD, team=TEAM,
                           areas=("3号台区", "5号台区", "7号台区"))


async def team_id(services: Services) -> int:
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = ?", (TEAM,))
    assert row is not None
    return int(row["id"])


async def count(services: Services, sql: str, *params: object) -> int:
    row = await services.db.fetchone(sql, params)
    assert row is not None
    return int(row[0])


async def audit_rows(services: Services, action: str) -> list[dict[str, object]]:
    rows = await services.db.fetchall(
        "SELECT * FROM audit_log WHERE entity = 'customer' AND action = ? ORDER BY id", (action,))
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]


# --- import -------------------------------------------------------------------------------
async def test_messy_csv_imports_valid_rows_and_reports_the_others(
        services: Services, tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")

    result = await import_customers(services, path, TEAM)

    assert (result.inserted, result.updated, result.error_rows) == (3, 0, 4)
    errors = {e.row: str(e) for e in result.errors}
    assert sorted(errors) == [5, 6, 7, 8]
    assert errors[5].startswith("第 5 行: ") and "联系电话：电话「abc」不对" in errors[5]
    assert "户号 3201000101 与第 2 行重复" in errors[6]
    assert "台区「9号台区」在班组「城东供电所」里不存在" in errors[7]
    assert "--create-areas" in errors[7]
    assert "类别为空" in errors[8]

    tid = await team_id(services)
    first = await services.customers.by_account(tid, "3201000101")
    assert first is not None and first.name == "王秀英"  # the earlier row wins
    assert first.categories == ("elderly", "left_behind")
    assert first.situation == "82岁独居\n听力不好"
    assert first.emergency_phone == "13900001201"
    assert (first.visit_every_days, first.notify_first, first.proxy_pay) == (30, True, False)
    assert first.created_at == T0 and first.created_by is None

    folded = await services.customers.by_account(tid, "3201000102")  # full-width digits
    assert folded is not None and folded.phone == "13800001202"
    assert folded.categories == ("disabled", "medical")
    assert (folded.visit_every_days, folded.notify_first, folded.proxy_pay) == (15, True, False)

    centre = await services.customers.by_account(tid, "3201000106")
    assert centre is not None and centre.area_name == "5号台区"
    assert centre.phone == "0551-62003301"
    assert (centre.visit_every_days, centre.notify_first, centre.proxy_pay) == (30, True, True)

    assert await count(services, "SELECT count(*) FROM customers") == 3


async def test_reimport_updates_instead_of_duplicating(services: Services,
                                                       tmp_path: Path) -> None:
    await lead(services)
    first = await import_customers(services, EXAMPLE_CSV, TEAM)
    assert (first.inserted, first.updated, first.error_rows) == (8, 0, 0)
    tid = await team_id(services)
    before = await services.customers.by_account(tid, "3201000102")
    assert before is not None and before.categories == ("disabled", "medical")
    # A visit recorded in between must survive the re-import.
    await services.db.execute("UPDATE customers SET last_visit_at = ? WHERE id = ?",
                              (iso(T0), before.id))

    changed = tmp_path / "changed.csv"
    text = EXAMPLE_CSV.read_text(encoding="utf-8-sig").replace(
        "李德福,3号台区,东门村二组5号,13800001202,医疗设备/生命支持用电、残疾人",
        "李德福,5号台区,东门村二组6号,13800001202,其他")
    changed.write_text(text, encoding="utf-8")
    again = await import_customers(services, changed, TEAM)

    assert (again.inserted, again.updated, again.error_rows) == (0, 8, 0)
    assert await count(services, "SELECT count(*) FROM customers") == 8
    after = await services.customers.by_account(tid, "3201000102")
    assert after is not None and after.id == before.id
    assert after.categories == ("other",)  # replaced, not added to
    assert (after.area_name, after.address) == ("5号台区", "东门村二组6号")
    assert after.last_visit_at == T0 and after.created_at == before.created_at
    assert again.inactive == 0

    # A deactivated record is updated but not silently brought back.
    await services.db.execute("UPDATE customers SET active = 0 WHERE id = ?", (before.id,))
    third = await import_customers(services, changed, TEAM)
    assert (third.updated, third.inactive) == (8, 1)
    reread = await services.customers.by_account(tid, "3201000102")
    assert reread is not None and not reread.active
    assert await count(services, "SELECT count(*) FROM customer_categories "
                                 "WHERE customer_id = ?", before.id) == 1


@pytest.mark.parametrize("encoding, delimiter", [
    ("gbk", ","),  # Chinese Excel's "CSV (逗号分隔)"
    ("utf-8", ","),  # no BOM
    ("utf-16", "\t"),  # Excel's "Unicode 文本"
])
async def test_csv_encodings(services: Services, tmp_path: Path, encoding: str,
                             delimiter: str) -> None:
    await lead(services)
    path = tmp_path / "export.csv"
    text = EXAMPLE_CSV.read_text(encoding="utf-8-sig").replace(",", delimiter)
    path.write_bytes(text.encode(encoding))
    result = await import_customers(services, path, TEAM)
    assert (result.inserted, result.error_rows) == (8, 0)
    c = await services.customers.by_account(await team_id(services), "3201000101")
    assert c is not None and c.name == "王秀英" and c.address == "东门村一组12号"


async def test_example_xlsx_imports(services: Services) -> None:
    await lead(services)
    result = await import_customers(services, EXAMPLE_XLSX, TEAM)
    assert (result.inserted, result.updated, result.error_rows) == (8, 0, 0)


async def test_xlsx_numbers_title_row_and_excel_row_numbers(services: Services,
                                                            tmp_path: Path) -> None:
    """Excel hands over 户号 and phones as numbers; a title row sits above the header."""
    await lead(services)
    wb = Workbook()
    ws = wb.active
    ws.append(["城东供电所特殊客户清单"])
    ws.append(["户号", "户名", "台区", "地址", "联系电话", "类别", "走访周期"])
    ws.append([3201000201, "孙桂芝", "3号台区", "东门村一组30号", 13800001109, "五保、独居", 30])
    ws.append([])
    ws.append([3201000202, "钱多多", "3号台区", "东门村", 12345, "欠费", 30.0])
    ws.append(["3201000203", "周磊", "5号台区", "南湖小区", "13800001240", "残疾", "经常"])
    path = tmp_path / "numbers.xlsx"
    wb.save(path)

    result = await import_customers(services, path, TEAM)

    assert (result.inserted, result.error_rows) == (1, 2)
    assert [e.row for e in result.errors] == [5, 6]
    assert "联系电话：电话「12345」" in str(result.errors[0])
    assert "走访周期「经常」" in str(result.errors[1])
    c = await services.customers.by_account(await team_id(services), "3201000201")
    assert c is not None and c.phone == "13800001109" and c.visit_every_days == 30
    assert c.categories == ("elderly", "low_income")


async def test_create_areas(services: Services, tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "new_area.csv"
    path.write_text(HEADER + "\n3201000301,陈国强,9号台区,建设路120号,13800001318,欠费,,,,,,\n"
                    "3201000302,陈国富,９号台区,建设路122号,13800001319,欠费,,,,,,\n",
                    encoding="utf-8")
    refused = await import_customers(services, path, TEAM)
    assert (refused.inserted, refused.error_rows) == (0, 2)

    result = await import_customers(services, path, TEAM, create_areas=True)
    assert (result.inserted, result.error_rows) == (2, 0)
    assert result.created_areas == ["9号台区"]  # created once, matched again on row 3
    areas = [a.name for a in await services.people.team_areas(await team_id(services))]
    assert areas.count("9号台区") == 1


async def test_dry_run_writes_nothing(services: Services, tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "new_area.csv"
    path.write_text(HEADER + "\n3201000301,陈国强,9号台区,建设路120号,13800001318,欠费,,,,,,\n",
                    encoding="utf-8")
    result = await import_customers(services, path, TEAM, create_areas=True, dry_run=True)
    assert (result.inserted, result.created_areas, result.dry_run) == (1, ["9号台区"], True)
    assert await count(services, "SELECT count(*) FROM customers") == 0
    assert await count(services, "SELECT count(*) FROM areas WHERE name = '9号台区'") == 0
    assert await audit_rows(services, "import") == []


async def test_missing_required_columns_is_a_file_error(services: Services,
                                                        tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "short.csv"
    path.write_text("户号,户名,台区,地址,备注\n3201000101,王秀英,3号台区,东门村,x\n",
                    encoding="utf-8")
    with pytest.raises(CustomersIOError, match=r"缺少必需的列.*联系电话、类别"):
        await import_customers(services, path, TEAM)
    assert await count(services, "SELECT count(*) FROM customers") == 0


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    ("姓名,电话\n王秀英,13800001201\n".encode(), "户号"),
    (b"\xd0\xcf\x11\xe0" + b"\0" * 100, ".xls"),
])
async def test_other_file_errors(services: Services, tmp_path: Path, content: bytes,
                                 message: str) -> None:
    await lead(services)
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CustomersIOError, match=message):
        await import_customers(services, path, TEAM)


async def test_unknown_team_names_the_existing_ones(services: Services) -> None:
    await lead(services)
    with pytest.raises(CustomersIOError, match=r"城西供电所.*城东供电所"):
        await import_customers(services, EXAMPLE_CSV, "城西供电所")
    with pytest.raises(CustomersIOError, match="existing teams: 城东供电所"):
        await export_customers(services, "城西供电所", Path("x.xlsx"))


async def test_import_audit_row(services: Services, tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    await import_customers(services, path, TEAM)
    (row,) = await audit_rows(services, "import")
    assert (row["actor"], row["entity_id"], row["user_id"]) == ("cli", None, None)
    assert row["team_id"] == await team_id(services)
    assert row["detail"] == {"file": str(path), "inserted": 3, "updated": 0, "errors": 4}


# --- export -------------------------------------------------------------------------------
def _sheet(path: Path) -> tuple[str | None, list[tuple[object, ...]]]:
    wb = load_workbook(path)
    ws = wb.active
    assert ws is not None
    return ws.freeze_panes, [tuple(r) for r in ws.iter_rows(values_only=True)]


async def test_export_masked_by_default_and_full_on_request(services: Services,
                                                            tmp_path: Path) -> None:
    await lead(services)
    await import_customers(services, EXAMPLE_CSV, TEAM)
    tid = await team_id(services)
    visited = await services.customers.by_account(tid, "3201000101")
    assert visited is not None
    await services.db.execute("UPDATE customers SET last_visit_at = ? WHERE id = ?",
                              (iso(T0), visited.id))
    gone = await services.customers.by_account(tid, "3201000318")
    assert gone is not None
    await services.db.execute("UPDATE customers SET active = 0 WHERE id = ?", (gone.id,))

    masked_path = tmp_path / "masked.xlsx"
    result = await export_customers(services, TEAM, masked_path)
    assert (result.rows, result.full) == (7, False)
    panes, rows = _sheet(masked_path)
    assert panes == "A2"
    assert rows[0] == (*[c.header for c in COLUMNS], "最近走访", "登记日期")
    by_account = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert "3201000318" not in by_account  # inactive records are not exported

    elderly = by_account["3201000101"]  # not a sensitive category: name and details kept
    assert (elderly["户名"], elderly["联系电话"], elderly["紧急联系人电话"]) == (
        "王秀英", "138****1201", "139****1201")
    # Everyone's address down to the village, emergency contacts' names masked (MASKS).
    assert (elderly["地址"], elderly["紧急联系人"]) == ("东门村***", "王**")
    assert elderly["具体情况"] and elderly["类别"] == "独居/空巢/孤寡老人"
    assert isinstance(elderly["最近走访"], datetime)
    assert elderly["最近走访"] == T0.replace(tzinfo=None)  # local time (Asia/Shanghai)
    assert isinstance(elderly["登记日期"], datetime)
    assert elderly["登记日期"].date() == T0.date()
    assert (elderly["走访周期(天)"], elderly["停电优先告知"], elderly["代缴"]) == (30, "是", "否")

    medical = by_account["3201****02"]  # sensitive: 户号, name, category masked, 具体情况 blank
    assert (medical["户名"], medical["具体情况"]) == ("李**", None)
    assert medical["类别"] == "特殊客户（敏感类别不显示）"
    assert (medical["地址"], medical["紧急联系人"]) == ("东门村***", "李*")
    assert by_account["3201****09"]["类别"] == "独居/空巢/孤寡老人、特殊客户（敏感类别不显示）"
    assert medical["最近走访"] is None
    assert by_account["3201000215"]["联系电话"] == "0551-****1215"

    full_path = tmp_path / "full.xlsx"
    assert (await export_customers(services, TEAM, full_path, full=True)).rows == 7
    _, rows = _sheet(full_path)
    full = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}["3201000102"]
    assert (full["户名"], full["联系电话"], full["紧急联系人电话"]) == (
        "李德福", "13800001202", "13900001202")
    assert full["具体情况"] == "家中有制氧机，24小时使用；下肢残疾"

    audits = await audit_rows(services, "export")
    assert [a["detail"] for a in audits] == [
        {"file": str(masked_path), "rows": 7, "full": False},
        {"file": str(full_path), "rows": 7, "full": True}]
    assert all(a["actor"] == "cli" and a["entity_id"] is None for a in audits)

    # A full export is a valid import file: the same columns, labels and formats.
    again = await import_customers(services, full_path, TEAM)
    assert (again.inserted, again.updated, again.error_rows) == (0, 7, 0)


async def test_export_needs_xlsx_name(services: Services, tmp_path: Path) -> None:
    await lead(services)
    with pytest.raises(CustomersIOError, match=r"\.xlsx"):
        await export_customers(services, TEAM, tmp_path / "out.csv")


# --- CLI ----------------------------------------------------------------------------------
def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env["TAIQU_DB_PATH"] = str(tmp_path / "cli.db")
    return subprocess.run([sys.executable, "-m", "bot", "customers", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_cli_end_to_end(tmp_path: Path) -> None:
    from bot.config import load_settings

    setup = await Services.open(load_settings(db_path=tmp_path / "cli.db"))
    try:
        await lead(setup)
    finally:
        await setup.close()
    messy = tmp_path / "messy.csv"
    messy.write_text(MESSY, encoding="utf-8")

    ok = _cli(tmp_path, "import", str(EXAMPLE_CSV), "--team", TEAM)
    assert ok.returncode == 0, ok.stderr
    assert "导入完成 / imported: 新增 8，更新 0，错误 0 行" in ok.stdout

    partial = _cli(tmp_path, "import", str(messy), "--team", TEAM)
    assert partial.returncode == 1, partial.stderr
    assert "第 5 行: 联系电话：电话「abc」不对" in partial.stdout
    assert "新增 1，更新 2，错误 4 行" in partial.stdout  # 101 and 102 came with the example

    dry = _cli(tmp_path, "import", str(EXAMPLE_CSV), "--team", TEAM, "--dry-run")
    assert dry.returncode == 0 and "试运行" in dry.stdout

    missing = _cli(tmp_path, "import", str(tmp_path / "nope.csv"), "--team", TEAM)
    assert missing.returncode == 2 and "文件不存在" in missing.stderr
    team = _cli(tmp_path, "import", str(EXAMPLE_CSV), "--team", "城西供电所")
    assert team.returncode == 2 and "城东供电所" in team.stderr

    out = tmp_path / "out.xlsx"
    exported = _cli(tmp_path, "export", "--team", TEAM, str(out), "--full")
    assert exported.returncode == 0, exported.stderr
    assert "exported: 9 户" in exported.stdout and out.is_file()


async def test_the_import_and_the_chat_form_refuse_with_the_same_words(
        services: Services, tmp_path: Path) -> None:
    """One customer validation: a bad 户号, phone or visit frequency reads as in the chat."""
    await lead(services)
    path = tmp_path / "bad.csv"
    path.write_text("户号,户名,台区,地址,联系电话,类别,紧急联系人电话,走访周期(天)\n"
                    "12ab,李四,3号台区,城东村,13800001234,医疗,0551-1,每个世纪\n",
                    encoding="utf-8")
    result = await import_customers(services, path, TEAM)
    [error] = [str(e) for e in result.errors]
    s = services.settings
    assert t("zh_CN", "customer.account.invalid", text="12ab", min=s.account_no_min_digits,
             max=s.account_no_max_digits).rstrip("。") in error
    phone_words = t("zh_CN", "customer.phone.invalid", text="0551-1").rstrip("。")
    assert "紧急联系人电话：" + phone_words in error
    days_words = t("zh_CN", "customer.visit_days.invalid", text="每个世纪").rstrip("。")
    assert "走访周期：" + days_words in error
