"""taiqu-bot and WeCom: settings checked at start, `invite --wecom-user`, `wecom menu`,
`teams set-robot` and the Monday summary to a team's group robot, and `run` serving WeCom
beside Telegram in one process."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.channels.wecom.admin import set_robot, wecom_menu
from bot.channels.wecom.robot import RobotError, check_url, team_robot_job
from bot.cli import _run, main
from bot.clock import FakeClock
from bot.config import Settings
from bot.models import Role
from bot.services import Services
from bot.storage.customers import CustomerData
from tests.conftest import SHANGHAI, make_user, telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.test_terminal_chat import run
from tests.wecom_harness import shown

GOOD_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def wecom_env(fake: FakeWeCom | None = None, **extra: str) -> dict[str, str]:
    env = {"TAIQU_WECOM_CORP_ID": fake.corp_id if fake else "ww1436e0e65a779aee",
           "TAIQU_WECOM_AGENT_ID": str(fake.agent_id if fake else 1000002),
           "TAIQU_WECOM_SECRET": fake.secret if fake else "secret",
           "TAIQU_WECOM_TOKEN": fake.token if fake else "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
           "TAIQU_WECOM_AES_KEY": fake.aes_key if fake else GOOD_KEY}
    if fake is not None:
        env["TAIQU_WECOM_API_BASE"] = fake.base_url
    env.update(extra)
    return env


@pytest.mark.parametrize(("name", "value", "says"), [
    ("TAIQU_WECOM_AES_KEY", GOOD_KEY[:42], "43 characters"),
    ("TAIQU_WECOM_AGENT_ID", "abc", "TAIQU_WECOM_AGENT_ID"),
    ("TAIQU_WECOM_LISTEN", "8088", "TAIQU_WECOM_LISTEN"),
])
def test_a_wrong_wecom_setting_stops_run_with_one_line(tmp_path: Path, name: str, value: str,
                                                       says: str) -> None:
    p = run(["run"], tmp_path / "taiqu.db", **wecom_env(**{name: value}))
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and says in lines[0], p.stderr
    assert not (tmp_path / "taiqu.db").exists()


def test_invite_with_wecom_user_binds_at_once(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "taiqu.db"
    monkeypatch.setenv("TAIQU_DB_PATH", str(db))
    args = ["invite", "--role", "manager", "--team", "城东供电所", "--areas", "3号台区",
            "--name", "李四", "--wecom-user", "lisi"]
    assert main(args) == 0
    assert "lisi" in capsys.readouterr().out
    con = sqlite3.connect(db)
    rows = con.execute("SELECT i.channel, i.external_id, u.name, u.role FROM identities i "
                       "JOIN users u ON u.id = i.user_id").fetchall()
    used = con.execute("SELECT count(*) FROM invites WHERE used_at IS NOT NULL").fetchone()
    con.close()
    assert rows == [("wecom", "lisi", "李四", "manager")] and used == (1,)
    assert main(args) == 2  # already bound: refused, no second account
    assert "already bound" in capsys.readouterr().err


async def test_wecom_menu_pushes_the_app_menu(settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeWeCom() as fake:
        for k, v in wecom_env(fake).items():
            monkeypatch.setenv(k, v)
        assert await wecom_menu(settings) == 0
        [menu] = fake.menus.values()
    names = [b["name"] for b in menu]
    assert names == ["记日志", "待办", "更多"]
    keys = {b["name"]: b["key"] for top in menu for b in [top, *top.get("sub_button", [])]
            if "key" in b}
    assert keys["查客户"] == "cmd:customers" and keys["周报"] == "cmd:report"
    assert keys["记日志"] == "cmd:log"


async def test_wecom_menu_without_settings_says_so(settings: Settings,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert await wecom_menu(settings) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TAIQU_WECOM_" in err[0]


# --- the team robot ----------------------------------------------------------------------
def test_robot_url_must_be_a_webhook() -> None:
    assert check_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc")
    for bad in ("https://example.com/hook", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
                "ftp://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=a"):
        with pytest.raises(RobotError):
            check_url(bad)


async def test_monday_summary_goes_to_the_team_robot_once_without_customer_data(
        services: Services, settings: Settings, clock: FakeClock) -> None:
    zhang = await make_user(services, "张三")
    await make_user(services, "王班长", Role.LEAD, areas=())
    await make_user(services, "赵六", team="城西供电所", areas=("8号台区",))
    area = (await services.people.areas_for(zhang))[0].id
    await services.customers.create(zhang, CustomerData(
        "5500012345", "李四户主", area, "东风村3组", "13800001234", ("medical",)),
        services.clock.now())
    async with FakeWeCom() as fake:
        assert await set_robot(settings, "城东供电所", fake.robot_url("k1")) == 0
        assert await set_robot(settings, "没有的班组", fake.robot_url("k2")) == 2
        assert await set_robot(settings, "城东供电所", "https://example.com/x") == 2
        clock.set(datetime(2026, 11, 30, 8, 29, tzinfo=SHANGHAI))
        assert await team_robot_job(services, _no_push, clock.now()) == 0  # before 08:30
        clock.set(datetime(2026, 11, 30, 8, 31, tzinfo=SHANGHAI))
        assert await team_robot_job(services, _no_push, clock.now()) == 1
        assert await team_robot_job(services, _no_push, clock.now()) == 0  # once a week
        [msg] = fake.robots["k1"].sent
    text = msg["text"]["content"]
    assert "城东供电所" in text and "张三" in text and "王班长" not in text.split("\n")[0]
    assert len(text.encode()) <= 2048
    for secret in ("李四户主", "13800001234", "138****1234", "5500012345", "东风村", "赵六"):
        assert secret not in text


async def _no_push(user_id: int, reply: object) -> None:
    raise AssertionError("the robot job pushes to nobody")


async def test_robot_fault_is_retried_at_a_later_scan(services: Services, settings: Settings,
                                                      clock: FakeClock) -> None:
    await make_user(services, "张三")
    async with FakeWeCom() as fake:
        assert await set_robot(settings, "城东供电所", fake.robot_url("k1")) == 0
        clock.set(datetime(2026, 11, 30, 8, 31, tzinfo=SHANGHAI))
        fake.fail_next("/cgi-bin/webhook/send", "45009")
        assert await team_robot_job(services, _no_push, clock.now()) == 0
        clock.advance(minutes=1)
        assert await team_robot_job(services, _no_push, clock.now()) == 1
        assert len(fake.robots["k1"].sent) == 1


async def test_a_long_summary_cut_short_by_a_fault_is_not_repeated_in_the_group(
        services: Services, settings: Settings, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A big team's summary goes as several messages (2048 bytes each); when a later one
    fails, the next scan sends what is missing, not the whole summary again: the group
    does not read the first part twice."""
    from bot.channels.wecom import robot

    for i in range(60):  # one short line each (issue #15 §4.3): more than one robot message
        await make_user(services, f"客户经理{i:02d}")
    calls: list[str] = []
    send = robot.SENDER.send

    async def second_fails_once(url: str, text: str) -> bool:
        calls.append(text)
        return False if len(calls) == 2 else await send(url, text)

    monkeypatch.setattr(robot.SENDER, "send", second_fails_once)
    async with FakeWeCom() as fake:
        assert await set_robot(settings, "城东供电所", fake.robot_url("long")) == 0
        clock.set(datetime(2026, 11, 30, 8, 31, tzinfo=SHANGHAI))
        assert await team_robot_job(services, _no_push, clock.now()) == 0
        clock.advance(minutes=1)
        assert await team_robot_job(services, _no_push, clock.now()) == 1
        assert await team_robot_job(services, _no_push, clock.now()) == 0
        got = [m["text"]["content"] for m in fake.robots["long"].sent]
    assert len(got) >= 2 and len(set(got)) == len(got), [g[:30] for g in got]
    assert "客户经理00" in got[0] and "客户经理59" in got[-1]
    assert all(len(g.encode()) <= 2048 for g in got)


