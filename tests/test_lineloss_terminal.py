"""Line loss in the local chat (`python -m bot chat`, a subprocess on a database file, the real
clock): the lead sends the export with /file, the item it opens is one tap away, and
`线损 3号台区` saves the chart next to the database."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.test_terminal_chat import chat

pytestmark = pytest.mark.timeout(60)


def test_lead_imports_with_file_and_looks_at_an_area(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    export = tmp_path / "线损日报.csv"
    export.write_bytes("\r\n".join([
        "统计日期,台区名称,供入电量(kWh),用电量(kWh),台区线损率(%)",
        f"{days[0]:%Y/%m/%d},3号台区,1000,950,5.00",
        f"{days[1]:%Y/%m/%d},3号台区,1000,870,13.00",
        f"{days[2]:%Y/%m/%d},3号台区,1000,860,14.00",
        f"{days[2]:%Y/%m/%d},5号台区,1000,960,4.00"]).encode("gbk"))
    p = chat(db, [f"/file {export}", "线损 3号台区", "/quit"], "--demo", "--user", "王班长")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "线损导入完成：新增 4 条，更新 0 条，错误 0 行" in out
    assert "线损异常：新开 1" in out
    assert "📉 3号台区 近 30 天线损" in out and "线损异常 #1（3号台区）" in out
    assert list(tmp_path.rglob("*.png")), out  # the chart, saved where the chat says
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT status, first_day FROM lineloss_items").fetchone()
    finally:
        con.close()
    assert row == ("open", days[1].isoformat())
