"""bot/xlsx_rows.py, the streaming XLSX reader: checked row by row against openpyxl's
read-only reader on the same files (written by openpyxl, normal and write-only, by hand for
shared strings and odd structure, and by LibreOffice when it is installed), and the
customers import on top of it."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from bot.customers_io import CustomersIOError, import_customers
from bot.models import Role
from bot.services import Services
from bot.xlsx_rows import CellError, XlsxError, XlsxReader, iter_sheet_rows, sheet_names
from tests.conftest import make_user

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
STRICT_MAIN = "http://purl.oclc.org/ooxml/spreadsheetml/main"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"
TEAM = "城东供电所"


def ours(path: Path, index: int = 0, **kw: object) -> list[list[object]]:
    """Our rows with the blank ones filled in, as openpyxl yields them."""
    out: list[list[object]] = []
    for number, values in iter_sheet_rows(path, index, **kw):  # type: ignore[arg-type]
        out += [[] for _ in range(number - 1 - len(out))]
        out.append(values)
    return out


def theirs(path: Path, index: int = 0) -> list[list[object]]:
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[index]
        ws.reset_dimensions()  # type: ignore[union-attr]
        return [list(r) for r in ws.iter_rows(values_only=True)]  # type: ignore[union-attr]
    finally:
        wb.close()


def assert_same_as_openpyxl(path: Path) -> None:
    wb = load_workbook(path, read_only=True)
    names = wb.sheetnames
    wb.close()
    assert sheet_names(path) == names
    for i in range(len(names)):
        mine, reference = ours(path, i), theirs(path, i)
        assert len(mine) == len(reference), names[i]
        for number, (a, b) in enumerate(zip(mine, reference, strict=True), start=1):
            assert a == b, f"sheet {names[i]!r} row {number}: {a!r} != {b!r}"


# --- workbooks written by openpyxl -----------------------------------------------------------
FIRST = [
    ["城东供电所特殊客户清单"],  # a title row
    [],  # blank: not in the XML at all
    ["户号", "户名", "台区", "地址", "联系电话", "类别", "走访周期"],
    [3201000201, "孙桂芝", "3号台区", "东门村一组30号", 13800001109, "五保、独居", 30],
    ["3201000202", "钱多多", None, "东门村", "13800001110", "欠费", 30.5],  # a gap at C
    [3201000101000001, " 王 秀英 ", "5号台区", "中文\n换行", "0551-62003301", True, False],
    ['="0012345678"', "李四", "3号台区", "x", "#N/A", "独居", "=1+1"],  # error, formula
    [None, None, None, None, None, None, None, "备注在 H 列"],
    [-1.25, 1e20, 0, "0", 13800001234, 2.5e-7, "&<>\"'"],
]
SECOND = [["第二页"], [None, None, "户号", "户名"], [None, None, 3201000301, "陈国强"]]


def openpyxl_book(path: Path, *, write_only: bool) -> Path:
    wb = Workbook(write_only=write_only)
    if write_only:
        first, second = wb.create_sheet("客户"), wb.create_sheet("第二页")
    else:
        first = wb.active
        assert first is not None
        first.title = "客户"
        second = wb.create_sheet("第二页")
    for sheet, rows in ((first, FIRST), (second, SECOND)):
        for row in rows:
            sheet.append(row)
    if not write_only:
        first["B12"] = CellRichText(["李", TextBlock(InlineFont(b=True), "德福"), "!"])
        first["E14"].style = "Good"  # a styled cell with no value
        first["C15"] = "row 15, after two absent rows"
    wb.save(path)
    return path


@pytest.mark.parametrize("write_only", [False, True], ids=["normal", "write_only"])
def test_openpyxl_workbooks_read_as_openpyxl_reads_them(tmp_path: Path,
                                                       write_only: bool) -> None:
    path = openpyxl_book(tmp_path / "book.xlsx", write_only=write_only)
    assert_same_as_openpyxl(path)


def test_values_rows_and_numbers(tmp_path: Path) -> None:
    path = openpyxl_book(tmp_path / "book.xlsx", write_only=False)
    rows = dict(iter_sheet_rows(path))
    assert sorted(rows) == [1, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15]  # Excel's numbers, gaps kept
    assert rows[1] == ["城东供电所特殊客户清单"]
    account, phone, days = rows[4][0], rows[4][4], rows[4][6]
    assert (account, phone, days) == (3201000201, 13800001109, 30)
    assert all(type(v) is int for v in (account, phone, days))  # no 13800001109.0
    assert rows[5] == ["3201000202", "钱多多", None, "东门村", "13800001110", "欠费", 30.5]
    assert rows[6][0] == 3201000101000001 and type(rows[6][0]) is int  # exact
    assert rows[6][1] == " 王 秀英 " and rows[6][3] == "中文\n换行"  # text untouched
    assert rows[6][5:] == [True, False]
    error = rows[7][4]
    assert isinstance(error, CellError) and error == "#N/A"
    assert rows[7][6] is None  # a formula never calculated has no cached value
    assert rows[8] == [None] * 7 + ["备注在 H 列"]
    assert rows[9][:2] == [-1.25, 10**20] and type(rows[9][1]) is int
    assert rows[9][4:] == [13800001234, 2.5e-7, "&<>\"'"]
    assert rows[12] == [None, "李德福!"]  # rich text: the runs joined
    assert rows[14] == [None] * 5  # a styled empty cell still counts, as in openpyxl
    assert dict(iter_sheet_rows(path, errors="none"))[7][4] is None
    assert dict(iter_sheet_rows(path, 1)) == {1: ["第二页"], 2: [None, None, "户号", "户名"],
                                              3: [None, None, 3201000301, "陈国强"]}


def test_date_cells_stay_numbers(tmp_path: Path) -> None:
    """No styles are read, so a date-formatted cell gives Excel's serial number (no import
    column is a date); openpyxl would give a datetime."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([datetime(2026, 11, 27), datetime(2026, 11, 27, 12)])
    wb.save(tmp_path / "d.xlsx")
    assert dict(iter_sheet_rows(tmp_path / "d.xlsx")) == {1: [46353, 46353.5]}


