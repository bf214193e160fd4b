"""Tasks, free reminders and plans save in one transaction (issue #12): a save that fails
anywhere writes nothing and keeps the form open, as the other forms' saves do; a record
changed meanwhile (a task done, a plan decided) writes nothing either and says so."""

from __future__ import annotations

from typing import Any

import pytest

from bot.assistant import Assistant
from bot.models import Role
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat, FakeNotifier, make_user
from tests.test_save_one_transaction import closing_fails
from tests.tg_harness import L

pytestmark = pytest.mark.both_backends


def button_of(reply: Any, label: str) -> str:
    return next(b.data for row in reply.buttons for b in row if label in b.label)


async def count(services: Services, sql: str) -> int:
    row = await services.db.fetchone(sql)
    assert row is not None
    return int(row[0])


@pytest.fixture
async def team(services: Services, assistant: Assistant) -> tuple[Chat, Chat]:
    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    lead, zhang = Chat(assistant, "test", "王班长"), Chat(assistant, "test", "张三")
    await zhang.say("/start")
    await lead.say("/start")
    return lead, zhang


async def given_task(lead: Chat, service: ReminderService, notifier: FakeNotifier) -> Any:
    await lead.say("派任务 张三 明天下班前 核对电话")
    await lead.press("保存")
    await service.scan_once()
    return notifier.last("张三")


async def task_save(lead: Chat, zhang: Chat, service: ReminderService,
                    notifier: FakeNotifier) -> tuple[Chat, str]:
    await lead.say("派任务 张三 明天下班前 核对电话")
    return lead, "SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM reminders)"


async def done_save(lead: Chat, zhang: Chat, service: ReminderService,
                    notifier: FakeNotifier) -> tuple[Chat, str]:
    push = await given_task(lead, service, notifier)
    await zhang.tap(button_of(push, "完成"))
    await zhang.say("已核对")
    await zhang.press("跳过")
    return zhang, ("SELECT (SELECT count(*) FROM task_messages) + (SELECT count(*) FROM "
                   "reminders WHERE state = 'cancelled') + (SELECT count(*) FROM tasks "
                   "WHERE status = 'done')")


async def note_save(lead: Chat, zhang: Chat, service: ReminderService,
                    notifier: FakeNotifier) -> tuple[Chat, str]:
    await zhang.say("明天8点提醒我抄表")
    return zhang, "SELECT (SELECT count(*) FROM free_reminders) + (SELECT count(*) FROM reminders)"


async def return_save(lead: Chat, zhang: Chat, service: ReminderService,
                      notifier: FakeNotifier) -> tuple[Chat, str]:
    await zhang.say("本月计划")
    await zhang.press("提交给班长")
    await service.scan_once()
    await lead.tap(button_of(notifier.last("王班长"), "退回"))
    await lead.say("少了线损核查")
    return lead, ("SELECT (SELECT count(*) FROM plans WHERE status = 'returned') + "
                  "(SELECT count(*) FROM reminders WHERE kind = 'returned')")


@pytest.mark.parametrize("form", [task_save, done_save, note_save, return_save])
async def test_a_save_that_fails_writes_nothing_and_the_form_stays_open(
        services: Services, team: tuple[Chat, Chat], service: ReminderService,
        notifier: FakeNotifier, monkeypatch: pytest.MonkeyPatch, form: Any) -> None:
    """Before, the record (and its pushes) were committed first and the form closed after:
    a failure between them left it saved with its form open. Now nothing is written."""
    chat, written = await form(*team, service, notifier)
    before = await count(services, written)
    finish = services.conversations.finish
    monkeypatch.setattr(services.conversations, "finish", closing_fails(finish))
    await chat.press("保存" if form is not note_save else "确认")
    assert L("form.save_failed") in chat.text, chat.text
    assert await count(services, written) == before
    monkeypatch.setattr(services.conversations, "finish", finish)
    await chat.press("保存" if form is not note_save else "确认")  # saved once it can be
    assert L("form.save_failed") not in chat.text
    assert await count(services, written) > before


async def test_a_task_done_meanwhile_writes_nothing_more(
        services: Services, team: tuple[Chat, Chat], service: ReminderService,
        notifier: FakeNotifier) -> None:
    """The result form open on one phone, the task done on another: 保存 says so, sends
    the lead no second result and keeps the form."""
    lead, zhang = team
    push = await given_task(lead, service, notifier)
    await zhang.tap(button_of(push, "完成"))
    await zhang.say("已核对")
    await zhang.press("跳过")
    await services.db.execute("UPDATE tasks SET status = 'done', result = '别处完成'")
    await zhang.press("保存")
    assert L("task.already_done") in zhang.text
    assert await count(services, "SELECT count(*) FROM task_messages") == 0
    row = await services.db.fetchone("SELECT result FROM tasks")
    assert row is not None and row[0] == "别处完成"
    assert await services.conversations.get(await make_id(services, "张三")) is not None


async def test_a_plan_decided_meanwhile_is_not_returned(
        services: Services, team: tuple[Chat, Chat], service: ReminderService,
        notifier: FakeNotifier) -> None:
    lead, zhang = team
    await return_save(lead, zhang, service, notifier)
    await services.db.execute("UPDATE plans SET status = 'approved'")
    await lead.press("保存")
    assert "这份计划已经处理过了" in lead.text, lead.text
    assert await count(services, "SELECT count(*) FROM reminders WHERE kind = 'returned'") == 0
    assert await count(services, "SELECT count(*) FROM plans WHERE comment IS NOT NULL") == 0


async def test_a_plan_sent_again_while_its_return_was_typed_is_returned_as_it_is_now(
        services: Services, team: tuple[Chat, Chat], service: ReminderService,
        notifier: FakeNotifier) -> None:
    """The return's save writes the plan its form opened on (kept: no read first), guarded
    on its round; returned and sent again meanwhile (another lead), it is the new round the
    lead returns, and the manager is told of it (a notice of the old round would be dropped
    as stale), as when the save read the plan first."""
    lead, zhang = team
    await return_save(lead, zhang, service, notifier)
    await services.db.execute("UPDATE plans SET rounds = rounds + 1")  # returned, sent again
    await lead.press("保存")
    assert "已退回 张三 的" in lead.text, lead.text
    row = await services.db.fetchone("SELECT status, rounds, comment FROM plans")
    assert row is not None and tuple(row) == ("returned", 2, "少了线损核查")
    await service.scan_once()
    assert notifier.last("张三").text.startswith("↩️ 王班长 退回了你的"), notifier.last("张三")


async def make_id(services: Services, name: str) -> int:
    user = await services.people.by_identity("test", name)
    assert user is not None
    return user.id
