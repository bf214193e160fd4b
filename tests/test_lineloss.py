"""台区线损 (issue #14 §2): the 用电信息采集 export imported (GBK CSV, XLSX re-saved by another
writer, UTF-16, bad rows with their numbers, re-imports), abnormal runs followed as items with
reminders that are never doubled, 已核查 and the lead's 接受原因, `线损 3号台区` in chat, the
weekly report, team isolation."""

from __future__ import annotations

import asyncio
import codecs
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.assistant import Assistant
from bot.cli import main
from bot.clock import FakeClock
from bot.features.lineloss import limits as limits_module
from bot.features.lineloss.importer import (
    LinelossIOError,
    import_lineloss,
    is_header,
    summary_lines,
)
from bot.features.lineloss.report import MEASURE, SECTION
from bot.models import Role
from bot.reminders import ReminderService
from bot.router import ReportScope
from bot.services import Services
from tests.conftest import Chat, FakeNotifier, at, make_user, use_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CSV = ROOT / "data" / "examples" / "lineloss.csv"  # GBK, a title row, 台区编号
EXAMPLE_XLSX = ROOT / "data" / "examples" / "lineloss.xlsx"  # date cells, percent cells
TEAM = "城东供电所"
HEADER = "日期,台区,供电量,售电量,线损率"


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")  # 3号台区, 5号台区
    await make_user(services, "李四", areas=("7号台区",))
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(assistant, "test", "张三"), Chat(assistant, "test", "王班长")


async def cli(argv: list[str]) -> int:
    """`taiqu-bot ...` as the operator runs it (its own event loop, so another thread)."""
    return await asyncio.to_thread(main, argv)


def write(tmp_path: Path, name: str, *rows: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(rows) + "\n").encode(encoding))
    return path


def days(area: str, first: date, *rates: float, supplied: float = 1000.0) -> list[str]:
    """CSV rows of one area, a day each from `first`, with the 售电量 giving each rate."""
    return [f"{first + timedelta(days=i)},{area},{supplied},{supplied * (1 - r / 100):.2f},"
            for i, r in enumerate(rates)]


async def items(services: Services) -> list[tuple[int, str, str, str, str, str]]:
    rows = await services.db.fetchall(
        "SELECT i.id, a.name, u.name, i.status, i.first_day, i.last_day FROM lineloss_items i "
        "JOIN areas a ON a.id = i.area_id JOIN users u ON u.id = i.user_id ORDER BY i.id")
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def pending(services: Services) -> list[tuple[str, str]]:
    rows = await services.db.fetchall(
        "SELECT r.kind, u.name FROM reminders r JOIN users u ON u.id = r.user_id "
        "WHERE subject = 'lineloss' AND state = 'pending' ORDER BY r.due_at, r.kind, u.name")
    return [(r[0], r[1]) for r in rows]


async def stored(services: Services) -> list[tuple[str, str, float]]:
    rows = await services.db.fetchall(
        "SELECT d.day, a.name, d.rate FROM lineloss_days d JOIN areas a ON a.id = d.area_id "
        "ORDER BY d.day, a.name")
    return [(r[0], r[1], round(r[2], 2)) for r in rows]


async def test_gbk_csv_opens_one_item_and_a_reimport_doubles_nothing(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier) -> None:
    result = await import_lineloss(services, EXAMPLE_CSV, TEAM)
    assert (result.inserted, result.updated, result.error_rows) == (21, 0, 0)
    assert (result.first_day, result.last_day, result.areas) == ("2026-11-20", "2026-11-26", 3)
    # 3号台区: 12.4% and 13.1% on the last two days (above 10%); 7号台区: -2.5% once only.
    assert await items(services) == [(1, "3号台区", "张三", "open", "2026-11-25", "2026-11-26")]
    assert await pending(services) == [("opened.notice", "张三"), ("check.soon", "张三"),
                                       ("check.due", "张三"), ("check.escalate", "王班长")]
    assert "线损异常：新开 1，恢复正常关闭 0，持续 0" in summary_lines(result, "zh_CN")

    again = await import_lineloss(services, EXAMPLE_CSV, TEAM)
    assert (again.inserted, again.updated, again.follow.opened) == (0, 21, [])
    assert len(await items(services)) == 1
    assert len(await pending(services)) == 4
    await service.scan_once()
    [notice] = [t for t in notifier.texts("张三") if "线损" in t]
    assert ("📉 3号台区 线损连续 2 天异常（2026-11-25 至 2026-11-26，最大 13.10%，"
            "正常 -1% ~ 10%），已生成线损异常 #1。") in notice
    assert [b.label for b in notifier.last("张三").buttons[0]][:3] == [
        "📄 打开", "🔍 已核查", "📈 线损曲线"]
    await service.scan_once()
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    await service.scan_once()
    assert len([t for t in notifier.texts("张三") if "线损连续" in t]) == 1