# --- hand-written packages: shared strings, odd structure --------------------------------------
def content_types(parts: dict[str, str]) -> str:
    kinds = {"workbook": "sheet.main", "worksheet": "worksheet", "sharedStrings": "sharedStrings",
             "chartsheet": "chartsheet"}
    overrides = "".join(
        f'<Override PartName="/{name}" ContentType="application/vnd.openxmlformats-'
        f'officedocument.spreadsheetml.{kinds[kind]}+xml"/>' for name, kind in parts.items())
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f"{overrides}</Types>")


def package(path: Path, sheets: list[tuple[str, str]], sst: list[str] | None = None, *,
            main: str = MAIN, rel: str = DOC_REL, book: str = "xl/workbook.xml",
            active: int = 0, chartsheet_at: int | None = None,
            member_names: dict[str, str] | None = None) -> Path:
    """An XLSX from parts: `sheets` are (name, <sheetData> inner XML), `sst` <si> items."""
    folder = book.rpartition("/")[0]
    parts = {book: "workbook"}
    files: dict[str, str] = {}
    entries: list[str] = []
    rels: list[str] = []
    tabs: list[tuple[str, str, str]] = [(n, "worksheet", x) for n, x in sheets]
    if chartsheet_at is not None:
        tabs.insert(chartsheet_at, ("图表", "chartsheet", ""))
    for i, (name, kind, xml) in enumerate(tabs, start=1):
        part = f"{folder}/{kind}s/{kind[:5]}{i}.xml"
        parts[part] = kind
        if kind == "worksheet":
            files[part] = (f'<worksheet xmlns="{main}"><dimension ref="A1"/>'
                           f"<sheetData>{xml}</sheetData></worksheet>")
        else:
            files[part] = f'<chartsheet xmlns="{main}"><sheetViews/></chartsheet>'
        # Absolute targets for the odd ones, as some writers do.
        target = f"/{part}" if i % 2 == 0 else part.removeprefix(folder + "/")
        rels.append(f'<Relationship Id="rId{i}" Type="{rel}/{kind}" Target="{target}"/>')
        entries.append(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
    if sst is not None:
        parts[f"{folder}/sharedStrings.xml"] = "sharedStrings"
        files[f"{folder}/sharedStrings.xml"] = (
            f'<sst xmlns="{main}" uniqueCount="{len(sst)}">' + "".join(sst) + "</sst>")
        rels.append(f'<Relationship Id="rIdS" Type="{rel}/sharedStrings" '
                    'Target="sharedStrings.xml"/>')
    files[book] = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" '
                   f'xmlns:r="{rel}"><bookViews><workbookView activeTab="{active}"/>'
                   f'</bookViews><sheets>{"".join(entries)}</sheets></workbook>')
    files[f"{folder}/_rels/{book.rpartition('/')[2]}.rels"] = (
        f'<Relationships xmlns="{PKG_REL}">{"".join(rels)}</Relationships>')
    files["_rels/.rels"] = (f'<Relationships xmlns="{PKG_REL}"><Relationship Id="rId1" '
                            f'Type="{rel}/officeDocument" Target="{book}"/></Relationships>')
    files["[Content_Types].xml"] = content_types(parts)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr((member_names or {}).get(name, name), text)
    return path


