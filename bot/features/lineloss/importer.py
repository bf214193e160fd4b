"""The line-loss file (CSV in UTF-8, GBK or UTF-16, or XLSX): one row per 台区 and day.

The file is read with the imports' shared table reader (bot/tabular.py: encoding detection,
the streaming XLSX reader, the header cell matching) and imported in its two
phases: every row is validated into a private staging database first (a missing column
anywhere means nothing is written; a bad row is listed with its row number and left out),
then the valid rows are upserted by (台区, 日期) in short transactions, so a re-import of the
same days updates them and a chat waiting for the database gets in between batches. Then the
areas imported are looked at for abnormal runs (detect.py)."""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.customers_io import _area_key, _team_id
from bot.features.lineloss import detect
from bot.features.lineloss.limits import limits
from bot.i18n import t
from bot.services import Services
from bot.storage import audit
from bot.storage.db import iso
from bot.storage.paced import Paced
from bot.tabular import (
    Header,
    ImportCounts,
    RowError,
    TableError,
    blank,
    cell_text,
    header_key,
    open_rows,
)

MAX_REPORTED_ERRORS = 1000  # rows beyond this are counted, not listed: keeps memory flat
HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in exports
STAGE_ROWS = 5000  # rows validated between two writes to the staging database
ENTITY = "lineloss"
EXCEL_EPOCH = date(1899, 12, 30)  # an XLSX date cell is a day count from here
_SERIAL_DAYS = range(20000, 80000)  # 1954 .. 2119: a number in a date column is a date
_DAY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_COMPACT_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NUMBER_NOISE = str.maketrans("", "", ", \u00a0kKwWhH")


class LinelossIOError(Exception):
    """A file-level problem (unreadable, no header, unknown team): nothing imported."""


@dataclass
class ImportResult(ImportCounts):
    first_day: str | None = None
    last_day: str | None = None
    areas: int = 0
    follow: detect.FollowUp = field(default_factory=detect.FollowUp)

    @property
    def imported(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True)
class AreaRef:
    id: int
    team_id: int


@dataclass
class _Areas:
    """The areas a row may name: by name or by 台区编号, within the team (or every team when
    none was given: a name two teams share is then ambiguous)."""

    by_key: dict[str, AreaRef | None] = field(default_factory=dict)  # None: ambiguous
    names: list[str] = field(default_factory=list)

    def add(self, key: str, ref: AreaRef) -> None:
        if not key:
            return
        known = self.by_key.get(key, ref)
        self.by_key[key] = ref if known == ref else None


# --- the header ---------------------------------------------------------------------------
def header_index() -> dict[str, str]:
    """Every known header (as header_key folds it) -> its column key (day, area ...)."""
    return {header_key(name): key for key, names in limits().columns.items() for name in names}


def _unit_free(key: str) -> str:
    """'供电量(kWh)' and '线损率(%)' match '供电量' and '线损率'."""
    return re.sub(r"\((?:kwh|千瓦时|%|％)\)$", "", key, flags=re.I)


def map_header(cells: Sequence[Any]) -> dict[str, int]:
    index = header_index()
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        key = header_key(cell_text(cell))
        col = index.get(key) or index.get(_unit_free(key))
        if col is not None and col not in found:
            found[col] = i
    return found


def is_header(cells: Sequence[Any]) -> bool:
    """A line-loss file's header row: a day, a 台区 and the two amounts (the chat's sniff)."""
    found = map_header(cells)
    return {"day", "supplied", "sold"} <= found.keys() and bool(
        {"area", "area_code"} & found.keys())


class _Header(Header):
    """The line-loss header for the shared reader (which picks an XLSX's sheet by it): its
    names are data (data/lineloss.json) and units may follow them, so it matches its own way."""

    def __init__(self) -> None:
        super().__init__((), "day")

    def is_header(self, cells: Sequence[Any]) -> bool:
        return is_header(cells)


LINELOSS_HEADER = _Header()


