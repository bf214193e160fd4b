"""A button's label typed at a form step is that button (保持不变 keeps the answer, it does
not become it); words of a step the form has left are not its buttons (完成 typed at an
optional free-text step skips it, in the local chat too); text that merely contains such a
word stays an answer."""

from __future__ import annotations

import io

import pytest

from bot.channels.terminal import run_terminal
from bot.services import Services

pytestmark = pytest.mark.both_backends  # form state on SQLite and on PostgreSQL


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
