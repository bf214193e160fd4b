"""The working-day calendar: overrides, chinese-calendar, the Mon–Fri fallback; the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.storage.db import Database
from bot.workcal import (
    DayInfo,
    WorkCalendar,
    add_override,
    builtin_knows,
    list_year,
    remove_override,
)

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(tmp_path / "cal.db") as database:
        yield database


@pytest.mark.parametrize(("day", "workday", "source", "provisional"), [
    (date(2026, 11, 27), True, "chinese_calendar", False),   # ordinary Friday
    (date(2026, 11, 28), False, "chinese_calendar", False),  # ordinary Saturday
    (date(2026, 10, 1), False, "chinese_calendar", False),   # 国庆 on a Thursday
    (date(2026, 9, 25), False, "chinese_calendar", False),   # 中秋 on a Friday
    (date(2026, 9, 20), True, "chinese_calendar", False),    # 调休 working Sunday
    (date(2026, 10, 10), True, "chinese_calendar", False),   # 调休 working Saturday
    (date(2026, 10, 11), False, "chinese_calendar", False),
    (date(2027, 10, 1), True, "weekday_fallback", True),     # unknown year: a Friday
    (date(2027, 10, 2), False, "weekday_fallback", True),
])
def test_info_without_overrides(day: date, workday: bool, source: str,
                                provisional: bool) -> None:
    info = WorkCalendar({}).info(day)
    assert (info.workday, info.source, info.provisional) == (workday, source, provisional)
    assert WorkCalendar({}).is_workday(day) is workday


def test_override_beats_builtin_and_makes_the_year_known() -> None:
    cal = WorkCalendar({date(2026, 10, 8): "holiday", date(2027, 10, 1): "holiday"},
                       {date(2027, 10, 1): "国庆节"})
    assert cal.info(date(2026, 10, 8)) == DayInfo(date(2026, 10, 8), False, False, "override")
    assert cal.info(date(2027, 10, 1)) == DayInfo(date(2027, 10, 1), False, False, "override",
                                                  "国庆节")
    # Other days of an admin-entered year: Mon–Fri, but no longer a guess.
    assert cal.info(date(2027, 10, 4)) == DayInfo(date(2027, 10, 4), True, False,
                                                  "weekday_fallback")


@pytest.mark.parametrize(("year", "overrides", "known"), [
    (2026, {}, True),
    (2004, {}, True),
    (2003, {}, False),
    (2027, {}, False),
    (2027, {date(2027, 1, 1): "holiday"}, True),
    (2028, {date(2027, 1, 1): "holiday"}, False),
])
def test_year_known(year: int, overrides: dict[date, str], known: bool) -> None:
    assert WorkCalendar(overrides).year_known(year) is known


def test_builtin_range() -> None:
    assert builtin_knows(2026) and not builtin_knows(2027)


def test_bad_kind_rejected() -> None:
    with pytest.raises(ValueError, match="holiday"):
        WorkCalendar({date(2027, 1, 1): "vacation"})


async def test_add_override_upserts_and_remove(db: Database) -> None:
    day = date(2027, 10, 9)
    await add_override(db, day, "holiday", "  ", NOW)
    await add_override(db, day, "workday", "国庆调休上班", NOW)
    rows = await db.fetchall("SELECT day, kind, note, created_at FROM calendar_overrides")
    assert [tuple(r) for r in rows] == [
        ("2027-10-09", "workday", "国庆调休上班", "2026-11-27T02:30:00+00:00")]
    cal = await WorkCalendar.load(db)
    assert cal.info(day) == DayInfo(day, True, False, "override", "国庆调休上班")
    assert await remove_override(db, day) is True
    assert await remove_override(db, day) is False
    assert (await WorkCalendar.load(db)).info(day).source == "weekday_fallback"


async def test_add_override_rejects_bad_input(db: Database) -> None:
    with pytest.raises(ValueError):
        await add_override(db, date(2027, 1, 1), "vacation", None, NOW)
    with pytest.raises(ValueError, match="naive"):
        await add_override(db, date(2027, 1, 1), "holiday", None, datetime(2026, 1, 1))


async def test_list_year_known(db: Database) -> None:
    days = await list_year(db, 2026)
    assert days.provisional is False
    by_day = {d.day: d for d in days}
    assert by_day[date(2026, 9, 20)].workday and by_day[date(2026, 10, 10)].workday
    assert not by_day[date(2026, 10, 1)].workday
    assert by_day[date(2026, 10, 1)].note == "National Day"
    assert date(2026, 10, 3) not in by_day  # a holiday on a Saturday is nothing unusual
    assert date(2026, 11, 27) not in by_day
    assert [d.day for d in days] == sorted(by_day)
    await add_override(db, date(2026, 11, 27), "holiday", "停电抢修演练", NOW)
    assert date(2026, 11, 27) in {d.day for d in await list_year(db, 2026)}


async def test_list_year_unknown_until_the_admin_enters_it(db: Database) -> None:
    days = await list_year(db, 2027)
    assert days == [] and days.provisional is True
    await add_override(db, date(2027, 10, 1), "holiday", "国庆节", NOW)
    await add_override(db, date(2027, 10, 2), "holiday", None, NOW)  # a Saturday anyway
    days = await list_year(db, 2027)
    assert days.provisional is False
    assert [(d.day, d.workday, d.source) for d in days] == [
        (date(2027, 10, 1), False, "override"), (date(2027, 10, 2), False, "override")]


# --- CLI, as a subprocess on a database in tmp_path --------------------------------------
def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    environ.update({"TAIQU_DB_PATH": str(tmp_path / "cli.db"), **env})
    return subprocess.run([sys.executable, "-m", "bot", "calendar", *args], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=60)


def test_cli_add_list_remove(tmp_path: Path) -> None:
    out = _cli(tmp_path, "list", "2027")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0]
    assert header.startswith("2027年：暂定") and "provisional" in header

    out = _cli(tmp_path, "add-holiday", "2027-10-01", "--note", "国庆节")
    assert out.returncode == 0, out.stderr
    assert "2027-10-01 星期五" in out.stdout and "holiday" in out.stdout
    out = _cli(tmp_path, "add-workday", "2027-10-09", "--note", "调休上班")
    assert out.returncode == 0, out.stderr

    out = _cli(tmp_path, "list", "2027")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("2027年：已知") and "known" in lines[0]
    assert lines[1].startswith("2027-10-01 星期五") and "休息 holiday" in lines[1]
    assert "override" in lines[1] and "国庆节" in lines[1]
    assert lines[2].startswith("2027-10-09 星期六") and "上班 workday" in lines[2]

    assert _cli(tmp_path, "remove", "2027-10-09").returncode == 0
    gone = _cli(tmp_path, "remove", "2027-10-09")
    assert gone.returncode == 1 and "no admin setting" in gone.stdout


def test_cli_list_known_year(tmp_path: Path) -> None:
    out = _cli(tmp_path, "list", "2026")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2026年：已知")
    assert any(line.startswith("2026-10-10 星期六") and "workday" in line
               for line in out.stdout.splitlines())


@pytest.mark.parametrize("args", [
    ("add-holiday", "2027-02-30"),
    ("add-workday", "27-10-01"),
    ("add-holiday", "20271001"),
    ("remove", "tomorrow"),
    ("list", "27"),
])
def test_cli_bad_date_one_line_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = _cli(tmp_path, *args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "expected" in out.stderr
    assert not (tmp_path / "cli.db").exists()  # rejected before the database is opened


def test_cli_unknown_ruleset_setting(tmp_path: Path) -> None:
    out = _cli(tmp_path, "list", "2026", TAIQU_RULESET="sgcc-1999")
    assert out.returncode == 2
    assert "TAIQU_RULESET" in out.stderr and "sgcc-2011, sgcc-newer" in out.stderr
