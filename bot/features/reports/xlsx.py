"""The report as an XLSX workbook: 汇总, 工作日志, 投诉, 欠费, 停电, 报修, 特殊客户走访.

Cells hold real values: times are Excel dates (local time of the team's zone; a date-only
value is a date cell, never a 00:00 time), statuses are the chat's words (bot.statuses),
counts and yuan amounts are numbers, percentages are fractions formatted as %. Every sheet has its
header row frozen, a filter on it and column widths fitted to the content. The workbook is
written in openpyxl's streaming mode, so a year of a big team's entries costs little memory.
Customer data is masked as bot.privacy.MASKS says (names 张*; a sensitive customer's 户号
and categories too): the file is meant to be passed around. Every cell goes through
bot.xlsx_safe."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bot import xlsx_safe
from bot.features.reports.figures import Figures, LogRow, PersonFigures, Tally
from bot.i18n import t
from bot.privacy import mask
from bot.rules import sensitive_categories, work_item_keys
from bot.statuses import arrears_status, complaint_status, outage_status, plain, repair_status
from bot.storage.db import from_iso

DATETIME = "yyyy-mm-dd hh:mm"
DATE = "yyyy-mm-dd"
MONEY = "#,##0.00"
PERCENT = "0.0%"
_HEAD_FONT = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_WRAP = Alignment(wrap_text=True, vertical="top")
MAX_WIDTH = 60
SAMPLE_ROWS = 300  # rows looked at to size a column


def display_width(value: Any) -> int:
    """Characters as Excel shows them: a Chinese character is two columns wide."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, float):
        return len(f"{value:,.2f}")
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    formats: dict[int, str] = field(default_factory=dict)  # column index -> number format
    freeze: str = "A2"
    wrap: set[int] = field(default_factory=set)
    footer: list[list[Any]] = field(default_factory=list)  # notes after the table

    def write(self, wb: Workbook) -> None:
        ws: WriteOnlyWorksheet = wb.create_sheet(self.title)
        self._widths(ws)
        ws.freeze_panes = self.freeze
        last = get_column_letter(len(self.header))
        ws.auto_filter.ref = f"A1:{last}{len(self.rows) + 1}"
        ws.print_options.gridLines = True
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = "1:1"
        head = []
        for h in self.header:
            c = xlsx_safe.cell(ws, h)
            c.font = _HEAD_FONT
            c.fill = _HEAD_FILL
            head.append(c)
        ws.append(head)
        for row in self.rows:
            ws.append(self._cells(ws, row, self.formats))
        if self.footer:
            ws.append([])
            for row in self.footer:
                ws.append(self._cells(ws, row, {}))

    def _cells(self, ws: WriteOnlyWorksheet, row: Sequence[Any],
               styled: dict[int, str]) -> list[Any]:
        out: list[Any] = []
        for i, v in enumerate(row):
            fmt = styled.get(i)
            if isinstance(v, datetime):
                fmt = DATETIME if fmt is None else fmt
            elif isinstance(v, date):  # a day without a time of day: no 00:00
                fmt = DATE
            if (fmt is None and i not in self.wrap) or v is None:
                out.append(v)
                continue
            c = xlsx_safe.cell(ws, v)
            if fmt is not None:
                c.number_format = fmt
            if i in self.wrap:
                c.alignment = _WRAP
            out.append(c)
        return xlsx_safe.row(ws, out)

    def _widths(self, ws: WriteOnlyWorksheet) -> None:
        for i, h in enumerate(self.header):
            width = display_width(h)
            for row in self.rows[:SAMPLE_ROWS]:
                if i < len(row):
                    width = max(width, display_width(row[i]))
            ws.column_dimensions[get_column_letter(i + 1)].width = min(MAX_WIDTH, width + 2)