async def test_xlsx_with_date_and_percent_cells_reads_as_the_csv(
        team: tuple[Chat, Chat], services: Services) -> None:
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    from_csv = await stored(services)
    result = await import_lineloss(services, EXAMPLE_XLSX, TEAM)
    assert (result.inserted, result.updated, result.error_rows) == (0, 21, 0)
    # 0.124 in a percent cell is 12.4%; 5号台区 has no rate: computed from the amounts.
    assert await stored(services) == from_csv
    assert ("2026-11-26", "3号台区", 13.1) in from_csv
    assert ("2026-11-26", "7号台区", -2.5) in from_csv


async def test_bad_rows_are_named_by_row_and_the_good_ones_imported(
        team: tuple[Chat, Chat], services: Services, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", "台区日线损", "统计日期,台区名称,供入电量,用电量,台区线损率",
                 "2026-11-25,3号台区,1000,950,5",
                 "2026-13-01,3号台区,1000,950,5",
                 "2026-11-25,9号台区,1000,950,5",
                 "2026-11-25,5号台区,一千,950,",
                 "2026-11-25,3号台区,1000,960,4",
                 "2026-11-28,5号台区,1000,950,5",
                 "2026年11月24日,5号台区,-5,950,",
                 "20261124,7号台区,800,780,")
    result = await import_lineloss(services, path, TEAM)
    lines = summary_lines(result, "zh_CN")
    assert lines[:6] == [
        "第 4 行：日期「2026-13-01」看不懂（如 2026-11-20）",
        "第 5 行：台区「9号台区」不存在（已有台区：3号台区、5号台区、7号台区）",
        "第 6 行：供电量「一千」不是数字",
        "第 7 行：与第 3 行是同一台区同一天",
        "第 8 行：日期 2026-11-28 还没到",
        "第 9 行：供电量不能是负数"]
    assert (result.inserted, result.error_rows) == (2, 6)
    assert await stored(services) == [("2026-11-24", "7号台区", 2.5),
                                      ("2026-11-25", "3号台区", 5.0)]


async def test_a_file_without_the_columns_imports_nothing(
        team: tuple[Chat, Chat], services: Services, tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "日期,台区,供电量", "2026-11-25,3号台区,1000")
    with pytest.raises(LinelossIOError, match="缺少必需的列：售电量"):
        await import_lineloss(services, path, TEAM)
    with pytest.raises(LinelossIOError, match="文件是空的"):
        await import_lineloss(services, write(tmp_path, "e.csv", ""), TEAM)
    assert await stored(services) == []


async def test_utf16_tab_separated_by_area_code(team: tuple[Chat, Chat], services: Services,
                                                tmp_path: Path) -> None:
    await services.db.execute("UPDATE areas SET code = '0012003' WHERE name = '3号台区'")
    path = tmp_path / "u16.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "数据日期\t台区编号\t供电量(kWh)\t售电量(kWh)\n"
                     "2026-11-26\t0012003\t1000\t900\n".encode("utf-16-le"))
    result = await import_lineloss(services, path, TEAM)
    assert (result.inserted, result.error_rows) == (1, 0)
    assert await stored(services) == [("2026-11-26", "3号台区", 10.0)]
    assert is_header(["统计日期", "台区名称", "供入电量", "用电量"])
    assert not is_header(["户号", "户名", "台区", "欠费金额"])


