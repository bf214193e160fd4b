"""The one way cell values reach an XLSX file: every writer (customer export, weekly report,
printable log) puts its values through here.

A control character (U+0007, U+001B ...) that XML 1.0 cannot hold makes openpyxl refuse
the whole workbook: one log entry would stop every report of the team. Removed here, as at
input (bot.textutil.clean_text), for data stored before input was cleaned.

Numbers, dates and booleans stay what they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from bot.textutil import clean_text

__all__ = ["cell", "put", "row", "text"]


def text(value: str) -> str:
    """Text XML can hold (line breaks and tabs kept)."""
    return clean_text(value)


def _set(c: Cell, value: Any) -> Cell:
    # Cleaned before openpyxl sees it: it raises on a control character.
    c.value = text(value) if isinstance(value, str) else value
    return c


def cell(ws: WriteOnlyWorksheet, value: Any) -> Cell:
    """A cell for a write-only sheet, to style (font, number format ...) afterwards."""
    return _set(WriteOnlyCell(ws), value)


def row(ws: WriteOnlyWorksheet, values: Iterable[Any]) -> list[Any]:
    """A row for `ws.append()` on a write-only sheet: plain values stay plain (cheap),
    cells already made are checked too."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            v = text(v)
        elif isinstance(v, Cell) and isinstance(v.value, str):
            v = _set(v, v.value)
        out.append(v)
    return out


def put(ws: Worksheet, row_no: int, col: int, value: Any) -> Cell:
    """Set a cell of an ordinary (not write-only) sheet."""
    return _set(ws.cell(row_no, col), value)
