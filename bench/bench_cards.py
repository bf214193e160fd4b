"""Round trips and time per step of every card, list and command a manager or a lead opens
(issue #12: at most 2 round trips a step): the survey of tests/test_read_round_trips.py (a
team with a record of every kind), each step `--steps` times, through the real core on a
real SQLite file or a throwaway PostgreSQL. The store counts the round trips
(Backend.trips); the time is the step's wall time, only as good as the machine's load
(record `uptime`). The reveal limit is lifted so that repeated reveals stay reveals.

    .venv/bin/python -m bench.bench_cards [--backend postgresql] [--steps 50] [--before-ref REF]

With --before-ref the same run is made first with the code of REF (`git archive` into a
temporary directory, this script and the survey's test module copied in), side by side in
one table. Nothing is asserted (tests/test_read_round_trips.py asserts the counts)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bench.bench_round_trips import on_store
from bench.bench_todo import bench_main, timed
from bot.assistant import Assistant
from bot.services import Services
from tests.conftest import Chat
from tests.test_read_round_trips import (
    LEAD,
    MANAGER,
    PINNED,
    SURVEY,
    a_team_with_one_of_everything,
    step,
)

SKIPPED = ("/report",)  # with its XLSX and chart: bench/bench_report.py measures it


async def measure(backend: str, steps: int) -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _steps(services, steps))


async def _steps(services: Services, steps: int) -> list[dict[str, Any]]:
    services = dataclasses.replace(services, settings=services.settings.model_copy(
        update={"reveal_limit": 10**9}))
    core = Assistant(services)
    await a_team_with_one_of_everything(services, core)
    out = []
    for who in (MANAGER, LEAD):
        chat = Chat(core, "test", who)
        await chat.say("你好")
        out += [await timed(services.db, step(chat, what), steps, f"{what} ({who})")
                for what in (*SURVEY, *PINNED) if not what.startswith(SKIPPED)]
    return out


if __name__ == "__main__":
    here = Path(__file__)
    bench_main("bench.bench_cards", measure, 50, [
        here, here.with_name("bench_round_trips.py"),
        here.parents[1] / "tests" / "test_read_round_trips.py"])
