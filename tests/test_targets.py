"""A team's targets (data/targets.json, issue #14 §4) against the figures the features'
report sections give (ReportPart.measures): 目标 vs 实际 in the monthly report, met ✅ or
missed ❌ with the figure, 无数据 for a target nobody measured; per-team overrides."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.features.reports import handlers as reports
from bot.features.reports import targets
from bot.models import Role
from bot.router import ReportPart, ReportScope, Router
from bot.services import Services
from bot.storage.db import Database
from tests.conftest import Chat, make_user
from tests.test_features import chat_with, root_with

pytestmark = pytest.mark.timeout(60)


def measuring_feature() -> Router:
    """A feature whose report section measures the recovery and line-loss rates (the arrears
    and line-loss features do so in their own sections)."""
    router = Router("measuring")

    @router.report_section
    async def section(db: Database, scope: ReportScope) -> ReportPart:
        return ReportPart(measures={"arrears.recovery_rate": 99.6, "lineloss.rate": 6.8})

    return router


@pytest.fixture
async def lead(services: Services, monkeypatch: pytest.MonkeyPatch) -> Chat:
    root = root_with(measuring_feature(), first=False)
    monkeypatch.setattr(reports, "app_router", lambda: root)
    zhang = await chat_with(services, root)
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    return Chat(zhang.assistant, "test", "王班长")


async def test_the_monthly_report_compares_the_measures_with_the_targets(lead: Chat) -> None:
    out = await lead.say("/report 本月")
    assert ("🎯 目标 vs 实际：\n"
            "• 电费回收率：目标 ≥99.5%，实际 99.6% ✅\n"
            "• 线损率：目标 ≤6%，实际 6.8% ❌\n"
            "• 到期走访完成率：目标 100%，无数据") in lead.text  # no customer due: not met
    xlsx = next(a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx"))
    sheet = load_workbook(io.BytesIO(xlsx.data))["目标对比"]
    assert [c.value for c in sheet[2]] == ["电费回收率", "目标 ≥99.5%", 99.6, "✅"]
    assert [c.value for c in sheet[4]][1:] == ["目标 100%", None, "无数据"]
    await lead.say("/report 上周")  # a week is no month: no targets
    assert "目标 vs 实际" not in lead.text


async def test_a_team_override_replaces_the_default(lead: Chat,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, Any] = {
        "default": {"arrears.recovery_rate": {"op": ">=", "value": 99.5},
                    "lineloss.rate": {"op": "<=", "value": 6}},
        "teams": {"城东供电所": {"lineloss.rate": {"op": "<=", "value": 7},
                                "arrears.recovery_rate": None}}}
    monkeypatch.setattr(targets, "_data", lambda: data)
    await lead.say("/report 上月")
    assert "🎯 目标 vs 实际：\n• 线损率：目标 ≤7%，实际 6.8% ✅" in lead.text
    assert "电费回收率：" not in lead.text
    assert [t.name for t in targets.targets_for("城西供电所")] == [
        "arrears.recovery_rate", "lineloss.rate"]


def test_the_shipped_targets_file_reads() -> None:
    assert {t.name: (t.op, t.value) for t in targets.targets_for("城东供电所")} == {
        "arrears.recovery_rate": (">=", 99.5), "lineloss.rate": ("<=", 6.0),
        "visits.done_rate": ("=", 100.0)}