def _missing(found: dict[str, int]) -> list[str]:
    out = [limits().columns[k][0] for k in ("day", "supplied", "sold") if k not in found]
    if "area" not in found and "area_code" not in found:
        out.insert(1, limits().columns["area"][1] + "/" + limits().columns["area_code"][0])
    return out


# --- cells ----------------------------------------------------------------------------------
def parse_day(value: Any) -> date | None:
    """2026-11-20, 2026/11/20, 2026年11月20日, 20261120, an Excel date serial or a datetime."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if int(value) in _SERIAL_DAYS:
            return EXCEL_EPOCH + timedelta(days=int(value))
        value = str(int(value))
    text = cell_text(value)
    m = _DAY.match(text) or _COMPACT_DAY.match(text)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_number(value: Any) -> tuple[float | None, bool]:
    """(the number, written as a percent); (None, False) when blank; ValueError if not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), False
    if isinstance(value, str):  # the common case, "1820.4": no cleaning needed
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):
                raise ValueError(value)
            return number, False
    text = cell_text(value).translate(_NUMBER_NOISE)
    if not text or text in ("-", "--", "/"):
        return None, False
    percent = text.endswith(("%", "％"))
    number = float(text.rstrip("%％"))
    if not math.isfinite(number):
        raise ValueError(value)
    return number, percent


def computed_rate(supplied: float, sold: float) -> float | None:
    return (supplied - sold) / supplied * 100 if supplied > 0 else None


def rate_as_percent(given: float, percent: bool, computed: float | None) -> float:
    """The file's 线损率 as a percentage. An XLSX cell formatted as a percent holds 0.052 for
    5.2%; a column of plain numbers holds 5.2: whichever is nearer the rate the amounts give."""
    if percent or computed is None:
        return given
    return given * 100 if abs(given * 100 - computed) < abs(given - computed) else given


# --- validating one row ----------------------------------------------------------------------
@dataclass
class _Checked:
    area: AreaRef | None = None
    day: date | None = None
    supplied: float | None = None
    sold: float | None = None
    rate: float | None = None
    problems: list[str] = field(default_factory=list)


class _Reader:
    """Checks rows one at a time; a day or a 台区 named on thousands of rows is read once."""

    def __init__(self, cols: dict[str, int], areas: _Areas, today: date, locale: str) -> None:
        self.cols, self.areas, self.today, self.locale = cols, areas, today, locale
        self.days: dict[Any, date | None] = {}
        self.found: dict[tuple[Any, Any], tuple[AreaRef | None, Why | None]] = {}

    def cell(self, cells: Sequence[Any], key: str) -> Any:
        i = self.cols.get(key)
        return cells[i] if i is not None and i < len(cells) else None

    def check(self, cells: Sequence[Any]) -> _Checked:
        out = _Checked()

        def problem(key: str, **kw: Any) -> None:
            out.problems.append(t(self.locale, key, **kw))

        raw_day = self.cell(cells, "day")
        out.day = self.day(raw_day)
        if out.day is None:
            problem("lineloss.err.day",
                    value=cell_text(raw_day) or t(self.locale, "lineloss.err.blank"))
        elif out.day > self.today:
            problem("lineloss.err.future", day=out.day.isoformat())
        out.area = self.area(self.cell(cells, "area"), self.cell(cells, "area_code"), problem)
        out.supplied = self.amount(cells, "supplied", problem)
        out.sold = self.amount(cells, "sold", problem)
        computed = (computed_rate(out.supplied, out.sold)
                    if out.supplied is not None and out.sold is not None else None)
        try:
            given, percent = parse_number(self.cell(cells, "rate"))
        except ValueError:
            problem("lineloss.err.number", column=limits().columns["rate"][0],
                    value=cell_text(self.cell(cells, "rate")))
            given, percent = None, False
        out.rate = computed if given is None else rate_as_percent(given, percent, computed)
        return out

    def day(self, raw: Any) -> date | None:
        key = raw if isinstance(raw, str | int | float) else None
        if key is None:
            return parse_day(raw)
        if key not in self.days:
            self.days[key] = parse_day(raw)
        return self.days[key]

    def amount(self, cells: Sequence[Any], key: str, problem: Any) -> float | None:
        column = limits().columns[key][0]
        try:
            value, _ = parse_number(self.cell(cells, key))
        except ValueError:
            problem("lineloss.err.number", column=column, value=cell_text(self.cell(cells, key)))
            return None
        if value is None:
            problem("lineloss.err.missing", column=column)
        elif value < 0:
            problem("lineloss.err.negative", column=column)
        return value

    def area(self, name: Any, code: Any, problem: Any) -> AreaRef | None:
        key = (name, code)  # the cells as read: the same on every row of the area
        if key not in self.found:
            self.found[key] = _find_area(cell_text(name), cell_text(code), self.areas)
        ref, why = self.found[key]
        if why is not None:
            problem(why[0], **why[1])
        return ref


