"""Arrears lists as the marketing system's exports come: a GBK CSV with a title row, an XLSX
written by openpyxl, and one re-saved by another office suite (WPS/LibreOffice style XML
written part by part: shared strings and inline strings mixed, amounts and 户号 stored as
text, the 账期 as a date serial number, a title row above the header, trailing empty rows
and an empty second sheet first in the tab order)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

# The marketing system's names for the columns (data/arrears_columns.json aliases).
EXPORT_HEADER = ["用户编号", "用户名称", "台区名称", "欠费金额(元)", "电费年月", "费控标志"]
OUR_HEADER = ["户号", "户名", "台区", "欠费金额", "欠费起始", "是否费控"]
TITLE = "城东供电所 欠费明细表（2026年11月）"


def gbk_csv(rows: Sequence[Sequence[Any]], header: Sequence[str] = EXPORT_HEADER,
            title: str | None = TITLE) -> bytes:
    def cell(v: Any) -> str:
        text = "" if v is None else str(v)
        return f'"{text}"' if "," in text else text

    lines = ([title] if title else []) + [",".join(header)]
    lines += [",".join(cell(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def openpyxl_xlsx(rows: Sequence[Sequence[Any]], header: Sequence[str] = OUR_HEADER) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "欠费清单"
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _col(i: int) -> str:
    return "ABCDEFGHIJ"[i]


def office_suite_xlsx(rows: Sequence[Sequence[Any]], header: Sequence[str] = EXPORT_HEADER,
                      title: str = TITLE, serial_month: bool = True) -> bytes:
    """Cells: header and names as shared strings, 台区 as inline strings, 户号 and amounts
    as text (t="str"), the 账期 as a day serial number when `serial_month` (a date cell);
    three trailing empty rows; sheet 1 (first tab) is an empty '说明' sheet."""
    shared: list[str] = []

    def sst(text: str) -> int:
        if text not in shared:
            shared.append(text)
        return shared.index(text)

    def cell(ref: str, value: Any, kind: str) -> str:
        if value is None or value == "":
            return f'<c r="{ref}" t="inlineStr"><is><t></t></is></c>'  # an empty text cell
        if kind == "s":
            return f'<c r="{ref}" t="s"><v>{sst(str(value))}</v></c>'
        if kind == "inline":
            return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'
        if kind == "str":
            return f'<c r="{ref}" t="str"><v>{escape(str(value))}</v></c>'
        return f'<c r="{ref}" s="1"><v>{value}</v></c>'

    xml_rows = [f'<row r="1"><c r="A1" t="s"><v>{sst(title)}</v></c></row>']
    xml_rows.append('<row r="2">' + "".join(cell(f"{_col(i)}2", h, "s")
                                           for i, h in enumerate(header)) + "</row>")
    kinds = ("str", "s", "inline", "str", "num" if serial_month else "str", "s")
    n = 2
    for n, r in enumerate(rows, start=3):
        xml_rows.append(f'<row r="{n}">' + "".join(
            cell(f"{_col(i)}{n}", v, kinds[i]) for i, v in enumerate(r)) + "</row>")
    for extra in range(n + 1, n + 4):  # trailing empty rows, as office suites leave them
        xml_rows.append(f'<row r="{extra}"><c r="A{extra}" t="inlineStr"><is><t> </t></is>'
                        "</c></row>")
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f'<sheetData>{"".join(xml_rows)}</sheetData></worksheet>')
    empty = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
             'openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>')
    strings = ('<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
               f'openxmlformats.org/spreadsheetml/2006/main" count="{len(shared)}" '
               f'uniqueCount="{len(shared)}">'
               + "".join(f"<si><t>{escape(s)}</t></si>" for s in shared) + "</sst>")
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
            'openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" '
            f'xmlns:r="{rel}"><sheets><sheet name="说明" sheetId="1" r:id="rId1"/>'
            '<sheet name="欠费明细" sheetId="2" r:id="rId2"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/worksheet" Target="worksheets/sheet2.xml"/>'
            f'<Relationship Id="rId3" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": empty,
        "xl/worksheets/sheet2.xml": sheet,
        "xl/sharedStrings.xml": strings,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return buf.getvalue()
