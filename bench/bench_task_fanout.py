"""派任务 to many managers at once (issue #12): round trips and wall time of the sentence and
the 保存 step when a lead gives one task to 全班, by the size of the team, and of a manager's
上报 (its sentence and 保存), through the real core on a real SQLite file or a throwaway
PostgreSQL (bench.bench_round_trips.on_store). Before the tasks
were one INSERT (Batch.insert_rows), a PostgreSQL batch writing `tasks` once per assignee ran
statement by statement: 2N + 6 round trips.

    .venv/bin/python -m bench.bench_task_fanout [--backend postgresql] [--sizes 1,3,30,300]

Run it from main's tree too (copy this file there) for the figures before. Prints a markdown
table; nothing is asserted (tests/test_round_trips.py asserts the counts)."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta
from typing import Any

from bench.bench_round_trips import on_store
from bot.assistant import Assistant
from bot.events import Incoming, Outcome
from bot.models import Role
from bot.services import Services


async def _join(services: Services, name: str, role: Role, external_id: str) -> None:
    invite = await services.people.create_invite(
        role=role, team="城东供电所", areas=[] if role == Role.LEAD else ["3号台区"], name=name,
        now=services.clock.now(), ttl=timedelta(days=7))
    await services.people.redeem_invite(invite.code, channel="bench", external_id=external_id,
                                        fallback_name=name, now=services.clock.now())


def _button(out: Outcome, label: str) -> str:
    return next(b.data for r in out.replies for row in r.buttons for b in row if label in b.label)


async def _counted(db: Any, act: Any) -> tuple[Any, int, float]:
    """What `act()` returned, its round trips (bookkeeping behind the reply included) and its
    wall seconds."""
    await db.settle()
    db.trips.reset()
    t0 = time.perf_counter()
    out = await act()
    seconds = time.perf_counter() - t0
    await db.settle()
    return out, db.trips.trips + db.trips.inline, seconds


async def _give_to_all(services: Services, size: int, rounds: int) -> dict[str, Any]:
    for n in range(size):
        await _join(services, f"经理{n:04d}", Role.MANAGER, f"m{n}")
    await _join(services, "王班长", Role.LEAD, "lead")
    core, db = Assistant(services), services.db
    await core.handle(Incoming("bench", "lead", text="你好"))  # warm caches
    await core.handle(Incoming("bench", "m0", text="你好"))
    trips: dict[str, list[int]] = {k: [] for k in STEPS}
    seconds: dict[str, list[float]] = {k: [] for k in STEPS}

    def note(step: str, n: int, s: float) -> None:
        trips[step].append(n)
        seconds[step].append(s)

    for r in range(rounds):
        for who, text, said in (("lead", f"派任务 全班 明天下班前 核对{r}", "已派任务给"),
                                ("m0", f"上报 3号台区变压器声音异常{r}", "已上报给")):
            step = text[:3].strip()
            out, n, s = await _counted(db, lambda who=who, text=text: core.handle(
                Incoming("bench", who, text=text)))
            note(f"{step} sentence", n, s)
            out, n, s = await _counted(db, lambda who=who, out=out: core.handle(
                Incoming("bench", who, callback=_button(out, "保存"))))
            note(f"{step} 保存", n, s)
            assert any(said in reply.text for reply in out.replies), out
    rows = await db.fetchone("SELECT count(*) FROM tasks")
    assert rows is not None and int(rows[0]) == size * rounds
    for v in seconds.values():
        v.sort()
    return {"size": size, "trips": {k: max(v) for k, v in trips.items()},
            "p50_ms": {k: v[len(v) // 2] * 1000 for k, v in seconds.items()}}


STEPS = ("派任务 sentence", "派任务 保存", "上报 sentence", "上报 保存")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--sizes", default="1,3,30,300")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    print(f"{args.backend}\n\n| managers (全班) | "
          + " | ".join(f"{k}: trips / p50 ms" for k in STEPS) + " |\n"
          + "|---" * (len(STEPS) + 1) + "|")
    for size in (int(s) for s in args.sizes.split(",")):
        r = asyncio.run(on_store(args.backend,
                                 lambda services, n=size: _give_to_all(services, n, args.rounds)))
        print(f"| {r['size']} | " + " | ".join(
            f"{r['trips'][k]} / {r['p50_ms'][k]:.1f}" for k in STEPS) + " |", flush=True)


if __name__ == "__main__":
    main()
