"""A chat step's work does not grow with the size of the person's team (issue #12): a 供电所 of
a province has thousands of 台区, and a step used to read and parse every one of them (and
compare each with the sentence) on every message of every manager.

The step's read brings the team's 台区 only when the list held is not current (any change to
them, by any writer on any instance, moves teams.areas_version on: migration 0035), and the
names are indexed once per change (bot.vocab.AreaNames), not compared one by one."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings
from bot.features.worklog.intents import worklog_intent
from bot.models import Role
from bot.rules import work_item_words
from bot.services import Services
from bot.storage.customers import CustomerData
from bot.storage.db import iso
from bot.storage.steps import read_step
from bot.vocab import AreaNames, take_area
from tests.conftest import Chat, make_user

pytestmark = pytest.mark.both_backends

BIG = 3000  # 台区 added to the big team
# A round of steps: /todo, free text no feature takes, a form's first line naming a 台区,
# a step inside the form, and 取消 twice (asked, then done).
ROUND = ("/todo", "今天天气不错", "记录巡视 3号台区", "现在", "取消", "取消")


async def add_areas(services: Services, team: str, names: list[str]) -> None:
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = ?", (team,))
    assert row is not None
    async with services.db.tx() as tx:
        await tx.executemany("INSERT INTO areas(team_id, name, created_at) VALUES (?, ?, ?)",
                             [(row[0], n, iso(services.clock.now())) for n in names])


def python_calls(act: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[int]]:
    """`act` run with the event loop thread's Python function calls counted (generator
    resumptions included): deterministic, where a time is not."""
    async def run() -> int:
        calls = 0

        def count(frame: FrameType, event: str, arg: Any) -> None:
            nonlocal calls
            if event in ("call", "c_call"):
                calls += 1

        sys.setprofile(count)
        try:
            await act()
        finally:
            sys.setprofile(None)
        return calls
    return run


async def test_a_steps_work_does_not_grow_with_the_team(services: Services,
                                                        assistant: Assistant) -> None:
    """Two managers alike but for their team's size (2 台区 against 3,002): each step of a
    round makes (nearly) the same Python calls. Before, the big team's steps with no form
    open made some 3,000-30,000 more (every 台区 parsed from the read, sorted by name length,
    compared with the sentence for typos)."""
    await make_user(services, "张三", team="城东供电所")
    await make_user(services, "李四", team="城南供电所")
    await add_areas(services, "城南供电所", [f"南{k}号台区" for k in range(BIG)])
    small, big = Chat(assistant, "test", "张三"), Chat(assistant, "test", "李四")
    for chat in (small, big):  # warm-up: first use of each path, the big list read once
        for text in ROUND:
            await chat.say(text)
    await services.db.settle()
    for text in ROUND:
        counts = []
        for chat in (small, big):
            counts.append(await python_calls(lambda c=chat, t=text: c.say(t))())
            await services.db.settle()
        assert counts[1] - counts[0] < 300, f"{text!r}: {counts[0]} calls, {counts[1]} in " \
                                             f"the team of {BIG} more 台区"


async def test_the_step_read_brings_the_teams_list_only_when_it_changed(
        services: Services, assistant: Assistant, settings: Settings,
        clock: FakeClock) -> None:
    """The list held is used while current; a 台区 added, renamed or re-kinded by another
    instance (or by hand in SQL) is in the very next step's list."""
    await make_user(services, "张三")
    await add_areas(services, "城东供电所", ["7号台区"])
    db, pending = services.db, services.pending
    brought: list[Any] = []
    point = db.fetchone_point

    async def spy(sql: str, params: Any = ()) -> Any:
        row = await point(sql, params)
        brought.append(row["team_areas"] if row is not None else None)
        return row

    db.fetchone_point = spy  # type: ignore[method-assign]

    async def names() -> list[str]:
        step = await read_step(db, pending, "test", "张三")
        assert step.team_areas is not None
        return [f"{a.name}/{a.kind}" for a in step.team_areas.areas]

    first = await names()
    assert first == ["3号台区/rural", "5号台区/rural", "7号台区/rural"]
    assert await names() == first and brought[-1] is None  # held: not read again
    other = await Services.open(settings, clock)  # another instance on the same store
    try:
        await add_areas(other, "城东供电所", ["9号台区"])
        assert (await names())[-1] == "9号台区/rural" and brought[-1] is not None
        await other.db.execute("UPDATE areas SET kind = 'city' WHERE name = '7号台区'")
        assert "7号台区/city" in await names()
        await other.db.execute("UPDATE areas SET name = '七号台区' WHERE name = '7号台区'")
        assert "七号台区/city" in await names()
        await other.db.execute("DELETE FROM areas WHERE name = '9号台区'")
        assert await names() == ["3号台区/rural", "5号台区/rural", "七号台区/city"]
        assert await names() == ["3号台区/rural", "5号台区/rural", "七号台区/city"]
        assert brought[-1] is None
    finally:
        await other.close()
    # And the dialogue sees it: a teammate's 台区 named in a sentence is read as one.
    zhang = Chat(assistant, "test", "张三")
    out = await zhang.say("记录巡视 七号台区")
    assert "七号台区" in "\n".join(r.text for r in out.replies)