async def test_normal_day_closes_the_item_and_a_later_run_opens_a_new_one(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock, tmp_path: Path) -> None:
    d0 = date(2026, 11, 22)
    await import_lineloss(services, write(tmp_path, "a.csv", HEADER,
                                          *days("3号台区", d0, 5, 11, 12)), TEAM)
    assert await items(services) == [(1, "3号台区", "张三", "open", "2026-11-23", "2026-11-24")]
    await import_lineloss(services, write(tmp_path, "b.csv", HEADER,
                                          *days("3号台区", d0 + timedelta(3), 15)), TEAM)
    row = await services.db.fetchone("SELECT last_day, worst_rate FROM lineloss_items")
    assert row is not None and tuple(row) == ("2026-11-25", 15.0)  # the run goes on
    await import_lineloss(services, write(tmp_path, "c.csv", HEADER,
                                          *days("3号台区", d0 + timedelta(4), 6)), TEAM)
    assert (await items(services))[0][3] == "closed"
    assert await pending(services) == [("closed.notice", "张三")]
    await service.scan_once()
    assert "🟢 线损异常 #1（3号台区） 已关闭：2026-11-26 线损恢复正常。" in notifier.texts("张三")
    # The same days again change nothing; a new run after the normal day is a new item.
    await import_lineloss(services, write(tmp_path, "a2.csv", HEADER,
                                          *days("3号台区", d0, 5, 11, 12, 15, 6)), TEAM)
    assert len(await items(services)) == 1
    at(clock, 2026, 11, 29, 9, 0)
    await import_lineloss(services, write(tmp_path, "d.csv", HEADER,
                                          *days("3号台区", d0 + timedelta(5), 11, -3)), TEAM)
    assert await items(services) == [
        (1, "3号台区", "张三", "closed", "2026-11-23", "2026-11-25"),
        (2, "3号台区", "张三", "open", "2026-11-27", "2026-11-28")]


async def test_an_old_run_opens_nothing(team: tuple[Chat, Chat], services: Services,
                                        tmp_path: Path) -> None:
    await import_lineloss(services, write(tmp_path, "old.csv", HEADER,
                                          *days("3号台区", date(2026, 3, 1), 15, 16)), TEAM)
    assert await items(services) == []


async def test_checked_then_the_lead_accepts_from_the_notice(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock, tmp_path: Path) -> None:
    zhang, lead = team
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    await zhang.say("待办")
    assert "线损异常 #1（3号台区）：连续 2 天异常（最大 13.10%），核查期限" in zhang.text
    await zhang.press("线损 3号台区")
    assert "🔴 待核查" in zhang.text and "核查期限" in zhang.text
    await zhang.press("已核查")
    assert "核查出的原因是？" in zhang.text
    await zhang.say("偷电")
    assert "「偷电」不是可选的原因" in zhang.text
    await zhang.press("计量故障")
    await zhang.say("2号表箱 电流互感器接线松动，已紧固")
    await zhang.photo("ct-photo")
    await zhang.press("完成")
    await zhang.press("保存")
    assert "✅ 线损异常 #1 已核查（计量故障），已提交班长确认。" in zhang.text
    assert await pending(services) == [("review.notice", "王班长")]
    await service.scan_once()
    notice = notifier.last("王班长")
    assert ("📋 张三 已核查线损异常 #1（3号台区）：计量故障（2号表箱 电流互感器接线松动，"
            "已紧固）") in notice.text
    assert notice.photos == ["test:ct-photo"]
    await lead.tap(next(b.data for b in notice.buttons[0] if "接受原因" in b.label))
    assert "✅ 已接受原因，线损异常 #1 已关闭。" in lead.text
    assert "🟢 已关闭：班长已接受原因" in lead.text
    await lead.tap(next(b.data for b in notice.buttons[0] if "接受原因" in b.label))
    assert "已接受原因，线损异常 #1 已关闭" not in lead.text  # a second tap closes nothing
    # The same run goes on: no second item for it.
    at(clock, 2026, 11, 28, 9, 0)
    await import_lineloss(services, write(tmp_path, "more.csv", HEADER,
                                          *days("3号台区", date(2026, 11, 27), 14)), TEAM)
    assert [i[3] for i in await items(services)] == ["closed"]


async def test_a_manager_cannot_accept_their_own_cause(
        team: tuple[Chat, Chat], services: Services) -> None:
    zhang, _ = team
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    await zhang.tap("-|lineloss.llc|1")
    await zhang.press("档案错误")
    await zhang.press("跳过")
    await zhang.press("跳过")
    await zhang.press("保存")
    await zhang.tap("-|lineloss.lla|1")
    assert "🟡 已核查，待班长确认" in zhang.text and "接受原因" not in zhang.text
    assert (await items(services))[0][3] == "checked"


