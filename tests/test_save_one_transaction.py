"""保存 writes the record and closes the form in one transaction (issue #12): all of it or
none of it, and a form token saves one record however often it is saved."""

from __future__ import annotations

from typing import Any

import pytest

from bot.assistant import Assistant
from bot.services import Services
from bot.storage.batch import Batch, IfNew, Played, Ref
from bot.storage.reminders import PlannedFor, PlannedRung, Reminders
from tests.conftest import Chat, make_user
from tests.tg_harness import L, worklog_rows

pytestmark = pytest.mark.both_backends

LOG = ("记录巡视 3号台区", "现在", "2号杆拉线松动，已紧固", "跳过", "跳过", "跳过")


async def fill(zhang: Chat) -> None:
    for text in LOG:
        await zhang.say(text)


def closing_fails(finish: Any) -> Any:
    """Conversations.finish with one more write, which fails: the last of the save's."""
    async def finish_failing(draft: Any, record_id: int | None, now: Any,
                             batch: Batch | None = None, record: Ref | None = None) -> Played:
        batch = batch if batch is not None else Batch()
        batch.execute("INSERT INTO no_such_table(x) VALUES (?)", (1,))
        return await finish(draft, record_id, now, batch, record)
    return finish_failing


async def test_a_save_that_fails_writes_nothing_and_the_form_stays_open(
        services: Services, assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the entry was committed first and the form closed in a second transaction:
    a failure (or a crash) between them left a saved entry with its form still open, and
    保存 again saved it twice but for the token. Now a failure anywhere writes nothing."""
    user = await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await fill(zhang)
    finish = services.conversations.finish
    monkeypatch.setattr(services.conversations, "finish", closing_fails(finish))
    await zhang.press("保存")
    assert L("form.save_failed") in zhang.text
    assert await worklog_rows(services) == []
    draft = await services.conversations.get(user.id)
    assert draft is not None and draft.form == "worklog"

    monkeypatch.setattr(services.conversations, "finish", finish)
    await zhang.press("保存")  # the same form, saved once it can be
    assert [r["content"] for r in await worklog_rows(services)] == ["2号杆拉线松动，已紧固"]
    assert await services.conversations.get(user.id) is None


async def test_a_form_whose_entry_was_saved_before_saves_no_second(
        services: Services, assistant: Assistant) -> None:
    """An entry saved under this form's token while the form stayed open (a crash between
    the two transactions of an older version): 保存 says that entry and closes the form.
    On PostgreSQL the one statement fails on it and the batch runs statement by statement."""
    user = await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await fill(zhang)
    draft = await services.conversations.get(user.id)
    assert draft is not None
    async with services.db.tx() as tx:
        area = await tx.fetchone("SELECT id FROM areas WHERE name = ?", ("3号台区",))
        assert area is not None
        await tx.execute(
            "INSERT INTO worklogs(team_id, area_id, user_id, occurred_at, time_precision, "
            "content, created_at, form_token) VALUES (?, ?, ?, ?, 'minute', ?, ?, ?)",
            (user.team_id, area["id"], user.id, "2026-11-27T02:00:00+00:00", "先存的一条",
             "2026-11-27T02:00:00+00:00", draft.token))
    await zhang.press("保存")
    rows = await worklog_rows(services)
    assert [r["content"] for r in rows] == ["先存的一条"]
    assert L("form.worklog.saved").split("{")[0] in zhang.text and f"#{rows[0]['id']}" in zhang.text
    assert await services.conversations.get(user.id) is None
    items = await services.db.fetchall("SELECT item FROM worklog_items")
    assert items == []  # nothing more written for it


async def test_a_batch_writing_one_table_twice_runs_statement_by_statement(
        services: Services, assistant: Assistant) -> None:
    """Editing a saved entry deletes and writes its items again: on PostgreSQL not one
    statement (its parts' order would be unpredictable), yet still all or nothing."""
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await fill(zhang)
    await zhang.press("保存")
    batch = Batch()
    batch.execute("DELETE FROM worklog_items WHERE worklog_id = ?", (1,))
    batch.executemany("INSERT INTO worklog_items(worklog_id, item) VALUES (?, ?)",
                      [(1, "patrol"), (1, "visit")])
    assert not batch.one_table_each()
    await services.db.write_batch(batch)
    rows = await services.db.fetchall("SELECT item FROM worklog_items ORDER BY item")
    assert [r["item"] for r in rows] == ["patrol", "visit"]


async def test_rows_inserted_together_get_ids_in_order_and_plans_only_for_the_new(
        services: Services) -> None:
    """Batch.insert_rows: on PostgreSQL one INSERT of several rows, yet the ids follow the
    rows' order; a row whose key was saved before gives its id, and a plan naming each row
    by IfNew plans nothing for it (a task per assignee, saved again: no second push)."""
    people = [await make_user(services, name) for name in ("张三", "李四", "王五")]
    now = services.clock.now()

    def give(tokens: list[str]) -> tuple[Batch, list[Ref]]:
        batch = Batch()
        refs = batch.insert_rows("tasks", "form_token", [{
            "team_id": p.team_id, "user_id": p.id, "lead_id": p.id, "content": token,
            "due_at": "2030-01-01T00:00:00+00:00", "created_at": "2026-01-01T00:00:00+00:00",
            "form_token": token} for p, token in zip(people, tokens, strict=False)])
        Reminders.plan_records_into(batch, [
            (IfNew(ref), PlannedFor(p.id, PlannedRung("new", now, True, False)))
            for p, ref in zip(people, refs, strict=False)], team_id=people[0].team_id,
            subject="task", now=now)
        assert batch.one_table_each()
        return batch, refs

    batch, refs = give(["t:1"])
    first = (await services.db.write_batch(batch)).id_of(refs[0])
    await services.db.execute("DELETE FROM reminders")  # its push sent and pruned since
    batch, refs = give(["t:1", "t:2", "t:3"])
    played = await services.db.write_batch(batch)
    ids = [played.id_of(r) for r in refs]
    assert ids[0] == first and ids == sorted(ids) and len(set(ids)) == 3
    rows = await services.db.fetchall("SELECT id, content FROM tasks ORDER BY id")
    assert [r["content"] for r in rows] == ["t:1", "t:2", "t:3"]
    planned = await services.db.fetchall(
        "SELECT subject_id FROM reminders WHERE subject = 'task' ORDER BY id")
    assert [r["subject_id"] for r in planned] == ids[1:]  # none for t:1 again