async def test_a_lead_and_a_moved_manager_get_their_own_teams_list(
        services: Services, assistant: Assistant) -> None:
    """The list held is the team's, never another team's: a person moved to another team
    gets that team's list at the next step, a lead's areas are the team's."""
    await make_user(services, "张三", team="城东供电所")
    # As many 台区 in both teams: their versions are alike, only the team tells them apart.
    await make_user(services, "王班长", role=Role.LEAD, team="城南供电所",
                    areas=("8号台区", "9号台区"))
    db, pending = services.db, services.pending
    assert [a.name for a in (await read_step(db, pending, "test", "王班长")).areas or []] \
        == ["8号台区", "9号台区"]
    step = await read_step(db, pending, "test", "张三")
    assert step.team_areas is not None and len(step.team_areas.areas) == 2
    await db.execute("UPDATE users SET team_id = (SELECT id FROM teams WHERE name = "
                     "'城南供电所') WHERE name = '张三'")
    step = await read_step(db, pending, "test", "张三")
    assert step.team_areas is not None
    assert [a.name for a in step.team_areas.areas] == ["8号台区", "9号台区"]


@pytest.mark.parametrize("names", [
    ["3号台区", "城东3号台区", "5号台区"], ["城东3号台区", "3号台区"], ["3号台区", "3号台区"],
    ["", "3号台区"], ["号台", "3号台区"], [],
])
@pytest.mark.parametrize("text", [
    "城东3号台区 变压器冒烟", "3号台区 变压器冒烟", "巡视5号台区和3号台区", "表箱门坏了",
    "号台区3号台", "",
])
def test_indexed_names_read_a_sentence_as_the_list_does(names: list[str], text: str) -> None:
    """AreaNames answers what the plain list did: the longest name anywhere in the text, the
    first listed among as long ones; the longest a text starts with."""
    longest_first = sorted((n for n in names if n), key=len, reverse=True)
    index = AreaNames(names)
    assert index.first_in(text) == next((n for n in longest_first if n in text), None)
    assert index.at_start(text) == next((n for n in longest_first if text.startswith(n)),
                                        None)
    assert take_area(text, index) == take_area(text, names)


async def test_todo_reads_the_managers_of_the_customers_due_not_of_the_team(
        services: Services, assistant: Assistant) -> None:
    """A lead's /todo names the managers of each customer due a visit: it reads those 台区'
    managers (the rows it reads are the same in a team of 500 more managers), and still
    names both managers of a 台区 shared by two. A manager's reads them too."""
    zhang = await make_user(services, "张三", team="城东供电所")
    await make_user(services, "王班长", role=Role.LEAD, team="城东供电所", areas=())
    await make_user(services, "赵六", team="城东供电所", areas=("3号台区",))
    area = (await services.people.areas_for(zhang))[0]
    await services.customers.create(zhang, CustomerData(
        account_no="5500000001", name="王大爷", area_id=area.id, address="城东村3组12号",
        phone="13800001234", categories=("elderly",), visit_every_days=30),
        services.clock.now())
    fetch = services.db.fetch_many
    rows_read: list[int] = []

    async def spy(reads: Any) -> Any:
        got = await fetch(reads)
        rows_read.append(sum(len(r) for r in got))
        return got

    services.db.fetch_many = spy  # type: ignore[method-assign]
    lead, chat = Chat(assistant, "test", "王班长"), Chat(assistant, "test", "张三")
    for who in (lead, chat):
        await who.say("/todo")
        assert "王大爷" in who.text
    assert "张三、赵六" in lead.text
    team = await services.db.fetchone("SELECT id FROM teams WHERE name = '城东供电所'")
    assert team is not None
    now = iso(services.clock.now())
    async with services.db.tx() as tx:
        for k in range(500):
            uid = await tx.execute("INSERT INTO users(name, role, team_id, created_at) "
                                   "VALUES (?, 'manager', ?, ?)", (f"经理{k}", team[0], now))
            aid = await tx.execute("INSERT INTO areas(team_id, name, created_at) "
                                   "VALUES (?, ?, ?)", (team[0], f"东{k}号台区", now))
            await tx.execute("INSERT INTO user_areas(user_id, area_id) VALUES (?, ?)",
                             (uid, aid))
    for who in (lead, chat):
        await who.say("/todo")
        assert "王大爷" in who.text
    assert "张三、赵六" in lead.text
    assert rows_read[2:] == rows_read[:2]


def _typos_fixed_by_comparing_each(s: str, words: list[tuple[str, str]]) -> str | None:
    """The sentence's typos put right as before issue #12's index: every word compared with
    every place of the sentence (the reference the index must agree with)."""
    fixes: dict[int, dict[str, str]] = {}
    for word, meaning in words:
        for i in range(len(s) - len(word) + 1):
            diff = [(a, b) for a, b in zip(s[i:i + len(word)], word, strict=True) if a != b]
            if len(diff) == 1 and not (diff[0][0].isdigit() or diff[0][1].isdigit()):
                fixes.setdefault(i, {}).setdefault(meaning, word)
    fixed, changed = s, False
    for i, found in sorted(fixes.items(), reverse=True):
        if len(found) == 1:
            word = next(iter(found.values()))
            fixed, changed = fixed[:i] + word + fixed[i + len(word):], True
    return fixed if changed else None


@pytest.mark.parametrize("text", [
    "3号台曲巡视", "巡式3号台区", "巡查3号台曲", "巡式城东3号台曲", "走仿5号台区的王大爷",
    "4号台区巡视", "巡x", "服装店", "抢俢7号台区", "巡视3号台去和5号台区", "记录巡式 3号台区",
])
def test_typos_are_put_right_as_when_each_word_was_compared(text: str) -> None:
    from bot.features.worklog import intents

    names = ["3号台区", "5号台区", "城东3号台区", "城东3号台去", "7号台区"]
    index = AreaNames(names)
    words = [(w, w) for w in names if len(w) >= 3]
    words += [(w, k) for w, k in work_item_words() if len(w) >= 2 and not w.isascii()]
    assert intents._typos(index).fixed(text) == _typos_fixed_by_comparing_each(text, words)
    now = intents.datetime(2026, 12, 1, 10, 0)
    assert worklog_intent(text, now, index) == worklog_intent(text, now, names)