async def test_overdue_check_escalates_to_the_lead(
        team: tuple[Chat, Chat], services: Services, service: ReminderService,
        notifier: FakeNotifier, clock: FakeClock) -> None:
    await import_lineloss(services, EXAMPLE_CSV, TEAM)  # Fri 11-27 10:30: 3 working days
    at(clock, 2026, 12, 2, 9, 0)
    await service.scan_once()  # the morning digest lists it
    assert "线损异常 #1（3号台区）" in notifier.texts("张三")[-1]
    at(clock, 2026, 12, 2, 10, 31)
    await service.scan_once()
    assert any("超期提醒：张三 的线损异常 #1（3号台区），核查线损异常原因期限 2026-12-02" in t
               for t in notifier.texts("王班长"))


async def test_the_sentence_shows_the_chart_the_figures_and_the_item(
        team: tuple[Chat, Chat], services: Services, assistant: Assistant) -> None:
    zhang, lead = team
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    await zhang.say("线损 3号台区")
    reply = zhang.last.replies[0]  # type: ignore[union-attr]
    assert "📉 3号台区 近 30 天线损（2026-11-20 至 2026-11-26，7 天有数据）" in reply.text
    assert "最新 2026-11-26：13.10%（供 1790.5，售 1555.9 kWh） ⚠️ 异常" in reply.text
    assert "异常 2 天；正常 -1% ~ 10%" in reply.text
    assert "异常日：11-25 12.40%、11-26 13.10%" in reply.text
    [png] = reply.attachments
    assert png.kind == "photo" and png.data.startswith(b"\x89PNG")
    drawn = json.loads(Image.open(__import__("io").BytesIO(png.data)).info["Description"])
    assert drawn["abnormal"] == ["2026-11-25", "2026-11-26"] and len(drawn["days"]) == 7
    assert "线损异常 #1（3号台区）" in zhang.text
    assert "🔍 已核查" in [b.label for r in zhang.last.replies for row in r.buttons  # type: ignore[union-attr]
                         for b in row]
    await zhang.say("线损")
    assert "看哪个台区的线损？" in zhang.text
    await zhang.press("5号台区")
    assert "📉 5号台区 近 30 天线损" in zhang.text and "线损异常 #" not in zhang.text
    await zhang.say("/lineloss 5号台区")
    assert "📉 5号台区 近 30 天线损" in zhang.text
    await zhang.say("线损 7号台区")  # 李四's
    assert "「7号台区」不是你负责的台区" in zhang.text
    await lead.say("线损率 7号台区")
    assert "最新 2026-11-26：-2.50%" in lead.text
    # A sentence that says more stays a work-log entry.
    await zhang.say("线损 3号台区 分析了原因")
    assert "近 30 天线损" not in zhang.text


async def test_other_teams_see_nothing(team: tuple[Chat, Chat], services: Services,
                                       assistant: Assistant, tmp_path: Path) -> None:
    await make_user(services, "赵班长", role=Role.LEAD, team="城西供电所", areas=("3号台区",))
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    other = Chat(assistant, "test", "赵班长")
    await other.tap("-|lineloss.ll|1")
    assert "没有找到这条线损异常" in other.text
    await other.tap("-|lineloss.lla|1")
    assert "没有找到这条线损异常" in other.text
    await other.say("线损 3号台区")  # their own 3号台区: no data
    assert "近 30 天没有线损数据" in other.text
    area = await services.db.fetchone(
        "SELECT a.id FROM areas a JOIN teams t ON t.id = a.team_id "
        "WHERE t.name = ? AND a.name = '3号台区'", (TEAM,))
    assert area is not None
    await other.tap(f"-|lineloss.area|{area[0]}")  # the other team's area, forged
    assert "近 30 天线损" not in other.text
    # Without --team a 台区 name two teams share is refused, not guessed.
    result = await import_lineloss(services, write(tmp_path, "x.csv", HEADER,
                                                   *days("3号台区", date(2026, 11, 26), 5)))
    assert "台区「3号台区」在多个班组都有" in summary_lines(result, "zh_CN")[0]
    result = await import_lineloss(services, write(tmp_path, "y.csv", HEADER,
                                                   *days("7号台区", date(2026, 11, 26), 5)))
    assert result.updated == 1 and result.error_rows == 0


