"""The one way cell values reach an XLSX file: every writer (customer export, weekly report,
printable log) puts its values through here.

Two dangers, both from text a user typed (a name, a log's content, an imported cell):

- a control character (U+0007, U+001B ...) that XML 1.0 cannot hold makes openpyxl refuse
  the whole workbook: one log entry would stop every report of the team. Removed here, as
  at input (bot.textutil.clean_text), for data stored before input was cleaned.
- text that spreadsheet programs run: openpyxl writes a string starting with "=" as a live
  formula (`=HYPERLINK("http://…"&A2,"详情")`) and "#N/A" as an error value. Such text is
  written as a text cell (data type "s"), so Excel, WPS and LibreOffice show it as typed and
  never evaluate it; the value itself is unchanged, so a re-import reads the same text.
  Text starting with "+", "-", "@", a tab or CR (OWASP's list) is harmless in a text cell;
  it only becomes a formula when typed or read from CSV, and the bot writes no CSV.

Numbers, dates and booleans stay what they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from bot.textutil import clean_text

__all__ = ["cell", "put", "row", "text"]

_TEXT = "s"
_ERRORS = frozenset(ERROR_CODES)


def text(value: str) -> str:
    """Text XML can hold (line breaks and tabs kept)."""
    return clean_text(value)


def _live(value: str) -> bool:
    """Would openpyxl store this string as something other than text?"""
    return value.startswith("=") or value in _ERRORS


def _set(c: Cell, value: Any) -> Cell:
    if isinstance(value, str):
        value = text(value)  # before openpyxl sees it: it raises on a control character
        c.value = value
        if _live(value):
            c.data_type = _TEXT
    else:
        c.value = value
    return c


def cell(ws: WriteOnlyWorksheet, value: Any) -> Cell:
    """A cell for a write-only sheet, to style (font, number format ...) afterwards."""
    return _set(WriteOnlyCell(ws), value)


def row(ws: WriteOnlyWorksheet, values: Iterable[Any]) -> list[Any]:
    """A row for `ws.append()` on a write-only sheet: plain values stay plain (cheap), a
    string openpyxl would run becomes a text cell, cells already made are checked too."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            v = text(v)
            if _live(v):
                v = cell(ws, v)
        elif isinstance(v, Cell) and isinstance(v.value, str):
            v = _set(v, v.value)
        out.append(v)
    return out


def put(ws: Worksheet, row_no: int, col: int, value: Any) -> Cell:
    """Set a cell of an ordinary (not write-only) sheet."""
    return _set(ws.cell(row_no, col), value)
