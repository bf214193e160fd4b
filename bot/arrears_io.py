"""欠费清单 import (issue #14 §1): the marketing system's arrears list (CSV in UTF-8/GBK/UTF-16,
or XLSX) reconciled with the team's arrears records.

Two steps, so nothing is written before the person importing has seen what would change:
1. `stage_list` reads and checks every row (bot/tabular.py, in a worker thread so chats are
   not held up) into arrears_import_rows, and counts what applying would do: added /
   updated / paid / unchanged, and the rows with errors. A file-level error stages nothing.
2. `apply_list` applies a staged list in short transactions (bot/storage/paced.py:
   TAIQU_IMPORT_BATCH_ROWS and TAIQU_IMPORT_TX_MS, TAIQU_IMPORT_PAUSE_MS between them): a
   household is matched by 户号 within the team with its open record (typed by hand or
   imported), whose amount is updated; a new one is added for the manager of its 台区
   (unassigned: the lead); a household an earlier list named and this one does not is
   marked paid at the import time (the restore deadline starts if it was cut off). A
   record only ever typed by hand is never marked paid by a list.
A stopped apply is finished by applying the same import again (every step is idempotent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import resource
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from bot import validators
from bot.config import DATA_DIR
from bot.deadlines import Deadline, RuleSet, due_after
from bot.forms.fields import Invalid
from bot.forms.kinds import MAX_CENTS, parse_amount_text
from bot.i18n import t
from bot.models import Role
from bot.records import runtime as rt
from bot.records.common import MEDICAL, calendar, ruleset
from bot.services import Services
from bot.storage import audit
from bot.storage.batch import Batch, Ref, play
from bot.storage.db import Database, Tx, iso
from bot.storage.paced import Paced
from bot.storage.reminders import Reminders
from bot.tabular import (
    Column,
    Header,
    RowError,
    Source,
    TableError,
    cell_text,
    data_rows,
    open_rows,
    sniff_header,
    yes_no,
)
from bot.textutil import normalize_input

SUBJECT = "arrears"
UNPAID = ("collecting", "notice_served", "cut_off")
_UNPAID_SQL = "('collecting', 'notice_served', 'cut_off')"
RESTORE_SOON = timedelta(hours=2)
MAX_REPORTED_ERRORS = 1000  # rows beyond this are counted, not listed: memory stays flat
LABEL_LOCALE = "zh_CN"  # row problems are in the spreadsheet's language
ENTITY = "arrears_import"
READ_PAGE = 250  # staged rows a dry-run read matches at once: each read stays short
APPLY_STALLED = timedelta(minutes=15)  # an apply claimed this long ago has stopped
_ROOT = Path(__file__).resolve().parent.parent  # where `bot` is, for the reader process
_LINE_LIMIT = 64 * 1024 * 1024  # one JSON line carries a batch of rows


class ArrearsImportError(TableError):
    """A file- or import-level problem: nothing was written."""


# --- columns (data/arrears_columns.json) ---------------------------------------------------
@cache
def _column_data() -> dict[str, Any]:
    with (DATA_DIR / "arrears_columns.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def header() -> Header:
    cols = [Column(c["key"], c["header"], bool(c["required"]), tuple(c.get("aliases", ())))
            for c in _column_data()["columns"]]
    return Header(cols, "account_no")


@cache
def _prepaid_words() -> tuple[frozenset[str], frozenset[str]]:
    words = _column_data()["prepaid_words"]
    return frozenset(words["yes"]), frozenset(words["no"])


async def is_arrears_list(filename: str, data: bytes) -> bool:
    """A file sent in chat is an arrears list when its header row has the list's columns."""
    return await asyncio.to_thread(sniff_header, data, header(), filename)


# --- reading one row ---------------------------------------------------------------------
@lru_cache(maxsize=4096)  # 台区 names repeat on almost every row
def area_key(name: str) -> str:
    return normalize_input(name).replace(" ", "").lower()


@dataclass(frozen=True)
class _Checks:
    min_digits: int
    max_digits: int
    max_text: int
    areas: dict[str, int]  # area key -> id (the team's)
    today: date


@dataclass(frozen=True)
class StagedRow:
    account_no: str
    row_no: int
    customer_name: str
    area_id: int | None
    area_name: str
    amount_cents: int
    since: str
    prepaid: int



