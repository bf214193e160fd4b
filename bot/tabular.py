"""Reading a table exported by the marketing system (营销系统): CSV in UTF-8, GBK or UTF-16,
or XLSX; a header row found among the first rows (a title above it is common), its columns
recognised by their usual names; rows streamed one at a time with Excel's row numbers.

Shared by every import (the special-customer register, the arrears list): each declares
its `Column`s and validates the cells; reading, encodings, header aliases and row numbering
are done here once. A file is a path (the CLI) or bytes (a file sent in chat).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from bot.textutil import clean_text, normalize_input
from bot.xlsx_rows import XlsxError, XlsxReader

HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in exports
Source = Path | bytes  # a file on disk, or the bytes of one sent in chat
Rows = Generator[Sequence[Any], None, None]


class TableError(Exception):
    """A file-level problem (unreadable file, missing column): nothing is imported."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # exactly as written in an export and the example files
    required: bool
    aliases: tuple[str, ...] = ()
    width: int = 12


@dataclass(frozen=True)
class RowError:
    row: int  # as Excel shows it: the header is row 1
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"第 {self.row} 行: " + "；".join(self.problems)


@dataclass
class ImportCounts:
    """What an import of one file did (each import adds its own figures)."""

    file: str
    team: str
    dry_run: bool
    inserted: int = 0
    updated: int = 0
    error_rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first so many (the importer says)


def header_key(text: str) -> str:
    """'  走访周期（天） ' and '*户号' match their column: NFKC folds full-width brackets."""
    s = unicodedata.normalize("NFKC", text)
    s = s.translate(str.maketrans("[]【】", "()()"))
    return re.sub(r"\s+", "", s).strip("*:")


def letter(index: int) -> str:
    """Column index 0 -> 'A', as Excel names it."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def cell_text(value: Any) -> str:
    """A cell as text: Excel hands numbers over as int/float (户号 13800001234.0)."""
    if isinstance(value, str):  # the common case first: this runs for every cell
        text = clean_text(value).strip()  # line breaks stay: 具体情况 may have several lines
        # ="0012345678" is how some systems keep Excel from eating leading zeros.
        if text.startswith('="') and text.endswith('"'):
            text = text[2:-1].strip()
        return text
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


YES = frozenset({"是", "√", "✓", "✔", "1", "y", "yes", "true", "有", "需要", "对"})
NO = frozenset({"", "否", "×", "✗", "x", "0", "n", "no", "false", "无", "不", "不需要"})


@lru_cache(maxsize=256)
def yes_no(text: str) -> bool | None:
    """A 是/否 cell (√, Y, 1, 有 ... / 否, ×, 0, 无, empty); None when it says neither."""
    s = normalize_input(text).lower()
    if s in YES:
        return True
    if s in NO:
        return False
    return None


def blank(cells: Sequence[Any]) -> bool:
    # Hot path (every row): only text can be blank; numbers and dates never are.
    return not any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells)


class Header:
    """A table's columns and the names each is known by."""

    def __init__(self, columns: Sequence[Column], key: str) -> None:
        self.columns = tuple(columns)
        self.key = key  # the column whose presence marks the header row (户号)
        self.index: dict[str, Column] = {
            header_key(name): col for col in columns for name in (col.header, *col.aliases)}

    def map(self, cells: Sequence[Any]) -> dict[str, int]:
        """column key -> cell index; a column named twice is a file error."""
        found: dict[str, int] = {}
        for i, cell in enumerate(cells):
            col = self.index.get(header_key(cell_text(cell)))
            if col is None:
                continue  # extra columns are ignored
            if col.key in found:
                raise TableError(
                    f"表头「{col.header}」出现了两次（第 {letter(found[col.key])} 列和第 "
                    f"{letter(i)} 列） / column {col.header!r} appears twice")
            found[col.key] = i
        return found

    def is_header(self, cells: Sequence[Any]) -> bool:
        try:
            return self.key in self.map(cells)
        except TableError:
            return True  # a duplicated header still marks the header row

    def missing(self, found: dict[str, int]) -> list[str]:
        return [c.header for c in self.columns if c.required and c.key not in found]

    def missing_text(self, headers: list[str]) -> str:
        return ("缺少必需的列 / missing required columns: " + "、".join(headers)
                + "（表头应为 / expected header: " + ",".join(c.header for c in self.columns)
                + "）")


# --- opening a file ---------------------------------------------------------------------
def _name(source: Source, name: str) -> str:
    return name or (source.name if isinstance(source, Path) else "file")


def _open(source: Source) -> AbstractContextManager[IO[bytes]]:
    return source.open("rb") if isinstance(source, Path) else io.BytesIO(source)


def csv_encoding(source: Source, name: str = "") -> str:
    """utf-8(-sig) if the whole file decodes, else GBK/GB18030 (Chinese Excel's 'CSV'); a
    UTF-16 byte-order mark is Excel's "Unicode text". Checked in chunks: a large file is
    never held in memory at once."""
    with _open(source) as fh:
        if fh.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"  # gb18030 would garble it
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with _open(source) as fh:
                while chunk := fh.read(1 << 16):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise TableError(f"{_name(source, name)}: 无法识别文件编码（应为 UTF-8 或 GBK） / "
                     "unknown text encoding (expected UTF-8 or GBK)")


