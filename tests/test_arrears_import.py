"""The arrears list import (issue #14 §1), as a lead uses it in chat and an admin on the CLI:
realistic files (a GBK CSV with the marketing system's column names and a title row, an XLSX
by openpyxl, one re-saved by another office suite), bad rows with their row numbers, a dry
run before anything is written, a re-import that reconciles (paid / updated / added), hand
records neither lost nor doubled, reminders neither lost nor doubled, team isolation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import arrears_io
from bot.assistant import Assistant
from bot.cli import main as cli_main
from bot.clock import FakeClock
from bot.models import Role
from bot.reminders import ReminderService
from bot.services import Services
from tests.arrears_files import gbk_csv, office_suite_xlsx, openpyxl_xlsx
from tests.conftest import Chat, FakeNotifier, at, make_user
from tests.tg_harness import L

TEAM = "城东供电所"
A1, A2, A3, A4, A5 = (f"32011000{n:02d}" for n in range(1, 6))
SERIAL_OCT = (date(2026, 10, 1) - date(1899, 12, 30)).days

FIRST = [  # as exported: 用户编号, 用户名称, 台区名称, 欠费金额(元), 电费年月, 费控标志
    (A1, "李大爷", "3号台区", "1,234.50", "202610", "否"),
    (A2, "王二嫂", "5号台区", "300", "2026-10-15", "费控"),
    (A3, "赵六", "7号台区", "88.8", "2026/9/1", ""),
    (A4, "钱七", "9号台区", "500", "202609", "否"),  # an area the team does not have
    ("", "无户号", "3号台区", "100", "202610", "否"),
    ("3201100006", "孙八", "3号台区", "abc", "202610", "否"),
    (A1, "李大爷", "3号台区", "1", "202610", "否"),  # the same 户号 again
    ("3201100007", "周九", "3号台区", "50", "2027-01-01", "否"),  # not yet begun
]


@dataclass
class Team:
    lead: Chat
    zhang: Chat
    li: Chat
    services: Services


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> Team:
    await make_user(services, "张三", areas=("3号台区", "5号台区"))
    await make_user(services, "李四", areas=("7号台区",))
    await make_user(services, "王班长", Role.LEAD, areas=())
    return Team(Chat(assistant, "test", "王班长"), Chat(assistant, "test", "张三"),
                Chat(assistant, "test", "李四"), services)


async def records(services: Services) -> list[dict[str, Any]]:
    rows = await services.db.fetchall(
        "SELECT a.account_no, a.customer_name, u.name AS owner, a.amount_cents, a.since, "
        "a.prepaid, a.status, a.area_name, a.imported, a.paid_at FROM arrears a "
        "JOIN users u ON u.id = a.user_id ORDER BY a.account_no, a.id")
    return [dict(r) for r in rows]


async def reminders(services: Services) -> list[tuple[int, str, str]]:
    rows = await services.db.fetchall(
        "SELECT subject_id, kind, state FROM reminders WHERE subject = 'arrears' "
        "AND state = 'pending' ORDER BY subject_id, kind, due_at")
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_leads_gbk_csv_is_previewed_then_imported(team: Team) -> None:
    services = team.services
    await team.lead.file("欠费明细.csv", gbk_csv(FIRST))
    preview = team.lead.text
    assert preview.splitlines()[:2] == [
        L("arrimp.staged", file="欠费明细.csv", team=TEAM, valid=4, errors=4),
        L("arrimp.changes", added=4, updated=0, paid=0, unchanged=0)]
    assert L("arrimp.to_lead", count=1, lead="王班长") in preview
    assert L("arrimp.unknown_areas", areas="9号台区") in preview
    # Row numbers as Excel shows them: the title is row 1, the header row 2.
    assert "第 7 行: 户号为空" in preview
    assert "第 8 行: 欠费金额：没看懂金额「abc」" in preview
    assert f"第 9 行: 户号 {A1} 与第 3 行重复" in preview
    assert "第 10 行: 欠费起始 2027-01-01 晚于今天" in preview
    assert await records(services) == []  # a preview writes nothing

    shown = team.lead.last
    await team.lead.press("确认导入")
    assert team.lead.text.startswith(L("arrimp.applied", file="欠费明细.csv", team=TEAM,
                                       valid=4, errors=4))
    got = {r["account_no"]: r for r in await records(services)}
    assert {a: (r["owner"], r["amount_cents"], r["since"], r["prepaid"], r["status"])
            for a, r in got.items()} == {
        A1: ("张三", 123450, "2026-10-01", 0, "collecting"),
        A2: ("张三", 30000, "2026-10-15", 1, "collecting"),
        A3: ("李四", 8880, "2026-09-01", 0, "collecting"),
        A4: ("王班长", 50000, "2026-09-01", 0, "collecting")}  # no manager: the lead
    assert got[A4]["area_name"] == "9号台区"
    # One reminder per household would be hundreds of pushes: the digest lists them.
    assert await reminders(services) == []
    team.lead.last = shown
    await team.lead.press("确认导入")  # pressed again: imported once
    assert team.lead.text.startswith(L("arrimp.already"))
    assert len(await records(services)) == 4


async def test_a_manager_sending_the_list_is_told_politely(team: Team) -> None:
    await team.zhang.file("欠费明细.csv", gbk_csv(FIRST))
    assert team.zhang.text == L("arrimp.lead_only", leads="王班长")
    assert await records(team.services) == []


async def test_reimport_reconciles_and_keeps_hand_records(team: Team, clock: FakeClock) -> None:
    services = team.services
    # 张三 typed one household in by hand before any list came, and one the list never has.
    await team.zhang.say(f"登记欠费 {A1} 李大爷 1234.5元")
    await team.zhang.say("10月1日")
    await team.zhang.press("否")
    await team.zhang.press("保存")
    await team.zhang.say("登记欠费 3201100099 吴老板 66元")
    await team.zhang.say("10月3日")
    await team.zhang.press("否")
    await team.zhang.press("保存")
    hand_reminders = await reminders(services)
    assert [k for _, k, _ in hand_reminders] == ["followup", "followup"]

    await team.lead.file("欠费明细.csv", gbk_csv(FIRST[:4]))
    assert L("arrimp.changes", added=3, updated=0, paid=0, unchanged=1) in team.lead.text
    assert L("arrimp.hand_kept", count=1) in team.lead.text
    await team.lead.press("确认导入")
    assert len(await records(services)) == 5  # A1 matched the hand record: not doubled

    # A household is cut off, then the next month's list (an XLSX) no longer has it.
    rec = await services.db.fetchone("SELECT id FROM arrears WHERE account_no = ?", (A3,))
    assert rec is not None
    await services.db.execute("UPDATE arrears SET status = 'cut_off', notice_served_at = ?, "
                              "cut_off_at = ? WHERE id = ?",
                              ("2026-11-10T02:00:00+00:00", "2026-11-20T02:00:00+00:00",
                               rec["id"]))
    at(clock, 2026, 12, 1, 10, 0)
    second = [(A1, "李大爷", "3号台区", 1000, SERIAL_OCT, "否"),  # paid part of it
              (A2, "王二嫂", "5号台区", 300, "2026-10-15", "是"),
              (A4, "钱七", "9号台区", 500, "202609", "否"),
              (A5, "新户", "5号台区", 120.5, "2026-11-01", "否")]
    await team.lead.file("12月欠费.xlsx", openpyxl_xlsx(second))
    assert L("arrimp.changes", added=1, updated=1, paid=1, unchanged=2) in team.lead.text
    await team.lead.press("确认导入")
    got = {r["account_no"]: r for r in await records(services)}
    assert got[A1]["amount_cents"] == 100000 and got[A1]["imported"] == 0  # hand, kept
    assert got[A3]["status"] == "paid" and got[A3]["paid_at"] == "2026-12-01T02:00:00+00:00"
    assert got[A5]["owner"] == "张三" and got[A5]["amount_cents"] == 12050
    assert got["3201100099"]["status"] == "collecting"  # typed by hand, never listed: kept
    # The cut-off household must be restored within the rule's time: its ladder is planned.
    restore = await services.db.fetchone("SELECT restore_due FROM arrears WHERE id = ?",
                                         (rec["id"],))
    assert restore is not None and restore["restore_due"] is not None
    kinds = [(sid, k) for sid, k, _ in await reminders(services)]
    assert [k for sid, k in kinds if sid == rec["id"]] == ["restore.due", "restore.escalate",
                                                         "restore.soon"]
    # The same list again: nothing changes, no reminder is planned twice or lost.
    before = await reminders(services)
    await team.lead.file("12月欠费.xlsx", openpyxl_xlsx(second))
    assert L("arrimp.changes", added=0, updated=0, paid=0, unchanged=4) in team.lead.text
    await team.lead.press("确认导入")
    assert await reminders(services) == before
    assert len(await records(services)) == 6


async def test_each_manager_gets_todays_list_in_one_morning_digest(
        team: Team, clock: FakeClock, service: ReminderService,
        notifier: FakeNotifier) -> None:
    await team.lead.file("欠费明细.csv", gbk_csv(FIRST[:4]))
    await team.lead.press("确认导入")
    at(clock, 2026, 11, 28, 8, 1)  # the next morning
    await service.scan_once()
    [zhang] = notifier.texts("张三")
    assert L("arrimp.todo.chase", count=2, amount="￥1,534.50",
             names="李大爷 ￥1,234.50、王二嫂 ￥300.00") in zhang
    assert notifier.last("张三").buttons[0][0].label == L(
        "btn.arrimp_list_chase", count=2)
    [li] = notifier.texts("李四")
    assert L("arrimp.todo.chase", count=1, amount="￥88.80", names="赵六 ￥88.80") in li
    assert "钱七" in notifier.texts("王班长")[0]  # the unassigned household: the lead's
    at(clock, 2026, 11, 28, 15, 0)
    await service.scan_once()  # once a day, no push per household
    assert len(notifier.texts("张三")) == 1 and len(notifier.texts("李四")) == 1

    # The list behind the line, a button per household.
    await team.zhang.tap(notifier.last("张三").buttons[0][0].data)
    assert team.zhang.text.splitlines() == [
        L("arrimp.list.chase", owner="张三", count=2, amount="￥1,534.50"),
        L("arrimp.list.line", name="李大爷", account=A1, amount="￥1,234.50", days=58,
          area="3号台区"),
        L("arrimp.list.line", name="王二嫂", account=A2, amount="￥300.00", days=44,
          area="5号台区")]
    # Another manager cannot open 张三's list by forging the button.
    await team.li.tap(notifier.last("张三").buttons[0][0].data)
    assert team.li.text == L("arrimp.list.empty")

    # A notice served and its period over: the household moves to the cut-off line.
    await team.services.db.execute(
        "UPDATE arrears SET status = 'notice_served', notice_served_at = ?, "
        "cutoff_earliest = ? WHERE account_no = ?",
        ("2026-11-20T02:00:00+00:00", "2026-11-27T02:00:00+00:00", A1))
    await team.zhang.say("待办")
    assert L("arrimp.todo.cutoff", count=1, amount="￥1,234.50", names="李大爷 ￥1,234.50") \
        in team.zhang.text


async def test_a_list_resaved_by_another_office_suite(team: Team) -> None:
    rows = [(A1, "李大爷", "3号台区", "1234.50", SERIAL_OCT, "否"),
            (A2, "王二嫂", "5号台区", "300", SERIAL_OCT, "费控")]
    await team.lead.file("欠费明细(WPS).xlsx", office_suite_xlsx(rows))
    assert L("arrimp.changes", added=2, updated=0, paid=0, unchanged=0) in team.lead.text
    await team.lead.press("确认导入")
    got = {r["account_no"]: r for r in await records(team.services)}
    assert (got[A1]["amount_cents"], got[A1]["since"]) == (123450, "2026-10-01")
    assert got[A2]["prepaid"] == 1


async def test_cancel_writes_nothing_and_a_newer_list_replaces_a_waiting_one(team: Team) -> None:
    await team.lead.file("a.csv", gbk_csv(FIRST[:2]))
    first = team.lead.last
    await team.lead.press("取消")
    assert team.lead.text == L("arrimp.cancelled")
    await team.lead.file("b.csv", gbk_csv(FIRST[:1]))
    await team.lead.file("c.csv", gbk_csv(FIRST[:3]))  # b waits no more: c replaces it
    c_outcome = team.lead.last
    team.lead.last = first
    await team.lead.press("确认导入")
    assert team.lead.text == L("arrimp.was_cancelled")
    team.lead.last = c_outcome
    await team.lead.press("确认导入")
    assert len(await records(team.services)) == 3


async def test_a_lead_imports_only_into_their_own_team(services: Services,
                                                       assistant: Assistant) -> None:
    await make_user(services, "张三", areas=("3号台区",))
    lead = Chat(assistant, "test", "王班长")
    await make_user(services, "王班长", Role.LEAD, areas=())
    other = Chat(assistant, "test", "赵班长")
    await make_user(services, "赵班长", Role.LEAD, team="城西供电所", areas=("3号台区",))
    await lead.file("欠费明细.csv", gbk_csv(FIRST[:1]))
    data = next(b.data for row in lead.last.replies[0].buttons for b in row  # type: ignore[union-attr]
                if "确认" in b.label)
    await other.tap(data)  # another team's lead taps the same button data
    assert other.text == L("button.stale_long") or other.last.toast == L("button.stale")
    assert await records(services) == []
    # Their own list goes into their own team only.
    await other.file("欠费明细.csv", gbk_csv(FIRST[:1]))
    await other.press("确认导入")
    rows = await services.db.fetchall("SELECT t.name FROM arrears a JOIN teams t "
                                      "ON t.id = a.team_id")
    assert [r[0] for r in rows] == ["城西供电所"]


async def test_a_file_that_is_no_list_is_not_taken(team: Team) -> None:
    await team.lead.file("客户档案.csv", "户号,户名,台区,地址\n".encode())
    assert team.lead.text.startswith(L("files.not_read", name="客户档案.csv"))
    assert L("files.readable_line", what=L("arrimp.file_kind")) in team.lead.text


async def test_cli_dry_run_then_import(team: Team, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    services = team.services
    path = tmp_path / "欠费明细.csv"
    path.write_bytes(gbk_csv(FIRST))
    settings = services.settings
    monkeypatch.setenv("TAIQU_DB_PATH", str(settings.db_path))
    if settings.database_url:
        monkeypatch.setenv("TAIQU_DATABASE_URL", settings.database_url)
    code = await _cli(["arrears", "import", str(path), "--team", TEAM, "--dry-run"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "第 7 行: 户号为空" in out
    assert ("试运行，未写入 / dry run, nothing written: 新增 4，金额变化 0，记为已缴费 0，不变 0，"
            "错误 4 行") in out
    assert await records(services) == []
    assert await _cli(["arrears", "import", str(path), "--team", TEAM]) == 1
    assert len(await records(services)) == 4
    assert await _cli(["arrears", "import", str(path), "--team", "没有这个班组"]) == 2


async def _cli(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(cli_main, argv)


def test_since_and_amount_as_exports_write_them() -> None:
    p = arrears_io.parse_since
    assert p("202610") == p("2026年10月") == p("2026-10") == p(SERIAL_OCT) == date(2026, 10, 1)
    assert p("2026/9/1") == p("20260901") == p("2026.09.01 00:00:00") == date(2026, 9, 1)
    assert p("十月") is None and p("2026-13") is None
    assert arrears_io.parse_amount(120.5) == 12050
    assert arrears_io.parse_amount("￥1,234.50") == 123450
    assert arrears_io.parse_prepaid("非费控") is False and arrears_io.parse_prepaid("远程费控")



async def test_weekly_report_has_the_recovery_rate_per_manager_and_area(
        team: Team, clock: FakeClock) -> None:
    from bot.features.arrears import RECOVERY
    from bot.router import ReportScope

    await team.lead.file("欠费明细.csv", gbk_csv(FIRST[:4]))
    await team.lead.press("确认导入")
    at(clock, 2026, 12, 1, 10, 0)  # the next list: A2 and A3 paid
    await team.lead.file("12月.csv", gbk_csv([FIRST[0], FIRST[3]]))
    await team.lead.press("确认导入")
    at(clock, 2026, 12, 7, 9, 0)
    await team.lead.say("/report 上周")
    text = team.lead.text
    total = L("arrimp.report.total", name="", rate="18.3", got="￥388.80", due="￥2,123.30",
              got_n=2, due_n=4)
    owner = L("arrimp.report.line", name="张三", rate="19.6", got="￥300.00", due="￥1,534.50",
              got_n=1, due_n=2)
    area = L("arrimp.report.line", name="7号台区", rate="100.0", got="￥88.80", due="￥88.80",
             got_n=1, due_n=1)
    assert f"{total}\n{L('arrimp.report.by_owner')}\n{owner}\n" in text
    assert f"{L('arrimp.report.by_area')}\n" in text and area in text
    # The sheet and the measure a team's targets are compared with.
    lead = (await team.services.people.users())[2]
    scope = ReportScope(lead.team_id, None, clock.now() - timedelta(days=7), clock.now(),
                        clock.now(), "zh_CN")
    part = await RECOVERY.read(team.services.db, scope)
    assert part.measures == {"arrears.recovery_rate": 18.31}
    assert part.sheet_title == L("arrimp.report.sheet")
    assert ["全班组", "", 4, 2, 2123.3, 388.8, 18.31] in part.rows
    assert ["台区", "9号台区", 1, 0, 500.0, 0.0, 0.0] in part.rows


# --- over Telegram (the real PTB channel on the fake Bot API) --------------------------------
async def test_a_lead_imports_a_list_over_telegram(services: Services, channel: Any,
                                                  fake_api: Any) -> None:
    from tests.tg_harness import body, labels, register

    await make_user(services, "张三", areas=("3号台区", "5号台区"))
    lead = await register(fake_api, services, 7, "王班长", role=Role.LEAD, areas=())
    rows = [(A1, "李大爷", "3号台区", "1234.50", SERIAL_OCT, "否"),
            (A2, "王二嫂", "5号台区", "300", SERIAL_OCT, "费控"),
            ("", "无户号", "3号台区", "100", SERIAL_OCT, "否")]
    r = await lead.send_file(office_suite_xlsx(rows), "欠费明细.xlsx",
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert body(r[0]).startswith(L("arrimp.staged", file="欠费明细.xlsx", team=TEAM, valid=2,
                                   errors=1))
    assert "第 5 行: 户号为空" in body(r[0])
    assert labels(r[0]) == [L("btn.arrimp_apply"), L("btn.arrimp_cancel")]
    assert await records(services) == []
    r = await lead.press(L("btn.arrimp_apply"))
    assert any(body(m).startswith(L("arrimp.applied", file="欠费明细.xlsx", team=TEAM,
                                    valid=2, errors=1)) for m in r), [body(m) for m in r]
    assert [(x["owner"], x["amount_cents"]) for x in await records(services)] == [
        ("张三", 123450), ("张三", 30000)]


async def test_the_example_files_through_the_terminal_chat(team: Team, clock: FakeClock) -> None:
    """data/examples as README describes them, sent with the local chat's /file."""
    import io

    from bot.channels.terminal import TerminalChat

    services = team.services
    examples = Path(__file__).resolve().parent.parent / "data" / "examples"
    lead = next(u for u in await services.people.users() if u.name == "王班长")
    async with services.db.tx() as tx:
        await services.people.link_identity(tx, "terminal", str(lead.id), lead.id,
                                            services.clock.now())
    out = io.StringIO()
    chat = TerminalChat(team.lead.assistant, lead, out)
    await chat.send(f"/file {examples / 'arrears_2026-11_gbk.csv'}")
    assert L("arrimp.staged", file="arrears_2026-11_gbk.csv", team=TEAM, valid=4,
             errors=2) in out.getvalue()
    await chat.send("确认导入")  # a button by its label, as the terminal takes it
    assert L("arrimp.applied", file="arrears_2026-11_gbk.csv", team=TEAM, valid=4,
             errors=2) in out.getvalue()
    at(clock, 2026, 12, 1, 10, 0)
    for name in ("arrears_2026-12.xlsx", "arrears_2026-12_resaved.xlsx"):
        await chat.send(f"/file {examples / name}")
        await chat.send("确认导入")
    text = out.getvalue()
    assert L("arrimp.changes", added=1, updated=1, paid=1, unchanged=2) in text
    assert L("arrimp.changes", added=0, updated=0, paid=0, unchanged=4) in text
    got = {r["account_no"]: r for r in await records(services)}
    assert got[A3]["status"] == "paid" and got[A5]["amount_cents"] == 12050


async def test_a_medical_prepaid_household_from_a_list_asks_the_lead_at_once(
        team: Team) -> None:
    """The register says 医疗设备: a prepaid meter may be cut by the system at any time, so
    the lead is asked to decide as soon as the list brings the household in."""
    from bot.storage.customers import CustomerData

    services = team.services
    zhang = next(u for u in await services.people.users() if u.name == "张三")
    area = (await services.people.areas_for(zhang))[1]  # 5号台区
    await services.customers.create(zhang, CustomerData(
        account_no=A2, name="王二嫂", area_id=area.id, address="东门村", phone="13800001234",
        categories=("medical",)), services.clock.now())
    await team.lead.file("欠费明细.csv", gbk_csv(FIRST[:2]))
    await team.lead.press("确认导入")
    row = await services.db.fetchone("SELECT id, medical, in_register FROM arrears "
                                     "WHERE account_no = ?", (A2,))
    assert row is not None and (row["medical"], row["in_register"]) == (1, 1)
    assert await reminders(services) == [(row["id"], "decision", "pending")]
