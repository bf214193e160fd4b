"""The terminal chat and the CLI through their real entry points, as subprocesses on a database
file in tmp_path: `python -m bot chat ...`, `taiqu-bot invite`, `taiqu-bot run`."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.services import Services
from bot.storage.people import InviteError
from tests.tg_harness import L

pytestmark = pytest.mark.timeout(60)

TIME_SHOWN = re.compile(r"\d{4}-\d{2}-\d{2} 周[一二三四五六日] \d{2}:\d{2}")


def _env(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env.update({"TAIQU_DB_PATH": str(db), "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"})
    env.update(extra)
    return env


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("taiqu-bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def run(args: list[str], db: Path, stdin: str = "", *, cli: bool = False,
        **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [*_cli(), *args] if cli else [sys.executable, "-m", "bot", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, encoding="utf-8",
                           env=_env(db, **env), cwd=db.parent, timeout=45)


def chat(db: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(["chat", *args], db, "".join(line + "\n" for line in lines))


def rows(db: Path) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        out = []
        for r in con.execute("SELECT w.*, a.name AS area_name, u.name AS user_name "
                             "FROM worklogs w JOIN areas a ON a.id = w.area_id "
                             "JOIN users u ON u.id = w.user_id ORDER BY w.id"):
            d = dict(r)
            d["items"] = sorted(x[0] for x in con.execute(
                "SELECT item FROM worklog_items WHERE worklog_id = ?", (r["id"],)))
            d["photos"] = [f"{x[0]}:{x[1]}" for x in con.execute(
                "SELECT channel, file_ref FROM worklog_photos WHERE worklog_id = ? "
                "ORDER BY position", (r["id"],))]
            out.append(d)
        return out
    finally:
        con.close()


def test_whole_form_by_button_numbers_and_texts(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, [
        "/log",
        "4",            # ☐ 巡视, by number
        "☐ 走访",       # by the button's text
        "完成",         # text without the emoji
        "1",            # 3号台区
        "现在",
        "更换3号杆表箱锁具",
        "跳过",
        "/photo 表箱照片",
        "/photo",
        "完成",
        "/location 31.8,117.2",
        "保存",
        "/quit",
    ], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    demo_users = "张三（manager）、李四（manager）、王班长（lead）"
    assert L("terminal.demo_created", users=demo_users) in out
    assert L("menu.hello", name="张三") in out
    assert "[4] ☐ 巡视" in out and "[4] ☑ 巡视" in out and "[1] ☑ 走访" in out
    assert "[1] 3号台区   [2] 5号台区" in out
    assert L("form.photo_received", count=2) in out
    summary = out[out.index(L("form.summary_title", title="工作日志")):]
    assert "工作项目：走访、巡视" in summary or "工作项目：巡视、走访" in summary
    assert "台区：3号台区" in summary and "照片：2 张" in summary
    assert "位置：31.80000, 117.20000" in summary
    assert TIME_SHOWN.search(summary.split("时间：", 1)[1])
    assert "✅ 已保存工作日志 #1" in out
    assert out.rstrip().endswith(L("terminal.bye"))
    [row] = rows(db)
    assert row["items"] == ["patrol", "visit"] and row["area_name"] == "3号台区"
    assert row["user_name"] == "张三" and row["content"] == "更换3号杆表箱锁具"
    assert row["photos"] == ["terminal:表箱照片", "terminal:photo2"]
    assert (row["latitude"], row["longitude"]) == (31.8, 117.2)


def test_bad_location_command_is_explained(tmp_path: Path) -> None:
    p = chat(tmp_path / "taiqu.db", ["记录巡视 3号台区 昨天下午3点 更换表箱", "跳过", "跳过",
                                     "/location 北纬31度", "/quit"], "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    assert L("terminal.bad_location") in p.stdout
    assert L("terminal.bye_draft") in p.stdout


def test_spoken_sentence_with_time_and_particle_is_a_prefilled_log(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, ["昨天走访了5号台区王大爷家", "跳过", "跳过", "跳过", "保存", "/quit"],
             "--demo", "--user", "张三")
    assert p.returncode == 0, p.stderr
    assert "工作内容 王大爷家" in p.stdout  # prefilled: asked straight for problems
    [row] = rows(db)
    assert row["items"] == ["visit"] and row["area_name"] == "5号台区"
    assert row["content"] == "王大爷家" and row["time_precision"] == "day"  # 昨天: a date


def test_empty_database_without_demo_exits_non_zero(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, ["n"])
    assert p.returncode != 0
    assert L("terminal.empty_db") in p.stdout
    assert L("terminal.no_demo") in p.stdout
    p = chat(db, [], "--no-demo")
    assert p.returncode != 0 and L("terminal.no_demo") in p.stdout
    assert rows(db) == []


def test_unknown_user_lists_the_users(tmp_path: Path) -> None:
    p = chat(tmp_path / "taiqu.db", [], "--demo", "--user", "不存在")
    assert p.returncode != 0
    assert L("terminal.unknown_user", name="不存在", users="张三、李四、王班长") in p.stdout


def test_unknown_user_says_how_to_invite(tmp_path: Path) -> None:
    p = chat(tmp_path / "taiqu.db", [], "--demo", "--user", "不存在")
    assert "taiqu-bot invite --role manager" in p.stdout and "--user" in p.stdout


def test_someone_invited_signs_in_to_the_local_chat_by_name(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = run(["invite", "--role", "lead", "--team", "城东供电所", "--name", "王五"], db, cli=True)
    assert p.returncode == 0, p.stderr
    p = chat(db, ["/quit"], "--user", "王五")
    assert p.returncode == 0, p.stdout + p.stderr
    assert L("menu.hello", name="王五") in p.stdout


def test_quit_at_the_demo_question_quits_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, ["/quit"])
    assert L("terminal.empty_db") in p.stdout
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.rstrip().endswith(L("terminal.bye"))
    assert L("terminal.no_demo") not in p.stdout


def test_the_chat_logs_to_a_private_file_not_between_its_lines(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = chat(db, ["/quit"], "--demo", "--user", "张三")
    assert p.returncode == 0 and "Traceback" not in p.stdout + p.stderr
    log = tmp_path / "logs" / "chat.log"
    assert log.exists() and (log.stat().st_mode & 0o777) == 0o600
    assert (log.parent.stat().st_mode & 0o777) == 0o700


def test_pick_user_by_number_when_no_user_given(tmp_path: Path) -> None:
    p = chat(tmp_path / "taiqu.db", ["3", "/quit"], "--demo")
    assert p.returncode == 0, p.stderr
    assert L("terminal.pick_user") in p.stdout and "[3] 王班长（城东供电所，lead）" in p.stdout
    assert L("menu.hello", name="王班长") in p.stdout
    assert L("menu.role.lead", team="城东供电所", areas="3号台区、5号台区、7号台区") in p.stdout


def test_quitting_mid_form_and_starting_again_resumes(tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    first = chat(db, ["记录巡视 3号台区", "昨天下午3点", "/quit"], "--demo", "--user", "张三")
    assert first.returncode == 0, first.stderr
    assert L("form.worklog.content") in first.stdout
    assert first.stdout.rstrip().endswith(L("terminal.bye_draft"))

    second = chat(db, ["2号杆拉线松动已紧固", "跳过", "跳过", "跳过", "保存", "/quit"],
                  "--user", "张三")
    assert second.returncode == 0, second.stderr
    out = second.stdout
    assert L("terminal.demo_created", users="x").split("：")[0] not in out  # no second demo
    # The second run opens on the pending step, then goes on from it.
    resumed = out[out.index(L("help.in_form")):]
    assert resumed.index(L("form.worklog.content")) < resumed.index(L("form.worklog.problems"))
    assert "时间：2026-" in out and "工作内容：2号杆拉线松动已紧固" in out
    assert out.rstrip().endswith(L("terminal.bye"))
    [row] = rows(db)
    assert row["content"] == "2号杆拉线松动已紧固" and row["items"] == ["patrol"]
    assert row["time_precision"] == "minute" and row["occurred_at"].endswith("07:00:00+00:00")


async def test_invite_prints_the_code_alone_on_the_last_line_and_it_redeems(
        tmp_path: Path) -> None:
    db = tmp_path / "taiqu.db"
    p = run(["invite", "--role", "manager", "--team", "城东供电所", "--areas", "3号台区,5号台区",
             "--name", "张三"], db, cli=True)
    assert p.returncode == 0, p.stderr
    last = p.stdout.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{12}", last), p.stdout
    assert f"/start {last}" in p.stdout

    services = await Services.open(load_settings(db_path=db))
    try:
        user = await services.people.redeem_invite(
            last, channel="telegram", external_id="42", fallback_name="路人",
            now=datetime.now(UTC))
        assert (user.name, user.role.value, user.team_name) == ("张三", "manager", "城东供电所")
        assert [a.name for a in await services.people.areas_for(user)] == ["3号台区", "5号台区"]
        with pytest.raises(InviteError) as refused:
            await services.people.redeem_invite(
                last, channel="telegram", external_id="43", fallback_name="路人",
                now=datetime.now(UTC))
        assert refused.value.reason == "used"
    finally:
        await services.close()


def test_run_without_token_says_how_to_configure(tmp_path: Path) -> None:
    p = run(["run"], tmp_path / "taiqu.db", cli=True)
    assert p.returncode != 0
    assert "TAIQU_TELEGRAM_TOKEN" in p.stderr and "taiqu-bot chat" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(("name", "value"), [("TAIQU_TIMEZONE", "Mars/Base"),
                                             ("TAIQU_FORM_TIMEOUT_MINUTES", "abc"),
                                             ("TAIQU_LOCALE", "fr"),
                                             ("TAIQU_TELEGRAM_TOKEN", "no colon")])
def test_invalid_setting_exits_2_with_one_line_naming_it(tmp_path: Path, name: str,
                                                        value: str) -> None:
    for args in (["chat", "--demo"], ["run"]):
        p = run(args, tmp_path / "taiqu.db", "", **{name: value})
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert name in lines[0]
        assert not (tmp_path / "taiqu.db").exists()


async def test_a_terminal_chat_alone_leaves_telegram_users_reminders_for_the_bot(
        services: Services) -> None:
    """`taiqu-bot chat` on the database while `run` is stopped holds the lease and scans the
    reminders, but can only show the signed-in user's: a Telegram user's were settled as
    failed (lost), the user marked unreachable and the day's digest marked done."""
    import io

    from bot.assistant import Assistant
    from bot.channels.terminal import TerminalChat, terminal_reminders
    from bot.models import Role
    from tests.conftest import Chat, make_user
    from tests.test_reminders import register_complaint

    await make_user(services, "张三", channel="telegram", external_id="42")
    lead = await make_user(services, "王班长", role=Role.LEAD, areas=(), channel="terminal",
                           external_id="2")
    assistant = Assistant(services)
    await register_complaint(Chat(assistant, "telegram", "42"))
    services.clock.advance(hours=4, minutes=31)  # Fri 15:01: the half-way reminder is due
    out = io.StringIO()
    service = terminal_reminders(services, TerminalChat(assistant, lead, out))
    result = await service.scan_once()
    assert (result.failed, result.sent) == (0, 0), result
    row = await services.db.fetchone("SELECT state FROM reminders WHERE kind = 'contact.half'")
    assert row is not None and row[0] == "pending"  # still there for `run`
    zhang = await services.people.by_identity("telegram", "42")
    assert zhang is not None and not zhang.unreachable
