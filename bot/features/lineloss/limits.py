"""The line-loss data (data/lineloss.json): thresholds by area kind, the run length that opens
an item, the check deadline, the causes and the column names of the exports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bot.deadlines import Rule

DATA_FILE = Path(__file__).resolve().parents[3] / "data" / "lineloss.json"


@dataclass(frozen=True)
class Threshold:
    above: float  # percent: a rate above this is abnormal (loss too high: theft, faults)
    below: float  # percent: a rate below this is abnormal (negative loss: records, meters)

    def abnormal(self, rate: float | None) -> bool:
        return rate is not None and (rate > self.above or rate < self.below)


@dataclass(frozen=True)
class Limits:
    thresholds: dict[str, Threshold]
    days_in_a_row: int
    open_within_days: int
    check_deadline: Rule
    remind_before: Rule
    causes: tuple[str, ...]
    chart_days: int
    report_lines: int
    columns: dict[str, tuple[str, ...]]

    def threshold(self, kind: str) -> Threshold:
        return self.thresholds.get(kind) or self.thresholds["default"]


@cache
def limits() -> Limits:
    with DATA_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return Limits(
        thresholds={k: Threshold(float(v["above"]), float(v["below"]))
                    for k, v in data["thresholds"].items()},
        days_in_a_row=max(1, int(data["days_in_a_row"])),
        open_within_days=int(data["open_within_days"]),
        check_deadline=Rule.model_validate(data["check_deadline"]),
        remind_before=Rule.model_validate(data["remind_before"]),
        causes=tuple(data["causes"]),
        chart_days=int(data["chart_days"]),
        report_lines=int(data["report_lines"]),
        columns={k: tuple(v) for k, v in data["columns"].items()})