SST = [
    "<si><t>户号</t></si>",
    '<si><t xml:space="preserve">  户名 </t></si>',
    "<si><r><t>联系</t></r><r><rPr><b/><sz val=\"11\"/></rPr><t>电话</t></r></si>",
    "<si><t>3号台区</t></si>",
    "<si><t/></si>",
    '<si><t>東京</t><rPh sb="0" eb="2"><t>トウキョウ</t></rPh><phoneticPr fontId="1"/></si>',
    "<si><t>a &amp; b &lt;c&gt;</t></si>",
]
SHEET = "".join([
    '<row r="1" spans="1:4"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
    '<c r="D1" t="s"><v>2</v></c></row>',
    '<row r="2"><c r="A2"><v>13800001234</v></c><c r="B2" s="1"><v>1.5</v></c>'
    '<c r="C2" t="b"><v>1</v></c><c r="D2" t="e"><v>#DIV/0!</v></c>'
    '<c r="E2" t="str"><f>A1&amp;B1</f><v>a&amp;b</v></c><c r="F2" s="3"/></row>',
    '<row r="5"><c r="B5" t="s"><v>3</v></c><c r="C5" t="inlineStr"><is>'
    '<t xml:space="preserve"> 内联 </t></is></c><c r="D5" t="inlineStr"><is><r><t>富</t></r>'
    "<r><rPr><b/></rPr><t>文本</t></r></is></c></row>",
    # No r on the row (so 6) nor on its cells (so A, B, C); a float that is a whole number.
    '<row><c t="s"><v>4</v></c><c><v>3.2010001010000001E+15</v></c><c t="n"><v>-0.5</v></c>'
    "</row>",
    '<row r="7"><c r="A7" t="s"><v>5</v></c><c r="B7" t="s"><v>6</v></c><c r="C7" t="b">'
    "<v>0</v></c></row>",
    '<row r="9" customHeight="1" ht="30"><c r="AA9"><v>7</v></c>'
    '<c r="AB9"><v>9007199254740993</v></c></row>',  # 2**53 + 1
])


def test_shared_strings_and_cell_types_as_openpyxl(tmp_path: Path) -> None:
    path = package(tmp_path / "sst.xlsx", [("数据", SHEET), ("空表", "")], SST)
    assert_same_as_openpyxl(path)
    rows = dict(iter_sheet_rows(path))
    assert rows[1] == ["户号", "  户名 ", None, "联系电话"]
    assert rows[2] == [13800001234, 1.5, True, "#DIV/0!", "a&b", None]
    assert rows[5] == [None, "3号台区", " 内联 ", "富文本"]
    assert rows[6] == ["", 3201000101000000, -0.5] and type(rows[6][1]) is int
    assert rows[7] == ["東京", "a & b <c>", False]  # phonetic runs are not the value
    assert rows[9] == [None] * 26 + [7, 9007199254740993]  # exact, as openpyxl
    assert list(iter_sheet_rows(path, 1)) == []
    with XlsxReader(path) as book:
        strings = book.shared_strings()
        assert len(strings) == len(SST) and strings[2] == "联系电话" and strings[4] == ""
        with pytest.raises(IndexError):
            strings[-1]


def test_escapes_and_iso_dates(tmp_path: Path) -> None:
    """_xHHHH_ escapes (Excel writes a carriage return as _x000D_, and a literal '_x' as
    _x005F_x) are decoded, where openpyxl leaves them. A t="d" cell is an ISO date."""
    sst = ["<si><t>第一行_x000D_\n第二行 _x005F_x000D_ _xD83D_</t></si>"]
    sheet = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="d"><v>2026-11-27T10:30:00'
             '</v></c><c r="C1" t="inlineStr"><is><t>a_x0009_b</t></is></c>'
             '<c r="D1" t="d"><v>not a date</v></c></row>')
    path = package(tmp_path / "esc.xlsx", [("s", sheet)], sst)
    assert list(iter_sheet_rows(path)) == [
        (1, ["第一行\r\n第二行 _x000D_ _xD83D_", datetime(2026, 11, 27, 10, 30), "a\tb",
             "not a date"])]  # a lone surrogate is left as written