Why = tuple[str, dict[str, Any]]  # a locale key and its words


def _find_area(name: str, code: str, areas: _Areas) -> tuple[AreaRef | None, Why | None]:
    """The 台区 a row names, by 台区编号 first, then by name."""
    if not name and not code:
        return None, ("lineloss.err.no_area", {})
    for raw in (code, name):
        key = _area_key(raw) if raw else ""
        if key in areas.by_key:
            ref = areas.by_key[key]
            return ref, None if ref else ("lineloss.err.ambiguous_area", {"area": raw})
    known = "、".join(areas.names[:8]) + ("…" if len(areas.names) > 8 else "")
    return None, ("lineloss.err.unknown_area", {"area": name or code, "known": known or "-"})


# --- staging ---------------------------------------------------------------------------------
_STAGE_SQL = ("CREATE TABLE stage(row INTEGER PRIMARY KEY, area_id INTEGER, team_id INTEGER, "
              "day TEXT, supplied REAL, sold REAL, rate REAL, UNIQUE (area_id, day))",
              "INSERT INTO stage VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
              "SELECT row FROM stage WHERE area_id = ? AND day = ?",
              "SELECT * FROM stage WHERE (area_id, day) > (?, ?) ORDER BY area_id, day LIMIT ?")


def _add_error(result: ImportResult, row: int, problems: Sequence[str]) -> None:
    result.error_rows += 1
    if len(result.errors) < MAX_REPORTED_ERRORS:
        result.errors.append(RowError(row, tuple(problems)))


def _stage(stage: sqlite3.Connection, batch: list[tuple[Any, ...]], locale: str,
           result: ImportResult) -> None:
    """Write checked rows to `stage`; a second row for one 台区 and day is an error naming
    the first (rare: looked for only when the batch did not all go in)."""
    if not batch:
        return
    before = stage.total_changes
    stage.executemany(_STAGE_SQL[1], batch)
    if stage.total_changes - before < len(batch):
        kept = {r[0] for r in stage.execute("SELECT row FROM stage WHERE row >= ? AND row <= ?",
                                            (batch[0][0], batch[-1][0]))}
        for row in batch:
            if row[0] not in kept:
                first = stage.execute(_STAGE_SQL[2], (row[1], row[3])).fetchone()
                _add_error(result, row[0], [t(locale, "lineloss.err.duplicate", row=first[0])])
    batch.clear()