async def test_thresholds_by_area_kind_come_from_the_data(
        team: tuple[Chat, Chat], services: Services, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(limits_module.DATA_FILE.read_text(encoding="utf-8"))
    data["thresholds"]["city"] = {"above": 6.0, "below": -1.0}
    data["days_in_a_row"] = 3
    custom = tmp_path / "lineloss.json"
    custom.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(limits_module, "DATA_FILE", custom)
    limits_module.limits.cache_clear()
    try:
        await services.db.execute("UPDATE areas SET kind = 'city' WHERE name = '5号台区'")
        first = date(2026, 11, 24)
        await import_lineloss(services, write(tmp_path, "k.csv", HEADER,
                                              *days("3号台区", first, 8, 8, 8),
                                              *days("5号台区", first, 8, 8),
                                              *days("7号台区", first, 8, 8, 8)), TEAM)
        assert await items(services) == []  # 8% is normal in 农网; 城网 needs 3 days
        await import_lineloss(services, write(tmp_path, "k2.csv", HEADER,
                                              *days("5号台区", first + timedelta(2), 8)), TEAM)
        assert await items(services) == [
            (1, "5号台区", "张三", "open", "2026-11-24", "2026-11-26")]
    finally:
        limits_module.limits.cache_clear()


async def test_weekly_report_figures_per_area_and_the_team_measure(
        team: tuple[Chat, Chat], services: Services, clock: FakeClock) -> None:
    _, lead = team
    await import_lineloss(services, EXAMPLE_CSV, TEAM)
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = ?", (TEAM,))
    assert row is not None
    local = clock.now().astimezone(services.settings.tz)
    start = local.replace(hour=0, minute=0) - timedelta(days=7)  # 11-20 .. 11-26
    end = local.replace(hour=0, minute=0)
    part = await SECTION.read(services.db, ReportScope(row[0], None, start, end, clock.now(),
                                                  "zh_CN"))
    text = "\n".join(part.lines)
    # The item was opened on Friday, after this period.
    assert ("📉 线损：3 个台区有数据，期间线损率 4.94%，2 个台区异常共 3 天；"
            "线损异常 新开 0，关闭 0，未关闭 0") in text
    assert "  3号台区：线损率 7.18%，异常 2 天，新开 0，关闭 0，未关闭 0" in text
    assert text.index("3号台区") < text.index("7号台区")
    assert [r[0] for r in part.rows] == ["3号台区", "7号台区", "5号台区"]
    assert part.rows[0][1:3] == ["农网", 7]
    assert part.measures == {MEASURE: 4.94}
    # The week the item was opened counts it as new.
    part = await SECTION.read(services.db, ReportScope(row[0], None, end, end + timedelta(days=7),
                                                  clock.now(), "zh_CN"))
    assert "新开 1，关闭 0，未关闭 1" in part.lines[0]
    # One manager's report: their areas only.
    me = await services.db.fetchone("SELECT id FROM users WHERE name = '张三'")
    assert me is not None
    mine = await SECTION.read(services.db, ReportScope(row[0], me[0], start, end, clock.now(),
                                                  "zh_CN"))
    assert [r[0] for r in mine.rows] == ["3号台区", "5号台区"]
    await lead.say("/report 上周")
    assert "📉 线损：3 个台区有数据" in lead.text


async def test_cli_import(team: tuple[Chat, Chat], services: Services, settings: object,
                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                          tmp_path: Path) -> None:
    use_store(monkeypatch, settings)  # type: ignore[arg-type]
    assert await cli(["lineloss", "import", str(EXAMPLE_CSV), "--team", TEAM, "--dry-run"]) == 0
    assert "试运行，未写入：将新增 21 条" in capsys.readouterr().out
    assert await stored(services) == []
    assert await cli(["lineloss", "import", str(EXAMPLE_XLSX)]) == 0
    out = capsys.readouterr().out
    assert ("线损导入完成：新增 21 条，更新 0 条，错误 0 行（2026-11-20 至 2026-11-26，"
            "3 个台区）") in out
    bad = write(tmp_path, "bad.csv", HEADER, "2026-11-26,3号台区,x,1,")
    assert await cli(["lineloss", "import", str(bad), "--team", TEAM]) == 1
    assert "第 2 行：供电量「x」不是数字" in capsys.readouterr().out
    assert await cli(["lineloss", "import", str(tmp_path / "none.csv"), "--team", TEAM]) == 2
    assert await cli(["lineloss", "import", str(EXAMPLE_CSV), "--team", "没有的所"]) == 2
    assert "不存在" in capsys.readouterr().err


async def test_a_lead_sends_the_export_in_chat(team: tuple[Chat, Chat], services: Services,
                                               tmp_path: Path) -> None:
    zhang, lead = team
    await zhang.file("线损日报.csv", EXAMPLE_CSV.read_bytes())
    assert zhang.text == "线损文件由班长导入。你可以说「线损 3号台区」查看你负责台区的线损。"
    assert await stored(services) == []
    await lead.file("线损日报.csv", EXAMPLE_CSV.read_bytes())  # GBK, a title row first
    assert lead.text.splitlines() == [
        "📥 线损文件「线损日报.csv」",
        "线损导入完成：新增 21 条，更新 0 条，错误 0 行（2026-11-20 至 2026-11-26，3 个台区）",
        "线损异常：新开 1，恢复正常关闭 0，持续 0"]
    await lead.press("#1 线损 3号台区")
    assert "线损异常 #1（3号台区）" in lead.text and "🔴 待核查" in lead.text
    await lead.file("日线损.xlsx", EXAMPLE_XLSX.read_bytes())
    assert "新增 0 条，更新 21 条，错误 0 行" in lead.text
    assert "新开" not in lead.text and len(await items(services)) == 1
    bad = "\n".join([HEADER, "2026-11-26,3号台区,x,1,", "2026-11-26,9号台区,5,1,"]).encode()
    await lead.file("bad.csv", bad)
    assert "第 2 行：供电量「x」不是数字" in lead.text
    assert "第 3 行：台区「9号台区」不存在" in lead.text
    # Not a line-loss file: the answer says which files are read.
    await lead.file("名单.csv", "户号,户名\n123,李四\n".encode())
    assert "用电信息采集系统导出的台区日线损（CSV/XLSX" in lead.text


async def test_an_xlsx_resaved_by_another_suite(team: tuple[Chat, Chat], services: Services,
                                                tmp_path: Path) -> None:
    """Shared strings, absolute part targets, a notes sheet before the data (the one it opens
    on), an ISO date cell (t="d"), a date serial and a text date, rates as plain numbers."""
    from tests.test_xlsx_rows import package

    words = ["说明", "台区日线损", "统计日期", "台区名称", "供入电量", "用电量", "台区线损率",
             "3号台区", "5号台区"]
    sst = [f"<si><t>{w}</t></si>" for w in words]

    def s(ref: str, i: int) -> str:
        return f'<c r="{ref}" t="s"><v>{i}</v></c>'

    def n(ref: str, v: float) -> str:
        return f'<c r="{ref}"><v>{v}</v></c>'

    data = (f'<row r="1">{s("A1", 1)}</row>'
            f'<row r="3">{s("A3", 2)}{s("B3", 3)}{s("C3", 4)}{s("D3", 5)}{s("E3", 6)}</row>'
            f'<row r="4"><c r="A4" t="d"><v>2026-11-25T00:00:00</v></c>{s("B4", 7)}'
            f'{n("C4", 1000)}{n("D4", 880)}{n("E4", 12)}</row>'
            f'<row r="5">{n("A5", 46352)}{s("B5", 7)}{n("C5", 1000)}{n("D5", 870)}'
            f'{n("E5", 13)}</row>'
            f'<row r="6"><c r="A6" t="inlineStr"><is><t>2026-11-26</t></is></c>{s("B6", 8)}'
            f'{n("C6", 1000)}{n("D6", 960)}</row>')
    path = package(tmp_path / "wps.xlsx", [("说明", f'<row r="1">{s("A1", 0)}</row>'),
                                           ("日线损", data)], sst, active=1)
    result = await import_lineloss(services, path, TEAM)
    assert (result.inserted, result.error_rows) == (3, 0), summary_lines(result, "zh_CN")
    assert await stored(services) == [("2026-11-25", "3号台区", 12.0),
                                      ("2026-11-26", "3号台区", 13.0),
                                      ("2026-11-26", "5号台区", 4.0)]
    assert [i[1] for i in await items(services)] == ["3号台区"]
