"""The report end to end through the real Telegram channel on the loopback fake Bot API: the
lead gets a message, an XLSX document and a PNG photo whose contents hold the expected values;
a manager gets their own; /export sends the printable log; the Monday push arrives too."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import SHANGHAI
from tests.fakebotapi import FakeBotAPI
from tests.test_reports import (
    CREATED,
    EXPECTED_PEOPLE,
    TEAM_A,
    TEAM_B,
    png_description,
    rows_by_name,
    seed,
)
from tests.tg_harness import TgUser, body, register

LEAD, ZHANG = 7, 42


@pytest.fixture
async def team(services: Services, channel: TelegramChannel, fake_api: FakeBotAPI,
               clock: FakeClock) -> dict[str, TgUser]:
    clock.set(CREATED)
    people = {
        "张三": await register(fake_api, services, ZHANG, "张三", team=TEAM_A,
                               areas=("1号台区", "2号台区")),
        "李四": await register(fake_api, services, 43, "李四", team=TEAM_A, areas=("3号台区",)),
        "王五": await register(fake_api, services, 44, "王五", team=TEAM_A, areas=("4号台区",)),
        "王班长": await register(fake_api, services, LEAD, "王班长", Role.LEAD, team=TEAM_A,
                                 areas=()),
        "赵六": await register(fake_api, services, 45, "赵六", team=TEAM_B,
                               areas=("西1号台区",)),
        "钱班长": await register(fake_api, services, 8, "钱班长", Role.LEAD, team=TEAM_B,
                                 areas=()),
    }
    await seed(services, clock)
    return people


def files(msgs: list[dict[str, Any]]) -> dict[str, tuple[str, bytes]]:
    """method -> (file name, bytes) of the documents and photos among `msgs`."""
    out = {}
    for m in msgs:
        if m["method"] == "sendDocument":
            out["document"] = (m["document"].get("file_name", ""), m["document"]["content"])
        elif m["method"] == "sendPhoto":
            out["photo"] = (m["photo"].get("file_name") or "", m["photo"]["content"])
    return out


async def test_lead_receives_message_document_and_photo(team: dict[str, TgUser]) -> None:
    lead = team["王班长"]
    msgs = await lead.say("/report", timeout=30)
    assert [m["method"] for m in msgs] == ["sendMessage", "sendDocument", "sendPhoto"]
    text = body(msgs[0])
    assert text.startswith("📊 城东供电所 工作汇总\n2026-11-30 周一 — 2026-12-06 周日")
    assert "📮 投诉：新增 2 · 办结 1 · 未按时 2 · 及时率 33%（1/3）" in text  # issue #15 §4.3
    assert ("张三：日志2条（走访2 巡视1），特殊客户走访1次，投诉新增1 办结1，"
            "欠费新增2户 回收1户 未缴1户，及时率60%，现在超期1项") in text
    assert len(text) <= 4096
    got = files(msgs)
    name, data = got["document"]
    assert name == "工作汇总_城东供电所_2026-11-30_2026-12-06.xlsx"
    wb = load_workbook(io.BytesIO(data))
    summary = rows_by_name(wb["汇总"])
    for who, exp in EXPECTED_PEOPLE.items():
        assert summary[who]["日志条数"] == exp["entries"]
        assert summary[who]["特殊客户走访"] == exp["visits"]
        assert summary[who]["未缴（元）"] == pytest.approx(exp["a_out_cents"] / 100)
    first_log = next(wb["工作日志"].iter_rows(min_row=2, values_only=True))
    assert first_log[1] == datetime(2026, 11, 30, 0, 0)  # a real date, Monday 00:00 local
    _, png = got["photo"]
    img = Image.open(io.BytesIO(png))
    img.load()
    sections = len(png_description(png)["sections"])  # the features' figures under the people
    assert img.format == "PNG" and img.size == (1200, 240 + 26 * (3 + (sections + 2
                                                                      if sections else 0)))
    drawn = {r["name"]: r for r in png_description(png)["rows"]}
    assert (drawn["李四"]["on_time"], drawn["李四"]["judged"]) == EXPECTED_PEOPLE["李四"]["on_time"]


async def test_manager_and_other_team(team: dict[str, TgUser]) -> None:
    msgs = await team["张三"].say("/report 上周", timeout=30)
    assert [m["method"] for m in msgs] == ["sendMessage", "sendDocument"]
    assert body(msgs[0]).startswith("📊 张三 的工作汇总（城东供电所）")
    assert "李四" not in body(msgs[0])
    wb = load_workbook(io.BytesIO(files(msgs)["document"][1]))
    assert set(rows_by_name(wb["汇总"])) == {"张三", "合计"}
    msgs = await team["张三"].say("/report 李四")
    assert [body(m) for m in msgs] == ["客户经理只能查看自己的汇总，发 /report 即可。"]
    msgs = await team["钱班长"].say("/report", timeout=30)
    assert body(msgs[0]).startswith("📊 城西供电所 工作汇总")
    wb = load_workbook(io.BytesIO(files(msgs)["document"][1]))
    assert set(rows_by_name(wb["汇总"])) == {"赵六", "合计"}
    assert all("张三" not in body(m) for m in msgs)


async def test_export_printable_log(team: dict[str, TgUser]) -> None:
    msgs = await team["王班长"].say("/export 日志 上周", timeout=30)
    assert [m["method"] for m in msgs] == ["sendMessage", "sendDocument"]
    assert "工作日志 4 条" in body(msgs[0])
    name, data = files(msgs)["document"]
    assert name == "工作日志_城东供电所_2026-11-30_2026-12-06.xlsx"
    ws = load_workbook(io.BytesIO(data)).active
    assert ws["A1"].value == "台区客户经理工作日志"
    assert sum(1 for r in ws.iter_rows(values_only=True) if r[0] == "日期") == 4


async def test_monday_push_through_telegram(team: dict[str, TgUser], services: Services,
                                            channel: TelegramChannel, fake_api: FakeBotAPI,
                                            clock: FakeClock) -> None:
    service = ReminderService(services, Dispatcher(services, [channel.notifier]))
    lead = team["王班长"]
    before = len(lead.sent)
    clock.set(datetime(2026, 12, 7, 8, 31, tzinfo=SHANGHAI))
    await service.scan_once()
    await service.scan_once()
    new = [m for m in lead.sent[before:] if m["method"] != "sendMessage"
           or body(m).startswith("📬")]
    assert [m["method"] for m in new] == ["sendMessage", "sendDocument", "sendPhoto"]
    assert body(new[0]).startswith("📬 上周工作汇总（每周一自动发送）\n📊 城东供电所 工作汇总")
    zhang = [m for m in team["张三"].sent if body(m).startswith("📬")]
    assert len(zhang) == 1 and "李四" not in body(zhang[0])
