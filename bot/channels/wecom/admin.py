"""taiqu-bot commands for WeCom: `wecom menu`, `invite --wecom-user`, `teams set-robot`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.config import Settings, SettingsError

if TYPE_CHECKING:
    from bot.channels.wecom.config import WeComSettings


def wecom_settings_or_exit(command: str) -> WeComSettings | None:
    """The TAIQU_WECOM_* settings, or None after one clear line on stderr."""
    from bot.channels.wecom.config import load_wecom_settings

    try:
        return load_wecom_settings()
    except SettingsError as exc:
        print(f"taiqu-bot {command}: {exc}", file=sys.stderr)
        return None


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    wecom = sub.add_parser("wecom", help="WeCom (企业微信) app: push the app menu")
    wecom_sub = wecom.add_subparsers(dest="action", required=True)
    wecom_sub.add_parser("menu", help="push the app menu (记日志 / 待办 / 查客户 / 周报 …) "
                         "with menu/create; a click works like the command")
    bind = wecom_sub.add_parser(
        "bind", help="bind a WeCom member to an existing account (someone already on "
        "Telegram): one account, one form, pushes where they were last seen")
    bind.add_argument("--team", required=True)
    bind.add_argument("--name", required=True, help="the account's name in the team")
    bind.add_argument("userid", metavar="USERID", help="the member's WeCom UserID (账号)")
    teams = sub.add_parser("teams", help="team settings")
    teams_sub = teams.add_subparsers(dest="action", required=True)
    robot = teams_sub.add_parser(
        "set-robot", help="the team's WeCom group robot (群机器人) URL for the Monday summary "
        "(team figures and staff names only); 'off' removes it")
    robot.add_argument("--team", required=True)
    robot.add_argument("url", metavar="URL", help="https://qyapi.weixin.qq.com/cgi-bin/"
                       "webhook/send?key=…, or off")


async def wecom_menu(settings: Settings) -> int:
    """Exit 0: pushed; 2: settings missing or WeCom refused."""
    from bot.channels.wecom.api import WeComAPIError, WeComClient
    from bot.channels.wecom.menu import menu

    ws = wecom_settings_or_exit("wecom menu")
    if ws is None:
        return 2
    async with WeComClient.from_settings(ws) as client:
        try:
            await client.create_menu(menu(settings.locale))
        except WeComAPIError as exc:
            print(f"taiqu-bot wecom menu: WeCom refused the menu ({exc})", file=sys.stderr)
            return 2
    print(f"已推送应用菜单 / app menu pushed (AgentId {ws.agent_id})")
    return 0


async def set_robot(settings: Settings, team: str, url: str) -> int:
    """Exit 0: set; 2: unknown team or not a robot URL."""
    from bot.channels.wecom.robot import RobotError
    from bot.channels.wecom.robot import set_robot as store_robot
    from bot.services import Services

    services = await Services.open(settings)
    try:
        found = await store_robot(services, team, None if url == "off" else url)
    except RobotError as exc:
        print(f"taiqu-bot teams set-robot: {exc}", file=sys.stderr)
        return 2
    finally:
        await services.close()
    if not found:
        print(f"taiqu-bot teams set-robot: 没有这个班组 / unknown team {team!r}",
              file=sys.stderr)
        return 2
    print(f"已设置 / set: {team} " + ("不再发送群机器人周报 / robot removed" if url == "off"
                                      else "每周一把班组汇总发到群机器人 / Monday summary to "
                                      "the group robot (team figures and staff names only)"))
    return 0


async def bind_wecom_user(settings: Settings, invite_code: str, userid: str,
                          name: str | None) -> str | None:
    """Redeem a fresh invite for a WeCom member at once; the error text, or None."""
    from bot.services import Services
    from bot.storage.people import InviteError

    services = await Services.open(settings)
    try:
        if await services.people.by_identity("wecom", userid) is not None:
            return f"WeCom user {userid!r} is already bound to an account"
        try:
            await services.people.redeem_invite(invite_code, channel="wecom", external_id=userid,
                                                fallback_name=name or userid,
                                                now=services.clock.now())
        except InviteError as exc:
            return f"invite {exc.reason}"
        return None
    finally:
        await services.close()



async def bind_existing(settings: Settings, team: str, name: str, userid: str) -> int:
    """Exit 0: bound; 2: no such account, several, or the UserID belongs to another."""
    from bot.services import Services

    services = await Services.open(settings)
    try:
        rows = await services.db.fetchall(
            "SELECT u.id FROM users u JOIN teams t ON t.id = u.team_id "
            "WHERE t.name = ? AND u.name = ? AND u.active = 1", (team, name))
        if len(rows) != 1:
            why = "no active account" if not rows else f"{len(rows)} accounts"
            print(f"taiqu-bot wecom bind: {why} named {name!r} in team {team!r}",
                  file=sys.stderr)
            return 2
        owner = await services.people.by_identity("wecom", userid)
        if owner is not None and owner.id != rows[0][0]:
            print(f"taiqu-bot wecom bind: WeCom user {userid!r} is already bound to "
                  f"{owner.name} ({owner.team_name})", file=sys.stderr)
            return 2
        async with services.db.tx() as tx:
            await services.people.link_identity(tx, "wecom", userid, rows[0][0],
                                                services.clock.now())
    finally:
        await services.close()
    print(f"已绑定 / bound: {team} {name} ← 企业微信 / WeCom {userid}")
    return 0
