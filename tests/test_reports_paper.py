"""/export 日志 and `taiqu-bot export logs`: the printable XLSX laid out like the paper
台区客户经理工作日志 (one block per entry, the nine ticks, content, problems, 记录人), A4
portrait, no block split across pages, each person on a new page."""

from __future__ import annotations

import asyncio
import io
import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.cli import main
from bot.clock import FakeClock
from bot.features.reports import handlers, paper
from bot.services import Services
from tests.conftest import Chat, use_store
from tests.test_reports import NOW, TEAM_A, World, add_log, make_people, seed

ITEMS = ("走访", "宣传", "受托办理", "巡视", "报修", "催费", "线损", "应急处置", "客户服务")


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    return await seed(services, clock)


def sheet_of(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data)).active


def blocks(ws: Any) -> list[dict[str, Any]]:
    """Each entry's block, read back the way a person reads the printed form."""
    out = []
    for r in range(1, ws.max_row + 1):
        if ws.cell(r, 1).value != "日期":
            continue
        ticks = [ws.cell(r + 1, c).value for c in range(2, 11)]
        out.append({"row": r, "at": ws.cell(r, 2).value, "area": ws.cell(r, 6).value,
                    "id": ws.cell(r, 9).value, "ticks": ticks,
                    "content": ws.cell(r + 2, 2).value, "problems": ws.cell(r + 3, 2).value,
                    "customer": ws.cell(r + 4, 2).value, "recorder": ws.cell(r + 5, 2).value,
                    "labels": [ws.cell(r + i, 1).value for i in range(6)]})
    return out


async def test_export_is_laid_out_like_the_paper_form(seeded: World,
                                                      assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    out = await lead.say("/export 日志 上周")
    reply = out.replies[0]
    assert reply.text == ("📎 城东供电所 2026-11-30 — 2026-12-06 的工作日志 4 条，版式同纸质"
                          "《台区客户经理工作日志》，可直接打印（A4 纵向）。")
    [doc] = reply.attachments
    assert doc.filename == "工作日志_城东供电所_2026-11-30_2026-12-06.xlsx"
    ws = sheet_of(doc.data)
    assert ws.title == "工作日志"
    assert ws["A1"].value == "台区客户经理工作日志"
    assert ws["A2"].value == "班组：城东供电所    期间：2026-11-30 — 2026-12-06    共 4 条"
    assert ws.print_title_rows == "$1:$2"
    assert ws.page_setup.orientation == "portrait" and int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    got = blocks(ws)
    assert [b["recorder"] for b in got] == ["张三", "张三", "李四", "李四"]  # by person
    assert got[0]["labels"] == ["日期", "工作项目", "工作内容", "发现问题/隐患", "涉及客户",
                                "记录人"]
    first = got[0]
    assert first["at"] == datetime(2026, 11, 30, 0, 0) and first["area"] == "1号台区"
    assert first["ticks"] == ["☑ 走访", "□ 宣传", "□ 受托办理", "☑ 巡视", "□ 报修", "□ 催费",
                              "□ 线损", "□ 应急处置", "□ 客户服务"]
    assert first["content"] == "夜间巡视 1号台区" and first["problems"] == "2号杆拉线松动"
    assert got[1]["customer"] == "5500010001 刘**"  # masked on paper too
    assert ws.cell(got[0]["row"] + 2, 2).coordinate in {str(m).split(":")[0]
                                                         for m in ws.merged_cells.ranges}
    for b in got:
        assert [t.split(" ", 1)[1] for t in b["ticks"]] == list(ITEMS)
    # Each person starts a new page.
    breaks = [brk.id for brk in ws.row_breaks.brk]
    assert breaks == [got[2]["row"] - 1]


async def test_long_exports_never_split_a_block(services: Services, clock: FakeClock) -> None:
    await make_people(services, clock)
    w = await seed(services, clock)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=NOW.tzinfo)
    for i in range(40):
        await add_log(services, w, "王五", start + timedelta(hours=3 * i), ("patrol",), "4号台区",
                      "更换熔丝，清理树障。" * (1 + i % 12), problems="有隐患" if i % 3 else None)
    out = await Chat(Assistant(services), "test", "王班长").say("/export 日志 上周")
    ws = sheet_of(out.replies[0].attachments[0].data)
    got = blocks(ws)
    assert len(got) == 44
    starts = {b["row"] for b in got}
    breaks = [brk.id for brk in ws.row_breaks.brk]
    assert len(breaks) >= 8
    for row in breaks:
        assert row + 1 in starts  # the page ends just before a block begins
    pages = [3, *(b + 1 for b in breaks), ws.max_row + 1]
    for top, end in itertools.pairwise(pages):
        height = sum(ws.row_dimensions[r].height or 15 for r in range(top, end))
        assert height <= paper.PAGE_PT + 1


