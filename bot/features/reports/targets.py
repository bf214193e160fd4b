"""A team's targets (data/targets.json) against the figures the report sections give
(ReportPart.measures): 目标 vs 实际 in the monthly report. A target no section measured is
shown as 无数据, never as met."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from bot.config import DATA_DIR
from bot.i18n import t
from bot.router import ReportPart

_SIGN = {">=": "≥", "<=": "≤", "=": ""}
_MET = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "=": lambda a, b: a == b}


@dataclass(frozen=True)
class Target:
    name: str
    op: str
    value: float

    def met(self, actual: float) -> bool:
        return bool(_MET[self.op](round(actual, 1), self.value))


@cache
def _data() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((DATA_DIR / "targets.json").read_text(encoding="utf-8"))
    for spec in [*raw["default"].values(),
                 *(s for team in raw.get("teams", {}).values() for s in team.values() if s)]:
        if spec["op"] not in _MET:
            raise ValueError(f"data/targets.json: unknown op {spec['op']!r}")
    return raw


def targets_for(team_name: str) -> list[Target]:
    """The default targets with the team's overrides (null drops one for the team)."""
    raw = _data()
    merged = {**raw["default"], **raw.get("teams", {}).get(team_name, {})}
    return [Target(name, spec["op"], float(spec["value"]))
            for name, spec in merged.items() if spec]


def _figure(value: float) -> str:
    return f"{value:g}"


def targets_part(team_name: str, parts: list[ReportPart], locale: str) -> ReportPart:
    """The 目标 vs 实际 lines and sheet for one team from all sections' measures."""
    targets = targets_for(team_name)
    if not targets:
        return ReportPart()
    measured: dict[str, float] = {}
    for part in parts:
        measured.update(part.measures)
    lines = [t(locale, "target.title")]
    rows: list[list[Any]] = []
    for target in targets:
        label = t(locale, f"target.{target.name}")
        label = target.name if label == f"target.{target.name}" else label
        goal = t(locale, "target.goal", op=_SIGN[target.op],
                 value=_figure(target.value))
        actual = measured.get(target.name)
        if actual is None:
            verdict = t(locale, "target.no_data")
            lines.append(t(locale, "target.line_none", label=label, goal=goal, verdict=verdict))
            rows.append([label, goal, "", verdict])
            continue
        verdict = t(locale, "target.met" if target.met(actual) else "target.missed")
        lines.append(t(locale, "target.line", label=label, goal=goal,
                       actual=_figure(round(actual, 1)), verdict=verdict))
        rows.append([label, goal, round(actual, 1), verdict])
    header = [t(locale, f"target.col_{k}") for k in ("name", "goal", "actual", "verdict")]
    return ReportPart(lines, t(locale, "target.sheet"), header, rows)
