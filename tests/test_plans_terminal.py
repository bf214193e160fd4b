"""The monthly plan in the local chat (`python -m bot chat`, a subprocess on a database
file, today's real date): 张三 drafts this month's plan, adds an item, removes one by typing
its button's label and sends it; 王班长 opens the team's plans and approves it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_terminal_chat import chat

pytestmark = pytest.mark.timeout(90)


def test_plan_drafted_sent_and_approved_in_the_local_chat(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, [
        "本月计划",
        "加 12号 抄表核对",
        "✖1",                 # the button's label, typed
        "提交给班长",
        "/quit",
    ], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "工作计划 · 📝 草稿" in out
    assert "已添加：抄表核对（" in out and "12日）" in out
    assert "已删除：" in out
    assert "📤 已提交给 王班长，等待审核。" in out

    p = chat(db, ["计划", "张三的计划", "通过", "/quit"], "--user", "王班长")
    assert p.returncode == 0, p.stderr
    assert "张三：⏳ 待班长审核" in p.stdout
    assert "✅ 已通过 张三 的" in p.stdout
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT status, rounds FROM plans").fetchone()
        items = con.execute("SELECT count(*) FROM plan_items WHERE removed = 0 "
                            "AND kind = 'free'").fetchone()
    finally:
        con.close()
    assert row == ("approved", 1) and items == (1,)
