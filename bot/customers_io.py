"""特殊客户档案 import (CSV / XLSX from the marketing system) and export (XLSX).

Both stream: rows are read one at a time, so a 100k-row file costs little more memory than
the set of 户号 seen (and, for an XLSX, its shared-string table: see bot/tabular.py). An import
validates the whole file first, then writes in short transactions (see import_customers).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from bot import validators
from bot.i18n import t
from bot.privacy import mask
from bot.private_files import open_private
from bot.rules import categories, categories_in, sensitive_categories
from bot.services import Services
from bot.storage import audit
from bot.storage.customers import ENTITY, CustomerData
from bot.storage.db import Database, Tx, from_iso, iso
from bot.storage.paced import Paced
from bot.tabular import (
    Column,
    Header,
    ImportCounts,
    RowError,
    Rows,
    TableError,
    cell_text,
    data_rows,
    letter,
    open_rows,
    yes_no,
)
from bot.textutil import normalize_input

BATCH_SIZE = 1000
MAX_REPORTED_ERRORS = 1000  # rows beyond this are counted, not listed: keeps memory flat
MASK_FILE = "customers"  # the export's entry in bot.privacy.MASKS
LABEL_LOCALE = "zh_CN"  # the spreadsheet's own language, whatever the operator's locale
V = TypeVar("V")


# --- columns ----------------------------------------------------------------------------
COLUMNS: tuple[Column, ...] = (
    Column("account_no", "户号", True, ("用户编号", "客户编号"), 16),
    Column("name", "户名", True, ("用户名称", "客户名称"), 10),
    Column("area", "台区", True, ("台区名称",), 12),
    Column("address", "地址", True, ("用电地址",), 30),
    Column("phone", "联系电话", True, ("手机号码",), 15),
    Column("categories", "类别", True, (), 22),
    Column("situation", "具体情况", False, (), 36),
    Column("emergency_name", "紧急联系人", False, (), 10),
    Column("emergency_phone", "紧急联系人电话", False, (), 15),
    Column("visit_every_days", "走访周期(天)", False, ("走访周期",), 12),
    Column("notify_first", "停电优先告知", False, (), 12),
    Column("proxy_pay", "代缴", False, (), 8),
)
EXPORT_EXTRA: tuple[Column, ...] = (
    Column("last_visit_at", "最近走访", False, (), 17),
    Column("created_at", "登记日期", False, (), 12),
)

_CATEGORY_SPLIT = re.compile(r"[、,，;；/／\s]+")
HEADER = Header(COLUMNS, "account_no")
# A file-level problem (unreadable file, missing column, unknown team): nothing imported.
# The shared reader's error, under the name callers of this module know.
CustomersIOError = TableError


@dataclass
class ImportResult(ImportCounts):
    created_areas: list[str] = field(default_factory=list)
    # Updated records that stay deactivated: a deactivation is a deliberate act with a
    # reason, so an import does not undo it.
    inactive: int = 0


@dataclass(frozen=True)
class ExportResult:
    file: str
    team: str
    rows: int
    full: bool


_text = cell_text
_letter = letter


def _open_rows(path: Path) -> Rows:
    """The file's rows (bot/tabular.py: CSV in UTF-8/GBK/UTF-16, or XLSX)."""
    return open_rows(path, HEADER)


# --- validating one row ------------------------------------------------------------------
@lru_cache(maxsize=4096)  # 台区 names and category words repeat on almost every row
def _area_key(name: str) -> str:
    return normalize_input(name).replace(" ", "").lower()


def _category_label(key: str) -> str:
    return t(LABEL_LOCALE, f"category.{key}")


def _category_index() -> dict[str, str]:
    """Whole labels, their '/'-separated parts and the keys -> category key."""
    index: dict[str, str] = {}
    for c in categories():
        label = _category_label(c.key)
        for word in (c.key, label, *re.split(r"[/／]", label)):
            index[_area_key(word)] = c.key
    return index


_flag = yes_no


@dataclass
class _Context:
    settings_min: int
    settings_max: int
    max_text: int
    team: str
    areas: dict[str, int]  # area key -> id
    area_names: list[str]
    create_areas: bool
    # Computed once per import: they are needed on every row.
    category_index: dict[str, str] = field(default_factory=lambda: _category_index())
    category_order: list[str] = field(default_factory=lambda: [c.key for c in categories()])
    category_options: str = field(default_factory=lambda: "、".join(
        _category_label(c.key) for c in categories()))