# --- run: WeCom beside Telegram ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_wecom_beside_telegram_in_one_process(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    async with FakeWeCom() as fake, FakeBotAPI() as tg:
        for k, v in wecom_env(fake, TAIQU_WECOM_LISTEN=f"127.0.0.1:{port}").items():
            monkeypatch.setenv(k, v)
        both = telegram_settings(settings, tg).model_copy(
            update={"wecom_corp_id": fake.corp_id})
        services = await Services.open(both)
        try:
            await make_user(services, "张三", channel="wecom", external_id="zhangsan")
            invite = await services.people.create_invite(
                role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name="李四",
                now=services.clock.now(), ttl=timedelta(days=7))
        finally:
            await services.close()
        stop = asyncio.Event()
        task = asyncio.create_task(_run(both, stop))
        url = f"http://127.0.0.1:{port}/wecom/callback"
        for _ in range(100):  # until the callback server listens
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                assert not task.done(), task
                await asyncio.sleep(0.05)
        status, _ = await fake.post_callback(url, fake.text_xml("zhangsan", "查客户 无此人"))
        assert status == 200
        tg_answer = await tg.reply_to(42, f"/start {invite.code}", idle=0.2)
        await fake.wait_for("zhangsan")
        stop.set()
        assert await task == 0
    assert "无此人" in shown(fake.sent("zhangsan")[0])
    assert any("李四" in str(m.get("text")) for m in tg_answer)


def test_callback_keys_must_outlive_the_replay_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.channels.wecom.config import load_wecom_settings
    from bot.config import SettingsError

    for k, v in wecom_env().items():
        monkeypatch.setenv(k, v)
    assert load_wecom_settings().keep_days == 3
    monkeypatch.setenv("TAIQU_WECOM_KEEP_DAYS", "2")
    monkeypatch.setenv("TAIQU_WECOM_CALLBACK_MAX_AGE_SECONDS", str(3 * 86400))
    with pytest.raises(SettingsError, match="TAIQU_WECOM_KEEP_DAYS"):
        load_wecom_settings()


def test_wecom_bind_adds_wecom_to_an_existing_account(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    db = tmp_path / "taiqu.db"
    monkeypatch.setenv("TAIQU_DB_PATH", str(db))
    assert main(["invite", "--role", "manager", "--team", "城东供电所", "--name", "张三",
                 "--wecom-user", "zs-old"]) == 0
    assert main(["invite", "--role", "manager", "--team", "城东供电所", "--name", "李四",
                 "--wecom-user", "lisi"]) == 0
    con = sqlite3.connect(db)
    con.execute("INSERT INTO identities(channel, external_id, user_id, created_at) "
                "SELECT 'telegram', '42', id, created_at FROM users WHERE name = '张三'")
    con.commit()
    capsys.readouterr()
    assert main(["wecom", "bind", "--team", "城东供电所", "--name", "张三", "zhangsan"]) == 0
    assert main(["wecom", "bind", "--team", "城东供电所", "--name", "张三", "lisi"]) == 2
    assert "already bound to 李四" in capsys.readouterr().err
    assert main(["wecom", "bind", "--team", "城西供电所", "--name", "张三", "x"]) == 2
    rows = con.execute("SELECT i.channel, i.external_id FROM identities i JOIN users u "
                       "ON u.id = i.user_id WHERE u.name = '张三' ORDER BY 1, 2").fetchall()
    con.close()
    assert rows == [("telegram", "42"), ("wecom", "zhangsan"), ("wecom", "zs-old")]