def test_prefixed_and_strict_namespaces(tmp_path: Path) -> None:
    """Some writers (the .NET Open XML SDK) use an x: prefix; strict OOXML another namespace.
    Only the names matter."""
    prefixed = package(tmp_path / "x.xlsx", [("s", SHEET)], SST)
    with zipfile.ZipFile(prefixed) as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    for name in ("xl/worksheets/works1.xml", "xl/sharedStrings.xml"):
        text = files[name].replace(f'xmlns="{MAIN}"', f'xmlns:x="{MAIN}"')
        for tag in ("worksheet", "dimension", "sheetData", "row", "c", "v", "f", "is", "t",
                    "r", "rPr", "b", "sz", "sst", "si", "rPh", "phoneticPr"):
            text = text.replace(f"<{tag}>", f"<x:{tag}>").replace(f"<{tag} ", f"<x:{tag} ")
            text = text.replace(f"</{tag}>", f"</x:{tag}>").replace(f"<{tag}/>", f"<x:{tag}/>")
        files[name] = text
    assert "<x:row" in files["xl/worksheets/works1.xml"]
    with zipfile.ZipFile(prefixed, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    assert_same_as_openpyxl(prefixed)

    strict = package(tmp_path / "strict.xlsx", [("s", SHEET)], SST, main=STRICT_MAIN,
                     rel=STRICT_REL)
    assert ours(strict) == ours(prefixed)  # openpyxl does not read strict OOXML


def test_workbook_structure(tmp_path: Path) -> None:
    """Sheets in workbook order, chartsheets left out, the active tab mapped past them; the
    workbook found through _rels/.rels; part names matched regardless of case."""
    one = '<row r="1"><c r="A1" t="inlineStr"><is><t>一</t></is></c></row>'
    two = '<row r="1"><c r="A1" t="inlineStr"><is><t>二</t></is></c></row>'
    path = package(tmp_path / "s.xlsx", [("一", one), ("二", two)], book="xl/main.xml",
                   chartsheet_at=1, active=2,
                   member_names={"xl/worksheets/works3.xml": "XL/Worksheets/Works3.XML"})
    with zipfile.ZipFile(path) as z:
        assert "xl/workbook.xml" not in z.namelist()
        assert "XL/Worksheets/Works3.XML" in z.namelist()
    with XlsxReader(path) as book:
        assert (book.sheet_names, book.active) == (["一", "二"], 1)
        assert list(book.rows(1)) == [(1, ["二"])]
        assert list(book.rows(0)) == [(1, ["一"])]
    with XlsxReader(package(tmp_path / "c.xlsx", [("一", one)], chartsheet_at=0)) as book:
        assert (book.sheet_names, book.active) == (["一"], 0)  # the active tab is a chart


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_a_workbook_saved_by_libreoffice(tmp_path: Path) -> None:
    """LibreOffice writes shared strings, split into rich-text runs where digits and CJK
    take different fonts (`2` + `号台区`), and many attributes on rows and cells."""
    source = tmp_path / "in" / "lo.xlsx"
    source.parent.mkdir()
    openpyxl_book(source, write_only=False)
    out = tmp_path / "out"
    proc = subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         "--convert-to", "xlsx", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=180, check=False)
    converted = out / "lo.xlsx"
    if not converted.exists():
        pytest.skip(f"LibreOffice could not convert: {proc.stderr[-300:]}")
    with zipfile.ZipFile(converted) as z:
        assert "xl/sharedStrings.xml" in z.namelist()
    assert_same_as_openpyxl(converted)
    assert ours(converted)[3][:3] == [3201000201, "孙桂芝", "3号台区"]


def many_rows(path: Path, n: int) -> Path:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("s")
    for i in range(n):
        ws.append([3201000000 + i, f"户名{i}", "3号台区", f"东门村{i}号", 13800000000 + i,
                   "独居", None, 30, "是"])
    wb.save(path)
    return path


def test_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    """Each row's elements are dropped once read: 10x the rows, the same peak."""
    small, big = many_rows(tmp_path / "s.xlsx", 2_000), many_rows(tmp_path / "b.xlsx", 20_000)

    def peak(path: Path) -> int:
        tracemalloc.start()
        try:
            count = sum(1 for _ in iter_sheet_rows(path))
            return tracemalloc.get_traced_memory()[1] if count else 0
        finally:
            tracemalloc.stop()

    small_peak, big_peak = peak(small), peak(big)
    # Kept rows would cost ~3 KB each (54 MB for the extra 18k); empty elements left in
    # the tree ~80 B each (1.4 MB).
    assert big_peak < small_peak + 300_000, (small_peak, big_peak)


