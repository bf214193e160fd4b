"""`taiqu-bot telegram set-webhook | delete-webhook | webhook-info`: tell Telegram where to
POST updates (webhook mode, several instances) or go back to long polling (one instance)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from telegram import Bot


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tg = sub.add_parser("telegram", help="Telegram webhook: set, delete, show")
    tg_sub = tg.add_subparsers(dest="action", required=True)
    tg_sub.add_parser("set-webhook", help="tell Telegram to POST updates to "
                      "TAIQU_TELEGRAM_WEBHOOK_URL with TAIQU_TELEGRAM_WEBHOOK_SECRET")
    tg_sub.add_parser("delete-webhook", help="back to long polling (one instance only)")
    tg_sub.add_parser("webhook-info", help="what Telegram has: URL, pending updates, last error")


def _bot(settings: Settings) -> Bot:
    from telegram import Bot  # PTB only for this command, not for every CLI start

    assert settings.telegram_token is not None
    return Bot(settings.telegram_token, base_url=settings.telegram_base_url,
               base_file_url=settings.telegram_base_file_url)


async def telegram_admin(settings: Settings, action: str) -> int:
    """Exit 0: done; 2: a setting is missing; 1: Telegram refused (its reason printed)."""
    from telegram.error import TelegramError

    from bot.channels.telegram_webhook import ALLOWED_UPDATES

    if not settings.telegram_token:
        print("taiqu-bot telegram: TAIQU_TELEGRAM_TOKEN is not set", file=sys.stderr)
        return 2
    if action == "set-webhook" and not (settings.telegram_webhook_url
                                        and settings.telegram_webhook_secret):
        print("taiqu-bot telegram set-webhook: set TAIQU_TELEGRAM_WEBHOOK_URL and "
              "TAIQU_TELEGRAM_WEBHOOK_SECRET first / 请先设置这两个变量", file=sys.stderr)
        return 2
    try:
        async with _bot(settings) as bot:
            if action == "set-webhook":
                await bot.set_webhook(settings.telegram_webhook_url or "",
                                      secret_token=settings.telegram_webhook_secret,
                                      allowed_updates=ALLOWED_UPDATES)
                print(f"webhook 已设置 / set: {settings.telegram_webhook_url}")
            elif action == "delete-webhook":
                await bot.delete_webhook()
                print("webhook 已删除，恢复长轮询 / deleted: long polling again")
            else:
                info = await bot.get_webhook_info()
                print(f"url: {info.url or '(none: long polling)'}\n"
                      f"pending_update_count: {info.pending_update_count}\n"
                      f"last_error: {info.last_error_message or '-'}")
    except TelegramError as exc:
        print(f"taiqu-bot telegram {action}: Telegram refused: {exc}", file=sys.stderr)
        return 1
    return 0