class _Book:
    def __init__(self, fig: Figures, locale: str) -> None:
        self.fig = fig
        self.locale = locale
        self.tz = fig.period.tz
        self.sensitive = sensitive_categories()

    def w(self, key: str, **kw: Any) -> str:
        return t(self.locale, key, **kw)

    def local(self, moment: datetime | str | None) -> datetime | None:
        """Excel has no time zones: the team's local wall time, naive."""
        if moment is None:
            return None
        if isinstance(moment, str):
            moment = from_iso(moment)
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def moment(self, at: datetime, has_time: bool) -> datetime | date:
        """A log's time as entered: a date cell when only the day was given."""
        local = self.local(at)
        assert local is not None
        return local if has_time else local.date()

    def status(self, key: str) -> str:
        """A record's status in the words its card in the chat uses."""
        return plain(self.w(key))

    def masked(self, file: str, column: str, value: Any, customer_id: int | None) -> Any:
        """`value` as bot.privacy.MASKS has it shown in this workbook."""
        cats = self.fig.detail.categories.get(customer_id or 0, []) if self.fig.detail else []
        return mask(file, column, value, sensitive=bool(self.sensitive & set(cats)))

    def yes_no(self, ok: bool | None) -> str | None:
        return None if ok is None else self.w("report.yes" if ok else "report.no")

    def cols(self, prefix: str, names: Iterable[str]) -> list[str]:
        return [self.w(f"report.col.{prefix}.{n}") for n in names]


_SUMMARY = ("name", "entries", "*items", "visits", "c_new", "c_closed", "c_overdue",
            "c_on_time", "c_judged", "c_pct", "a_new", "a_new_yuan", "a_collected",
            "a_collected_yuan", "a_outstanding", "a_outstanding_yuan", "notices",
            "restored", "restore_judged", "outages", "o_on_time", "o_judged", "o_pct",
            "to_tell", "told", "r_on_time", "r_judged", "reminders", "on_time", "judged",
            "pct", "unpatrolled")


def _pct(tally: Tally) -> float | None:
    return tally.pct


def _summary_row(p: PersonFigures, sep: str) -> list[Any]:
    items = [p.items.get(k, 0) for k in work_item_keys()]
    return [p.name, p.entries, *items, p.special_visits, p.complaints_new, p.complaints_closed,
            p.complaints_overdue, p.complaint_deadlines.on_time, p.complaint_deadlines.judged,
            _pct(p.complaint_deadlines), p.arrears_new, p.arrears_new_cents / 100,
            p.arrears_collected, p.arrears_collected_cents / 100, p.arrears_outstanding,
            p.arrears_outstanding_cents / 100, p.notices_served, p.restore.on_time,
            p.restore.judged, p.outages, p.outage_notice.on_time, p.outage_notice.judged,
            _pct(p.outage_notice), p.special_to_tell, p.special_told, p.repair_arrival.on_time,
            p.repair_arrival.judged, p.reminders_overdue, p.on_time.on_time, p.on_time.judged,
            _pct(p.on_time), sep.join(p.unpatrolled) or None]


def summary_sheet(b: _Book) -> Sheet:
    fig = b.fig
    keys: list[str] = []
    for key in _SUMMARY:
        keys += [f"item.{k}" for k in work_item_keys()] if key == "*items" else [key]
    header = [b.w(k) if k.startswith("item.") else b.w(f"report.col.sum.{k}") for k in keys]
    sheet = Sheet(b.w("report.sheet.summary"), header, freeze="B2")
    for i, key in enumerate(keys):
        if key.endswith("_yuan"):
            sheet.formats[i] = MONEY
        elif key.endswith("pct"):
            sheet.formats[i] = PERCENT
    sep = b.w("report.list_sep")
    sheet.rows = [_summary_row(p, sep) for p in fig.people]
    total = _summary_row(fig.total, sep)
    total[0] = b.w("report.total")
    total[-1] = None
    sheet.rows.append(total)
    sheet.footer = _notes(b)
    return sheet


