"""taiqu-bot: run the channels, chat locally, issue invite codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta

from bot.config import Settings, SettingsError, load_settings
from bot.models import Role


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taiqu-bot", description="台区助手 Taiqu Assistant")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve every configured channel (Telegram long polling)")
    chat = sub.add_parser("chat", help="local terminal chat on the embedded database")
    chat.add_argument("--user", help="sign in as this user (by name)")
    demo = chat.add_mutually_exclusive_group()
    demo.add_argument("--demo", dest="demo", action="store_true", default=None,
                      help="on an empty database, create the demo team without asking")
    demo.add_argument("--no-demo", dest="demo", action="store_false")
    inv = sub.add_parser("invite", help="create a one-time invite code")
    inv.add_argument("--role", required=True, choices=[r.value for r in Role])
    inv.add_argument("--team", required=True)
    inv.add_argument("--areas", default="", help='comma-separated, e.g. "3号台区,5号台区"')
    inv.add_argument("--name", default=None)
    inv.add_argument("--ttl-days", type=int, default=None, help="default TAIQU_INVITE_TTL_DAYS")
    return p


async def _invite(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import Services

    services = await Services.open(settings)
    try:
        areas = [a.strip() for a in args.areas.replace("，", ",").split(",") if a.strip()]
        ttl = timedelta(days=args.ttl_days or settings.invite_ttl_days)
        invite = await services.people.create_invite(
            role=Role(args.role), team=args.team.strip(), areas=areas, name=args.name,
            now=services.clock.now(), ttl=ttl)
    finally:
        await services.close()
    expires = invite.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    print(f"邀请码 / invite code for {args.name or '(name from chat)'} "
          f"[{args.role}, {args.team}], valid until {expires} ({settings.timezone}); "
          f"send in Telegram: /start {invite.code}")
    print(invite.code)
    return 0


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.channels.terminal import run_terminal
    from bot.services import Services

    services = await Services.open(settings)
    try:
        return await run_terminal(services, args.user, args.demo)
    finally:
        await services.close()


async def _run(settings: Settings) -> int:
    if not settings.telegram_token:
        print("No channel is configured: set TAIQU_TELEGRAM_TOKEN (in the environment or .env) "
              "to serve Telegram, or try the local chat with `taiqu-bot chat`.\n"
              "没有配置任何渠道：请设置 TAIQU_TELEGRAM_TOKEN，或先用 `taiqu-bot chat` 在终端试用。",
              file=sys.stderr)
        return 2
    from bot.assistant import Assistant
    from bot.channels.telegram import TelegramChannel
    from bot.services import Services

    services = await Services.open(settings)
    channel = TelegramChannel(Assistant(services), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await channel.start()
        logging.getLogger("bot").info("serving Telegram; Ctrl+C to stop")
        await stop.wait()
    finally:
        await channel.stop()
        await services.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "run" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"taiqu-bot: {exc}", file=sys.stderr)
        return 2
    if args.command == "invite":
        return asyncio.run(_invite(settings, args))
    if args.command == "chat":
        return asyncio.run(_chat(settings, args))
    return asyncio.run(_run(settings))


if __name__ == "__main__":
    sys.exit(main())