def _stage_rows(stage: sqlite3.Connection, rows: Iterator[Sequence[Any]], areas: _Areas,
                today: date, locale: str, result: ImportResult) -> None:
    """Phase 1: every row checked; the valid ones into `stage`, the others into `result`."""
    reader: _Reader | None = None
    first: dict[str, int] = {}
    batch: list[tuple[Any, ...]] = []
    for number, cells in enumerate(rows, start=1):
        if blank(cells):
            continue
        if reader is None:
            found = map_header(cells)
            if is_header(cells):
                reader = _Reader(found, areas, today, locale)
            elif number >= HEADER_SEARCH_ROWS:
                break
            elif len(found) > len(first):
                first = found  # the likeliest header, to name what it lacks
            continue
        checked = reader.check(cells)
        if checked.problems:
            _stage(stage, batch, locale, result)  # the errors stay in row order
            _add_error(result, number, checked.problems)
            continue
        assert checked.area is not None and checked.day is not None
        batch.append((number, checked.area.id, checked.area.team_id, checked.day.isoformat(),
                      checked.supplied, checked.sold, checked.rate))
        if len(batch) >= STAGE_ROWS:
            _stage(stage, batch, locale, result)
    _stage(stage, batch, locale, result)
    result.errors.sort(key=lambda e: e.row)
    if reader is None:
        if not first and result.error_rows == 0:
            raise LinelossIOError(t(locale, "lineloss.err.empty_or_header",
                                    expected=_expected()))
        raise LinelossIOError(t(locale, "lineloss.err.header",
                                missing="、".join(_missing(first)),
                                expected=_expected()))


def _expected() -> str:
    cols = limits().columns
    return ",".join(cols[k][0] if k != "area" else cols[k][1]
                    for k in ("day", "area", "supplied", "sold", "rate"))


def _pages(stage: sqlite3.Connection, size: Callable[[], int]) -> Iterator[list[sqlite3.Row]]:
    """The staged rows by 台区 and day, not in the file's order (day after day for every
    台区): each transaction then writes a few 台区's runs of days, next to each other in the
    (area_id, day) key, instead of one row in each of thousands of places."""
    after: tuple[int, str] = (0, "")
    while page := stage.execute(_STAGE_SQL[3], (*after, size())).fetchall():
        yield page
        after = (page[-1]["area_id"], page[-1]["day"])


# --- writing ---------------------------------------------------------------------------------
_UPSERT = ("INSERT INTO lineloss_days(area_id, day, team_id, supplied, sold, rate, imported_at) "
           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(area_id, day) DO UPDATE SET "
           "supplied = excluded.supplied, sold = excluded.sold, rate = excluded.rate, "
           "imported_at = excluded.imported_at")


async def _existing(services: Services, page: list[sqlite3.Row]) -> int:
    """How many of the page's (台区, 日期) are stored already (a re-import updates them)."""
    ids = sorted({r["area_id"] for r in page})
    days = [r["day"] for r in page]
    marks = ", ".join("?" for _ in ids)
    rows = await services.db.fetchall(
        f"SELECT area_id, day FROM lineloss_days WHERE area_id IN ({marks}) "
        "AND day >= ? AND day <= ?", (*ids, min(days), max(days)))
    have = {(int(r["area_id"]), r["day"]) for r in rows}
    return sum((r["area_id"], r["day"]) in have for r in page)


async def _apply(services: Services, stage: sqlite3.Connection, dry_run: bool,
                 result: ImportResult) -> dict[int, str]:
    """Phase 2: the staged rows upserted in short transactions (none in a dry run); the areas
    written, each with its latest day."""
    paced = Paced.of(services, services.settings.lineloss_batch_rows)
    stamp = iso(services.clock.now())
    latest: dict[int, str] = {}
    for page in _pages(stage, lambda: paced.rows):
        for r in page:
            latest[r["area_id"]] = max(latest.get(r["area_id"], ""), r["day"])
        existing = await _existing(services, page)
        result.updated += existing
        result.inserted += len(page) - existing
        if dry_run:
            continue
        async with paced.tx() as tx:
            await tx.executemany(_UPSERT, [(r["area_id"], r["day"], r["team_id"],
                                            r["supplied"], r["sold"], r["rate"], stamp)
                                           for r in page])
    return latest