def _notes(b: _Book) -> list[list[Any]]:
    fig = b.fig
    p = fig.period
    rows: list[list[Any]] = [
        [b.w("report.note.team"), fig.scope.team_name + (
            f" · {fig.scope.user_name}" if fig.scope.user_name else "")],
        [b.w("report.note.period"), f"{p.first.isoformat()} — {p.last.isoformat()}"],
        [b.w("report.note.made"), b.local(fig.now)],
        [b.w("report.note.rules"), b.w("report.note.rules_text")],
        [],
        [b.w("report.note.overdue", n=len(fig.overdue))],
    ]
    if fig.overdue:
        rows.append([b.w("report.col.overdue.kind"), b.w("report.col.overdue.id"),
                     b.w("report.col.overdue.step"), b.w("report.col.overdue.owner"),
                     b.w("report.col.overdue.due"), b.w("report.col.overdue.hours")])
    for o in fig.overdue:
        hours = round((fig.now - o.due).total_seconds() / 3600, 1)
        rows.append([b.w(f"report.kindname.{o.kind}"), o.record_id, b.w(f"report.step.{o.step}"),
                     o.owner, b.local(o.due), hours])
    rows.append([])
    rows.append([b.w("report.note.unpatrolled", n=len(fig.unpatrolled))])
    for a in fig.unpatrolled:
        rows.append([a.name, b.w("report.list_sep").join(a.owners) or b.w("report.no_owner")])
    return rows


def log_sheet(b: _Book, logs: list[LogRow]) -> Sheet:
    keys = work_item_keys()
    header = [*b.cols("log", ("id", "at", "owner", "area")), *(b.w(f"item.{k}") for k in keys),
              *b.cols("log", ("content", "problems", "account", "photos", "result", "ticket",
                              "comments"))]
    sheet = Sheet(b.w("report.sheet.logs"), header, freeze="C2")
    rows = []
    for w in logs:
        ticks = [1 if k in w.items else None for k in keys]
        account = b.masked("report.logs", "account", w.customer_account, w.customer_id)
        rows.append([w.id, b.moment(w.at, w.has_time), w.owner, w.area, *ticks, w.content,
                     w.problems, account, w.photos, w.result, w.ticket_no, w.comments])
    sheet.rows = rows
    return sheet


def complaint_sheet(b: _Book) -> Sheet:
    assert b.fig.detail is not None
    header = b.cols("cpl", ("id", "order_no", "kind", "owner", "customer", "accepted",
                            "contact_due", "contacted", "contact_ok", "reply_due", "replied",
                            "reply_ok", "status", "content", "area"))
    sheet = Sheet(b.w("report.sheet.complaints"), header)
    for r in b.fig.detail.complaints:
        sheet.rows.append([
            r["id"], r["order_no"], b.w(f"complaint.kind.{r['kind']}"), r["owner"],
            b.masked("report.complaints", "customer", r["customer_name"], r["customer_id"]),
            b.local(r["accepted_at"]),
            b.local(r["contact_due"]), b.local(r["contacted_at"]), b.yes_no(r["contact_ok"]),
            b.local(r["reply_due"]), b.local(r["replied_at"]), b.yes_no(r["reply_ok"]),
            b.status(complaint_status(r["status"])), r["content"], r["area_name"]])
    return sheet


def arrears_sheet(b: _Book) -> Sheet:
    assert b.fig.detail is not None
    header = b.cols("arr", ("id", "account", "customer", "owner", "amount", "since", "created",
                            "notice", "cut_off", "paid", "restore_due", "restored", "restore_ok",
                            "outstanding", "status", "decision", "decision_reason"))
    sheet = Sheet(b.w("report.sheet.arrears"), header, formats={4: MONEY, 5: DATE})
    for r in b.fig.detail.arrears:
        since = b.local(r["since"]) if "T" in (r["since"] or "") else _day(r["since"])
        sheet.rows.append([
            r["id"], b.masked("report.arrears", "account", r["account_no"], r["customer_id"]),
            b.masked("report.arrears", "customer", r["customer_name"], r["customer_id"]),
            r["owner"],
            r["amount_cents"] / 100, since, b.local(r["created_at"]),
            b.local(r["notice_served_at"]), b.local(r["cut_off_at"]), b.local(r["paid_at"]),
            b.local(r["restore_due"]), b.local(r["restored_at"]), b.yes_no(r["restore_ok"]),
            b.yes_no(r["outstanding"]),
            b.status(arrears_status(r["status"], r["restore_due"])),
            b.w(f"report.decision.{r['lead_decision']}") if r["lead_decision"] else None,
            b.masked("report.arrears", "decision_reason", r["lead_decision_reason"],
                     r["customer_id"])])
    return sheet