_EXCEL_EPOCH = date(1899, 12, 30)
_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})(?:\s*[-/.月]\s*(\d{1,2}))?\s*[日号]?\s*月?")
_DIGITS = re.compile(r"\d{6}(\d{2})?")


def _date_or_none(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def parse_since(value: Any) -> date | None:
    """欠费起始 or 账期 as exports write it: a date cell, an Excel day number (a date cell
    re-saved as a number), 2026-10-01, 2026/10/1, 2026年10月, 202610 (a billing month: its
    first day), 20261001."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        n = int(value)
        if n != value:
            return None
        if 20_000 <= n <= 80_000:  # Excel's day number: 1954 to 2119
            return _EXCEL_EPOCH + timedelta(days=n)
        value = str(n)
    text = normalize_input(cell_text(value)).replace(" ", "")
    if _DIGITS.fullmatch(text):
        y, m = int(text[:4]), int(text[4:6])
        return _date_or_none(y, m, int(text[6:8]) if len(text) == 8 else 1)
    found = _YMD.fullmatch(text) or _YMD.match(text)  # a time after the date is ignored
    if found is None:
        return None
    return _date_or_none(int(found.group(1)), int(found.group(2)), int(found.group(3) or 1))


def parse_amount(value: Any) -> int:
    """Cents from a number cell or text ('1,234.50', '￥300', '300元'); Invalid otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            cents = Decimal(str(value)) * 100
        except InvalidOperation:
            raise Invalid("arrears.amount.invalid", text=str(value)) from None
        if cents != cents.to_integral_value():
            raise Invalid("arrears.amount.decimals", text=str(value))
        if cents <= 0:
            raise Invalid("arrears.amount.zero" if cents == 0 else "arrears.amount.negative",
                          text=str(value))
        if cents > MAX_CENTS:
            raise Invalid("arrears.amount.too_big", text=str(value))
        return int(cents)
    return parse_amount_text(cell_text(value))


def parse_prepaid(text: str) -> bool | None:
    words_yes, words_no = _prepaid_words()
    s = normalize_input(text).replace(" ", "")
    if s in words_no:
        return False
    if s in words_yes:
        return True
    return yes_no(text)


def _problem(exc: Invalid, column: str) -> str:
    return f"{column}：" + t(LABEL_LOCALE, exc.key, **exc.kwargs).rstrip("。")


def check_row(number: int, cells: Sequence[Any], cols: dict[str, int], checks: _Checks,
              problems: list[str]) -> StagedRow | None:
    """One data row as a staged household, or None with its problems noted."""
    def cell(key: str) -> Any:
        i = cols.get(key)
        return cells[i] if i is not None and i < len(cells) else None

    raw_account = cell_text(cell("account_no"))
    account: str | None = None
    if not raw_account:
        problems.append("户号为空")
    else:
        checked = validators.check_account_no(raw_account, checks.min_digits, checks.max_digits)
        if isinstance(checked, validators.Rejected):
            problems.append(t(LABEL_LOCALE, checked.key, **checked.kwargs).rstrip("。"))
        else:
            account = checked
    name = " ".join(cell_text(cell("name")).split())
    if not name:
        problems.append("户名为空")
    elif len(name) > checks.max_text:
        problems.append(f"户名太长（{len(name)} 字，最多 {checks.max_text} 字）")
    area = " ".join(cell_text(cell("area")).split())
    if not area:
        problems.append("台区为空")
    amount = 0
    raw_amount = cell("amount")
    if cell_text(raw_amount) == "":
        problems.append("欠费金额为空")
    else:
        try:
            amount = parse_amount(raw_amount)
        except Invalid as exc:
            problems.append(_problem(exc, "欠费金额"))
    since = parse_since(cell("since")) if cell_text(cell("since")) else None
    if cell_text(cell("since")) == "":
        problems.append("欠费起始为空")
    elif since is None:
        problems.append(f"欠费起始「{cell_text(cell('since'))}」看不懂（如 2026-10-01 或 202610）")
    elif since > checks.today:
        problems.append(f"欠费起始 {since.isoformat()} 晚于今天")
    raw_prepaid = cell_text(cell("prepaid"))
    prepaid = parse_prepaid(raw_prepaid)
    if prepaid is None:
        problems.append(f"是否费控「{raw_prepaid}」看不懂（填 是 或 否）")
    if problems or account is None or since is None:
        return None
    return StagedRow(account, number, name, checks.areas.get(area_key(area)), area, amount,
                     since.isoformat(), int(bool(prepaid)))


# --- step 1: staging -----------------------------------------------------------------------
@dataclass
class ImportSummary:
    import_id: int
    team: str
    filename: str
    state: str
    valid_rows: int = 0
    error_rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS
    added: int = 0
    updated: int = 0
    paid: int = 0
    unchanged: int = 0
    hand_kept: int = 0  # typed by hand, not in the list: left as they are
    to_lead: int = 0  # new households whose 台区 has no manager: given to the lead
    lead: str = ""
    unknown_areas: list[str] = field(default_factory=list)
    reader_mb: float = 0.0  # the reader process's peak resident memory (benchmarks)


def read_list(source: Source, name: str, checks: _Checks, batch_rows: int,
              emit: Callable[[dict[str, Any]], None]) -> None:
    """Every row read and checked: {"rows": [...]} per batch of valid households, {"errors":
    [[row, problems]]} for rows with problems (the first MAX_REPORTED_ERRORS listed), then
    {"end": number of rows with problems}. A file-level problem raises TableError."""
    rows = open_rows(source, header(), name)
    cols: dict[str, int] = {}
    seen: dict[str, int] = {}
    batch: list[list[Any]] = []
    errors: list[list[Any]] = []
    error_rows = reported = 0
    for number, cells in _rows_of(rows, cols):
        problems: list[str] = []
        row = check_row(number, cells, cols, checks, problems)
        account = row.account_no if row else None
        if row is not None and account in seen:
            problems.insert(0, f"户号 {account} 与第 {seen[account]} 行重复")
            row = None
        elif account is not None:
            seen[account] = number
        if row is None:
            error_rows += 1
            if reported < MAX_REPORTED_ERRORS:
                reported += 1
                errors.append([number, problems])
            continue
        batch.append(list(dataclasses.astuple(row)))
        if len(batch) >= batch_rows:
            emit({"rows": batch, "errors": errors})
            batch, errors = [], []
    emit({"rows": batch, "errors": errors})
    emit({"end": error_rows, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})


def _rows_of(rows: Iterator[Sequence[Any]],
             cols: dict[str, int]) -> Iterator[tuple[int, Sequence[Any]]]:
    try:
        yield from data_rows(rows, header(), cols)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


async def team_named(db: Database, team: str) -> int:
    row = await db.fetchone("SELECT id FROM teams WHERE name = ?", (team.strip(),))
    if row is not None:
        return int(row["id"])
    names = [r["name"] for r in await db.fetchall("SELECT name FROM teams ORDER BY id")]
    raise ArrearsImportError(f"班组「{team}」不存在 / team not found; 已有班组 / existing teams: "
                             + ("、".join(names) or "（没有 / none）"))


async def stage_list(services: Services, source: Source, team_id: int, *, filename: str = "",
                     user_id: int | None = None, actor: str = "cli") -> ImportSummary:
    """Step 1: the file's valid rows staged under a new import, and what applying would do.
    A file-level problem raises ArrearsImportError (TableError) and leaves nothing staged."""
    settings = services.settings
    now = services.clock.now()
    name = filename or (source.name if isinstance(source, Path) else "")
    areas = await services.db.fetchall("SELECT id, name FROM areas WHERE team_id = ?",
                                       (team_id,))
    checks = _Checks(settings.account_no_min_digits, settings.account_no_max_digits,
                     settings.max_text_length, {area_key(r["name"]): int(r["id"]) for r in areas},
                     now.astimezone(settings.tz).date())
    async with services.db.tx() as tx:
        import_id = int(await tx.execute(
            "INSERT INTO arrears_imports(team_id, user_id, actor, filename, created_at) "
            "VALUES (?, ?, ?, ?, ?)", (team_id, user_id, actor, name, iso(now))) or 0)
    summary = ImportSummary(import_id, await _team_name(services.db, team_id), name, "staging")
    try:
        await _stage_rows(services, source, name, checks, import_id, summary)
    except BaseException:
        await discard(services.db, import_id)
        raise
    async with services.db.tx() as tx:
        await tx.execute("UPDATE arrears_imports SET state = 'staged', valid_rows = ?, "
                         "error_rows = ? WHERE id = ?",
                         (summary.valid_rows, summary.error_rows, import_id))
    summary.state = "staged"
    await _supersede(services.db, team_id, import_id)
    await _count_changes(services, team_id, summary)
    return summary


async def _supersede(db: Database, team_id: int, import_id: int) -> None:
    """A newer list makes the team's lists still waiting for 确认导入 obsolete."""
    for r in await db.fetchall("SELECT id FROM arrears_imports WHERE team_id = ? AND id < ? "
                               "AND state = 'staged'", (team_id, import_id)):
        await discard(db, int(r["id"]))


async def _stage_rows(services: Services, source: Source, name: str, checks: _Checks,
                      import_id: int, summary: ImportSummary) -> None:
    """Read and checked in a child process (`python -m bot.arrears_io`), written here in short
    transactions. Not a thread: parsing 100,000 rows holds the interpreter, and every chat
    step of this process would wait for it (issue #12: no chat step over 200 ms)."""
    spec = {"name": name, "path": str(source) if isinstance(source, Path) else None,
            "min": checks.min_digits, "max": checks.max_digits, "max_text": checks.max_text,
            "areas": checks.areas, "today": checks.today.isoformat(),
            "batch": services.settings.import_batch_rows}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.arrears_io", json.dumps(spec),
        stdin=asyncio.subprocess.PIPE if isinstance(source, bytes) else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        limit=_LINE_LIMIT)
    try:
        if isinstance(source, bytes):
            assert proc.stdin is not None
            proc.stdin.write(source)
            await proc.stdin.drain()
            proc.stdin.close()
        await _take_batches(Paced.of(services), proc, import_id, summary)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _take_batches(paced: Paced, proc: asyncio.subprocess.Process, import_id: int,
                        summary: ImportSummary) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    while line := await proc.stdout.readline():
        msg = json.loads(line)
        if "fail" in msg:
            raise ArrearsImportError(msg["fail"])
        if "end" in msg:
            summary.error_rows = int(msg["end"])
            summary.reader_mb = msg.get("rss_kb", 0) / 1024
            await proc.wait()
            return
        summary.errors += [RowError(n, tuple(p)) for n, p in msg["errors"]]
        rows = msg["rows"]
        while rows:
            async with paced.tx() as tx:
                part, rows = rows[:paced.rows], rows[paced.rows:]
                await tx.executemany(
                    "INSERT INTO arrears_import_rows(import_id, account_no, row_no, "
                    "customer_name, area_id, area_name, amount_cents, since, prepaid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(import_id, *r) for r in part])
            summary.valid_rows += len(part)
    err = (await proc.stderr.read()).decode("utf-8", "replace").strip().splitlines()
    raise ArrearsImportError("读取文件失败 / reading the file failed: "
                             + (err[-1] if err else f"exit {await proc.wait()}"))


async def discard(db: Database, import_id: int) -> None:
    """A staged list dropped (cancelled, or its file failed): its rows go, the import is
    kept as cancelled (the audit of what was sent)."""
    async with db.tx() as tx:
        await tx.execute("UPDATE arrears_imports SET state = 'cancelled' WHERE id = ? "
                         "AND state IN ('staging', 'staged')", (import_id,))
    await drop_staged(db, import_id)


async def drop_staged(db: Database, import_id: int, page: int = 1000) -> None:
    """The staged rows deleted a page per transaction: 100,000 rows in one statement would
    hold the write lock for a noticeable time."""
    while True:
        async with db.tx() as tx:
            await tx.execute(
                "DELETE FROM arrears_import_rows WHERE import_id = ? AND account_no IN ("
                "SELECT account_no FROM arrears_import_rows WHERE import_id = ? "
                "ORDER BY account_no LIMIT ?)", (import_id, import_id, page))
            if tx.rowcount < page:
                return
        await asyncio.sleep(0)


async def _team_name(db: Database, team_id: int) -> str:
    row = await db.fetchone("SELECT name FROM teams WHERE id = ?", (team_id,))
    return str(row["name"]) if row else ""


# --- what applying does, row by row (the dry run counts with the same code) -----------------
_MATCH_SQL = (
    "SELECT s.*, a.id AS rec_id, a.amount_cents AS rec_amount, a.prepaid AS rec_prepaid, "
    "a.imported AS rec_imported, a.listed_in AS rec_listed "
    "FROM arrears_import_rows s LEFT JOIN arrears a ON a.id = ("
    f"  SELECT min(x.id) FROM arrears x WHERE x.team_id = ? AND x.account_no = s.account_no "
    f"  AND x.status IN {_UNPAID_SQL}) "
    "WHERE s.import_id = ? AND s.account_no > ? ORDER BY s.account_no LIMIT ?")


def _change(r: Any) -> str:
    """added / updated / unchanged for one staged row and the open record it matched."""
    if r["rec_id"] is None:
        return "added"
    if r["rec_amount"] != r["amount_cents"] or (
            r["rec_imported"] and r["rec_prepaid"] != r["prepaid"]):
        return "updated"
    return "unchanged"


async def _page(conn: Database | Tx, team_id: int, import_id: int, after: str,
                size: int) -> list[Any]:
    return await conn.fetchall(_MATCH_SQL, (team_id, import_id, after, size))


async def managers_by_area(db: Database, team_id: int) -> dict[int, int]:
    """area id -> the manager who has it (the first, when two share it)."""
    rows = await db.fetchall(
        "SELECT ua.area_id, min(u.id) AS user_id FROM user_areas ua "
        "JOIN users u ON u.id = ua.user_id "
        "WHERE u.team_id = ? AND u.role = 'manager' AND u.active = 1 GROUP BY ua.area_id",
        (team_id,))
    return {int(r["area_id"]): int(r["user_id"]) for r in rows}


async def _lead_for(services: Services, team_id: int, user_id: int | None) -> tuple[int, str]:
    """Who gets households no manager has: the lead importing, else the team's lead (or
    admin). An import needs one only when it has such households."""
    if user_id is not None:
        user = await services.people.user(user_id)
        if user is not None and user.role is not Role.MANAGER:
            return user.id, user.name
    leads = await services.people.leads_of(team_id)
    if not leads:
        leads = [u for u in await services.people.users()
                 if u.team_id == team_id and u.role is Role.ADMIN]
    if not leads:
        raise ArrearsImportError("班组没有班长，台区无人负责的欠费户无人接收 / the team has no "
                                 "lead to take households of areas no manager has")
    return leads[0].id, leads[0].name


async def _count_changes(services: Services, team_id: int, summary: ImportSummary) -> None:
    """The dry run: what applying the staged list would change, written nowhere. Read in
    pages, and the households leaving the list counted from two totals rather than one
    query over every record: no single read holds the database for long."""
    db = services.db
    managers = await managers_by_area(db, team_id)
    matched_listed = matched_hand = 0
    after = ""
    size = max(1, min(READ_PAGE, services.settings.import_batch_rows))
    while page := await _page(db, team_id, summary.import_id, after, size):
        for r in page:
            change = _change(r)
            setattr(summary, change, getattr(summary, change) + 1)
            if change == "added":
                summary.to_lead += managers.get(r["area_id"] or 0) is None
            elif r["rec_listed"] is None:
                matched_hand += 1
            else:
                matched_listed += 1
        after = page[-1]["account_no"]
    totals = await db.fetchone(
        "SELECT sum(CASE WHEN listed_in IS NULL THEN 0 ELSE 1 END) AS listed, "
        "sum(CASE WHEN listed_in IS NULL THEN 1 ELSE 0 END) AS hand "
        f"FROM arrears WHERE team_id = ? AND status IN {_UNPAID_SQL}", (team_id,))
    summary.paid = max(0, int(totals["listed"] or 0) - matched_listed) if totals else 0
    summary.hand_kept = max(0, int(totals["hand"] or 0) - matched_hand) if totals else 0
    summary.unknown_areas = [r["area_name"] for r in await db.fetchall(
        "SELECT DISTINCT area_name FROM arrears_import_rows WHERE import_id = ? "
        "AND area_id IS NULL ORDER BY area_name LIMIT 10", (summary.import_id,))]
    if summary.to_lead:
        summary.lead = (await _lead_for(services, team_id, await _importer(db, summary)))[1]


async def _importer(db: Database, summary: ImportSummary) -> int | None:
    row = await db.fetchone("SELECT user_id FROM arrears_imports WHERE id = ?",
                            (summary.import_id,))
    return int(row["user_id"]) if row and row["user_id"] is not None else None


# --- step 2: applying ----------------------------------------------------------------------
class ImportNotOpen(ArrearsImportError):
    """The import was applied or cancelled already, or a newer list came after it."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


async def load_import(db: Database, import_id: int) -> Any:
    return await db.fetchone("SELECT * FROM arrears_imports WHERE id = ?", (import_id,))


async def summary_of(services: Services, import_id: int) -> ImportSummary:
    row = await load_import(services.db, import_id)
    if row is None:
        raise ImportNotOpen("missing")
    summary = ImportSummary(import_id, await _team_name(services.db, row["team_id"]),
                            row["filename"], row["state"], row["valid_rows"], row["error_rows"])
    if row["state"] in ("applied", "applying"):
        summary.added, summary.updated = row["added"], row["updated"]
        summary.paid, summary.unchanged = row["paid"], row["unchanged"]
    return summary


async def apply_list(services: Services, import_id: int) -> ImportSummary:
    """Step 2, in short transactions. Raises ImportNotOpen for an import applied, cancelled
    or overtaken by a newer applied list (applying an older list would undo the newer)."""
    db = services.db
    row = await load_import(db, import_id)
    if row is None:
        raise ImportNotOpen("missing")
    team_id = int(row["team_id"])
    newer = await db.fetchone("SELECT 1 FROM arrears_imports WHERE team_id = ? AND id > ? "
                              "AND state IN ('applying', 'applied')", (team_id, import_id))
    if newer is not None:
        raise ImportNotOpen("overtaken")
    now = services.clock.now()
    # Claimed once (two leads tapping 确认导入 together apply it once); an apply that stopped
    # half-way (a restart) may be taken up again after a while: every step is idempotent.
    stalled = iso(now - APPLY_STALLED)
    async with db.tx() as tx:
        await tx.execute("UPDATE arrears_imports SET state = 'applying', applied_at = ? "
                         "WHERE id = ? AND (state = 'staged' OR (state = 'applying' "
                         "AND applied_at < ?))", (iso(now), import_id, stalled))
        claimed = tx.rowcount > 0
    if not claimed:
        raise ImportNotOpen(str(row["state"]))
    summary = ImportSummary(import_id, await _team_name(db, team_id), row["filename"],
                            "applying", row["valid_rows"], row["error_rows"])
    writer = _Writer(services, team_id, import_id, now, summary)
    await writer.prepare(row["user_id"])
    await writer.match_rows()
    await writer.mark_gone_paid()
    async with db.tx() as tx:
        await tx.execute(
            "UPDATE arrears_imports SET state = 'applied', added = ?, updated = ?, paid = ?, "
            "unchanged = ?, applied_at = ? WHERE id = ?",
            (summary.added, summary.updated, summary.paid, summary.unchanged, iso(now),
             import_id))
        await audit.record(tx, team_id=team_id, user_id=row["user_id"], actor=row["actor"],
                           entity=ENTITY, entity_id=import_id, action="import", at=now,
                           detail={"file": row["filename"], "added": summary.added,
                                   "updated": summary.updated, "paid": summary.paid,
                                   "unchanged": summary.unchanged,
                                   "errors": summary.error_rows})
    await drop_staged(db, import_id)
    summary.state = "applied"
    return summary


@dataclass
class _Writer:
    services: Services
    team_id: int
    import_id: int
    now: datetime
    summary: ImportSummary
    managers: dict[int, int] = field(default_factory=dict)
    lead_id: int | None = None
    lead_name: str = ""
    no_lead: ArrearsImportError | None = None
    importer: int | None = None
    rules: RuleSet | None = None
    team_leads: list[int] = field(default_factory=list)
    paced: Paced = field(init=False)

    async def prepare(self, importer: int | None) -> None:
        """What every page needs, read before the page's transaction."""
        self.paced = Paced.of(self.services)
        self.managers = await managers_by_area(self.services.db, self.team_id)
        self.importer = importer
        self.rules = ruleset(self.services)
        self.team_leads = [u.id for u in await self.services.people.leads_of(self.team_id)]
        try:
            self.lead_id, self.lead_name = await _lead_for(self.services, self.team_id,
                                                           importer)
        except ArrearsImportError as exc:
            self.no_lead = exc  # raised only if a household needs one

    def _lead(self) -> int:
        if self.lead_id is None:
            raise self.no_lead or ArrearsImportError("no lead")
        self.summary.lead = self.lead_name
        return self.lead_id

    async def match_rows(self) -> None:
        after = ""
        while True:
            async with self.paced.tx() as tx:
                page = await _page(tx, self.team_id, self.import_id, after, self.paced.rows)
                if not page:
                    return
                await self._apply_page(tx, page)
            after = page[-1]["account_no"]

    async def _apply_page(self, tx: Tx, page: list[Any]) -> None:
        """One page in one transaction, written with executemany: a chat step waiting for
        the database waits for a few statements, not one round trip per household."""
        stamp = iso(self.now)
        register = await _register(tx, self.team_id, [r["account_no"] for r in page])
        ruleset_name = self.rules.name if self.rules else ""
        inserts: list[tuple[Any, ...]] = []
        asks: list[tuple[Any, ...]] = []  # medical and prepaid: inserted one by one
        updates: list[tuple[Any, ...]] = []
        for r in page:
            change = _change(r)
            setattr(self.summary, change, getattr(self.summary, change) + 1)
            if change != "added":
                updates.append((r["amount_cents"], r["prepaid"], self.import_id, r["area_id"],
                                r["area_name"], r["amount_cents"], stamp, r["rec_id"]))
                continue
            owner = self.managers.get(r["area_id"] or 0)
            if owner is None:
                owner = self._lead()
                self.summary.to_lead += 1
            customer = register.get(r["account_no"])
            medical = bool(customer and customer[1])
            row = (self.team_id, owner, r["account_no"], customer[0] if customer else None,
                   r["customer_name"], r["amount_cents"], r["since"], r["prepaid"],
                   int(customer is not None), int(medical), ruleset_name, stamp, r["area_id"],
                   r["area_name"], self.import_id)
            (asks if medical and r["prepaid"] else inserts).append(row)
        if inserts:
            await tx.executemany(_INSERT, inserts)
        if updates:
            await tx.executemany(_UPDATE, updates)
        for row in asks:  # the system may cut it any time: ask the leads at once
            rid = int(await tx.execute(_INSERT, row) or 0)
            for lead in self.team_leads:
                await plan_decision(tx, rid, self.team_id, lead, self.now)

    async def mark_gone_paid(self) -> None:
        """Households an earlier list named and this one does not: paid at the import. A
        cut-off one gets its restore deadline and ladder (record_paid); the others are
        settled in bulk, their reminders cancelled."""
        db = self.services.db
        rules = self.rules or ruleset(self.services)
        cal = await calendar(self.services)
        stamp = iso(self.now)
        gone = await db.fetchall(  # read once: ids only, a few bytes a household
            f"SELECT id, user_id, status FROM arrears WHERE team_id = ? AND status IN "
            f"{_UNPAID_SQL} AND listed_in IS NOT NULL AND listed_in <> ? ORDER BY id",
            (self.team_id, self.import_id))
        start = 0
        while start < len(gone):
            async with self.paced.tx() as tx:
                rows = gone[start:start + self.paced.rows]
                start += len(rows)
                plain = [int(r["id"]) for r in rows if r["status"] != "cut_off"]
                if plain:
                    marks = ", ".join("?" for _ in plain)
                    await tx.execute(
                        f"UPDATE arrears SET status = 'paid', paid_at = ?, updated_at = ? "
                        f"WHERE id IN ({marks}) AND status IN ('collecting', 'notice_served')",
                        (stamp, stamp, *plain))
                    self.summary.paid += tx.rowcount
                    await tx.execute(
                        "UPDATE reminders SET state = 'cancelled' WHERE subject = ? AND "
                        f"subject_id IN ({marks}) AND state = 'pending'", (SUBJECT, *plain))
                for r in (r for r in rows if r["status"] == "cut_off"):
                    restore = restore_deadline(rules, cal, self.now, was_cut=True)
                    if await record_paid(tx, int(r["id"]), self.team_id, int(r["user_id"]),
                                         r["status"], self.now, restore, self.now):
                        self.summary.paid += 1


_INSERT = ("INSERT INTO arrears(team_id, user_id, account_no, customer_id, customer_name, "
           "amount_cents, since, prepaid, in_register, medical, ruleset, status, created_at, "
           "area_id, area_name, listed_in, imported) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'collecting', ?, ?, ?, ?, 1)")
# A matched household: the list's amount (and, for one a list added, its 费控 flag); a
# hand-entered record keeps what its manager recorded otherwise.
_UPDATE = ("UPDATE arrears SET amount_cents = ?, "
           "prepaid = CASE WHEN imported = 1 THEN ? ELSE prepaid END, listed_in = ?, "
           "area_id = COALESCE(area_id, ?), area_name = COALESCE(area_name, ?), "
           "updated_at = CASE WHEN amount_cents = ? THEN updated_at ELSE ? END WHERE id = ?")


async def _register(tx: Tx, team_id: int, accounts: list[str]) -> dict[str, tuple[int, bool]]:
    """户号 -> (customer id, medical) for the households the register has."""
    marks = ", ".join("?" for _ in accounts)
    rows = await tx.fetchall(
        "SELECT c.id, c.account_no, EXISTS (SELECT 1 FROM customer_categories cc WHERE "
        "cc.customer_id = c.id AND cc.category = ?) AS medical FROM customers c "
        f"WHERE c.team_id = ? AND c.account_no IN ({marks})", (MEDICAL, team_id, *accounts))
    return {r["account_no"]: (int(r["id"]), bool(r["medical"])) for r in rows}


# --- payment and decisions, shared with the hand-entered record's actions --------------------
def restore_deadline(rules: RuleSet, cal: Any, paid_at: datetime,
                     was_cut: bool) -> Deadline | None:
    """When power must be back after a payment: only for a household that was cut off."""
    rule = rules.arrears.restore_after_payment
    if not was_cut or rule is None:
        return None
    return due_after(paid_at, rule, cal, rules.working_hours)


async def record_paid(tx: Tx, rid: int, team_id: int, user_id: int, status: str, at: datetime,
                      restore: Deadline | None, now: datetime) -> bool:
    """已缴费: the record paid at `at` (False if its status moved meanwhile); its reminders
    cancelled and, if it was cut off, the urgent restore ladder planned (the team's leads
    but the owner told at due, read as it is planned)."""
    batch = Batch()
    paid = record_paid_into(batch, rid, team_id, user_id, status, at, restore, now)
    return (await play(tx, batch)).changed(paid)


def record_paid_into(batch: Batch, rid: int, team_id: int, user_id: int, status: str,
                     at: datetime, restore: Deadline | None, now: datetime, *,
                     needed: bool = False) -> Ref:
    """`record_paid` as a batch's writes (the 已缴费 form's 保存, with its close): changed
    only if the status was still `status` (`needed`: else nothing is written)."""
    paid = batch.update("UPDATE arrears SET status = 'paid', paid_at = ?, restore_due = ?, "
                        "updated_at = ? WHERE id = ? AND status = ?",
                        (iso(at), iso(restore.due) if restore else None, iso(now), rid, status),
                        rid, needed=needed)
    # Follow-ups, cut-off, decision: all moot.
    Reminders.cancel_into(batch, SUBJECT, rid, if_new=paid)
    if restore is not None:  # urgent (quiet hours do not hold them); leads told at due
        due = restore.due
        rt.plan_ladders_into(batch, SUBJECT, rid, team_id, user_id, [("restore", [
            rt.Rung("soon", due - RESTORE_SOON, urgent=True),
            rt.Rung("due", due, urgent=True, skip_if_past=False),
            rt.Rung("escalate", due, to_leads=True, urgent=True, skip_if_past=False)])],
            now, if_new=paid)
    return paid


async def plan_decision(tx: Tx, aid: int, team_id: int, lead_id: int, now: datetime,
                        again: bool = False) -> None:
    """Ask one lead (non-urgent: a decision, not an emergency). `again`: the manager's
    re-ask, at most once a day per lead."""
    key = f"{SUBJECT}:{aid}:decision:{lead_id}" + (f":{now.date().isoformat()}" if again else "")
    await Reminders.plan(tx, team_id=team_id, user_id=lead_id, subject=SUBJECT, subject_id=aid,
                         kind="decision", due_at=now, now=now, key=key)


def _child() -> None:
    """`python -m bot.arrears_io SPEC`: the reader process of _stage_rows (the file's bytes on
    stdin, or its path in SPEC); JSON lines on stdout."""
    spec = json.loads(sys.argv[1])
    source: Source = Path(spec["path"]) if spec["path"] else sys.stdin.buffer.read()
    checks = _Checks(spec["min"], spec["max"], spec["max_text"], spec["areas"],
                     date.fromisoformat(spec["today"]))

    def emit(msg: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(msg, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    try:
        read_list(source, spec["name"], checks, spec["batch"], emit)
    except TableError as exc:
        emit({"fail": str(exc)})


if __name__ == "__main__":
    _child()
