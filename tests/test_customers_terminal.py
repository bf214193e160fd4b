"""特殊客户档案 through the terminal chat and the CLI, as subprocesses on a database file in
tmp_path: `python -m bot chat --demo --user 张三` (stdin piped; buttons by number or by text)
and `python -m bot customers import FILE --team TEAM`.

These processes run on the real clock, so dates are computed from today in Asia/Shanghai."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import ROOT
from tests.tg_harness import L

pytestmark = pytest.mark.timeout(90)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEAM = "城东供电所"
EXAMPLE_CSV = ROOT / "data" / "examples" / "special_customers.csv"
WEEKDAYS = "一二三四五六日"
CATS = f"{L('category.elderly')}、{L('category.medical')}"


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env.update({"TAIQU_DB_PATH": str(db), "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"})
    return env


def run(args: list[str], db: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin,
                          capture_output=True, text=True, encoding="utf-8", env=_env(db),
                          cwd=db.parent, timeout=60, check=False)


def chat(db: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(["chat", *args], db, "".join(line + "\n" for line in lines))


def replies(out: str) -> list[str]:
    """Each bot message as the terminal prints it, joined back to its original lines (the
    terminal indents continuation lines by three spaces and lists buttons as `[n] label`)."""
    found = []
    for chunk in out.split("🤖 ")[1:]:
        lines = []
        for raw in chunk.split("\n"):
            text = raw[3:] if raw.startswith("   ") else raw
            if raw.startswith("   [") or text.startswith(">") or raw.startswith("  ("):
                break
            lines.append(text)
        found.append("\n".join(lines).rstrip("\n"))
    return found


def query(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def day_shown(d: datetime) -> str:
    return f"{d:%Y-%m-%d} 周{WEEKDAYS[d.weekday()]}"


def line(key: str, value: str) -> str:
    return L(key) + "：" + value


def test_register_with_bad_input_search_card_reveal_and_visit(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    today = datetime.now(SHANGHAI)
    p = chat(db, [
        "/customer",
        "55000abc45",              # a 户号 with letters
        "５５０００１２３４５",      # full-width digits
        "李四",
        "1",                       # 3号台区, by number
        "城东村3组12号",
        "12345",                   # a bad phone
        "１３８ ００００ １２３４",  # full-width digits and spaces
        "5",                       # ☐ 医疗设备/生命支持用电, by number
        "☐ 独居/空巢/孤寡老人",     # by the button's text
        "完成",                    # by the text without the emoji
        "家中有制氧机",
        "跳过", "跳过",            # no emergency contact
        "每月",
        "跳过",                    # no measures
        "保存",
        "查客户 待走访",
        "查客户 李四",             # one hit: the card at once
        "显示电话",
        "记录走访",
        "昨天下午3点",
        "检查制氧机供电",
        "跳过", "跳过", "跳过",
        "保存",
        "查客户 待走访",
        "查客户 5500012345",
        "/quit",
    ], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    shown = replies(out)
    assert datetime.now(SHANGHAI).date() == today.date(), "ran across midnight: run again"

    assert "⚠️ " + L("customer.account.invalid", text="55000abc45", min=10, max=16) in shown[2]
    assert "⚠️ " + L("customer.phone.invalid", text="12345") in out
    assert "[5] ☐ " + L("category.medical") in out and "[5] ☑ " + L("category.medical") in out
    assert "[1] ☑ " + L("category.elderly") in out
    summary = "\n".join([
        L("form.summary_title", title=L("form.customer.title")),
        line("field.account_no", "5500012345"), line("field.customer_name", "李四"),
        line("field.area", "3号台区"), line("field.address", "城东村3组12号"),
        line("field.phone", "13800001234"),
        line("field.categories", f"{L('category.medical')}、{L('category.elderly')}"),
        line("field.situation", "家中有制氧机"), line("field.emergency_name", L("form.empty")),
        line("field.emergency_phone", L("form.empty")),
        line("field.visit_every_days", L("customer.every_days", days=30)),
        line("field.measures", L("form.empty"))])
    assert summary in shown
    assert L("customer.saved", name="李四", account="5500012345") in shown
    # One hit (待走访, then 李四, then the 户号): its card at once, not a list of one (#15).
    cards = [s for s in shown
             if s.startswith(L("customer.card_title", name="李四", account="5500012345"))]
    assert len(cards) == 4, cards

    def card(phone: str, visits: list[str]) -> str:
        return "\n".join([
            L("customer.card_title", name="李四", account="5500012345"),
            line("field.area", "3号台区"), line("field.address", "城东村3组12号"),
            line("field.phone", phone), line("field.categories", CATS),
            line("field.situation", "家中有制氧机"),
            line("field.measures", L("customer.every_days", days=30)), *visits,
            line("field.registered", "张三 " + day_shown(today))])

    never = [line("field.last_visit", L("customers.never_visited"))]
    yesterday = today - timedelta(days=1)
    visited = [line("field.last_visit", day_shown(yesterday)),
               L("customer.visit_next", when=day_shown(yesterday + timedelta(days=30)))]
    assert cards == [card("138****1234", never), card("138****1234", never),
                     card("13800001234", never), card("138****1234", visited)]
    assert f"  ({L('customer.revealed_toast')})" in out

    assert "\n".join([L("customer.visiting", name="李四", account="5500012345"),
                      L("form.worklog.time"), L("form.worklog.time.hint")]) in shown
    when = f"{day_shown(yesterday)} 15:00"
    saved = [s for s in shown if s.startswith("✅ 已保存工作日志")]
    assert saved == [L("form.worklog.saved", id=1, when=when, area="3号台区", items="走访")]
    assert L("customers.none_due") in shown
    assert out.rstrip().endswith(L("terminal.bye"))

    [c] = query(db, "SELECT * FROM customers")
    assert (c["account_no"], c["name"], c["phone"], c["visit_every_days"], c["active"]) == (
        "5500012345", "李四", "13800001234", 30, 1)
    visit_at = yesterday.replace(hour=15, minute=0, second=0, microsecond=0).astimezone(UTC)
    assert c["last_visit_at"] == visit_at.isoformat()
    cats = query(db, "SELECT category FROM customer_categories ORDER BY category")
    assert [r["category"] for r in cats] == ["elderly", "medical"]
    [w] = query(db, "SELECT w.*, a.name AS area FROM worklogs w JOIN areas a "
                    "ON a.id = w.area_id")
    assert (w["customer_id"], w["area"], w["occurred_at"], w["content"]) == (
        c["id"], "3号台区", visit_at.isoformat(), "检查制氧机供电")
    items = query(db, "SELECT item FROM worklog_items WHERE worklog_id = ?", w["id"])
    assert [r["item"] for r in items] == ["visit"]
    audit = query(db, "SELECT action, detail, actor FROM audit_log ORDER BY id")
    assert [(a["action"], json.loads(a["detail"]), a["actor"]) for a in audit] == [
        ("create", {"account_no": "5500012345"}, "张三"),
        ("reveal", {"field": "phone"}, "张三")]
    assert query(db, "SELECT * FROM conversations") == []


def test_cli_import_then_terminal_search_finds_an_imported_customer(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    demo = chat(db, ["/quit"], "--demo", "--user", "张三")  # the team and its 台区
    assert demo.returncode == 0, demo.stderr

    p = run(["customers", "import", str(EXAMPLE_CSV), "--team", TEAM], db)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "导入完成 / imported: 新增 8，更新 0，错误 0 行" in p.stdout
    again = run(["customers", "import", str(EXAMPLE_CSV), "--team", TEAM], db)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "新增 0，更新 8，错误 0 行" in again.stdout  # idempotent by 户号
    assert len(query(db, "SELECT id FROM customers")) == 8

    p = chat(db, ["查客户 王秀英", "显示电话", "查客户 7号台区", "查客户 3201000102",
                  "/quit"], "--user", "张三")
    assert p.returncode == 0, p.stderr
    shown = replies(p.stdout)
    # one hit: its card at once (#15)
    cards = [s for s in shown
             if s.startswith(L("customer.card_title", name="王秀英", account="3201000101"))]
    assert len(cards) == 2
    assert line("field.phone", "138****1201") in cards[0] and "13800001201" not in cards[0]
    assert line("field.emergency_name", "王建国 139****1201") in cards[0]
    assert line("field.phone", "13800001201") in cards[1]
    assert line("field.situation", "82岁独居，子女在外地打工，听力不好，说话要大声") in cards[0]
    assert line("field.measures", f"{L('customer.every_days', days=30)} · "
                                  f"{L('measure.notify_first')}") in cards[0]
    # 7号台区 is not 张三's, but the team's: the whole team's register is searchable.
    assert "\n".join([
        L("customers.title", text="7号台区", total=2, first=1, last=2),
        f"• 城东社区卫生服务中心 · 7号台区 · 3201000301 · {L('category.important')}",
        f"• 陈国强 · 7号台区 · 3201000318 · "
        f"{L('category.arrears_risk')}、{L('category.service_sensitive')}"]) in shown
    assert any(s.startswith(L("customer.card_title", name="李德福", account="3201000102"))
               for s in shown)

    actions = [(a["action"], a["actor"], a["entity_id"]) for a in
               query(db, "SELECT * FROM audit_log ORDER BY id")]
    assert [a for a, _, _ in actions].count("import") >= 2
    [(_, actor, cid)] = [a for a in actions if a[0] == "reveal"]
    [wang] = query(db, "SELECT id FROM customers WHERE account_no = '3201000101'")
    assert (actor, cid) == ("张三", wang["id"])
