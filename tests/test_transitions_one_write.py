"""Moving a saved record on, and editing it, write in one transaction with the form's close
(issue #12): all of it or none of it, from the record as kept with the form, guarded on
what may have changed since it opened."""

from __future__ import annotations

from typing import Any

import pytest

from bot.assistant import Assistant
from bot.services import Services
from bot.storage.batch import Batch, Played, Ref
from tests.conftest import Chat, make_user
from tests.test_round_trips import FORM, saved_record
from tests.tg_harness import L, worklog_rows

pytestmark = pytest.mark.both_backends


def closing_fails(services: Services, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The form's close fails as its last write; returns the real one, to put back."""
    finish = services.conversations.finish

    async def failing(draft: Any, record_id: int | None, now: Any, batch: Batch | None = None,
                      record: Ref | int | None = None) -> Played:
        batch = batch if batch is not None else Batch()
        batch.execute("INSERT INTO no_such_table(x) VALUES (?)", (1,))
        return await finish(draft, record_id, now, batch, record)

    monkeypatch.setattr(services.conversations, "finish", failing)
    return finish


async def pending(services: Services, subject: str) -> list[str]:
    rows = await services.db.fetchall(
        "SELECT kind FROM reminders WHERE subject = ? AND state = 'pending' ORDER BY id",
        (subject,))
    return [r["kind"] for r in rows]


async def test_a_transition_whose_close_fails_writes_nothing(
        services: Services, assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the change and its reminders were committed first and the form closed in a
    second transaction: a failure between them left the complaint contacted (its reminders
    cancelled) with the form still open. Now nothing is written, and 保存 again saves it."""
    zhang = await saved_record(services, assistant, "complaint")
    reminders = await pending(services, "complaint")
    await zhang.tap("-|complaints.cplc|1")
    await zhang.press("现在")
    await zhang.press("电话")
    finish = closing_fails(services, monkeypatch)
    await zhang.press("保存")
    assert L("form.save_failed") in zhang.text
    row = await services.db.fetchone("SELECT status, contacted_at FROM complaints")
    assert row is not None and (row["status"], row["contacted_at"]) == ("open", None)
    assert await pending(services, "complaint") == reminders
    monkeypatch.setattr(services.conversations, "finish", finish)
    await zhang.press("保存")
    assert L("complaint.contacted").split("{")[0] in zhang.text
    row = await services.db.fetchone("SELECT status FROM complaints")
    assert row is not None and row["status"] == "contacted"
    assert not any(k.startswith("contact.") for k in await pending(services, "complaint"))


async def test_an_edit_whose_close_fails_writes_nothing(
        services: Services, assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    for text, _ in FORM:
        await zhang.say(text)
    await zhang.press("保存")
    await zhang.tap("-|worklog.logedit|1")
    await zhang.press("修改")
    await zhang.press("工作内容")
    await zhang.say("改过的内容")
    finish = closing_fails(services, monkeypatch)
    await zhang.press("保存")
    assert L("form.save_failed") in zhang.text
    assert [r["content"] for r in await worklog_rows(services)] == ["2号杆拉线松动，已紧固"]
    monkeypatch.setattr(services.conversations, "finish", finish)
    await zhang.press("保存")
    assert [r["content"] for r in await worklog_rows(services)] == ["改过的内容"]


async def test_a_change_refused_because_the_record_moved_on_writes_nothing(
        services: Services, assistant: Assistant) -> None:
    """The hazard cleared meanwhile (another device, another person): 保存 says so, the form
    stays open and nothing is written, its reminders included (before, they were cancelled
    though the change was refused)."""
    zhang = await saved_record(services, assistant, "hazard")
    await zhang.tap("-|hazards.hzc|1")
    await zhang.say("拉线已紧固")
    await zhang.press("跳过")
    await services.db.execute("UPDATE hazards SET status = 'cleared' WHERE id = 1")
    reminders = await pending(services, "hazard")
    assert reminders
    await zhang.press("保存")
    assert L("hazard.already_cleared").split("{")[0] in zhang.text
    assert await pending(services, "hazard") == reminders
    row = await services.db.fetchone("SELECT result FROM hazards WHERE id = 1")
    assert row is not None and row["result"] is None
    user = await services.people.by_identity("test", "张三")
    assert user is not None and await services.conversations.get(user.id) is not None


async def test_what_changed_since_the_form_opened_is_kept(
        services: Services, assistant: Assistant) -> None:
    """The reply form opened before the first contact was recorded elsewhere: the contact's
    time stays the one recorded (the complaint as kept with the form did not have it)."""
    zhang = await saved_record(services, assistant, "complaint")
    await zhang.tap("-|complaints.cplr|1")
    await zhang.press("现在")
    await zhang.say("已向客户解释")
    await services.db.execute("UPDATE complaints SET contacted_at = ?, status = 'contacted' "
                              "WHERE id = 1", ("2026-11-27T02:00:00+00:00",))
    await zhang.press("保存")
    assert L("complaint.closed").split("{")[0] in zhang.text
    row = await services.db.fetchone("SELECT status, contacted_at, callback_due FROM complaints")
    assert row is not None and row["status"] == "closed"
    assert row["contacted_at"] == "2026-11-27T02:00:00+00:00" and row["callback_due"]
    assert [k for k in await pending(services, "complaint")] == ["callback.due",
                                                                 "callback.escalate"]