async def test_export_scope_and_answers(seeded: World, assistant: Assistant,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    zhang = Chat(assistant, "test", "张三")
    out = await zhang.say("/export 日志 上周")
    ws = sheet_of(out.replies[0].attachments[0].data)
    assert {b["recorder"] for b in blocks(ws)} == {"张三"}
    await zhang.say("/export 日志 李四 上周")
    assert zhang.text.startswith("客户经理只能查看自己的汇总")
    await zhang.say("/export")
    assert zhang.text.startswith("导出打印版工作日志")
    await zhang.say("/export 日志 2026-13-01")
    assert "月份是 1–12" in zhang.text or "不存在" in zhang.text
    await zhang.say("/export 日志 2026-10-01 2026-10-07")
    assert zhang.text == "2026-10-01 — 2026-10-07 没有可导出的工作日志。"
    await zhang.say("导出日志 上周")
    assert zhang.last is not None and zhang.last.replies[0].attachments
    lead = Chat(assistant, "test", "王班长")
    for text in ("/export 日志 李四 上周", "/export 日志 上周李四", "导出日志 李四 上周"):
        out = await lead.say(text)  # one person of the team, found by name with the read
        assert {b["recorder"] for b in blocks(sheet_of(
            out.replies[0].attachments[0].data))} == {"李四"}, text
    await lead.say("/export 日志 李斯")  # no one of that name: the members read say so
    assert lead.text.startswith("本班组没有叫「李斯」的人") and "李四" in lead.text
    monkeypatch.setattr(handlers, "MAX_PAPER_ENTRIES", 3)
    await lead.say("/export 日志 上周")
    assert "这段时间有 4 条日志，超过一次导出的上限 3 条" in lead.text


async def test_cli_export(seeded: World, services: Services, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    use_store(monkeypatch, services.settings)
    target = tmp_path / "logs.xlsx"
    # The CLI runs its own event loop: a thread of its own, as from a shell.
    rc = await asyncio.to_thread(main, ["export", "logs", "--team", TEAM_A, "--from",
                                        "2026-11-30", "--to", "2026-12-06", str(target)])
    assert rc == 0
    assert "4 条工作日志" in capsys.readouterr().out
    got = blocks(load_workbook(target).active)
    assert [b["id"] for b in got] == [2, 3, 6, 4]  # 张三's, then 李四's, each by time
    for args, message in (
            (["--team", "没有这个所", "--from", "2026-11-30", "--to", "2026-12-06"], "no team"),
            (["--team", TEAM_A, "--from", "2026-11-31", "--to", "2026-12-06"], "invalid --from"),
            (["--team", TEAM_A, "--from", "2026-12-06", "--to", "2026-11-30"], "is before"),
            (["--team", TEAM_A, "--from", "2024-01-01", "--to", "2026-12-06"], "at most")):
        argv = ["export", "logs", *args, str(tmp_path / "x.xlsx")]
        assert await asyncio.to_thread(main, argv) == 2
        assert message in capsys.readouterr().err
