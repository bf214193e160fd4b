"""A button's label typed at a form step is that button (保持不变 keeps the answer, it does
not become it); words of a step the form has left are not its buttons (完成 typed at an
optional free-text step skips it, in the local chat too); text that merely contains such a
word stays an answer. And a button whose data no longer fits gets one answer wherever it
is handled."""

from __future__ import annotations

import io

import pytest

from bot.channels.terminal import run_terminal
from bot.services import Services
from tests.conftest import Chat
from tests.tg_harness import L

pytestmark = pytest.mark.both_backends  # form state on SQLite and on PostgreSQL


async def _to_situation(zhang: Chat) -> None:
    """登记特殊客户 up to its 具体情况 step (required, free text)."""
    for answer in ("登记特殊客户", "3100099001", "王大爷", "3号台区", "幸福路1号",
                   "13800138000", "独居老人"):
        await zhang.say(answer)
    assert "具体情况？" in zhang.text


async def _to_summary(zhang: Chat) -> None:
    await _to_situation(zhang)
    await zhang.say("家中有制氧机")
    for _ in range(4):  # 紧急联系人姓名 / 电话, 走访周期, 保障措施
        await zhang.say("跳过")
    assert "请确认特殊客户登记" in zhang.text


async def test_keep_typed_keeps_the_answer(zhang: Chat, services: Services) -> None:
    await _to_summary(zhang)
    await zhang.say("修改")
    await zhang.say("具体情况")
    assert "当前：家中有制氧机" in zhang.text and "保持不变" in zhang.buttons
    await zhang.say("保持不变")  # the button's label, typed: not a new 具体情况
    assert "具体情况：家中有制氧机" in zhang.text and "保持不变" not in zhang.text
    await zhang.say("保存")
    row = await services.db.fetchone("SELECT situation FROM customers")
    assert row is not None and row[0] == "家中有制氧机"


async def test_keep_typed_in_english(zhang: Chat) -> None:
    await _to_summary(zhang)
    await zhang.say("/lang en")
    await zhang.say("edit")
    await zhang.say("Details")
    assert "Keep as is" in zhang.buttons
    await zhang.say("keep as is")
    assert "Details: 家中有制氧机" in zhang.text


async def test_a_label_typed_with_its_emoji_is_the_button(zhang: Chat,
                                                          services: Services) -> None:
    await _to_situation(zhang)
    await zhang.say("家中有制氧机")
    assert "紧急联系人姓名" in zhang.text and "⏭ 跳过" in zhang.buttons
    await zhang.say("⏭ 跳过")  # copied from the keyboard: skipped, not a contact's name
    assert "紧急联系人电话" in zhang.text
    await zhang.say("⬅️ 上一步")
    assert "紧急联系人姓名" in zhang.text and "当前" not in zhang.text


async def test_the_summary_and_the_edit_menu_take_their_labels_typed(zhang: Chat) -> None:
    await zhang.say("巡视 3号台区 刚才 检查台区")
    await zhang.say("跳过")
    await zhang.say("跳过")
    await zhang.say("跳过")
    assert "请确认工作日志" in zhang.text and "➕ 处理结果" in zhang.buttons
    await zhang.say("处理结果")  # its ➕ button: that step is asked
    assert "处理结果" in zhang.text and "请点「保存」" not in zhang.text
    await zhang.say("已紧固")
    assert "处理结果：已紧固" in zhang.text
    await zhang.say("修改")
    await zhang.say("回到摘要")  # the edit menu's ↩️ button
    assert "请确认工作日志" in zhang.text and "请点要修改的那一项" not in zhang.text


async def test_text_that_only_contains_a_button_word_is_an_answer(zhang: Chat,
                                                                  services: Services) -> None:
    await _to_situation(zhang)
    await zhang.say("已保存好的制氧机备用电源")
    assert "紧急联系人姓名" in zhang.text
    await zhang.say("完成了跳过检查")
    assert "紧急联系人电话" in zhang.text
    for _ in range(3):
        await zhang.say("跳过")
    assert "具体情况：已保存好的制氧机备用电源" in zhang.text
    assert "紧急联系人：完成了跳过检查" in zhang.text


async def test_done_typed_at_an_optional_step_in_the_local_chat(services: Services) -> None:
    """完成 at 紧急联系人姓名 skips it: not the 完成 of the 类别 step before (a stale button)."""
    lines = ["登记特殊客户", "3100099001", "王大爷", "3号台区", "幸福路1号", "13800138000",
             "独居老人", "家中有制氧机", "完成", "/quit"]
    out = io.StringIO()
    code = await run_terminal(services, "张三", demo=True, inp=io.StringIO(
        "".join(line + "\n" for line in lines)), out=out, reminders=False)
    assert code == 0
    said = out.getvalue()
    assert "这个按钮现在用不了" not in said
    assert said.rindex("紧急联系人电话") > said.rindex("紧急联系人姓名")


@pytest.mark.parametrize("data", ["-|worklog.log|x",    # router.by_id
                                  "-|repairs.rep|x",    # a record's card (records.runtime)
                                  "-|arrears.arry|x",   # router.opener_button
                                  "-|todo.todop|x"])    # a feature's own check
async def test_every_stale_button_gets_the_same_answer(zhang: Chat, data: str) -> None:
    await zhang.say("/start")
    out = await zhang.tap(data)
    assert out.toast == L("button.stale")
    assert zhang.text == L("button.stale_long")