def _day(text: str | None) -> date | str | None:
    """`since` may be a date (YYYY-MM-DD) rather than a moment."""
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return text


def outage_sheet(b: _Book) -> Sheet:
    assert b.fig.detail is not None
    header = b.cols("out", ("id", "kind", "areas", "starts", "ends", "reason", "notice_due",
                            "posted", "notice_ok", "to_tell", "told", "status", "owner"))
    sheet = Sheet(b.w("report.sheet.outages"), header)
    for r in b.fig.detail.outages:
        sheet.rows.append([
            r["id"], b.w(f"report.okind.{r['kind']}"), r["area_names"], b.local(r["starts_at"]),
            b.local(r["ends_at"]), r["reason"], b.local(r["notice_due"]),
            b.local(r["notice_posted_at"]), b.yes_no(r["notice_ok"]), r["to_tell"], r["told"],
            b.status(outage_status(r["status"], from_iso(r["starts_at"]),
                                   from_iso(r["ends_at"]), b.fig.now)), r["owner"]])
    return sheet


def repair_sheet(b: _Book) -> Sheet:
    assert b.fig.detail is not None
    header = b.cols("rep", ("id", "area", "owner", "received", "description", "arrival_due",
                            "arrived", "arrival_ok", "restore_due", "restored", "restore_ok",
                            "status"))
    sheet = Sheet(b.w("report.sheet.repairs"), header, wrap={4})
    for r in b.fig.detail.repairs:
        sheet.rows.append([
            r["id"], r["area_name"], r["owner"], b.local(r["received_at"]), r["description"],
            b.local(r["arrival_due"]), b.local(r["arrived_at"]), b.yes_no(r["arrival_ok"]),
            b.local(r["restore_due"]), b.local(r["restored_at"]), b.yes_no(r["restore_ok"]),
            b.status(repair_status(r["status"]))])
    return sheet


def visit_sheet(b: _Book) -> Sheet:
    assert b.fig.detail is not None
    det = b.fig.detail
    header = b.cols("visit", ("at", "owner", "area", "account", "customer", "categories",
                              "content"))
    sheet = Sheet(b.w("report.sheet.visits"), header)
    for w in det.visits:
        def show(column: str, value: Any, w: LogRow = w) -> Any:
            return b.masked("report.visits", column, value, w.customer_id)

        keys = show("categories", det.categories.get(w.customer_id or 0, []))
        cats = b.w("report.list_sep").join(b.w(f"category.{c}") for c in keys)
        sheet.rows.append([b.moment(w.at, w.has_time), w.owner, w.area,
                           show("account", w.customer_account),
                           show("customer", w.customer_name), cats or None, w.content])
    return sheet


def build(fig: Figures, locale: str) -> bytes:
    """The workbook's bytes. `fig` must have been computed with detail=True."""
    if fig.detail is None:
        raise ValueError("the XLSX needs figures computed with detail=True")
    b = _Book(fig, locale)
    wb = Workbook(write_only=True)
    for sheet in (summary_sheet(b), log_sheet(b, fig.detail.logs), complaint_sheet(b),
                  arrears_sheet(b), outage_sheet(b), repair_sheet(b), visit_sheet(b),
                  *(Sheet(p.sheet_title, p.header, p.rows) for p in fig.parts if p.sheet_title)):
        sheet.write(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
