"""Hazards in the local chat (`python -m bot chat`, a subprocess on a database file): a work
log with a problem turned into a hazard by typing the 转为隐患 button's label, then cleared."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_terminal_chat import chat

pytestmark = pytest.mark.timeout(60)


def test_log_to_hazard_and_cleared_in_the_local_chat(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, [
        "今天上午去3号台区巡视了，发现5号表箱门损坏",
        "跳过", "跳过", "保存",
        "转为隐患",      # the button's label, typed
        "一般",
        "跳过", "跳过", "保存",    # photos, location
        "已消除",
        "已更换表箱门",
        "跳过",
        "保存",
        "/quit",
    ], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "🛠 转为隐患" in out
    assert "隐患内容 5号表箱门损坏 · 位置 5号表箱" in out
    assert "已登记隐患 #1：3号台区（一般）" in out
    assert "隐患 #1 已消除" in out
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT status, result, worklog_id FROM hazards").fetchone()
    finally:
        con.close()
    assert row == ("cleared", "已更换表箱门", 1)