def _csv_reader(source: Source, encoding: str, name: str) -> Rows:
    with _open(source) as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as fh:
        first = fh.readline()
        # Excel's "Unicode text" and some exports use tabs or semicolons instead of commas.
        delimiter = max((",", "\t", ";"), key=first.count)
        fh.seek(0)
        # One csv record is one spreadsheet row, even with line breaks inside quotes.
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            yield from reader
        except csv.Error as exc:
            raise TableError(f"{_name(source, name)}: 第 {reader.line_num} 行附近 CSV 格式有误 / "
                             f"malformed CSV near line {reader.line_num}: {exc}") from exc


def _xlsx_rows(source: Source, name: str, is_header: Callable[[Sequence[Any]], bool]) -> Rows:
    """The rows of the sheet with a header near the top (else the sheet Excel opens on),
    numbered as Excel shows them: rows absent from the file (blank) come back empty.

    bot/xlsx_rows.py streams the sheet's XML a row at a time, so memory does not grow with
    the rows; only the shared-string table is held, packed (it grows with the distinct
    strings, not the rows). 100k rows read in ~2.2 s, against ~11.5 s for openpyxl's
    read-only reader (BENCHMARKS.md, issue #3). An error cell (#N/A) reads as empty.
    """
    try:
        with _open(source) as fh, XlsxReader(fh) as book:
            chosen = book.active if book.sheet_names else None
            for index in range(len(book.sheet_names)):
                if _has_header(book, index, is_header):
                    chosen = index
                    break
            if chosen is None:
                return  # no worksheet at all: "the file is empty"
            expected = 1
            for number, cells in book.rows(chosen, errors="none"):
                for _ in range(expected, number):
                    yield ()  # a blank row, so the row numbers stay Excel's
                expected = number + 1
                yield cells
    except (XlsxError, OSError) as exc:
        raise TableError(f"{_name(source, name)}: 无法打开 XLSX 文件 / cannot open XLSX ({exc})") \
            from exc


def _has_header(book: XlsxReader, index: int,
                is_header: Callable[[Sequence[Any]], bool]) -> bool:
    rows = book.rows(index, errors="none")
    try:
        for number, cells in rows:
            if number > HEADER_SEARCH_ROWS:
                break
            if is_header(cells):
                return True
    finally:
        rows.close()
    return False


def looks_like_xlsx(head: bytes) -> bool:
    return head.startswith(b"PK")


def open_rows(source: Source, header: Header, name: str = "") -> Rows:
    """Every row of the file (CSV or XLSX, told by its first bytes and name ending)."""
    name = _name(source, name)
    if isinstance(source, Path) and not source.is_file():
        raise TableError(f"{source}: 文件不存在 / file not found")
    with _open(source) as fh:
        magic = fh.read(4)
    suffix = Path(name).suffix.lower()
    if magic == b"\xd0\xcf\x11\xe0" or suffix == ".xls":
        raise TableError(f"{name}: 不支持旧的 .xls 格式，请在 Excel 里另存为 .xlsx 或 "
                         "CSV / old .xls is not supported: save as .xlsx or CSV")
    if looks_like_xlsx(magic) or suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(source, name, header.is_header)
    return _csv_reader(source, csv_encoding(source, name), name)  # encoding checked now


def data_rows(rows: Iterator[Sequence[Any]], header: Header,
              found: dict[str, int]) -> Iterator[tuple[int, Sequence[Any]]]:
    """(Excel row number, cells) of every non-blank row below the header; the header's
    column map is put into `found` once the header row is read. No header among the first
    rows, or a required column missing, is a TableError."""
    first: Sequence[Any] | None = None  # the first non-blank row, to name missing columns
    for number, cells in enumerate(rows, start=1):
        if blank(cells):
            continue
        if found:
            yield number, cells
            continue
        first = cells if first is None else first
        cols = header.map(cells)
        if header.key not in cols:
            if number >= HEADER_SEARCH_ROWS:
                break
            continue  # a title row above the header
        missing = header.missing(cols)
        if missing:
            raise TableError(header.missing_text(missing))
        found.update(cols)
    if not found:
        if first is None:
            raise TableError("文件是空的 / the file is empty")
        raise TableError(header.missing_text(header.missing(header.map(first))))


def sniff_header(data: bytes, header: Header, name: str = "") -> bool:
    """Whether a file's first rows hold this table's header row (a file sent in chat: is it
    this reader's?). Unreadable files are not anyone's."""
    rows: Rows | None = None
    try:
        rows = open_rows(data, header, name)
        for number, cells in enumerate(rows, start=1):
            if number > HEADER_SEARCH_ROWS:
                return False
            if header.is_header(cells) and not header.missing(header.map(cells)):
                return True
    except (TableError, UnicodeDecodeError):
        return False
    finally:
        if rows is not None:
            rows.close()
    return False