async def _areas(services: Services, team_id: int | None) -> _Areas:
    where, params = ("WHERE team_id = ?", (team_id,)) if team_id is not None else ("", ())
    rows = await services.db.fetchall(
        f"SELECT id, team_id, name, code FROM areas {where} ORDER BY id", params)
    areas = _Areas()
    for r in rows:
        ref = AreaRef(int(r["id"]), int(r["team_id"]))
        areas.add(_area_key(r["name"]), ref)
        areas.add(_area_key(r["code"] or ""), ref)
        areas.names.append(r["name"])
    return areas


async def import_lineloss(services: Services, path: Path | str, team: str | None = None, *,
                          dry_run: bool = False, actor: str = "cli",
                          locale: str = "zh_CN") -> ImportResult:
    """Check every row, upsert the valid ones by (台区, 日期), then follow the areas' runs."""
    path = Path(path)
    result = ImportResult(file=str(path), team=(team or "").strip(), dry_run=dry_run)
    try:
        rows = open_rows(path, LINELOSS_HEADER)
    except TableError as exc:
        raise LinelossIOError(str(exc)) from exc
    now = services.clock.now()
    today = now.astimezone(services.settings.tz).date()
    # "": a temporary on-disk database, deleted on close; checked in a worker thread
    stage = sqlite3.connect("", check_same_thread=False)
    stage.row_factory = sqlite3.Row
    try:
        team_id = await _team_id(services.db, result.team) if result.team else None
        stage.execute(_STAGE_SQL[0])
        areas = await _areas(services, team_id)
        # Phase 1 is CPU work on a private file: off the event loop, chats go on meanwhile.
        await asyncio.to_thread(_stage_rows, stage, rows, areas, today, locale, result)
        span = stage.execute("SELECT min(day), max(day) FROM stage").fetchone()
        result.first_day, result.last_day = span[0], span[1]
        latest = await _apply(services, stage, dry_run, result)
        result.areas = len(latest)
        if not dry_run and latest:
            result.follow = await detect.follow_up(services, latest, now)
            await _audit(services, stage, actor, path, result)
    except TableError as exc:  # the team, or the XLSX found broken while reading
        raise LinelossIOError(str(exc)) from exc
    finally:
        rows.close()
        stage.close()
    return result


async def _audit(services: Services, stage: sqlite3.Connection, actor: str, path: Path,
                 result: ImportResult) -> None:
    teams = [r[0] for r in stage.execute("SELECT DISTINCT team_id FROM stage")]
    async with services.db.tx() as tx:
        for team_id in teams:
            await audit.record(tx, team_id=int(team_id), user_id=None, actor=actor,
                               entity=ENTITY, entity_id=None, action="import",
                               at=services.clock.now(),
                               detail={"file": path.name, "inserted": result.inserted,
                                       "updated": result.updated,
                                       "errors": result.error_rows})


def summary_lines(result: ImportResult, locale: str, max_errors: int = MAX_REPORTED_ERRORS
                  ) -> list[str]:
    """What an import did, for the CLI and the chat: the errors (up to `max_errors`), the
    counts, the items opened and closed."""
    lines = [t(locale, "lineloss.err.row", row=e.row, problems="；".join(e.problems))
             for e in result.errors[:max_errors]]
    if result.error_rows > min(len(result.errors), max_errors):
        lines.append(t(locale, "lineloss.import.more_errors",
                       n=result.error_rows - min(len(result.errors), max_errors)))
    key = "lineloss.import.dry_run" if result.dry_run else "lineloss.import.summary"
    lines.append(t(locale, key, inserted=result.inserted, updated=result.updated,
                   errors=result.error_rows, first=result.first_day or "-",
                   last=result.last_day or "-", areas=result.areas))
    follow = result.follow
    if not result.dry_run and (follow.opened or follow.closed or follow.extended):
        lines.append(t(locale, "lineloss.import.follow", opened=len(follow.opened),
                       closed=len(follow.closed), extended=follow.extended))
    if follow.no_owner:
        lines.append(t(locale, "lineloss.import.no_owner", areas="、".join(follow.no_owner)))
    return lines
