"""Round trips and time of a month's plans in a big team (issue #12): a lead's 本月计划 and
上月计划 (the team's plans, each with its items done / total), a plan opened from its list,
the plans' part of the monthly report for the whole team and for one manager, and a
manager's own steps (drafting, showing, 加 with a day and without, 改, 删 N, ✖ and 撤销删除,
✅), through the real core on a real SQLite file or a throwaway PostgreSQL.
BENCH_PLANS_MANAGERS managers (one 台区 each) draft their plan of November 2026 by saying
本月计划 (a 台区's two patrols), the first of them logs a patrol (a tick read from the work
log); then it is 1 December.

    BENCH_PLANS_MANAGERS=1000 .venv/bin/python -m bench.bench_plans [--backend postgresql]
        [--steps 5] [--before-ref REF]

With --before-ref the same run is made first with the code of REF (bench/bench_todo.py's
bench_main); the plans' section is run as REF declares it (a ReportSection, or a function
reading its own). The time is wall time, only as good as the machine's load (record
`uptime`). Nothing is asserted (tests/test_read_round_trips.py asserts the counts)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.bench_round_trips import on_store
from bench.bench_todo import bench_main, timed
from bot.assistant import Assistant
from bot.features.plans import report as plans_report
from bot.models import Role
from bot.router import ReportPart, ReportScope, ReportSection
from bot.services import Services
from tests.conftest import Chat, at, make_user

# In the environment, so that the run of --before-ref (a process of its own) has it too.
N = int(os.environ.get("BENCH_PLANS_MANAGERS", "1000"))


async def measure(backend: str, steps: int) -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _steps(services, steps))


async def section(services: Services, scope: ReportScope) -> ReportPart:
    """The plans' part as the code measured declares it."""
    declared = getattr(plans_report, "REPORT", None)
    if isinstance(declared, ReportSection):
        return await declared.read(services.db, scope)
    return await plans_report.plans_report(services.db, scope)  # type: ignore[attr-defined]


async def _steps(services: Services, steps: int) -> list[dict[str, Any]]:
    core = Assistant(services)
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    first = None
    for n in range(N):
        user = await make_user(services, f"经理{n:05}", areas=(f"{n + 1}号台区",))
        first = first or user
        await Chat(core, "test", user.name).say("本月计划")
    assert first is not None
    zhang = Chat(core, "test", first.name)
    await zhang.say("今天上午去1号台区巡视了，设备正常")
    await zhang.press("保存")
    at(services.clock, 2026, 12, 1, 10, 0)
    lead = Chat(core, "test", "王班长")
    await lead.say("你好")
    tz = services.settings.tz
    november = (datetime(2026, 11, 1, tzinfo=tz), datetime(2026, 12, 1, tzinfo=tz))
    team = ReportScope(first.team_id, None, *november, services.clock.now(), "zh_CN")
    one = ReportScope(first.team_id, first.id, *november, services.clock.now(), "zh_CN")
    part = await section(services, team)
    assert len(part.rows) == N, len(part.rows)  # a run that lost a plan cannot look fast
    db = services.db
    return [
        await timed(db, lambda: lead.say("上月计划"), steps, f"上月计划 (lead, {N} plans)"),
        await timed(db, lambda: lead.say("本月计划"), steps, "本月计划 (lead, none yet)"),
        await timed(db, lambda: lead.tap("-|plans.open|1"), steps, "a plan opened (lead)"),
        await timed(db, lambda: section(services, team), steps,
                    f"report section, team ({N})"),
        await timed(db, lambda: section(services, one), steps, "report section, one manager"),
        *await manager_steps(services, core, steps),  # after: the lead's steps as before
    ]


async def manager_steps(services: Services, core: Assistant,
                        steps: int) -> list[dict[str, Any]]:
    """A manager's own steps on 1 December: drafting December's plan (a manager each time,
    November's unfinished items carried), showing it, 加 (with a day and without), 改, 删 N
    typed, ✖ with 撤销删除, and ✅ on a free item once the plan is approved (a new item each
    time)."""
    db = services.db
    drafting = [Chat(core, "test", f"经理{n:05}") for n in range(1, steps + 2)]
    for chat in drafting:  # the day's first message is noted: not the step measured
        await chat.say("你好")
    chats = iter(drafting)
    out = [await timed(db, lambda: next(chats).say("本月计划"), steps,
                       "本月计划 drafted (manager)")]
    zhang = Chat(core, "test", "经理00000")
    await zhang.say("本月计划")
    out.append(await timed(db, lambda: zhang.say("本月计划"), steps, "本月计划 (manager)"))
    out.append(await timed(db, lambda: zhang.say("加 12号 抄表核对"), steps, "加 12号"))
    out.append(await timed(db, lambda: zhang.say("改 1 15号"), steps, "改 1 15号"))
    out.append(await timed(db, lambda: zhang.say("加 核对表计档案"), steps,
                           "加 without a day"))
    out.append(await timed(db, lambda: zhang.say("删 3"), steps, "删 3 (typed)"))
    item = (await db.fetchone("SELECT max(id) FROM plan_items"))[0]

    async def remove_and_undo() -> None:
        await zhang.tap(f"-|plans.rm|{item}")
        await zhang.tap(f"-|plans.undo|{item}")

    out.append(await timed(db, remove_and_undo, steps, "✖ + 撤销删除 (two steps)"))
    await db.execute("UPDATE plans SET status = 'approved' WHERE id = (SELECT plan_id FROM "
                     "plan_items WHERE id = ?)", (item,))
    free = iter([r[0] for r in await db.fetchall(
        "SELECT id FROM plan_items WHERE plan_id = (SELECT plan_id FROM plan_items WHERE "
        "id = ?) AND kind = 'free' ORDER BY id", (item,))])
    out.append(await timed(db, lambda: zhang.tap(f"-|plans.tick|{next(free)}"), steps,
                           "✅ (a free item)"))
    return out


if __name__ == "__main__":
    here = Path(__file__)
    bench_main("bench.bench_plans", measure, 5, [here])