def _categories(text: str, ctx: _Context, problems: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    unknown: list[str] = []
    for token in _CATEGORY_SPLIT.split(normalize_input(text)):
        if not token:
            continue
        key = ctx.category_index.get(_area_key(token))
        keys = [key] if key else categories_in(token)
        if not keys:
            unknown.append(token)
        found += [k for k in keys if k not in found]
    if unknown:
        problems.append(f"类别「{'、'.join(unknown)}」不认识（可选：{ctx.category_options}）")
    elif not found:
        problems.append(f"类别为空（可选：{ctx.category_options}）")
    return tuple(sorted(found, key=ctx.category_order.index))  # the rule table's order


def _short(value: str, label: str, ctx: _Context, problems: list[str],
           required: bool) -> str | None:
    text = " ".join(value.split())  # collapses ideographic spaces and line breaks too
    if not text:
        if required:
            problems.append(f"{label}为空")
        return None
    if len(text) > ctx.max_text:
        problems.append(f"{label}太长（{len(text)} 字，最多 {ctx.max_text} 字）")
    return text


@dataclass(frozen=True)
class _Checked:
    account: str | None  # the 户号 if it is well-formed, even when other fields are not
    data: CustomerData | None  # None when the row has problems
    new_area: str | None = None  # an area to create (--create-areas); data.area_id is -1


def _validate(cells: Sequence[Any], cols: dict[str, int], ctx: _Context,
              problems: list[str]) -> _Checked:

    def cell(key: str) -> str:
        i = cols.get(key)
        return _text(cells[i]) if i is not None and i < len(cells) else ""

    raw_account = cell("account_no")
    account = _checked(validators.check_account_no(raw_account, ctx.settings_min,
                                                   ctx.settings_max), "", problems) \
        if raw_account else None
    if not raw_account:
        problems.append("户号为空")
    name = _short(cell("name"), "户名", ctx, problems, required=True)

    raw_area = " ".join(cell("area").split())
    area_id: int | None = None
    new_area: str | None = None
    if not raw_area:
        problems.append("台区为空")
    else:
        key = _area_key(raw_area)
        area_id = ctx.areas.get(key)
        if area_id in (None, -1) and ctx.create_areas:  # -1: planned by an earlier row
            area_id, new_area = -1, normalize_input(raw_area)
        elif area_id is None:
            problems.append(_unknown_area(raw_area, ctx))

    address = _short(cell("address"), "地址", ctx, problems, required=True)

    raw_phone = cell("phone")
    phone = _checked(validators.check_phone(raw_phone), "联系电话", problems) \
        if raw_phone else None
    if not raw_phone:
        problems.append("联系电话为空")

    cats = _categories(cell("categories"), ctx, problems)
    situation = cell("situation").strip() or None
    if situation and len(situation) > ctx.max_text:
        problems.append(f"具体情况太长（{len(situation)} 字，最多 {ctx.max_text} 字）")
    emergency_name = _short(cell("emergency_name"), "紧急联系人", ctx, problems, required=False)
    raw_ephone = cell("emergency_phone")
    emergency_phone = _checked(validators.check_phone(raw_ephone), "紧急联系人电话",
                               problems) if raw_ephone else None

    raw_days = cell("visit_every_days")
    days = _checked(validators.check_visit_days(raw_days), "走访周期", problems) \
        if raw_days else None

    flags: dict[str, bool] = {}
    for key, label in (("notify_first", "停电优先告知"), ("proxy_pay", "代缴")):
        raw = cell(key)
        value = _flag(raw)
        if value is None:
            problems.append(f"{label}「{raw}」看不懂（填 是 或 否）")
        flags[key] = bool(value)

    if problems or account is None or name is None or area_id is None or address is None \
            or phone is None:
        return _Checked(account, None)
    return _Checked(account, CustomerData(
        account_no=account, name=name, area_id=area_id, address=address, phone=phone,
        categories=cats, situation=situation, emergency_name=emergency_name,
        emergency_phone=emergency_phone, visit_every_days=days, **flags), new_area)


def _checked(value: V | validators.Rejected, column: str,
             problems: list[str]) -> V | None:
    """The shared check's value, or None with its message (the chat form's words) noted."""
    if isinstance(value, validators.Rejected):
        text = t(LABEL_LOCALE, value.key, **value.kwargs).rstrip("。")  # problems join with ；
        problems.append(f"{column}：{text}" if column else text)
        return None
    return value


def _unknown_area(raw: str, ctx: _Context) -> str:
    from bot.forms.matching import Choice, match_choice

    choices = [Choice(n, n) for n in ctx.area_names]
    close = match_choice(raw, choices).suggestions
    if close:
        hint = "是不是：" + "、".join(c.label for c in close)
    elif ctx.area_names:
        more = "…" if len(ctx.area_names) > 8 else ""
        hint = "已有台区：" + "、".join(ctx.area_names[:8]) + more
    else:
        hint = "这个班组还没有台区"
    return f"台区「{raw}」在班组「{ctx.team}」里不存在（{hint}；要新建请加 --create-areas）"


# --- writing ----------------------------------------------------------------------------
_DATA_COLUMNS = ("name", "area_id", "address", "phone", "situation", "emergency_name",
                 "emergency_phone", "visit_every_days", "notify_first", "proxy_pay")
_UPSERT = (
    f"INSERT INTO customers(team_id, account_no, {', '.join(_DATA_COLUMNS)}, created_at) "
    f"VALUES (?, ?, {', '.join('?' for _ in _DATA_COLUMNS)}, ?) "
    "ON CONFLICT(team_id, account_no) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _DATA_COLUMNS)
    # Re-import refreshes the data; created_*, last visit and active state are kept.
    + ", updated_at = excluded.created_at, updated_by = NULL"
)


async def _team_id(conn: Tx | Database, team: str) -> int:
    row = await conn.fetchone("SELECT id FROM teams WHERE name = ?", (team,))
    if row is not None:
        return int(row["id"])
    names = [r["name"] for r in await conn.fetchall("SELECT name FROM teams ORDER BY id")]
    existing = "、".join(names) if names else "（没有 / none）"
    raise CustomersIOError(f"班组「{team}」不存在 / team not found; 已有班组 / existing teams: "
                           f"{existing}")


async def _ids(tx: Tx, team_id: int, accounts: list[str]) -> tuple[dict[str, int], int]:
    """户号 -> id of the records that exist, and how many of them are deactivated."""
    marks = ", ".join("?" for _ in accounts)
    rows = await tx.fetchall(
        f"SELECT account_no, id, active FROM customers WHERE team_id = ? "
        f"AND account_no IN ({marks})", (team_id, *accounts))
    return {r["account_no"]: int(r["id"]) for r in rows}, sum(not r["active"] for r in rows)


async def _flush(tx: Tx, team_id: int, batch: list[CustomerData], now: str,
                 result: ImportResult) -> None:
    """Upsert one batch, replace its categories, count inserted / updated into `result`."""
    if not batch:
        return
    accounts = [d.account_no for d in batch]
    existing, inactive = await _ids(tx, team_id, accounts)
    await tx.executemany(_UPSERT, [
        (team_id, d.account_no, d.name, d.area_id, d.address, d.phone, d.situation,
         d.emergency_name, d.emergency_phone, d.visit_every_days, int(d.notify_first),
         int(d.proxy_pay), now) for d in batch])
    if existing:
        marks = ", ".join("?" for _ in existing)
        await tx.execute(f"DELETE FROM customer_categories WHERE customer_id IN ({marks})",
                         list(existing.values()))
    new = [a for a in accounts if a not in existing]
    ids = existing | ((await _ids(tx, team_id, new))[0] if new else {})
    await tx.executemany("INSERT INTO customer_categories(customer_id, category) VALUES (?, ?)",
                         [(ids[d.account_no], c) for d in batch for c in d.categories])
    result.inserted += len(batch) - len(existing)
    result.updated += len(existing)
    result.inactive += inactive
    batch.clear()


class ImportInterrupted(CustomersIOError):
    """The import stopped after some batches were committed: those rows stay imported; running
    the same import again finishes it (every batch is an upsert by 户号, so nothing doubles)."""

    def __init__(self, result: ImportResult, row: int, reason: str) -> None:
        self.result, self.row = result, row
        words = {"row": row, "inserted": result.inserted, "updated": result.updated,
                 "reason": reason}
        super().__init__(t("zh_CN", "audit.import_partial", **words) + " / "
                         + t("en", "audit.import_partial", **words))


# The valid rows of a file, held between validating and writing in a private temporary
# SQLite database (deleted on close), so memory stays flat and the bot's file is not touched.
_STAGE_COLUMNS = ("account_no", *_DATA_COLUMNS, "categories", "new_area")
_STAGE_SQL = (f"CREATE TABLE stage(row INTEGER PRIMARY KEY, {', '.join(_STAGE_COLUMNS)})",
              f"INSERT INTO stage VALUES (?{', ?' * len(_STAGE_COLUMNS)})",
              f"SELECT row, {', '.join(_STAGE_COLUMNS)} FROM stage WHERE row > ? ORDER BY row "
              "LIMIT ?")


def _staged(number: int, d: CustomerData, new_area: str | None) -> tuple[Any, ...]:
    return (number, d.account_no, d.name, d.area_id, d.address, d.phone, d.situation,
            d.emergency_name, d.emergency_phone, d.visit_every_days, int(d.notify_first),
            int(d.proxy_pay), ",".join(d.categories), new_area)


def _unstaged(r: sqlite3.Row) -> tuple[CustomerData, str | None]:
    return CustomerData(
        account_no=r["account_no"], name=r["name"], area_id=r["area_id"], address=r["address"],
        phone=r["phone"], categories=tuple(c for c in r["categories"].split(",") if c),
        situation=r["situation"], emergency_name=r["emergency_name"],
        emergency_phone=r["emergency_phone"], visit_every_days=r["visit_every_days"],
        notify_first=bool(r["notify_first"]), proxy_pay=bool(r["proxy_pay"])), r["new_area"]


async def import_customers(services: Services, path: Path | str, team: str, *,
                           create_areas: bool = False, dry_run: bool = False,
                           actor: str = "cli") -> ImportResult:
    """Validate every row, then upsert the valid ones by 户号 in short transactions, audit once.

    Two phases, so that chats on the same file never wait long for the write lock (issue #12):
    1. read and validate the whole file into a private staging database, writing nothing to
       the bot's file: a file-level problem (CustomersIOError) found anywhere in the file
       still means nothing was imported, as before;
    2. apply the staged rows in short transactions (bot/storage/paced.py: at most
       `import_batch_rows`, pausing `import_pause_ms` between them) so a waiting chat write
       gets the lock.
    If phase 2 stops half-way (disk full, lock not had, Ctrl-C), ImportInterrupted says up to
    which row the file is imported; a re-run applies the file again, idempotently by 户号.
    """
    path = Path(path)
    team = team.strip()
    result = ImportResult(file=str(path), team=team, dry_run=dry_run)
    rows = _open_rows(path)
    settings = services.settings
    now = services.clock.now()
    stage = sqlite3.connect("")  # "": a temporary on-disk database, deleted on close
    stage.row_factory = sqlite3.Row
    try:
        team_id = await _team_id(services.db, team)
        area_rows = await services.db.fetchall(
            "SELECT id, name FROM areas WHERE team_id = ? ORDER BY id", (team_id,))
        ctx = _Context(
            settings_min=settings.account_no_min_digits,
            settings_max=settings.account_no_max_digits,
            max_text=settings.max_text_length, team=team,
            areas={_area_key(r["name"]): int(r["id"]) for r in area_rows},
            area_names=[r["name"] for r in area_rows], create_areas=create_areas)
        stage.execute(_STAGE_SQL[0])
        _stage_rows(stage, rows, ctx, result)
        if dry_run:
            await _count_existing(services.db, stage, team_id, result)
        else:
            await _apply(services, stage, ctx, team_id, now, result)
            async with services.db.tx() as tx:
                await audit.record(tx, team_id=team_id, user_id=None, actor=actor,
                                   entity=ENTITY, entity_id=None, action="import", at=now,
                                   detail={"file": str(path), "inserted": result.inserted,
                                           "updated": result.updated,
                                           "errors": result.error_rows})
    finally:
        rows.close()
        stage.close()
    return result


def _stage_rows(stage: sqlite3.Connection, rows: Iterator[Sequence[Any]], ctx: _Context,
                result: ImportResult) -> None:
    """Phase 1: every row validated; the valid ones into `stage`, the others into `result`."""
    cols: dict[str, int] = {}
    seen: dict[str, int] = {}  # 户号 -> row number: the only per-row state kept
    batch: list[tuple[Any, ...]] = []
    for number, cells in data_rows(rows, HEADER, cols):
        problems: list[str] = []
        checked = _validate(cells, cols, ctx, problems)
        data = checked.data
        if checked.account is not None:
            if checked.account in seen:
                problems.insert(0, f"户号 {checked.account} 与第 {seen[checked.account]} 行重复")
                data = None
            else:
                seen[checked.account] = number
        if data is None:
            result.error_rows += 1
            if len(result.errors) < MAX_REPORTED_ERRORS:
                result.errors.append(RowError(number, tuple(problems)))
            continue
        if checked.new_area is not None:
            _plan_area(checked.new_area, ctx, result)
        batch.append(_staged(number, data, checked.new_area))
        if len(batch) >= BATCH_SIZE:
            stage.executemany(_STAGE_SQL[1], batch)
            batch.clear()
    stage.executemany(_STAGE_SQL[1], batch)


def _plan_area(name: str, ctx: _Context, result: ImportResult) -> None:
    """An area --create-areas will create in phase 2 (-1 until then); named once."""
    key = _area_key(name)
    if key not in ctx.areas:
        ctx.areas[key] = -1
        ctx.area_names.append(name)
        result.created_areas.append(name)


def _pages(stage: sqlite3.Connection, size: Callable[[], int]) -> Iterator[list[sqlite3.Row]]:
    """The staged rows in file order, `size()` at a time (asked again for every page)."""
    after = 0
    while page := stage.execute(_STAGE_SQL[2], (after, size())).fetchall():
        yield page
        after = page[-1]["row"]


async def _count_existing(db: Database, stage: sqlite3.Connection, team_id: int,
                          result: ImportResult) -> None:
    """A dry run's inserted / updated / inactive, read without writing anything."""
    for page in _pages(stage, lambda: BATCH_SIZE):
        marks = ", ".join("?" for _ in page)
        rows = await db.fetchall(
            f"SELECT active FROM customers WHERE team_id = ? AND account_no IN ({marks})",
            (team_id, *(r["account_no"] for r in page)))
        result.updated += len(rows)
        result.inserted += len(page) - len(rows)
        result.inactive += sum(not r["active"] for r in rows)


async def _apply(services: Services, stage: sqlite3.Connection, ctx: _Context, team_id: int,
                 now: datetime, result: ImportResult) -> None:
    """Phase 2: the staged rows in short transactions; ImportInterrupted if it stops midway."""
    paced = Paced.of(services)
    stamp = iso(now)
    done = 0  # the file row up to which everything is committed
    try:
        for page in _pages(stage, lambda: paced.rows):
            async with paced.tx() as tx:
                batch = [await _resolve_area(tx, *_unstaged(r), ctx, team_id, now, services)
                         for r in page]
                await _flush(tx, team_id, batch, stamp, result)
            done = page[-1]["row"]
    # Ctrl-C and cancellation too: the operator must learn how far the import got.
    except (Exception, asyncio.CancelledError, KeyboardInterrupt) as exc:
        if not done:
            raise
        raise ImportInterrupted(result, done, str(exc) or type(exc).__name__) from exc


async def _resolve_area(tx: Tx, data: CustomerData, new_area: str | None, ctx: _Context,
                        team_id: int, now: datetime, services: Services) -> CustomerData:
    """A row of an area --create-areas creates: the area made on its first row."""
    if new_area is None:
        return data
    key = _area_key(new_area)
    area_id = ctx.areas.get(key, -1)
    if area_id == -1:
        area_id = await services.people.ensure_area(tx, team_id, new_area, now)
        ctx.areas[key] = area_id
    return replace(data, area_id=area_id)


# --- export -----------------------------------------------------------------------------
_EXPORT_SQL = """
SELECT c.*, a.name AS area_name,
       (SELECT group_concat(category, ',') FROM customer_categories WHERE customer_id = c.id)
         AS cats
FROM customers c JOIN areas a ON a.id = c.area_id
WHERE c.team_id = ? AND c.active = 1 AND c.account_no > ?
ORDER BY c.account_no LIMIT ?
"""


async def export_customers(services: Services, team: str, path: Path | str, *,
                           full: bool = False, actor: str = "cli") -> ExportResult:
    """The team's active customers as XLSX; masked unless `full` (see module privacy rules).

    Pages through the table by 户号 (the UNIQUE index) so neither the rows nor a long read
    lock are held; written to a temporary file first so a failed export leaves no half file.
    """
    from openpyxl import Workbook

    from bot import xlsx_safe  # openpyxl on first use, not at start-up

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise CustomersIOError(f"{path.name}: 导出文件须以 .xlsx 结尾 / file must end in .xlsx")
    if not path.parent.is_dir():  # fail before the work, not in the middle of openpyxl's save
        raise CustomersIOError(f"{path.parent}: 目录不存在 / directory not found")
    team = team.strip()
    team_id = await _team_id(services.db, team)
    tz = services.settings.tz
    sensitive = sensitive_categories()
    order = [c.key for c in categories()]

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("特殊客户")
    ws.freeze_panes = "A2"  # write-only sheets take views only before the first row
    all_columns = (*COLUMNS, *EXPORT_EXTRA)
    for i, col in enumerate(all_columns):
        ws.column_dimensions[_letter(i)].width = col.width
    ws.auto_filter.ref = f"A1:{_letter(len(all_columns) - 1)}1"
    header = []
    for col in all_columns:
        cell = xlsx_safe.cell(ws, col.header)
        cell.font = _bold()
        header.append(cell)
    ws.append(header)

    count = 0
    after = ""
    while True:
        page = await services.db.fetchall(_EXPORT_SQL, (team_id, after, BATCH_SIZE))
        if not page:
            break
        for r in page:
            cats = sorted(r["cats"].split(",") if r["cats"] else [], key=order.index)
            last_visit = (from_iso(r["last_visit_at"]).astimezone(tz).replace(tzinfo=None)
                          if r["last_visit_at"] else None)
            created = from_iso(r["created_at"]).astimezone(tz).date()
            visit_cell = xlsx_safe.cell(ws, last_visit)
            visit_cell.number_format = "yyyy-mm-dd hh:mm"
            created_cell = xlsx_safe.cell(ws, created)
            created_cell.number_format = "yyyy-mm-dd"
            show = _shown(r, cats, full, bool(sensitive.intersection(cats)))
            ws.append(xlsx_safe.row(ws, [
                show("account_no"), show("name"), r["area_name"], show("address"),
                show("phone"),
                "、".join(_category_label(k) for k in show("categories")),
                show("situation"), show("emergency_name"), show("emergency_phone"),
                r["visit_every_days"], "是" if r["notify_first"] else "否",
                "是" if r["proxy_pay"] else "否", visit_cell, created_cell,
            ]))
            count += 1
        after = page[-1]["account_no"]

    tmp = path.with_name(path.name + ".part")
    try:
        with open_private(tmp) as fh:  # 0600 from the start: it holds personal data
            wb.save(fh)
        os.replace(tmp, path)
    except OSError as exc:
        raise CustomersIOError(f"{path}: 无法写入 / cannot write ({exc.strerror or exc})") \
            from exc
    finally:
        tmp.unlink(missing_ok=True)
    async with services.db.tx() as tx:
        await audit.record(tx, team_id=team_id, user_id=None, actor=actor, entity=ENTITY,
                           entity_id=None, action="export", at=services.clock.now(),
                           detail={"file": str(path), "rows": count, "full": full})
    return ExportResult(file=str(path), team=team, rows=count, full=full)


def _shown(r: Any, cats: list[str], full: bool, sensitive: bool) -> Any:
    """column key -> the value the file shows: as stored with --full, else per MASKS."""
    def show(key: str) -> Any:
        value = cats if key == "categories" else r[key]
        if full or value is None:
            return value
        return mask(MASK_FILE, key, value, sensitive=sensitive)

    return show


def _bold() -> Any:
    from openpyxl.styles import Font

    return Font(bold=True)
