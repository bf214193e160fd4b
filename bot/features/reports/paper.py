"""工作日志 for printing, laid out like the paper 台区客户经理工作日志: one bordered block per
entry (date, every 台区, the nine work-item ticks, content, problems, 处理结果 and 工单号 when
given, customer, the lead's 批注 when given, 记录人 and a blank for the signature), A4
portrait, one person's entries starting on a new page, no block split across two pages, the
title repeated on every page and page numbers in the footer."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, Side
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from bot import xlsx_safe
from bot.features.reports.figures import LogRow, Scope, load_paper
from bot.features.reports.ranges import MAX_DAYS, Period
from bot.features.reports.xlsx import display_width
from bot.i18n import t
from bot.privacy import mask
from bot.private_files import write_private
from bot.rules import sensitive_categories, work_item_keys

TICK, BOX = "☑", "□"
COLS = 10  # A: labels, B..J: one per work item
LABEL_WIDTH = 13.0
ITEM_WIDTH = 9.2
LINE_PT = 15.0
SPACER_PT = 9.0
PAGE_PT = 680.0  # A4 portrait less margins, header/footer and the repeated title rows
TEXT_CHARS = int(ITEM_WIDTH * 9) - 2  # display columns of a B:J merged text cell
RESULT_CHARS = int(ITEM_WIDTH * 5) - 2  # of the B:F 处理结果 cell
_THIN = Side(style="thin", color="808080")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TOP = Alignment(wrap_text=True, vertical="top")
_LEFT = Alignment(horizontal="left", vertical="top")


def _styles() -> list[NamedStyle]:
    """Named once per workbook and assigned by name: openpyxl re-hashes a Border or Font on
    every plain assignment, which made a 600-entry export take 15 s."""
    def style(name: str, **kw: Any) -> NamedStyle:
        return NamedStyle(name=f"tq_{name}", border=_BOX, **kw)

    return [style("label", font=Font(bold=True), alignment=_TOP),
            style("text", alignment=_TOP),
            style("center", alignment=Alignment(horizontal="center", vertical="center",
                                                wrap_text=True)),
            style("left", alignment=_LEFT),
            style("minute", alignment=_LEFT, number_format="yyyy-mm-dd hh:mm"),
            style("day", alignment=_LEFT, number_format="yyyy-mm-dd")]


@dataclass(frozen=True)
class PaperLog:
    team: str
    period: Period
    entries: int
    data: bytes


def _lines(text: str | None, chars: int = TEXT_CHARS) -> int:
    """Printed lines a B:J text cell (or one `chars` display columns wide) needs."""
    if not text:
        return 1
    return sum(max(1, math.ceil(display_width(part) / chars)) for part in text.split("\n"))


class _Form:
    def __init__(self, ws: Worksheet, locale: str, tz: Any,
                 categories: dict[int, list[str]]) -> None:
        self.ws = ws
        self.categories = categories  # customer id -> category keys
        self.sensitive = sensitive_categories()
        self.locale = locale
        self.tz = tz
        self.row = 1
        self.used = 0.0  # points used on the current page

    def w(self, key: str, **kw: Any) -> str:
        return t(self.locale, key, **kw)

    def put(self, col: int, value: Any, *, to: int | None = None,
            style: str = "text") -> None:
        r = self.row
        cell = xlsx_safe.put(self.ws, r, col, value)
        cell.style = f"tq_{style}"
        last = to or col
        for c in range(col + 1, last + 1):
            self.ws.cell(r, c).style = "tq_text"  # the merged area's border
        if last > col:
            # Straight into the set: openpyxl's merge_cells() checks every existing range
            # (quadratic: a 600-entry export took 40 s) and re-styles the edges again; the
            # writer needs only the range.
            self.ws.merged_cells.ranges.add(
                CellRange(min_col=col, min_row=r, max_col=last, max_row=r))

    def masked(self, column: str, value: str | None, w: LogRow) -> str | None:
        """As bot.privacy.MASKS has the paper log show it."""
        cats = self.categories.get(w.customer_id or 0, ())
        return mask("paper", column, value, sensitive=bool(self.sensitive & set(cats)))

    def next_row(self, height: float) -> None:
        self.ws.row_dimensions[self.row].height = height
        self.row += 1

    def page_break(self) -> None:
        self.ws.row_breaks.append(Break(id=self.row - 1))
        self.used = 0.0

    def block(self, w: LogRow, new_person: bool) -> None:
        content_lines = _lines(w.content)
        problem_lines = _lines(w.problems)
        # The fuller entry's rows only when filled: an entry without them prints as before.
        result_lines = _lines(w.result, RESULT_CHARS) if w.result or w.ticket_no else 0
        comment_lines = _lines(w.comments) if w.comments else 0
        height = LINE_PT * (6 + content_lines + problem_lines + result_lines
                            + comment_lines) + SPACER_PT
        if self.row > 3 and (new_person or self.used + height > PAGE_PT):
            self.page_break()
        self.used += height
        local = w.at.astimezone(self.tz).replace(tzinfo=None)
        self.put(1, self.w("report.paper.date"), style="label")
        self.put(2, local, to=4, style="minute" if w.has_time else "day")
        self.put(5, self.w("report.paper.area"), style="label")
        self.put(6, w.area, to=7)
        self.put(8, self.w("report.paper.no"), style="label")
        self.put(9, w.id, to=10, style="left")
        self.next_row(LINE_PT)
        self.put(1, self.w("report.paper.items"), style="label")
        for i, key in enumerate(work_item_keys()):
            mark = TICK if key in w.items else BOX
            self.put(2 + i, f"{mark} {self.w(f'item.{key}')}", style="center")
        self.next_row(LINE_PT * 2)  # a 4-character item name wraps under its box
        self.put(1, self.w("report.paper.content"), style="label")
        self.put(2, w.content, to=COLS)
        self.next_row(LINE_PT * content_lines)
        self.put(1, self.w("report.paper.problems"), style="label")
        self.put(2, w.problems or "", to=COLS)
        self.next_row(LINE_PT * problem_lines)
        if result_lines:
            self.put(1, self.w("report.paper.result"), style="label")
            self.put(2, w.result or "", to=6)
            self.put(7, self.w("report.paper.ticket"), style="label")
            self.put(8, w.ticket_no or "", to=10, style="left")
            self.next_row(LINE_PT * result_lines)
        customer = (f"{self.masked('account', w.customer_account, w)} "
                    f"{self.masked('customer', w.customer_name, w) or ''}".strip()
                    if w.customer_account else "")
        self.put(1, self.w("report.paper.customer"), style="label")
        self.put(2, customer, to=6)
        self.put(7, self.w("report.paper.photos"), style="label")
        self.put(8, w.photos, to=10, style="left")
        self.next_row(LINE_PT)
        if comment_lines:
            self.put(1, self.w("report.paper.comments"), style="label")
            self.put(2, w.comments, to=COLS)
            self.next_row(LINE_PT * comment_lines)
        self.put(1, self.w("report.paper.recorder"), style="label")
        self.put(2, w.owner, to=4)
        self.put(5, self.w("report.paper.signature"), style="label")
        self.put(6, "", to=COLS)
        self.next_row(LINE_PT * 2)  # room for a handwritten signature
        self.next_row(SPACER_PT)


def build(logs: list[LogRow], team: str, period: Period, locale: str,
          who: str | None = None, categories: dict[int, list[str]] | None = None) -> bytes:
    """`categories`: customer id -> category keys of the customers named (see
    figures.load_paper); a sensitive customer is masked further."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t(locale, "report.paper.sheet")
    for style in _styles():
        wb.add_named_style(style)
    form = _Form(ws, locale, period.tz, categories or {})
    ws.column_dimensions["A"].width = LABEL_WIDTH
    for c in "BCDEFGHIJ":
        ws.column_dimensions[c].width = ITEM_WIDTH
    form.put(1, t(locale, "report.paper.title"), to=COLS, style="center")
    ws.cell(1, 1).font = Font(bold=True, size=16)
    form.next_row(28)
    form.put(1, t(locale, "report.paper.subtitle", team=team + (f" · {who}" if who else ""),
                  first=period.first.isoformat(), last=period.last.isoformat(), n=len(logs)),
             to=COLS, style="center")
    form.next_row(20)
    ordered = sorted(logs, key=lambda w: (w.owner, w.user_id, w.at, w.id))
    previous: int | None = None
    for w in ordered:
        form.block(w, new_person=previous is not None and w.user_id != previous)
        previous = w.user_id
    if not logs:
        form.put(1, t(locale, "report.paper.empty"), to=COLS)
    ws.print_title_rows = "1:2"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = t(locale, "report.paper.footer")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


class ExportError(Exception):
    """A CLI export that cannot run, already worded for the admin."""


async def export_team_logs(services: Any, team: str, first: date, last: date,
                           path: Path | str) -> PaperLog:
    """`taiqu-bot export logs`: the whole team's entries from `first` to `last` (local days)."""
    row = await services.db.fetchone("SELECT id, name FROM teams WHERE name = ?", (team,))
    if row is None:
        names = [r["name"] for r in await services.db.fetchall("SELECT name FROM teams")]
        raise ExportError(f"no team {team!r} (teams: {', '.join(names) or 'none'})")
    if last < first:
        raise ExportError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
    period = Period(first, last, services.settings.tz)
    if period.days > MAX_DAYS:
        raise ExportError(f"{period.days} days: at most {MAX_DAYS} in one file")
    scope = Scope(row["id"], row["name"])
    got = await load_paper(services.db, scope, period)
    data = build(got.logs, row["name"], period, services.settings.locale,
                 categories=got.categories)
    write_private(path, data)
    return PaperLog(row["name"], period, len(got.logs), data)