# --- broken files ----------------------------------------------------------------------------
def test_broken_files(tmp_path: Path) -> None:
    not_zip = tmp_path / "a.xlsx"
    not_zip.write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(XlsxError, match="zip"):
        XlsxReader(not_zip)

    no_book = tmp_path / "b.xlsx"
    with zipfile.ZipFile(no_book, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(XlsxError, match=r"xl/workbook\.xml is missing"):
        XlsxReader(no_book)

    truncated = package(tmp_path / "c.xlsx", [("s", SHEET)], SST)
    with zipfile.ZipFile(truncated) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files["xl/worksheets/works1.xml"] = files["xl/worksheets/works1.xml"][:-60]
    with zipfile.ZipFile(truncated, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    rows = iter_sheet_rows(truncated)
    assert next(rows)[0] == 1  # the rows before the damage are read
    with pytest.raises(XlsxError, match="unreadable"):
        list(rows)

    bad_index = package(tmp_path / "d.xlsx", [("s", '<row r="1"><c r="A1" t="s"><v>9</v></c>'
                                                    "</row>")], SST)
    with pytest.raises(XlsxError, match="IndexError"):
        list(iter_sheet_rows(bad_index))


# --- the customers import on top of it -------------------------------------------------------
HEADER = ["户号", "户名", "台区", "地址", "联系电话", "类别", "紧急联系人电话"]


async def lead(services: Services) -> None:
    await make_user(services, "王班长", Role.LEAD, team=TEAM, areas=("3号台区", "5号台区"))


async def test_import_error_cells_and_absent_rows(services: Services, tmp_path: Path) -> None:
    """An error cell reads as empty (as python-calamine gave it): a #N/A 户号 is 户号为空 and
    a #N/A optional phone is no phone. Rows absent from the XML keep Excel's numbers."""
    await lead(services)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["特殊客户清单"])
    ws.append(HEADER)
    ws.append(["#N/A", "王秀英", "3号台区", "东门村", "13800001201", "独居"])
    ws.append([3201000102, "李德福", "3号台区", "东门村", 13800001202, "医疗", "#N/A"])
    for col, value in enumerate([3201000103, "赵建华", "5号台区", "南湖", "abc", "低保"],
                                start=1):
        ws.cell(row=7, column=col, value=value)  # rows 5 and 6 are not in the file
    path = tmp_path / "errors.xlsx"
    wb.save(path)

    result = await import_customers(services, path, TEAM)

    assert (result.inserted, result.error_rows) == (1, 2)
    assert [e.row for e in result.errors] == [3, 7]
    assert result.errors[0].problems == ("户号为空",)
    assert "联系电话：电话「abc」" in str(result.errors[1])
    row = await services.db.fetchone("SELECT phone, emergency_phone FROM customers")
    assert row is not None and tuple(row) == ("13800001202", None)


async def test_import_finds_the_header_on_another_sheet(services: Services,
                                                        tmp_path: Path) -> None:
    await lead(services)
    wb = Workbook()
    cover = wb.active
    assert cover is not None
    cover.append(["说明：客户清单在第二页"])
    data = wb.create_sheet("清单")
    data.append(["城东供电所"])
    data.append([])
    data.append([None, None, *HEADER])  # the table starts at column C
    data.append([None, None, "3201000201", "孙桂芝", "3号台区", "东门", 13800001109, "五保"])
    path = tmp_path / "second.xlsx"
    wb.save(path)

    result = await import_customers(services, path, TEAM)
    assert (result.inserted, result.error_rows) == (1, 0)


async def test_import_without_a_header_names_the_active_sheet_columns(
        services: Services, tmp_path: Path) -> None:
    await lead(services)
    wb = Workbook()
    first = wb.active
    assert first is not None
    first.append(["地址"])
    active = wb.create_sheet("二")
    active.append(["户名", "台区"])
    wb.active = 1
    path = tmp_path / "none.xlsx"
    wb.save(path)
    with pytest.raises(CustomersIOError, match=r"missing required columns: 户号、地址、联系电话"):
        await import_customers(services, path, TEAM)


async def test_import_of_a_broken_xlsx_is_a_file_error(services: Services,
                                                       tmp_path: Path) -> None:
    await lead(services)
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CustomersIOError, match="无法打开 XLSX 文件"):
        await import_customers(services, path, TEAM)
    no_sheets = package(tmp_path / "empty.xlsx", [])
    with pytest.raises(CustomersIOError, match="empty"):
        await import_customers(services, no_sheets, TEAM)
